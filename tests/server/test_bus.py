"""RedisSubscriptionBus: events cross processes through Redis pub/sub, best effort,
bounded, and never raised into a publisher; the subscriber comes back after a restart."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp.server.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

from mcp_server.events.local import InProcessBus
from mcp_server.events.redis_bus import RedisSubscriptionBus
from mcp_server.events.wire import (
    MAX_BATCH_EVENTS,
    decode_event,
    decode_message,
    encode_event,
    encode_message,
)
from mcp_server.runtime import build_bus
from mcp_server.settings import Settings
from tests.support.redis_proc import RedisProcess, free_port


class Seen:
    def __init__(self) -> None:
        self.events: list[ServerEvent] = []

    def __call__(self, event: ServerEvent) -> None:
        self.events.append(event)

    async def wait_for(self, count: int, seconds: float = 3.0) -> None:
        with anyio.fail_after(seconds):
            while len(self.events) < count:  # noqa: ASYNC110 - filled by the bus's task
                await anyio.sleep(0.01)


@asynccontextmanager
async def running(url: str, channel: str, **kwargs: Any) -> AsyncIterator[RedisSubscriptionBus]:
    bus = RedisSubscriptionBus(url, channel=channel, **kwargs)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


def test_events_encode_compactly_and_malformed_lines_are_dropped() -> None:
    events: list[ServerEvent] = [
        ResourceUpdated(uri="memory://session/abc"),
        ToolsListChanged(),
        PromptsListChanged(),
        ResourcesListChanged(),
    ]
    lines = [encode_event(e) for e in events]
    assert lines == ["r memory://session/abc", "t", "p", "l"]
    assert [decode_event(line) for line in lines] == events
    payload = encode_message("origin", [*lines, "x", "r ", ""])
    assert decode_message(payload) == ("origin", events)
    many = encode_message("o", ["t"] * (MAX_BATCH_EVENTS + 10))
    assert len(decode_message(many)[1]) == MAX_BATCH_EVENTS


def test_settings_pick_the_bus() -> None:
    http: dict[str, Any] = {"transport": "http"}
    assert isinstance(build_bus(Settings()), InProcessBus)
    redis = Settings(redis_url="redis://127.0.0.1:1/0", **http)
    assert isinstance(build_bus(redis), RedisSubscriptionBus)
    stdio = Settings(redis_url="redis://127.0.0.1:1/0")  # one client: stays local
    assert isinstance(build_bus(stdio), InProcessBus)
    forced = Settings(redis_url="redis://127.0.0.1:1/0", subscription_bus="redis")
    assert isinstance(build_bus(forced), RedisSubscriptionBus)
    memory = Settings(redis_url="redis://127.0.0.1:1/0", subscription_bus="memory", **http)
    assert isinstance(build_bus(memory), InProcessBus)
    bus = build_bus(Settings(redis_url="redis+cluster://127.0.0.1:1", key_prefix="p", **http))
    assert isinstance(bus, RedisSubscriptionBus) and bus.channel == "p:events"
    with pytest.raises(ValueError, match="needs"):
        Settings(subscription_bus="redis")


async def test_events_fan_out_between_processes(redis_url: str, key_prefix: str) -> None:
    channel = f"{key_prefix}:events"
    a_local, a_remote, b_local = Seen(), Seen(), Seen()
    async with running(redis_url, channel) as a, running(redis_url, channel) as b:
        a.subscribe(a_local)
        a.subscribe_remote(a_remote)
        b.subscribe(b_local)
        assert await a.wait_connected(3) and await b.wait_connected(3)
        event = ResourceUpdated(uri="memory://session/x")
        await b.publish(event)
        assert b_local.events == [event]  # delivered locally at once
        await a_local.wait_for(1)
        assert a_local.events == [event] and a_remote.events == [event]
        await a.publish(ToolsListChanged())
        await b_local.wait_for(2)
        await anyio.sleep(0.2)  # a's own event does not come back to a
        assert a_local.events == [event, ToolsListChanged()]
        assert a_remote.events == [event]
        assert b.published == 1 and a.received == 1 and b.received == 1


async def test_unsubscribe_is_idempotent(redis_url: str, key_prefix: str) -> None:
    seen = Seen()
    async with running(redis_url, f"{key_prefix}:events") as bus:
        stop = bus.subscribe(seen)
        stop()
        stop()
        await bus.publish(ToolsListChanged())
    assert seen.events == []


async def test_publishing_never_raises_and_stays_bounded() -> None:
    """Redis down: local listeners still hear everything, the queue stays bounded, the
    drops are counted, and closing does not hang."""
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    seen = Seen()
    async with running(url, "wm:events", connect_timeout=0.05, command_timeout=0.1) as bus:
        bus.max_pending = 50
        bus.subscribe(seen)
        for i in range(500):
            await bus.publish(ResourceUpdated(uri=f"memory://session/s{i}"))
        assert len(seen.events) == 500
        assert len(bus._pending) <= 50
        await anyio.sleep(0.3)
        assert bus.dropped >= 450 and bus.published == 0 and not bus.connected
        started = time.monotonic()
    assert time.monotonic() - started < 1.5


async def test_identical_pending_events_are_coalesced(redis_url: str, key_prefix: str) -> None:
    channel = f"{key_prefix}:events"
    seen = Seen()
    async with running(redis_url, channel) as a, running(redis_url, channel) as b:
        a.subscribe(seen)
        assert await a.wait_connected(3) and await b.wait_connected(3)
        for _ in range(100):  # no await in between that lets the publisher run
            b._enqueue(encode_event(ResourceUpdated(uri="memory://session/same")))
        await seen.wait_for(1)
        await anyio.sleep(0.2)
        assert seen.events == [ResourceUpdated(uri="memory://session/same")]


async def test_a_bus_that_was_never_started_delivers_locally() -> None:
    bus = RedisSubscriptionBus("redis://127.0.0.1:1/0", channel="wm:events")
    seen = Seen()
    bus.subscribe(seen)
    await bus.publish(ToolsListChanged())
    assert seen.events == [ToolsListChanged()] and not bus._pending
    await bus.close()  # nothing to stop


async def test_the_subscriber_comes_back_after_a_redis_restart(
    redis_server: RedisProcess,
) -> None:
    channel = "wm:events"
    seen = Seen()
    fast: dict[str, float] = {"connect_timeout": 0.1, "command_timeout": 0.2}
    async with (
        running(redis_server.url, channel, **fast) as a,
        running(redis_server.url, channel, **fast) as b,
    ):
        a.subscribe(seen)
        assert await a.wait_connected(3)
        redis_server.kill()
        await b.publish(ToolsListChanged())  # never raises while Redis is gone
        await _until(lambda: not a.connected)
        redis_server.start()
        assert await a.wait_connected(5) and a.reconnects >= 1
        await _republish_until_seen(b, seen, ResourceUpdated(uri="memory://session/back"))


async def test_a_silent_connection_is_replaced(redis_server: RedisProcess) -> None:
    """A hung Redis (SIGSTOP) is noticed by the heartbeat; the bus resubscribes after."""
    seen = Seen()
    async with (
        running(redis_server.url, "wm:events", heartbeat=0.2, command_timeout=0.2) as a,
        running(redis_server.url, "wm:events", command_timeout=0.2) as b,
    ):
        a.subscribe(seen)
        assert await a.wait_connected(3)
        redis_server.pause()
        try:
            await _until(lambda: not a.connected, seconds=3)
        finally:
            redis_server.resume()
        assert await a.wait_connected(5)
        await _republish_until_seen(b, seen, PromptsListChanged())


async def _until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    with anyio.fail_after(seconds):
        while not check():  # noqa: ASYNC110 - the state lives in the bus's tasks
            await anyio.sleep(0.02)


async def _republish_until_seen(
    bus: RedisSubscriptionBus, seen: Seen, event: ServerEvent, seconds: float = 5.0
) -> None:
    """Publish until ``seen`` has ``event`` (the publisher may still be backing off)."""
    with anyio.fail_after(seconds):
        while event not in seen.events:
            await bus.publish(event)
            await anyio.sleep(0.1)


async def test_a_bus_can_be_closed_and_started_again(redis_url: str, key_prefix: str) -> None:
    channel = f"{key_prefix}:events"
    seen = Seen()
    bus = RedisSubscriptionBus(redis_url, channel=channel)
    bus.subscribe_remote(seen)
    async with running(redis_url, channel) as other:
        for _ in range(2):
            await bus.start()
            await bus.start()  # idempotent
            assert await bus.wait_connected(3)
            await _republish_until_seen(other, seen, ToolsListChanged())
            seen.events.clear()
            await bus.close()
            await bus.close()
            assert not bus.connected
