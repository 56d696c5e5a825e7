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
synchronous). Events of this process's own writes are delivered to local subscribers
before the tool returns, as with the in-process bus. Notifications are best effort.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import anyio
from mcp.server.subscriptions import (
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
)

from mcp_server.events.listeners import BusStats, ManagedBus, RemoteEvents
from mcp_server.events.local import InProcessBus
from mcp_server.sdk import Connection, on_close
from mcp_server.uris import SESSION_PREFIX, session_uri

log = logging.getLogger("mcp_server.subscriptions")

_CLEANUP_KEY = "mcp_working_memory.subscriptions"
MAX_REMOTE_SENDS = 1024
"""Notifications for other replicas' writes in flight at once; more are dropped."""
REMOTE_SEND_SECONDS = 5.0


@dataclass
class SessionEvents:
    """The 2025-era subscribers per session, and the bus every change is published on."""

    bus: SubscriptionBus
    # session id -> {(connection, subscribed uri)}
    _legacy: dict[str, set[tuple[Connection, str]]] = field(default_factory=dict)
    _sends: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if isinstance(self.bus, RemoteEvents):
            self.bus.subscribe_remote(self._on_remote)  # for the bus's lifetime

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the bus's background work (Redis pub/sub); a no-op for the in-process bus."""
        if isinstance(self.bus, ManagedBus):
            await self.bus.start()

    async def close(self) -> None:
        """Flush and stop the bus; cancel notifications still being sent. Never raises."""
        for task in list(self._sends):
            task.cancel()
        if isinstance(self.bus, ManagedBus):
            try:
                await self.bus.close()
            except Exception:
                log.exception("subscription bus close failed")

    def subscriber_count(self) -> int:
        """``resources/subscribe`` subscriptions held by this process (``/metrics``)."""
        return sum(len(subscribers) for subscribers in self._legacy.values())

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

    def drop_connection(self, connection: Connection) -> None:
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

    def _on_remote(self, event: ServerEvent) -> None:
        """A write on another replica: notify this process's ``resources/subscribe``
        connections. Called synchronously by the bus on the event loop."""
        if not isinstance(event, ResourceUpdated) or not event.uri.startswith(SESSION_PREFIX):
            return
        subscribers = self._legacy.get(event.uri.removeprefix(SESSION_PREFIX))
        if not subscribers:
            return
        loop = asyncio.get_running_loop()
        for connection, uri in list(subscribers):
            if len(self._sends) >= MAX_REMOTE_SENDS:
                continue  # best effort: past the cap, this notification is dropped
            task = loop.create_task(self._send(connection, uri))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    @staticmethod
    async def _send(connection: Connection, uri: str) -> None:
        with anyio.move_on_after(REMOTE_SEND_SECONDS):
            try:
                await connection.send_resource_updated(uri)
            except Exception:  # best effort, like Connection.notify itself
                log.debug("resource update for another replica's write not sent", exc_info=True)
