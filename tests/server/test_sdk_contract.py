"""What mcp_server relies on inside the MCP SDK. If one of these fails after an SDK
upgrade, fix ``mcp_server/sdk.py`` (or ``tools/factory.py``) before anything else:
sessions would silently stop being bound to, or torn down with, their connections."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import mcp
from mcp.server.connection import Connection
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.server.session import ServerSession
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_server import sdk
from mcp_server.server import WorkingMemoryServer
from tests.server.helpers import agent


def test_sdk_version_is_in_the_tested_range() -> None:
    """The range pyproject.toml declares is the one these tests run against: its lower
    bound by `make lowest`, its newest release by the locked dev environment. A version
    outside it means re-checking mcp_server/sdk.py before widening the range."""
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement
    from packaging.version import Version

    (declared,) = [
        r for r in map(Requirement, requires("mcp-working-memory") or []) if r.name == "mcp"
    ]
    assert Version(version("mcp")) in declared.specifier, (version("mcp"), str(declared))
    assert mcp.__name__ == "mcp"


def test_private_attributes_still_exist() -> None:
    connection = Connection.for_loop(outbound=None)  # type: ignore[arg-type]
    session = ServerSession(None, connection)  # type: ignore[arg-type]
    assert session._connection is connection
    assert isinstance(connection.exit_stack, AsyncExitStack)
    assert isinstance(connection.state, dict)
    assert connection.session_id is None
    assert hasattr(MCPServer(), "_lowlevel_server")
    assert "2026-07-28" in MODERN_PROTOCOL_VERSIONS
    assert callable(getattr(FuncMetadata, "pre_parse_json", None))


async def test_connection_is_reachable_per_connection(
    server: WorkingMemoryServer, monkeypatch: Any
) -> None:
    """In the handshake era one Connection serves every request of a client, its exit
    stack unwinds when the client goes, and each stateless request gets a fresh one."""
    seen: list[tuple[int, bool]] = []
    closed: list[int] = []
    original = server.runtime.binder.resolve

    async def spy(request: Any, handle: str | None) -> Any:
        conn = sdk.connection_of(request)
        if not any(c == id(conn) for c, _ in seen):

            async def on_exit(ident: int = id(conn)) -> None:
                closed.append(ident)

            sdk.on_close(conn, on_exit)
        seen.append((id(conn), sdk.is_stateless(request)))
        assert sdk.transport_session_id(conn) is None  # in-memory has no transport id
        return await original(request, handle)

    monkeypatch.setattr(server.runtime.binder, "resolve", spy)
    async with agent(server, "legacy") as a:
        await a.call("memory_set", key="k", value=1)
        await a.call("memory_get", key="k")
    assert len({c for c, _ in seen}) == 1 and not any(stateless for _, stateless in seen)
    assert closed == [seen[0][0]]

    seen.clear()
    closed.clear()
    async with agent(server, "stateless") as a:
        await a.call("memory_set", key="k", value=1)
        await a.call("memory_get", key="k")
    assert len(seen) == 2 and all(stateless for _, stateless in seen)
    assert len(closed) == 2  # each stateless request's connection ended with it


async def test_tool_errors_keep_their_cause() -> None:
    """call_tool maps failures by ``__cause__``: the SDK must keep chaining them."""
    from pydantic import ValidationError

    server: MCPServer[Any] = MCPServer()

    @server.tool()
    async def fails(x: int, ctx: Context) -> int:
        raise KeyError("boom")

    try:
        await server.call_tool("fails", {"x": "not an int"})
    except ToolError as exc:
        assert not isinstance(exc, UnexpectedToolError)
        assert isinstance(exc.__cause__, ValidationError)
    try:
        await server.call_tool("fails", {"x": 1})
    except UnexpectedToolError as exc:
        assert isinstance(exc.__cause__, KeyError)


async def test_sdk_still_reparses_json_strings() -> None:
    """Why tools.factory keeps ``value`` verbatim: the SDK turns '[1]' into [1] for Any."""
    server: MCPServer[Any] = MCPServer()
    got: list[Any] = []

    @server.tool()
    async def take(value: Any) -> None:
        got.append(value)

    await server.call_tool("take", {"value": "[1]"})
    assert got == [[1]]


async def test_listen_handler_subscribes_from_the_request_task() -> None:
    """``mcp_server.events.requests`` limits listen streams to the caller's sessions through a
    context variable set around the SDK's ``ListenHandler``: the handler must subscribe
    to its bus from the request's own task, before it sends the acknowledgment."""
    import contextvars
    from types import SimpleNamespace

    import pytest
    from mcp.server.subscriptions import ListenHandler
    from mcp_types import SubscriptionFilter, SubscriptionsListenRequestParams

    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    seen: list[str] = []

    class SpyBus:
        async def publish(self, event: Any) -> None: ...

        def subscribe(self, listener: Any) -> Any:
            seen.append(marker.get())
            return lambda: None

    async def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("ack")

    ctx = SimpleNamespace(request_id=1, session=SimpleNamespace(send_notification=refuse))
    params = SubscriptionsListenRequestParams(notifications=SubscriptionFilter())
    marker.set("request")
    with pytest.raises(RuntimeError, match="ack"):
        await ListenHandler(SpyBus())(ctx, params)  # type: ignore[arg-type]
    assert seen == ["request"]


async def test_stdio_server_takes_checked_byte_lines() -> None:
    """``mcp_server.stdio`` claims fd 0 through the SDK's private ``_claim_fd`` and feeds
    ``stdio_server(stdin=...)`` byte lines: the SDK must only iterate its stdin and parse
    each line with pydantic's ``validate_json`` (bytes accepted), and answer on ``write``."""
    import io

    import anyio
    import mcp.server.stdio as sdk_stdio
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCError, JSONRPCRequest

    from mcp_server import wire

    assert callable(sdk_stdio._claim_fd) and callable(sdk_stdio._open_stdin_diversion)

    async def lines() -> Any:
        yield b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n'

    out = io.StringIO()
    async with stdio_server(stdin=lines(), stdout=anyio.wrap_file(out)) as (read, write):
        first = await read.receive()
        assert isinstance(first, SessionMessage)
        assert isinstance(first.message, JSONRPCRequest)
        refusal = wire.check(b"{")
        assert isinstance(refusal, wire.Refusal)
        await write.send(SessionMessage(refusal.error()))
        with anyio.fail_after(5):
            while not out.getvalue():  # noqa: ASYNC110 - the SDK's writer task fills it
                await anyio.sleep(0.01)
        await write.aclose()  # as the server's run loop does; the writer task then ends
        await read.aclose()
    assert JSONRPCError.model_validate_json(out.getvalue()).error.code == -32700
