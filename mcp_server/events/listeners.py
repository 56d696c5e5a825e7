"""Who hears events in this process: the listener registry and what a bus reports."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mcp.server.subscriptions import ServerEvent

log = logging.getLogger("mcp_server.bus")

Listener = Callable[[ServerEvent], None]


@runtime_checkable
class RemoteEvents(Protocol):
    """A bus that can also tell which events came from other processes."""

    def subscribe_remote(self, listener: Listener) -> Callable[[], None]:
        """Register ``listener`` for events published by *other* processes only."""
        ...


@runtime_checkable
class ManagedBus(Protocol):
    """A bus with background work (``RedisSubscriptionBus``): started and closed once."""

    async def start(self) -> None: ...

    async def close(self, flush_timeout: float = 0.5) -> None: ...

    def stats(self) -> BusStats: ...


@dataclass(frozen=True, slots=True)
class BusStats:
    kind: str
    connected: bool
    published: int
    received: int
    dropped: int
    reconnects: int


class Listeners:
    """Synchronous listeners keyed by a token (the same callable may register twice)."""

    def __init__(self) -> None:
        self.items: dict[object, Listener] = {}

    def add(self, listener: Listener) -> Callable[[], None]:
        token = object()
        self.items[token] = listener

        def unsubscribe() -> None:
            self.items.pop(token, None)

        return unsubscribe

    def deliver(self, event: ServerEvent) -> None:
        for listener in list(self.items.values()):
            try:
                listener(event)
            except Exception:  # fan-out boundary: one listener must not starve the others
                log.exception("subscription listener raised; continuing")
