"""Output held for event-stream readers is bounded (issue 11, item 2; ``mcp_server/streams``).

Real uvicorn on loopback with the server's own connection options; the slow clients
are raw sockets with a 4 KiB receive buffer that stop reading their stream.
"""

from __future__ import annotations

import functools
import json
import socket
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest

from mcp_server import metrics
from mcp_server.connections import uvicorn_options
from mcp_server.http import create_app
from mcp_server.runtime import Runtime
from mcp_server.settings import Settings
from mcp_server.streams import PendingAnswers
from tests.server.e2e import HANDSHAKE, RawStreamable, eventually, serve_here
from tests.support.child_env import ALL_TOOLS

# resources/subscribe is what 2025-era clients speak; the SDK marks it deprecated
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")

BIG = "x" * 60_000  # one answer fills the slow reader's buffer quickly
MAX_POSTS = 400
MAX_CHANGES = 200_000


def settings(**overrides: Any) -> Settings:
    return Settings(transport="http", tools=ALL_TOOLS["WM_TOOLS"], **overrides)


async def post(http: httpx2.Client, url: str, message: dict[str, Any]) -> httpx2.Response:
    """A blocking client's post, off the event loop the server runs on."""
    return await anyio.to_thread.run_sync(functools.partial(http.post, url, json=message))


def refusals(limit: str) -> float:
    return float(metrics.LIMIT_REFUSALS.labels(limit)._value.get())


