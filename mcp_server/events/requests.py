"""Subscription requests: 2025-era ``resources/subscribe`` / ``resources/unsubscribe``
and the 2026-07-28 ``subscriptions/listen``, each limited to the caller's own sessions.

``MCPServer`` has no ``resources/subscribe`` handler; registering one on the low-level
server also makes it advertise ``resources.subscribe``. Only session state resources
can be subscribed; the subscription lasts until unsubscribed or the connection closes.
A handle that is unknown, expired or another principal's gets ``SESSION_NOT_FOUND``,
the same answer for all three.

``subscriptions/listen`` is the SDK's ``ListenHandler`` behind an ownership check: the
requested ``memory://session/<handle>`` URIs are checked against the caller's principal
before the stream opens, and the stream then only ever delivers updates of the URIs
that passed. The acknowledgment still honors every requested URI (as the SDK does for
a resource that does not exist), so a foreign handle is indistinguishable from an
unknown one: both are honored and never fire.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import (
    ListenHandler,
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
)
from mcp_types import (
    EmptyResult,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
    UnsubscribeRequestParams,
)

from mcp_server.errors import code_of, protocol_error
from mcp_server.runtime import Runtime
from mcp_server.sdk import connection_of, lowlevel_server
from mcp_server.uris import CURRENT, CURRENT_SESSION_URI, SESSION_PREFIX
from memory_core import (
    InvalidArgumentError,
    NotFoundError,
    WorkingMemoryError,
)

NOT_SUBSCRIBABLE = (
    "only session state resources (memory://session/current or "
    "memory://session/<handle>) can be subscribed to"
)
MAX_LISTEN_URIS = 100
TOO_MANY_URIS = (
    f"a listen stream can follow at most {MAX_LISTEN_URIS} resources; "
    "open another stream for the rest"
)

# The resource URIs the listen stream being opened may deliver (set around the SDK
# handler, read when it subscribes to the bus from the same task).
_owned_uris: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar(
    "mcp_working_memory_listen_owned", default=None
)


class OwnedOnly:
    """The bus as one listen stream sees it: ``ResourceUpdated`` events only for the
    URIs checked for its caller; any other event kind passes unchanged."""

    def __init__(self, bus: SubscriptionBus) -> None:
        self._bus = bus

    async def publish(self, event: ServerEvent) -> None:
        await self._bus.publish(event)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        owned = _owned_uris.get() or frozenset()  # outside a checked listen: nothing

        def deliver(event: ServerEvent) -> None:
            if isinstance(event, ResourceUpdated) and event.uri not in owned:
                return
            listener(event)

        return self._bus.subscribe(deliver)


async def owned_uris(rt: Runtime, uris: Sequence[str]) -> frozenset[str]:
    """The session URIs among ``uris`` whose session exists and is the caller's.

    Raises:
        MCPError: the store cannot tell right now (``STORAGE_UNAVAILABLE``, internal error).
    """
    principal = rt.binder.principal()
    owned = set()
    for uri in dict.fromkeys(uris):
        handle = uri.removeprefix(SESSION_PREFIX)
        if not uri.startswith(SESSION_PREFIX) or handle == CURRENT:
            continue  # no events are published under these URIs
        try:
            await rt.store.memory(handle, principal).touch()
        except WorkingMemoryError as exc:
            if code_of(exc).kind != "client":
                raise protocol_error(exc) from exc
            continue  # unknown, expired or another principal's: honored, never fires
        owned.add(uri)
    return frozenset(owned)


def register_subscriptions(server: MCPServer[Any], rt: Runtime) -> None:
    async def subscribe(
        ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        uri = params.uri
        if not uri.startswith(SESSION_PREFIX):
            raise protocol_error(NotFoundError(NOT_SUBSCRIBABLE))
        handle = None if uri == CURRENT_SESSION_URI else uri.removeprefix(SESSION_PREFIX)
        try:
            resolved = await rt.binder.resolve(ctx, handle)
            await resolved.memory.touch()  # proves the handle is live and the caller's
        except WorkingMemoryError as exc:
            raise protocol_error(exc) from exc
        rt.events.subscribe(connection_of(ctx), resolved.memory.session_id, uri)
        return EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        rt.events.unsubscribe(connection_of(ctx), params.uri)
        return EmptyResult()

    handler = ListenHandler(OwnedOnly(rt.events.bus))

    async def listen(
        ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        requested = params.notifications.resource_subscriptions or []
        if len(requested) > MAX_LISTEN_URIS:
            raise protocol_error(InvalidArgumentError(TOO_MANY_URIS))
        token = _owned_uris.set(await owned_uris(rt, requested))
        try:
            return await handler(ctx, params)
        finally:
            _owned_uris.reset(token)

    low = lowlevel_server(server)
    low.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
    # replaces the unchecked handler MCPServer registered for its bus
    low.add_request_handler("subscriptions/listen", SubscriptionsListenRequestParams, listen)
