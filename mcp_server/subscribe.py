"""2025-era ``resources/subscribe`` and ``resources/unsubscribe`` handlers.

``MCPServer`` has none; registering them on the low-level server also makes it
advertise ``resources.subscribe``. Only session state resources can be subscribed;
the subscription lasts until unsubscribed or the connection closes.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from mcp_server.connection import connection_of, lowlevel_server
from mcp_server.errors import error_text
from mcp_server.runtime import Runtime
from mcp_server.uris import CURRENT_SESSION_URI, SESSION_PREFIX
from memory_core import WorkingMemoryError

NOT_SUBSCRIBABLE = (
    "NOT_FOUND: only session state resources (memory://session/current or "
    "memory://session/<handle>) can be subscribed to"
)


def register_subscriptions(server: MCPServer[Any], rt: Runtime) -> None:
    async def subscribe(
        ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        uri = params.uri
        if not uri.startswith(SESSION_PREFIX):
            raise MCPError(code=INVALID_PARAMS, message=NOT_SUBSCRIBABLE)
        handle = None if uri == CURRENT_SESSION_URI else uri.removeprefix(SESSION_PREFIX)
        try:
            resolved = await rt.binder.resolve(ctx, handle)
            await resolved.memory.touch()  # proves the handle is live and the caller's
        except WorkingMemoryError as exc:
            raise MCPError(code=INVALID_PARAMS, message=error_text(exc)) from None
        rt.events.subscribe(connection_of(ctx), resolved.memory.session_id, uri)
        return EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        rt.events.unsubscribe(connection_of(ctx), params.uri)
        return EmptyResult()

    low = lowlevel_server(server)
    low.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
