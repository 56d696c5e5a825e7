"""The MCP server: ``create_server(settings, store)`` builds it for any transport."""

from __future__ import annotations

import logging
import time
from typing import Any

from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.subscriptions import SubscriptionBus
from mcp_types import CallToolResult, InputRequiredResult, TextContent
from mcp_types import Resource as MCPResource

from mcp_server import metrics
from mcp_server.auth import StaticTokenVerifier
from mcp_server.binding import CallRecord, current_call, short
from mcp_server.errors import disabled_tool, tool_failure, unknown_arguments, unknown_tool
from mcp_server.events.requests import register_subscriptions
from mcp_server.resources import CURRENT_RESOURCE, register_resources
from mcp_server.runtime import Runtime
from mcp_server.settings import Settings
from mcp_server.tools import TOOL_NAMES, build_tools
from mcp_server.tools.factory import argument_names
from memory_core import SessionStore, __version__

log = logging.getLogger("mcp_server.tools")

SERVER_NAME = "mcp-working-memory"
FAMILIES = (
    ("memory_", "variables with optional TTL (memory_*)"),
    ("task_state_", "the current task's state (task_state_*)"),
    ("scratchpad_", "a scratchpad of notes (scratchpad_*)"),
    ("checkpoint_", "checkpoints to return to (checkpoint_*)"),
)


def instructions(tools: list[Tool]) -> str:
    """The server's instructions, naming only the tool families it lists."""
    kinds = [text for prefix, text in FAMILIES if any(t.name.startswith(prefix) for t in tools)]
    return (
        f"Working memory for this conversation: {', '.join(kinds[:-1])} and {kinds[-1]}. "
        "It lives as long as this connection. Stateless clients call session_open first "
        "and pass the handle as `session`. Errors start with a code such as INVALID_KEY "
        "or LIMIT_EXCEEDED and say what to do."
    )


class WorkingMemoryServer(MCPServer[Any]):
    """``MCPServer`` whose tool failures are ``isError`` results reading ``"<CODE>: ..."``
    (worded by ``mcp_server.errors.tool_failure``), with one log line per failed call."""

    def __init__(self, runtime: Runtime, tools: list[Tool], **kwargs: Any) -> None:
        super().__init__(tools=tools, **kwargs)
        self.runtime = runtime
        self._arguments = {tool.name: argument_names(tool) for tool in tools}

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        record = CallRecord(name)
        token = current_call.set(record)
        started = time.perf_counter()
        outcome = "ok"
        try:
            accepted = self._arguments.get(name)
            if accepted is None:
                outcome, text = disabled_tool(name) if name in TOOL_NAMES else unknown_tool(name)
                return _error(text)
            unknown = [arg for arg in arguments if arg not in accepted]
            if unknown:
                outcome, text = unknown_arguments(unknown, sorted(accepted))
                return _error(text)
            try:
                return await super().call_tool(name, arguments, context)
            except ToolError as exc:
                outcome, text = tool_failure(exc, record.tool, short(record.session))
                return _error(text)
        finally:
            current_call.reset(token)
            seconds = time.perf_counter() - started
            tool = name if name in self._arguments else metrics.UNKNOWN_TOOL
            metrics.tool_call(tool, outcome, seconds)
            if log.isEnabledFor(logging.DEBUG) or outcome != "ok":
                log.log(
                    logging.DEBUG if outcome == "ok" else logging.INFO,
                    "tool=%s session=%s outcome=%s ms=%.2f",
                    tool,
                    short(record.session),
                    outcome,
                    seconds * 1000,
                )

    async def list_resources(self) -> list[MCPResource]:
        # memory://session/current is served by the session template (only templates
        # get the request context) but listed here so clients can find it.
        return [CURRENT_RESOURCE, *await super().list_resources()]


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def create_server(
    settings: Settings | None = None,
    store: SessionStore | None = None,
    *,
    bus: SubscriptionBus | None = None,
) -> WorkingMemoryServer:
    """Build the server and its ``Runtime`` (``server.runtime``) for ``settings``.

    Args:
        settings: configuration; default ``Settings()`` (``WM_*`` environment).
        store: the store to serve; default a new one built from ``settings``.
        bus: where subscription events fan out; default from ``settings``
            (``runtime.build_bus``).

    Whoever serves the server enters ``server.runtime`` (``async with``), which starts
    and closes the store and the bus, given or built. In-process tests that never enter
    it start and close a store they pass themselves.

    Raises:
        ConfigurationError: unusable auth tokens or store URL.
    """
    runtime = Runtime(settings or Settings(), store, bus=bus)
    auth: dict[str, Any] = {}
    if runtime.tokens:
        auth = {
            "token_verifier": StaticTokenVerifier(runtime.tokens),
            "auth": AuthSettings(issuer_url=_base_url(runtime.settings), resource_server_url=None),
        }
    tools = build_tools(runtime.settings)
    server = WorkingMemoryServer(
        runtime,
        tools,
        name=SERVER_NAME,
        title="Working memory",
        version=__version__,
        instructions=instructions(tools),
        log_level=runtime.settings.log_level,
        subscriptions=runtime.events.bus,
        **auth,
    )
    register_resources(server, runtime)
    register_subscriptions(server, runtime)
    return server


def _base_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"
