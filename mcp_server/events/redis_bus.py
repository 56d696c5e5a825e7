"""Subscription events across server replicas: a ``SubscriptionBus`` over Redis pub/sub.

Several replicas behind a load balancer share one store; a client listening (or
subscribed) on replica A must hear about a write made through replica B. Each replica's
``RedisSubscriptionBus``:

* **delivers locally first**: ``publish`` invokes this process's listeners at once, on
  the event loop, exactly like the SDK's in-memory bus, so a replica's own clients never
  wait for Redis (and keep hearing their own writes while Redis is down);
* **fans out through Redis**: the event is queued (bounded, identical pending events
  coalesced: they are level triggers) and a background publisher sends the queue a moment
  later (``PUBLISH_DELAY``, after the publishing request has answered) in batches, one
  message per batch, on the channel ``<key_prefix>:events``. Every message
  names its origin, so a replica skips its own events when they come back;
* **listens to Redis** with one dedicated connection per process, and hands events from
  other replicas to its local listeners and to ``subscribe_remote`` listeners (the
  2025-era ``resources/subscribe`` path, which delivers local events itself).

Topologies: one Redis (``redis://``, ``rediss://``, ``unix://``) and a Sentinel master use
``PUBLISH``/``SUBSCRIBE`` (a publish on the master also reaches the replicas' subscribers,
so a subscriber connection left on a demoted master keeps working). Redis Cluster uses
sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``, Redis 7+): the channel lives in one slot,
so only that shard carries the events instead of every node. The subscriber follows the
slot's master: after a failover (connection lost, or the demoted node's
``sunsubscribe``) it reloads the slot map and subscribes again on the new master.

**Notifications are best effort**, as in the protocol (no replay; a client that
re-listens refetches). Never raised into a publisher: a failed publish is logged and
dropped, and publishing is suspended with backoff (0.1 s doubling to 2 s) while Redis does
not answer. Events published while a subscriber is reconnecting are not seen by that
replica's clients. The subscriber reconnects with the same backoff after a Redis restart,
and a connection that stays silent for two heartbeats (a PING is sent after one) is
treated as dead. Memory is bounded: at most ``max_pending`` queued events and
``MAX_BATCH_EVENTS`` per message; oversized or malformed messages are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

import anyio.lowlevel
from mcp.server.subscriptions import ServerEvent
from redis.asyncio.connection import AbstractConnection

from mcp_server.events.listeners import BusStats, Listener, Listeners
from mcp_server.events.redis_links import Link, link_for
from mcp_server.events.wire import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    MAX_MESSAGE_BYTES,
    decode_message,
    encode_event,
    encode_message,
)

log = logging.getLogger("mcp_server.bus")

PUBLISH_DELAY = 0.02
"""Seconds between the first queued event and its publish. Every publish costs this
process a PUBLISH and, on receipt of its own message, a read: at 2 ms, writes under load
cost ~60 µs of CPU more each (0.5 publishes per ``memory_set``); at 20 ms one publish
carries the events of ~25 writes, and other replicas' clients hear of a write at most
20 ms later (``make bench``, section ``http``)."""
MIN_BACKOFF = 0.1
MAX_BACKOFF = 2.0
WARN_EVERY = 10.0  # seconds between repeated warnings about dropped events
STOP_SECONDS = 1.0  # close(): how long the tasks get to end after their cancel


class _Resubscribe(Exception):
    """The subscription ended under us (the slot moved, or the connection went silent)."""


# the bus ----------------------------------------------------------------------------------
class RedisSubscriptionBus:
    """The SDK ``SubscriptionBus`` over Redis pub/sub (see the module docstring).

    ``start()`` runs the publisher and subscriber tasks on the current event loop and
    ``close()`` stops them (flushing what is queued, bounded). Before ``start`` and
    after ``close`` the bus still delivers to local listeners.
    """

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        connect_timeout: float = 0.25,
        command_timeout: float = 0.5,
        max_pending: int = 4096,
        heartbeat: float = 5.0,
    ) -> None:
        self.url = url
        self.channel = channel
        self.origin = secrets.token_hex(6)
        self.max_pending = max_pending
        self.heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._link: Link | None = None
        self._local = Listeners()
        self._remote = Listeners()
        self._pending: dict[str, None] = {}  # ordered set of encoded events
        self._wake: asyncio.Event | None = None
        self._drained = asyncio.Event()  # set by the publisher whenever the queue empties
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._connected: asyncio.Event | None = None  # set in start()
        self._suspended_until = 0.0
        self._publish_backoff = MIN_BACKOFF
        self._last_warning = 0.0
        self.published = 0
        self.received = 0
        self.dropped = 0
        self.reconnects = 0

    # SubscriptionBus ---------------------------------------------------------------------
    async def publish(self, event: ServerEvent) -> None:
        """Deliver to local listeners now and queue for the other replicas; never raises."""
        self._local.deliver(event)
        if self._running:
            self._enqueue(encode_event(event))
        if self._local.items:
            # like the SDK's bus: let listen streams drain between a burst of publishes
            await anyio.lowlevel.checkpoint()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._local.add(listener)

    # RemoteEvents -------------------------------------------------------------------------
    def subscribe_remote(self, listener: Listener) -> Callable[[], None]:
        return self._remote.add(listener)

    # lifecycle ----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the subscriber connection is subscribed."""
        return self._connected is not None and self._connected.is_set()

    def stats(self) -> BusStats:
        return BusStats(
            "redis",
            self.connected,
            self.published,
            self.received,
            self.dropped,
            self.reconnects,
        )

    async def start(self) -> None:
        """Start publishing and listening (idempotent). Needs no Redis: connects lazily."""
        if self._running:
            return
        self._link = link_for(self.url, self._connect_timeout, self._command_timeout)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # events bind to the loop they first wait on
        self._connected = asyncio.Event()
        self._running = True
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._publisher(), name="wm-bus-publisher"),
            loop.create_task(self._subscriber(), name="wm-bus-subscriber"),
        ]
        log.info("subscription bus started channel=%s", self.channel)

    async def wait_connected(self, within: float) -> bool:
        """Wait (bounded) until the subscriber is subscribed; for startup and tests."""
        if self._connected is None:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._connected.wait()
        return self.connected

    async def close(self, flush_timeout: float = 0.5) -> None:
        """Send what is queued (bounded by ``flush_timeout``), stop the tasks, disconnect."""
        if not self._running:
            return
        self._running = False
        publisher, subscriber = self._tasks
        subscriber.cancel()
        if self._pending and self._wake is not None and not publisher.done():
            self._drained.clear()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_timeout):
                    await self._drained.wait()
        publisher.cancel()
        await self._stop(self._tasks)
        self._tasks = []
        if self._pending:
            self.dropped += len(self._pending)
            self._pending.clear()
        if self._link is not None:
            with contextlib.suppress(Exception):
                await self._link.close()
            self._link = None
        if self._connected is not None:
            self._connected.clear()
        log.info("subscription bus stopped")

    async def _stop(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait (bounded) for cancelled tasks to end. A task can swallow one cancel (a
        cancel landing as its own ``asyncio.timeout`` expires becomes TimeoutError on
        Python 3.11, which the loops treat as a failed publish or a lost connection),
        so each is cancelled again until it ends, and given up after ``STOP_SECONDS``
        (``_running`` is already false, so a survivor exits at its next loop)."""
        deadline = time.monotonic() + STOP_SECONDS
        while True:
            alive = [task for task in tasks if not task.done()]
            if not alive:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("subscription bus tasks did not stop: %d left behind", len(alive))
                return
            await asyncio.wait(alive, timeout=min(left, 0.1))
            for task in alive:
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()

    # publishing ---------------------------------------------------------------------------
    def _enqueue(self, line: str) -> None:
        if line in self._pending:
            return  # an identical event is already queued: one notification covers both
        if len(line) > MAX_EVENT_BYTES or len(self._pending) >= self.max_pending:
            self._drop(1, "the publish queue is full" if len(line) <= MAX_EVENT_BYTES else "")
            return
        self._pending[line] = None
        assert self._wake is not None
        self._wake.set()

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        now = time.monotonic()
        if why and now - self._last_warning > WARN_EVERY:
            self._last_warning = now
            log.warning(
                "subscription events dropped count=%d total=%d reason=%s "
                "(other replicas' clients miss these notifications)",
                count,
                self.dropped,
                why,
            )

    def _take_batch(self) -> list[str]:
        batch: list[str] = []
        size = 0
        for line in self._pending:
            if batch and (len(batch) >= MAX_BATCH_EVENTS or size + len(line) > MAX_BATCH_BYTES):
                break
            batch.append(line)
            size += len(line) + 1
        for line in batch:
            del self._pending[line]
        return batch

    async def _publisher(self) -> None:
        assert self._wake is not None and self._link is not None
        while self._running or self._pending:
            await self._wake.wait()
            # Let the request that published finish its reply first (the publish then
            # costs it nothing), and gather what else arrives meanwhile into one message.
            if self._running:
                await asyncio.sleep(PUBLISH_DELAY)
            self._wake.clear()
            while self._pending:
                if time.monotonic() < self._suspended_until:
                    self._drop(len(self._pending), "Redis does not answer")
                    self._pending.clear()
                    break
                batch = self._take_batch()
                try:
                    async with asyncio.timeout(self._command_timeout * 2):
                        await self._link.publish(self.channel, encode_message(self.origin, batch))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # best effort: log, drop, back off
                    self._suspended_until = time.monotonic() + self._publish_backoff
                    self._publish_backoff = min(self._publish_backoff * 2, MAX_BACKOFF)
                    self._drop(len(batch), f"publish failed ({type(exc).__name__})")
                else:
                    self.published += len(batch)
                    self._publish_backoff = MIN_BACKOFF
            self._drained.set()

    # listening ----------------------------------------------------------------------------
    async def _subscriber(self) -> None:
        assert self._link is not None and self._connected is not None
        link = self._link
        backoff = MIN_BACKOFF
        failures = 0
        while self._running:
            conn: AbstractConnection | None = None
            try:
                conn = await link.subscriber(self.channel, refresh=failures > 0)
                await conn.connect()  # type: ignore[no-untyped-call]
                await conn.send_command(link.subscribe_command, self.channel)
                reply = await conn.read_response(timeout=self._command_timeout * 2)
                if not (isinstance(reply, list) and reply and str(reply[0]).endswith("subscribe")):
                    raise _Resubscribe(f"unexpected subscribe reply {reply!r:.80}")
                self._connected.set()
                if failures:
                    self.reconnects += 1
                    log.warning("subscription bus reconnected after %d attempt(s)", failures)
                failures, backoff = 0, MIN_BACKOFF
                await self._read(conn, link.message_type)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failures == 0:
                    log.warning(
                        "subscription bus lost Redis (%s); events from other replicas are "
                        "missed until it reconnects",
                        type(exc).__name__,
                    )
                failures += 1
            finally:
                self._connected.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.disconnect(nowait=True)
            await asyncio.sleep(backoff * (0.5 + random.random()))  # jitter
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _read(self, conn: AbstractConnection, message_type: str) -> None:
        """Dispatch messages until the connection fails or goes silent."""
        pinged = False
        while True:
            reply = await conn.read_response(timeout=self.heartbeat)
            if reply is None:  # silent for a heartbeat: ping, and give up after another
                if pinged:
                    raise _Resubscribe("no answer to PING")
                await conn.send_command("PING")
                pinged = True
                continue
            pinged = False
            if not isinstance(reply, list) or not reply:
                continue
            kind = str(reply[0])
            if kind == message_type and len(reply) >= 3:
                self._receive(reply[2])
            elif kind.endswith("unsubscribe"):
                # The server dropped the subscription (a cluster slot moved away).
                raise _Resubscribe("the server ended the subscription")

    def _receive(self, payload: Any) -> None:
        if not isinstance(payload, str) or len(payload) > MAX_MESSAGE_BYTES:
            return
        origin, events = decode_message(payload)
        if origin == self.origin:
            return  # our own events were delivered locally when published
        for event in events:
            self.received += 1
            self._local.deliver(event)
            self._remote.deliver(event)
