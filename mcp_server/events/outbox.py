"""Sending ``notifications/resources/updated`` without ever making a writer wait.

A write posts one notification per subscribed connection (``Outboxes.post``): it is
queued on that connection's outbox and the call returns at once, whatever the peer
does. One task per connection with something queued sends the queue in order:

* **coalesced**: an update of a URI already queued is covered by the queued one (these
  are level triggers: the subscriber rereads the resource);
* **bounded**: at most ``max_pending`` distinct URIs per connection; past that the
  notification is dropped and counted (``dropped``);
* **a stalled subscriber is let go**: a send that takes longer than ``stall_seconds``
  (the peer stopped reading and its transport buffer is full) drops what is queued,
  counts it, and calls ``on_stalled``, which forgets the connection's subscriptions,
  so that it costs nothing more. A peer that starts reading again subscribes again.

Notifications are best effort, as in the protocol: a dropped one is not replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from mcp_server.sdk import Connection

log = logging.getLogger("mcp_server.subscriptions")

STALL_SECONDS = 10.0
"""A send to one subscriber that takes longer than this means it stopped reading."""
MAX_PENDING = 64
"""Distinct URIs queued per connection (it rarely subscribes to more than one or two)."""


@dataclass
class _Outbox:
    pending: dict[str, None] = field(default_factory=dict)  # ordered set of URIs
    task: asyncio.Task[None] | None = None


class Outboxes:
    """The outboxes of every subscribed connection of this process."""

    def __init__(
        self,
        on_stalled: Callable[[Connection], None],
        *,
        stall_seconds: float = STALL_SECONDS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._on_stalled = on_stalled
        self.stall_seconds = stall_seconds
        self.max_pending = max_pending
        self._boxes: dict[Connection, _Outbox] = {}
        self.sent = 0
        self.dropped = 0
        self.stalled = 0

    def post(self, connection: Connection, uri: str) -> None:
        """Queue ``notifications/resources/updated`` for ``uri``; never blocks, never raises."""
        box = self._boxes.setdefault(connection, _Outbox())
        if uri in box.pending:
            return
        if len(box.pending) >= self.max_pending:
            self.dropped += 1
            return
        box.pending[uri] = None
        if box.task is None or box.task.done():
            box.task = asyncio.get_running_loop().create_task(
                self._drain(connection, box), name="wm-notify"
            )

    def pending_total(self) -> int:
        """Notifications queued over every connection (memory held for subscribers)."""
        return sum(len(box.pending) for box in self._boxes.values())

    def forget(self, connection: Connection) -> None:
        """The connection is gone: drop what it had queued and stop its sender."""
        box = self._boxes.pop(connection, None)
        if box is not None:
            self.dropped += len(box.pending)
            box.pending.clear()
            if box.task is not None and box.task is not asyncio.current_task():
                box.task.cancel()

    async def close(self) -> None:
        """Stop every sender (shutdown); what is queued is dropped."""
        tasks = [box.task for box in self._boxes.values() if box.task is not None]
        for connection in list(self._boxes):
            self.forget(connection)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _drain(self, connection: Connection, box: _Outbox) -> None:
        while box.pending:
            uri = next(iter(box.pending))
            del box.pending[uri]
            try:
                async with asyncio.timeout(self.stall_seconds):
                    await connection.send_resource_updated(uri)
            except TimeoutError:
                self.stalled += 1
                self.dropped += 1 + len(box.pending)
                log.warning(
                    "subscriber stopped reading for %.0f s: its subscriptions are dropped "
                    "(dropped notifications total=%d)",
                    self.stall_seconds,
                    self.dropped,
                )
                self.forget(connection)
                self._on_stalled(connection)
                return
            except Exception:  # best effort, like Connection.notify itself
                self.dropped += 1
                log.debug("resource update not sent", exc_info=True)
            else:
                self.sent += 1
        if self._boxes.get(connection) is box and not box.pending:
            del self._boxes[connection]
