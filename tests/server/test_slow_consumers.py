"""Slow consumers never hurt others (issue 11, item 2): a subscriber that stops reading
its stream neither blocks writers nor grows the server's memory, and is let go.

Real uvicorn on loopback; the subscriber is a raw socket with a small receive buffer
that reads its SSE stream until its subscription is confirmed, then never again.
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest

from mcp_server.http import create_app
from mcp_server.runtime import Runtime
from tests.server.e2e import HANDSHAKE, RawStreamable, serve_here

# resources/subscribe is what 2025-era clients speak; the SDK marks it deprecated
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")

MAX_CHANGES = 200_000  # bound of the loop; the buffers fill after some thousand updates


def _read_until(sock: socket.socket, marker: bytes, seen: bytes = b"") -> bytes:
    while marker not in seen:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the SSE stream"
        seen += chunk
    return seen


def _stalled_subscriber(base: str, port: int, uri: str) -> socket.socket:
    """An SSE client that subscribes to ``uri`` and then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    host = f"127.0.0.1:{port}"
    sock.sendall(f"GET /sse HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    seen = _read_until(sock, b"session_id=")
    seen = _read_until(sock, b"\r\n\r\n", seen[seen.index(b"data: ") :])
    endpoint = seen.split(b"\r\n", 1)[0].removeprefix(b"data: ").decode()
    messages: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HANDSHAKE},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": uri}},
    ]
    with httpx2.Client() as http:
        for message in messages:
            assert http.post(base + endpoint, json=message).status_code == 202
            if "id" in message:
                _read_until(sock, f'"id":{message["id"]}'.encode())
    return sock


async def test_a_subscriber_that_never_reads_is_let_go_and_writers_go_on(
    make_settings: Any,
) -> None:
    app = create_app(make_settings(transport="http"))
    runtime: Runtime = app.state.runtime
    events = runtime.events
    outboxes = events.outboxes
    outboxes.stall_seconds = 0.5  # injectable: the default is 10 s
    async with serve_here(app) as (base, _), httpx2.AsyncClient() as http:
        port = int(base.rsplit(":", 1)[1])
        writer = RawStreamable(http, base + "/mcp")
        await writer.initialize()
        handle = (await writer.tool("session_open"))["session"]
        uri = f"memory://session/{handle}"
        stalled = await anyio.to_thread.run_sync(_stalled_subscriber, base, port, uri)
        try:
            assert events.subscriber_count() == 1
            changes = 0
            while outboxes.stalled == 0 and changes < MAX_CHANGES:
                # what a write does after it is applied; it returns at once, every time
                await events.changed(handle)
                changes += 1
                # what the server holds for the subscriber stays one coalesced update
                assert outboxes.pending_total() <= 1
                await anyio.lowlevel.checkpoint()  # let the subscriber's sender run
            assert outboxes.stalled == 1, f"never stalled after {changes} changes"
            assert events.subscriber_count() == 0
            # let go: writes go on, and cost the stalled subscriber nothing
            sent = outboxes.sent
            await writer.tool("memory_set", key="k", value=1, session=handle)
            assert outboxes.sent == sent and outboxes.pending_total() == 0
        finally:
            stalled.close()
