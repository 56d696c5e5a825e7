"""Subscribers hear about writes: resources/subscribe (2025) and subscriptions/listen (2026)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceUpdatedNotification

from mcp_server.server import WorkingMemoryServer
from tests.server.helpers import agent

# resources/subscribe is what 2025-era clients speak; the SDK marks it deprecated
from tests.support.results import updated_uri

pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


class Inbox:
    def __init__(self) -> None:
        self.uris: list[str] = []
        self._event = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.uris.append(message.params.uri)
            self._event.set()

    async def next(self) -> str:
        with anyio.fail_after(2):
            await self._event.wait()
        self._event = anyio.Event()
        return self.uris.pop(0)


async def test_subscribers_of_current_session_hear_writes(server: WorkingMemoryServer) -> None:
    inbox = Inbox()
    async with agent(server, "legacy", message_handler=inbox) as a:
        caps = a.client.server_capabilities
        assert caps.resources is not None and caps.resources.subscribe is True
        await a.client.subscribe_resource("memory://session/current")
        for tool, args in (
            ("memory_set", {"key": "k", "value": 1}),
            ("memory_delete", {"key": "k"}),
            ("task_state_set", {"task_id": "t", "status": "pending"}),
            ("scratchpad_append", {"content": "x"}),
            ("checkpoint_create", {}),
        ):
            await a.call(tool, **args)
            assert await inbox.next() == "memory://session/current", tool
        await a.call("memory_get", key="k")  # reads notify nobody
        await a.call("memory_delete", key="absent")  # nor do writes that change nothing
        await a.client.unsubscribe_resource("memory://session/current")
        await a.call("memory_set", key="k", value=2)
        assert inbox.uris == []


async def test_subscribing_by_handle_hears_other_agents(server: WorkingMemoryServer) -> None:
    inbox = Inbox()
    async with (
        agent(server, "legacy", message_handler=inbox) as watcher,
        agent(server, "stateless") as writer,
    ):
        uri = f"memory://session/{writer.handle}"
        await watcher.client.subscribe_resource(uri)
        await writer.call("memory_set", key="k", value=1)
        assert await inbox.next() == uri


async def test_subscribers_hear_when_a_connection_session_ends(
    server: WorkingMemoryServer,
) -> None:
    inbox = Inbox()
    async with agent(server, "legacy", message_handler=inbox) as watcher:
        async with agent(server, "legacy") as worker:
            session = (await worker.call("session_info"))["session"]
            await watcher.client.subscribe_resource(f"memory://session/{session}")
        assert await inbox.next() == f"memory://session/{session}"  # torn down on disconnect
        with pytest.raises(MCPError, match=r"^SESSION_NOT_FOUND: "):
            await watcher.client.read_resource(f"memory://session/{session}")


async def test_subscribing_needs_a_session_resource_of_yours(server: WorkingMemoryServer) -> None:
    async with agent(server, "legacy") as a:
        with pytest.raises(MCPError, match=r"^NOT_FOUND: "):
            await a.client.subscribe_resource("memory://health")
        with pytest.raises(MCPError, match=r"^SESSION_NOT_FOUND: "):
            await a.client.subscribe_resource("memory://session/" + "Q" * 32)


async def test_listen_streams_hear_writes(server: WorkingMemoryServer) -> None:
    async with agent(server, "stateless") as a:
        uri = f"memory://session/{a.handle}"
        async with a.client.listen(resource_subscriptions=[uri]) as events:
            await a.call("memory_set", key="k", value=1)
            with anyio.fail_after(2):
                async for event in events:
                    assert updated_uri(event) == uri
                    break
