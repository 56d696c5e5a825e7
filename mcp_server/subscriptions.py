"""Telling subscribers that a session's state changed.

Two paths, one call (``SessionEvents.changed``) after every write:

* 2025-era ``resources/subscribe``: the subscribing connection is remembered per
  session and gets ``notifications/resources/updated`` for the URI it subscribed to
  (``memory://session/current`` or ``memory://session/<id>``);
* 2026-07-28 ``subscriptions/listen``: a ``ResourceUpdated`` event for
  ``memory://session/<id>`` goes on the SDK's ``SubscriptionBus``. The bus is
  injected, so a Redis pub/sub bus can fan events out across replicas later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
)

from mcp_server.connection import Connection, on_close
from mcp_server.uris import session_uri

log = logging.getLogger("mcp_server.subscriptions")

_CLEANUP_KEY = "mcp_working_memory.subscriptions"


class InProcessBus(InMemorySubscriptionBus):
    """The SDK's in-process bus, minus the cost of publishing to nobody.

    Every write publishes an event; with no ``subscriptions/listen`` stream open in
    this process, the default bus would still yield to the event loop on each one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.listeners = 0

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        unsubscribe = super().subscribe(listener)
        self.listeners += 1
        active = True

        def once() -> None:
            nonlocal active
            if active:
                active = False
                self.listeners -= 1
                unsubscribe()

        return once

    async def publish(self, event: ServerEvent) -> None:
        if self.listeners:
            await super().publish(event)


@dataclass
class SessionEvents:
    bus: SubscriptionBus
    # session id -> {(connection, subscribed uri)}
    _legacy: dict[str, set[tuple[Connection, str]]] = field(default_factory=dict)

    def subscribe(self, connection: Connection, session_id: str, uri: str) -> None:
        self._legacy.setdefault(session_id, set()).add((connection, uri))
        if not connection.state.get(_CLEANUP_KEY):
            connection.state[_CLEANUP_KEY] = True

            async def forget() -> None:
                self.drop_connection(connection)

            on_close(connection, forget)

    def unsubscribe(self, connection: Connection, uri: str) -> None:
        for session_id, subscribers in list(self._legacy.items()):
            subscribers.discard((connection, uri))
            if not subscribers:
                del self._legacy[session_id]

    def drop_connection(self, connection: Connection) -> None:
        for session_id, subscribers in list(self._legacy.items()):
            for entry in [e for e in subscribers if e[0] is connection]:
                subscribers.discard(entry)
            if not subscribers:
                del self._legacy[session_id]

    def subscriber_count(self, session_id: str) -> int:
        return len(self._legacy.get(session_id, ()))

    async def changed(self, session_id: str) -> None:
        """Notify every subscriber of ``session_id``; never raises."""
        subscribers = self._legacy.get(session_id)
        if subscribers:
            for connection, uri in list(subscribers):
                # Connection.notify is best-effort: a gone peer is dropped, not raised.
                await connection.send_resource_updated(uri)
        try:
            await self.bus.publish(ResourceUpdated(uri=session_uri(session_id)))
        except Exception:
            log.exception("subscription bus publish failed session=%s", session_id[:8])

    async def session_ended(self, session_id: str) -> None:
        """Tell subscribers the session is gone (its state now reads as not found)."""
        await self.changed(session_id)
        self._legacy.pop(session_id, None)
