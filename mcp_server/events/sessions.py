"""Telling subscribers that a session's state changed.

Two paths, one call (``SessionEvents.changed``) after every write:

* 2025-era ``resources/subscribe``: the subscribing connection is remembered per
  session and gets ``notifications/resources/updated`` for the URI it subscribed to
  (``memory://session/current`` or ``memory://session/<id>``);
* 2026-07-28 ``subscriptions/listen``: a ``ResourceUpdated`` event for
  ``memory://session/<id>`` goes on the SDK's ``SubscriptionBus``.

Both go through the bus. With several replicas it is a ``RedisSubscriptionBus``
(``events.redis_bus``): a write on replica B reaches listen streams on replica A, and the
bus hands events from other replicas to ``SessionEvents``, which notifies its own
``resources/subscribe`` connections (in background tasks: bus listeners are
synchronous). Notifications are best effort and never make a writer wait: each is
queued on the subscriber connection's outbox (``events.outbox``: coalesced, bounded, a
subscriber that stops reading is dropped) and sent by that connection's own task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mcp.server.subscriptions import (
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
)

from mcp_server.events.listeners import BusStats, ManagedBus, RemoteEvents
from mcp_server.events.local import InProcessBus
from mcp_server.events.outbox import Outboxes
from mcp_server.sdk import Connection, on_close
from mcp_server.uris import SESSION_PREFIX, session_uri

log = logging.getLogger("mcp_server.subscriptions")

_CLEANUP_KEY = "mcp_working_memory.subscriptions"


@dataclass
class SessionEvents:
    """The 2025-era subscribers per session, and the bus every change is published on."""

    bus: SubscriptionBus
    # session id -> {(connection, subscribed uri)}
    _legacy: dict[str, set[tuple[Connection, str]]] = field(default_factory=dict)
    outboxes: Outboxes = field(init=False)

    def __post_init__(self) -> None:
        self.outboxes = Outboxes(self.drop_connection)
        if isinstance(self.bus, RemoteEvents):
            self.bus.subscribe_remote(self._on_remote)  # for the bus's lifetime

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the bus's background work (Redis pub/sub); a no-op for the in-process bus."""
        if isinstance(self.bus, ManagedBus):
            await self.bus.start()

    async def close(self) -> None:
        """Flush and stop the bus; drop notifications still queued. Never raises."""
        await self.outboxes.close()
        if isinstance(self.bus, ManagedBus):
            try:
                await self.bus.close()
            except Exception:
                log.exception("subscription bus close failed")

    def stats(self) -> BusStats:
        if isinstance(self.bus, (ManagedBus, InProcessBus)):
            return self.bus.stats()
        return BusStats(type(self.bus).__name__, True, 0, 0, 0, 0)

    # 2025-era subscriptions --------------------------------------------------------------
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

    def subscriber_count(self) -> int:
        """(connection, URI) subscriptions of this process, over every session."""
        return sum(len(subscribers) for subscribers in self._legacy.values())

    def drop_connection(self, connection: Connection) -> None:
        """Forget a connection's subscriptions (it closed, or stopped reading)."""
        self.outboxes.forget(connection)
        for session_id, subscribers in list(self._legacy.items()):
            for entry in [e for e in subscribers if e[0] is connection]:
                subscribers.discard(entry)
            if not subscribers:
                del self._legacy[session_id]

    # events --------------------------------------------------------------------------------
    async def changed(self, session_id: str) -> None:
        """Notify every subscriber of ``session_id``, here and on other replicas; never raises."""
        subscribers = self._legacy.get(session_id)
        if subscribers:
            for connection, uri in list(subscribers):
                self.outboxes.post(connection, uri)
        try:
            await self.bus.publish(ResourceUpdated(uri=session_uri(session_id)))
        except Exception:
            log.exception("subscription bus publish failed session=%s", session_id[:8])

    async def session_ended(self, session_id: str) -> None:
        """Tell subscribers the session is gone (its state now reads as not found)."""
        await self.changed(session_id)
        self._legacy.pop(session_id, None)

    def _on_remote(self, event: ServerEvent) -> None:
        """A write on another replica: notify this process's ``resources/subscribe``
        connections. Called synchronously by the bus on the event loop."""
        if not isinstance(event, ResourceUpdated) or not event.uri.startswith(SESSION_PREFIX):
            return
        subscribers = self._legacy.get(event.uri.removeprefix(SESSION_PREFIX))
        if not subscribers:
            return
        for connection, uri in list(subscribers):
            self.outboxes.post(connection, uri)
