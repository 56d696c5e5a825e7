"""The in-process subscription bus: events reach listen streams of this process only."""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.subscriptions import InMemorySubscriptionBus, ServerEvent

from mcp_server.events.listeners import BusStats


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

    def stats(self) -> BusStats:
        return BusStats("memory", True, 0, 0, 0, 0)
