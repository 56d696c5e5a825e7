"""The one module that reaches into MCP SDK internals (mcp 2.3.0).

The SDK has no public per-connection hook: the ``Connection`` behind a request
(its ``state``, ``exit_stack`` and transport ``session_id``) is reachable only
through the private ``ServerSession._connection``, and request handlers the
high-level ``MCPServer`` does not offer (``resources/subscribe``) can only be
registered on its private low-level server. The stdio transport reads raw lines
itself (``mcp_server.stdio``) but keeps the SDK's claim on fd 0, which is private too.
Everything else in ``mcp_server``
goes through the functions below; ``tests/server/test_sdk_contract.py`` fails
loudly if an SDK upgrade moves any of it.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import mcp.server.stdio as sdk_stdio
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

__all__ = [
    "Connection",
    "claimed_stdin",
    "connection_of",
    "is_stateless",
    "lowlevel_server",
    "on_close",
    "request_header",
    "transport_session_id",
]


def connection_of(request: ServerRequestContext[Any, Any]) -> Connection:
    """The per-connection object behind ``request``.

    On stdio, SSE and handshake streamable HTTP it lives as long as the MCP
    connection; in the stateless 2026-07-28 era it is fresh for every request.
    """
    connection: Connection = request.session._connection
    return connection


def is_stateless(request: ServerRequestContext[Any, Any]) -> bool:
    """True for 2026-07-28 requests: their connection ends with the request."""
    return request.protocol_version in MODERN_PROTOCOL_VERSIONS


def on_close(connection: Connection, callback: Callable[[], Awaitable[Any]]) -> None:
    """Run ``callback`` when the connection closes.

    The SDK unwinds ``Connection.exit_stack`` (shielded, bounded to ~5 s) on stdio
    end of input, SSE stream close, streamable HTTP ``DELETE``, the HTTP idle
    timeout and server shutdown. Exceptions are logged by the SDK and swallowed.
    """
    connection.exit_stack.push_async_callback(callback)


def request_header(request: ServerRequestContext[Any, Any], name: str) -> str | None:
    """The HTTP header ``name`` of the POST carrying ``request``; None on stdio.

    ``request.request`` is the Starlette request on streamable HTTP (both eras) and on
    SSE (the message POST, not the event stream's GET).
    """
    http = request.request
    headers = getattr(http, "headers", None)
    if headers is None:
        return None
    value = headers.get(name)
    return value if isinstance(value, str) else None


def transport_session_id(connection: Connection) -> str | None:
    """``Mcp-Session-Id`` on stateful streamable HTTP; None on stdio and SSE."""
    return connection.session_id


def lowlevel_server(server: MCPServer[Any]) -> Server[Any]:
    """The low-level server under ``MCPServer``, for handlers it does not expose."""
    lowlevel: Server[Any] = server._lowlevel_server
    return lowlevel


@contextmanager
def claimed_stdin() -> Iterator[BinaryIO]:
    """The stdio wire as bytes, claimed as the SDK's ``stdio_server()`` claims it.

    While claimed, fd 0 points at the null device (handlers read EOF) and the wire is
    read from a private duplicate; fd 0 is restored on exit. ``stdio_server(stdin=...)``
    then leaves fd 0 alone and still claims fd 1 itself.
    """
    buffer, release = sdk_stdio._claim_fd(0, sys.stdin, "rb", sdk_stdio._open_stdin_diversion)
    try:
        yield buffer
    finally:
        if release is not None:
            release()
