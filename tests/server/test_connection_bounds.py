"""Connections that never finish a request are closed in seconds, and connections per
process are bounded (issue 11, item 2). Real uvicorn on loopback with the server's own
connection options (``mcp_server.connections``), raw sockets."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import httpx2
import pytest

from mcp_server import metrics
from mcp_server.connections import uvicorn_options
from mcp_server.http import create_app
from tests.server.e2e import HANDSHAKE, serve_here

HALF_OPEN = 20
WAIT = 10.0  # seconds a socket waits for the server to act; a bound, not a target


def _half_open(port: int, first_bytes: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(WAIT)
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server closes the connection (EOF), having answered nothing."""
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    finally:
        sock.close()


def _answer(sock: socket.socket) -> bytes:
    """One whole HTTP response (headers and a Content-Length body)."""
    answer = b""
    for _ in range(100):  # bounded: a response arrives in a few segments
        chunk = sock.recv(4096)
        answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            None,
        )
        if not chunk or (length is not None and len(body) >= length):
            break
    return answer


async def _initialize(http: httpx2.AsyncClient, base: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HANDSHAKE}
    headers = {"Accept": "application/json, text/event-stream"}
    response = await http.post(base + "/mcp", json=body, headers=headers)
    return response.status_code


async def test_requests_whose_headers_never_end_are_closed(make_settings: Any) -> None:
    settings = make_settings(transport="http", http_request_timeout=0.3)
    async with serve_here(create_app(settings), **uvicorn_options(settings)) as (base, server):
        port = int(base.rsplit(":", 1)[1])
        host = f"Host: 127.0.0.1:{port}\r\n".encode()
        starts = [b"", b"POST /mcp HTTP/1.1\r\n" + host + b"Content-", b"GET /sse HTTP/1.1\r\n"]
        sockets = [_half_open(port, starts[i % len(starts)]) for i in range(HALF_OPEN)]
        closed = await anyio.to_thread.run_sync(lambda: [_closed_by_server(s) for s in sockets])
        assert all(closed)
        assert len(server.server_state.connections) <= 1  # fds back to baseline
        async with httpx2.AsyncClient() as http:
            assert await _initialize(http, base) == 200  # legitimate clients still served


async def test_a_body_that_never_ends_is_answered_408(make_settings: Any) -> None:
    settings = make_settings(transport="http", http_request_timeout=0.3)
    async with serve_here(create_app(settings), **uvicorn_options(settings)) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        sock = _half_open(
            port,
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n"
            '{"jsonrpc":'.encode(),
        )
        with sock:
            answer = await anyio.to_thread.run_sync(_answer, sock)
        assert answer.startswith(b"HTTP/1.1 408")
        assert b'"id":null' in answer and b"did not arrive in time" in answer


async def test_connections_per_process_are_bounded(make_settings: Any) -> None:
    settings = make_settings(transport="http", max_connections=4)
    async with serve_here(create_app(settings), **uvicorn_options(settings)) as (base, server):
        port = int(base.rsplit(":", 1)[1])
        held = [_half_open(port, b"GET /mcp HTTP/1.1\r\n") for _ in range(4)]
        try:
            with anyio.fail_after(WAIT):
                while len(server.server_state.connections) < 4:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            refused = metrics.LIMIT_REFUSALS.labels("connections")._value.get()
            async with httpx2.AsyncClient() as http:
                assert await _initialize(http, base) == 503
            assert metrics.LIMIT_REFUSALS.labels("connections")._value.get() == refused + 1
        finally:
            for sock in held:
                sock.close()
        with anyio.fail_after(WAIT):
            while server.server_state.connections:  # noqa: ASYNC110 - uvicorn's state
                await anyio.sleep(0.01)
        async with httpx2.AsyncClient() as http:
            assert await _initialize(http, base) == 200


@pytest.mark.parametrize("http", ["h11", "auto"])
def test_every_uvicorn_protocol_can_be_guarded(http: str) -> None:
    from mcp_server.connections import guarded

    assert guarded(http, 1.0).__name__.startswith("Guarded")
