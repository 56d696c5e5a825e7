"""Memory-backend specifics: reclaiming dead entries with an injectable clock."""

from __future__ import annotations

import asyncio

import pytest

from memory_core import ManualClock, SessionStore, StoreConfig
from memory_core.keys import glob_match
from memory_core.storage.memory import MemoryBackend


async def test_sweep_reclaims_expired_keys_sessions_and_checkpoints() -> None:
    clock = ManualClock()
    config = StoreConfig(lease_seconds=10, checkpoint_retention_seconds=20)
    backend = MemoryBackend(config, clock=clock, sweep_interval_seconds=0)
    store = SessionStore(backend)
    sid = await store.open("p")
    m = store.memory(sid, "p")
    for i in range(100):
        await m.set(f"k{i}", i, ttl_seconds=1)
    await m.set("stay", 1)
    await m.create_checkpoint()
    clock.advance(2)
    assert backend.sweep() == 100  # expired keys reclaimed without any read
    assert (await m.usage()).keys == 1
    clock.advance(11)
    assert backend.sweep() == 1  # the idle session
    assert backend.session_count == 0
    clock.advance(10)
    assert backend.sweep() == 1  # the retained checkpoint
    assert backend._checkpoints == {}


async def test_background_sweeper_runs_and_stops() -> None:
    clock = ManualClock()
    backend = MemoryBackend(StoreConfig(lease_seconds=1), clock=clock, sweep_interval_seconds=0.01)
    store = SessionStore(backend)
    await store.start()
    await store.open("p")
    clock.advance(2)
    for _ in range(100):
        if backend.session_count == 0:
            break
        await asyncio.sleep(0.01)
    assert backend.session_count == 0
    await store.close()
    assert backend._sweeper is None


@pytest.mark.parametrize(
    ("pattern", "key", "match"),
    [
        ("*", "anything", True),
        ("a*", "abc", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("[abc]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("[!a]x", "bx", True),
        ("[^a]x", "ax", False),
        ("[]]", "]", True),
        ("[", "[", True),
        ("a[", "a[", True),
        ("\\*", "*", True),
        ("\\*", "x", False),
        ("[z-a]", "m", False),
        ("a.b", "aXb", False),
        ("(x)", "(x)", True),
        ("*\n", "x", False),
    ],
)
def test_glob(pattern: str, key: str, match: bool) -> None:
    assert glob_match(pattern, key) is match


async def test_rewriting_a_key_with_a_ttl_does_not_grow_memory() -> None:
    backend = MemoryBackend(StoreConfig(), clock=ManualClock(), sweep_interval_seconds=0)
    store = SessionStore(backend)
    sid = await store.open("p")
    m = store.memory(sid, "p")
    for i in range(10_000):
        await m.set("hot", i, ttl_seconds=3600)
    sess = backend._sessions[sid]
    assert len(sess.expiries) <= 2 * len(sess.variables) + 65
    assert await m.get("hot") == 9_999


async def test_fallback_lock_table_stays_bounded(redis_url: str, key_prefix: str) -> None:
    from memory_core.storage.factory import compose_breaker
    from memory_core.storage.redis import RedisBackend

    config = StoreConfig(key_prefix=key_prefix)
    backend = compose_breaker(config, RedisBackend(config, redis_url))
    store = SessionStore(backend)
    await store.start()
    backend._lock_floor = 16  # prune early so the test stays small
    try:
        for _ in range(200):
            sid = await store.open("p")
            await store.memory(sid, "p").set("k", 1)
            await store.close_session(sid, "p")
        assert len(backend._locks) < 200  # closed sessions' locks were dropped
        assert backend._lock_floor == 1024
    finally:
        await store.close()
