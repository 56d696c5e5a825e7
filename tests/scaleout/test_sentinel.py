"""Redis Sentinel specifics: the store talks to the master the sentinels name, its writes
replicate, scripts reload after NOSCRIPT, and an unknown service fails closed at once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from memory_core import SessionStore, StorageUnavailableError, backend_from_url
from memory_core.keys import session_tag
from tests.scaleout.conftest import build
from tests.support.stores import Harness
from tests.support.topology import HOST, SentinelTopology, cached_scripts, client, wait_until


@pytest.fixture
async def h(redis_sentinel: SentinelTopology, key_prefix: str) -> AsyncIterator[Harness]:
    harness = await build("sentinel", redis_sentinel, key_prefix)
    try:
        yield harness
    finally:
        await harness.close()


async def test_writes_go_to_the_named_master_and_reach_its_replica(
    h: Harness, redis_sentinel: SentinelTopology
) -> None:
    sid = await h.store.open("alice")
    m = h.store.memory(sid, "alice")
    await m.set("a", {"x": 1})
    await m.append_scratchpad("thought")
    master_port = redis_sentinel.master_port()
    raw = h.raw  # a plain client of that master
    assert raw is not None
    vars_key = f"{h.prefix}:{{{session_tag(sid)}}}:vars"
    assert await raw.hgetall(vars_key) == {"a": '{"x":1}'}
    replica = next(p for p in redis_sentinel.processes[:2] if p.port != master_port)
    with client(replica.port) as node:
        assert node.info("replication")["role"] == "slave"
        wait_until(lambda: node.hgetall(vars_key) == {"a": '{"x":1}'}, 5, "replication")
        assert node.lrange(f"{h.prefix}:{{{session_tag(sid)}}}:pad", 0, -1) == ["thought"]


async def test_scripts_reload_after_script_flush_on_the_master(
    h: Harness, redis_sentinel: SentinelTopology
) -> None:
    sid = await h.store.open("alice")
    m = h.store.memory(sid, "alice")
    await m.set("k", "v")
    with client(redis_sentinel.master_port()) as master:
        assert cached_scripts(master) > 0
        assert master.script_flush()
        assert cached_scripts(master) == 0
        assert await m.get("k") == "v"  # EVALSHA -> NOSCRIPT -> SCRIPT LOAD -> EVALSHA
        assert cached_scripts(master) > 0


async def test_unknown_service_fails_closed_without_waiting(
    redis_sentinel: SentinelTopology,
) -> None:
    hosts = ",".join(f"{HOST}:{s.port}" for s in redis_sentinel.sentinels)
    store = SessionStore(backend_from_url(f"redis+sentinel://{hosts}/no-such-service"))
    try:
        await store.start()  # no crash: the breaker opens
        health = await store.health()
        assert not health.healthy and health.mode == "fallback"
        start = time.monotonic()
        with pytest.raises(StorageUnavailableError):
            await store.open("alice")
        assert time.monotonic() - start < 0.1  # fails closed at once, no timeout to wait out
    finally:
        await store.close()
