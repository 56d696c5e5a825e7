"""The Redis subscription bus on Redis Cluster (sharded pub/sub) and Sentinel: events
cross processes, and after a failover the subscriber follows the new master."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp.server.subscriptions import ResourceUpdated, ServerEvent

from mcp_server.events.redis_bus import RedisSubscriptionBus
from tests.support.topology import ClusterTopology, SentinelTopology

FAST: dict[str, Any] = {"connect_timeout": 0.2, "command_timeout": 0.5, "heartbeat": 1.0}


class Seen:
    def __init__(self) -> None:
        self.events: list[ServerEvent] = []

    def __call__(self, event: ServerEvent) -> None:
        self.events.append(event)


@asynccontextmanager
async def pair(url: str, channel: str) -> AsyncIterator[tuple[RedisSubscriptionBus, ...]]:
    a = RedisSubscriptionBus(url, channel=channel, **FAST)
    b = RedisSubscriptionBus(url, channel=channel, **FAST)
    await a.start()
    await b.start()
    try:
        assert await a.wait_connected(5) and await b.wait_connected(5)
        yield a, b
    finally:
        await a.close()
        await b.close()


async def delivered(
    publisher: RedisSubscriptionBus, seen: Seen, uri: str, seconds: float = 10.0
) -> float:
    """Publish until ``seen`` has the event; the seconds it took."""
    event = ResourceUpdated(uri=uri)
    started = anyio.current_time()
    with anyio.fail_after(seconds):
        while event not in seen.events:
            await publisher.publish(event)
            await anyio.sleep(0.1)
    return anyio.current_time() - started


@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
async def test_events_cross_processes(
    kind: str, request: pytest.FixtureRequest, key_prefix: str
) -> None:
    topology = request.getfixturevalue(f"redis_{kind}")
    seen = Seen()
    async with pair(topology.url, f"{key_prefix}:events") as (a, b):
        a.subscribe(seen)
        await b.publish(ResourceUpdated(uri="memory://session/one"))
        with anyio.fail_after(3):
            while not seen.events:  # noqa: ASYNC110 - filled by the bus's task
                await anyio.sleep(0.01)
        assert seen.events == [ResourceUpdated(uri="memory://session/one")]
        assert b.published == 1 and a.received == 1


async def test_cluster_subscriber_follows_the_slot_to_the_promoted_replica(
    cluster_to_kill: ClusterTopology,
) -> None:
    channel = "wmbus:events"
    seen = Seen()
    async with pair(cluster_to_kill.url, channel) as (a, b):
        a.subscribe(seen)
        await delivered(b, seen, "memory://session/before")
        cluster_to_kill.master_of(cluster_to_kill.keyslot(channel)).kill()
        took = await delivered(b, seen, "memory://session/after", seconds=15)
        print(f"\nbus over Cluster: events flow again {took:.2f} s after kill -9 of the master")
        assert a.reconnects >= 1


async def test_sentinel_subscriber_follows_the_promoted_master(
    sentinel_to_kill: SentinelTopology,
) -> None:
    seen = Seen()
    async with pair(sentinel_to_kill.url, "wmbus:events") as (a, b):
        a.subscribe(seen)
        await delivered(b, seen, "memory://session/before")
        sentinel_to_kill.master().kill()
        took = await delivered(b, seen, "memory://session/after", seconds=15)
        print(f"\nbus over Sentinel: events flow again {took:.2f} s after kill -9 of the master")
        assert a.reconnects >= 1
