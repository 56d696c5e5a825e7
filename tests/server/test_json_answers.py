"""Every POST is answered with one JSON body (``http.JSON_ANSWERS``), in both eras, while
notifications still reach subscribers on their streams: the handshake era's GET stream
and the 2026-07-28 ``subscriptions/listen`` response stay SSE.

Real uvicorn on loopback and the SDK's own client; an httpx response hook records the
content type the server chose for each request."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ResourceUpdatedNotification

from mcp_server.http import create_app
from mcp_server.settings import Settings
from tests.server.e2e import RunningServer, serve_in_thread
from tests.support.child_env import ALL_TOOLS
from tests.support.results import updated_uri

# resources/subscribe is what 2025-era clients speak; the SDK marks it deprecated
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


class Answers:
    """(request method, response content type) of every exchange, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, response: httpx2.Response) -> None:
        request = response.request
        method = request.method
        if method == "POST":
            method = json.loads(request.content).get("method", "<answer>")
        kind = response.headers.get("content-type", "").split(";")[0]
        self.seen.append((method, kind))

    def kinds(self, method: str) -> set[str]:
        return {kind for m, kind in self.seen if m == method}


@pytest.fixture
def running() -> Iterator[RunningServer]:
    settings = Settings(transport="http", tools=ALL_TOOLS["WM_TOOLS"])
    with serve_in_thread(create_app(settings)) as server:
        yield server


async def test_handshake_posts_get_json_and_updates_arrive_on_the_get_stream(
    running: RunningServer,
) -> None:
    answers = Answers()
    updates: list[str] = []
    heard = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(message.params.uri)
            heard.set()

    async with httpx2.AsyncClient(event_hooks={"response": [answers]}, timeout=10) as http:
        transport = streamable_http_client(running.url + "/mcp", http_client=http)
        async with Client(transport, mode="legacy", message_handler=on_message) as client:
            await client.subscribe_resource("memory://session/current")
            await client.call_tool("memory_set", {"key": "k", "value": 1})
            with anyio.fail_after(5):
                await heard.wait()
    assert updates == ["memory://session/current"]
    for method in ("initialize", "resources/subscribe", "tools/call"):
        assert answers.kinds(method) == {"application/json"}, answers.seen
    assert answers.kinds("GET") == {"text/event-stream"}, answers.seen


async def test_stateless_posts_get_json_and_listen_stays_a_stream(
    running: RunningServer,
) -> None:
    answers = Answers()
    async with httpx2.AsyncClient(event_hooks={"response": [answers]}, timeout=10) as http:
        transport = streamable_http_client(running.url + "/mcp", http_client=http)
        async with Client(transport) as client:
            opened = await client.call_tool("session_open", {})
            assert opened.structured_content is not None
            handle = opened.structured_content["session"]
            uri = f"memory://session/{handle}"
            async with client.listen(resource_subscriptions=[uri]) as events:
                await client.call_tool("memory_set", {"key": "k", "value": 1, "session": handle})
                with anyio.fail_after(5):
                    async for event in events:
                        assert updated_uri(event) == uri
                        break
    assert answers.kinds("tools/call") == {"application/json"}, answers.seen
    assert answers.kinds("subscriptions/listen") == {"text/event-stream"}, answers.seen