class SlowSse:
    """An SSE client on a raw socket: it reads when told to, and otherwise never."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        host = f"127.0.0.1:{port}"
        self.sock.sendall(
            f"GET /sse HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        self.seen = b""
        self.read_until(b"session_id=")
        self.read_until(b"\r\n\r\n", start=self.seen.index(b"data: "))
        data = self.seen[self.seen.index(b"data: ") :].split(b"\r\n", 1)[0]
        self.endpoint = data.removeprefix(b"data: ").decode()
        self.session = self.endpoint.split("session_id=")[1]

    def read_until(self, marker: bytes, start: int = 0) -> None:
        while marker not in self.seen[start:]:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the SSE stream"
            self.seen += chunk

    def read_answer(self, request_id: int) -> None:
        """Read until the whole event answering ``request_id`` is in."""
        marker = f'"id":{request_id},'.encode()
        self.read_until(marker)
        self.read_until(b"\r\n\r\n", start=self.seen.index(marker))

    def answers(self) -> dict[int, dict[str, Any]]:
        """Every JSON-RPC answer read so far, by id."""
        found = {}
        for line in self.seen.split(b"\r\n"):
            if line.startswith(b"data: {"):
                message = json.loads(line[6:])
                if "id" in message and ("result" in message or "error" in message):
                    found[message["id"]] = message
        return found

    def read_to_end(self) -> bool:
        """Read until the server closes the connection (True) or 10 s pass (False)."""
        self.sock.settimeout(10)
        try:
            while chunk := self.sock.recv(65536):
                self.seen += chunk
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def _initialized(http: httpx2.Client, base: str, slow: SlowSse) -> None:
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HANDSHAKE},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "memory_set", "arguments": {"key": "big", "value": BIG}},
        },
    ):
        assert http.post(base + slow.endpoint, json=message).status_code == 202
        if "id" in message:
            slow.read_answer(int(str(message["id"])))


def _get_big(request_id: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "memory_get", "arguments": {"key": "big"}},
    }


def _post_until_refused(http: httpx2.Client, base: str, slow: SlowSse) -> tuple[list[int], Any]:
    """Post requests without reading until one is refused: (accepted ids, the refusal)."""
    accepted: list[int] = []
    for request_id in range(100, 100 + MAX_POSTS):
        response = http.post(base + slow.endpoint, json=_get_big(request_id))
        if response.status_code == 429:
            return accepted, response
        assert response.status_code == 202, response.text
        accepted.append(request_id)
    raise AssertionError(f"{MAX_POSTS} posts accepted from a client that never reads")


async def test_a_client_that_never_reads_its_sse_stream_is_refused_past_the_bound() -> None:
    app = create_app(s := settings(max_pending_answers=8, stream_stall_seconds=60))
    pending: PendingAnswers = app.state.pending_answers
    async with serve_here(app, **uvicorn_options(s)) as (base, _), httpx2.AsyncClient() as other:
        port = int(base.rsplit(":", 1)[1])
        slow = await anyio.to_thread.run_sync(SlowSse, port)
        try:
            before = refusals("pending_answers")
            with httpx2.Client(timeout=10) as http:
                await anyio.to_thread.run_sync(_initialized, http, base, slow)
                accepted, refused = await anyio.to_thread.run_sync(
                    _post_until_refused, http, base, slow
                )
                # what the server holds for it is bounded: the unread answers it counts
                assert pending.pending(slow.session) == 8
                assert refused.headers["retry-after"] == "1"
                error = refused.json()
                assert error["id"] == accepted[-1] + 1 and error["error"]["code"] == -32600
                text = error["error"]["message"]
                assert "8 answers" in text and "WM_MAX_PENDING_ANSWERS" in text
                assert "read the event stream" in text
                assert refusals("pending_answers") == before + 1
                # everyone else is served meanwhile
                writer = RawStreamable(other, base + "/mcp")
                await writer.initialize()
                await writer.tool("memory_set", key="k", value=1)
                # once it reads, it gets exactly the accepted answers, and may post again
                last = accepted[-1]
                await anyio.to_thread.run_sync(slow.read_answer, last)
                assert set(slow.answers()) == {1, 2, *accepted}
                assert pending.pending(slow.session) == 0
                again = await post(http, base + slow.endpoint, _get_big(1000))
                assert again.status_code == 202
        finally:
            slow.close()


async def test_a_refused_post_changes_nothing() -> None:
    app = create_app(s := settings(max_pending_answers=2, stream_stall_seconds=60))
    async with serve_here(app, **uvicorn_options(s)) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        slow = await anyio.to_thread.run_sync(SlowSse, port)
        try:
            with httpx2.Client(timeout=10) as http:
                await anyio.to_thread.run_sync(_initialized, http, base, slow)
                accepted, _ = await anyio.to_thread.run_sync(_post_until_refused, http, base, slow)
                write = {
                    "jsonrpc": "2.0",
                    "id": 9999,
                    "method": "tools/call",
                    "params": {"name": "memory_set", "arguments": {"key": "late", "value": 1}},
                }
                assert (await post(http, base + slow.endpoint, write)).status_code == 429
                read = {
                    "jsonrpc": "2.0",
                    "id": 10000,
                    "method": "tools/call",
                    "params": {"name": "memory_get", "arguments": {"key": "late"}},
                }
                await anyio.to_thread.run_sync(slow.read_answer, accepted[-1])
                assert (await post(http, base + slow.endpoint, read)).status_code == 202
                await anyio.to_thread.run_sync(slow.read_answer, 10000)
            answers = slow.answers()
            assert 9999 not in answers
            assert answers[10000]["result"]["structuredContent"]["found"] is False
        finally:
            slow.close()


async def test_an_sse_stream_left_unread_is_closed_and_its_session_torn_down() -> None:
    app = create_app(s := settings(max_pending_answers=1000, stream_stall_seconds=0.5))
    runtime: Runtime = app.state.runtime
    pending: PendingAnswers = app.state.pending_answers
    async with serve_here(app, **uvicorn_options(s)) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        open_before = runtime.store.open_count()
        stalls = refusals("stream_stall")
        slow = await anyio.to_thread.run_sync(SlowSse, port)
        try:
            with httpx2.Client(timeout=10) as http:
                await anyio.to_thread.run_sync(_initialized, http, base, slow)
                assert runtime.store.open_count() == open_before + 1
                for request_id in range(100, 100 + MAX_POSTS):  # until its buffers fill
                    posted = await post(http, base + slow.endpoint, _get_big(request_id))
                    if posted.status_code == 404:
                        break  # the stream was closed meanwhile: the SDK forgot the session
                    assert posted.status_code == 202
                    await anyio.sleep(0.01)
                closed = await anyio.to_thread.run_sync(slow.read_to_end)
                assert closed, "the server kept a stream nobody reads"
                assert refusals("stream_stall") == stalls + 1

                async def torn_down() -> bool:
                    return runtime.store.open_count() == open_before and not pending.streams()

                await eventually(torn_down)
                gone = await post(http, base + slow.endpoint, _get_big(1))
                assert gone.status_code == 404  # the SDK forgot the stream's session
        finally:
            slow.close()


def _stalled_subscriber(base: str, port: int, uri: str) -> SlowSse:
    slow = SlowSse(port)
    with httpx2.Client() as http:
        for message in (
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HANDSHAKE},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": uri}},
        ):
            assert http.post(base + slow.endpoint, json=message).status_code == 202
            if "id" in message:
                slow.read_answer(int(str(message["id"])))
    return slow


async def test_a_subscriber_that_stops_reading_is_disconnected() -> None:
    """Notifications only (no answers pending): the stream watch closes the connection
    before the outbox's own stall (its default 10 s) would drop the subscriptions."""
    app = create_app(s := settings(stream_stall_seconds=0.5))
    runtime: Runtime = app.state.runtime
    events = runtime.events
    async with serve_here(app, **uvicorn_options(s)) as (base, _), httpx2.AsyncClient() as http:
        port = int(base.rsplit(":", 1)[1])
        writer = RawStreamable(http, base + "/mcp")
        await writer.initialize()
        handle = (await writer.tool("session_open"))["session"]
        stalls = refusals("stream_stall")
        slow = await anyio.to_thread.run_sync(
            _stalled_subscriber, base, port, f"memory://session/{handle}"
        )
        try:
            assert events.subscriber_count() == 1
            changes = 0
            while refusals("stream_stall") == stalls and changes < MAX_CHANGES:
                await events.changed(handle)
                changes += 1
                await anyio.lowlevel.checkpoint()
            assert refusals("stream_stall") == stalls + 1, f"no stall after {changes} changes"
            assert await anyio.to_thread.run_sync(slow.read_to_end)

            async def let_go() -> bool:
                return events.subscriber_count() == 0

            await eventually(let_go)
            assert events.outboxes.stalled == 0  # the stream watch acted first
            await writer.tool("memory_set", key="k", value=1, session=handle)
        finally:
            slow.close()
