"""The backend table: every contract test runs once per entry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from memory_core import Limits, ManualClock, SessionStore, StoreConfig
from memory_core.storage.factory import compose_breaker
from memory_core.storage.fallback import CircuitBreakerBackend
from memory_core.storage.memory import MemoryBackend
from memory_core.storage.redis import RedisBackend

BACKENDS = ["memory", "fakeredis", "redis", "fallback"]

SMALL_LIMITS = Limits(
    max_keys=5,
    max_value_bytes=100,
    max_session_bytes=2048,
    max_scratchpad_entries=4,
    max_scratchpad_entry_bytes=64,
    max_checkpoints=3,
    max_sessions=50,
    max_key_length=32,
    max_ttl_seconds=3600,
    max_task_state_bytes=1024,
)


@dataclass
class Harness:
    kind: str
    store: SessionStore
    raw: object | None  # redis.asyncio client on the same server, or None
    prefix: str
    clock: ManualClock | None

    async def advance(self, seconds: float) -> None:
        """Let time pass: instantly with the manual clock, really on Redis."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)


def make_config(prefix: str, limits: Limits | None = None, **kw: object) -> StoreConfig:
    return StoreConfig(key_prefix=prefix, limits=limits or Limits(), **kw)  # type: ignore[arg-type]


async def build(
    kind: str, prefix: str, redis_url: str | None, limits: Limits | None = None, **kw: object
) -> Harness:
    config = make_config(prefix, limits, **kw)
    raw = None
    clock = None
    if kind == "memory":
        clock = ManualClock()
        backend: MemoryBackend | RedisBackend | CircuitBreakerBackend = MemoryBackend(
            config, clock=clock, sweep_interval_seconds=0
        )
    elif kind == "fakeredis":
        import fakeredis

        raw = fakeredis.FakeAsyncRedis(decode_responses=True, max_connections=1000)
        backend = RedisBackend(config, "redis://fake", client=raw)
    else:
        assert redis_url is not None
        import redis.asyncio as aioredis

        raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
        # Generous timeouts: the contract is about behaviour, and a loaded 2-core CI
        # machine opening 64 connections at once can exceed the production 0.25 s.
        backend = RedisBackend(config, redis_url, connect_timeout=5, command_timeout=5)
        if kind == "fallback":
            backend = compose_breaker(config, backend)
    store = SessionStore(backend)
    await store.start()
    return Harness(kind, store, raw, prefix, clock)


@pytest.fixture(params=BACKENDS)
async def harness(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Harness]:
    kind = request.param
    url = request.getfixturevalue("redis_url") if kind in ("redis", "fallback") else None
    h = await build(kind, key_prefix, url, SMALL_LIMITS)
    try:
        yield h
    finally:
        await h.store.close()
        if h.raw is not None and kind != "fakeredis":
            keys = [k async for k in h.raw.scan_iter(match=f"{key_prefix}:*")]  # type: ignore[attr-defined]
            if keys:
                await h.raw.delete(*keys)  # type: ignore[attr-defined]
            await h.raw.aclose()  # type: ignore[attr-defined]


@pytest.fixture
async def harness_factory(
    request: pytest.FixtureRequest, harness: Harness, key_prefix: str
) -> AsyncIterator[object]:
    """Build more harnesses of the current backend kind, with other limits.

    ``share=h`` builds a second store over the same storage as ``h`` (same Redis, or
    for memory the same backend object) as a second process would see it.
    """
    made: list[Harness] = []
    kind = harness.kind
    url = request.getfixturevalue("redis_url") if kind in ("redis", "fallback") else None

    async def factory(limits: Limits, share: Harness | None = None) -> Harness:
        if share is not None and kind == "memory":
            h = Harness(kind, SessionStore(share.store.backend), None, share.prefix, share.clock)
        elif share is not None and kind == "fakeredis":
            cfg = make_config(share.prefix, limits)
            backend = RedisBackend(cfg, "redis://fake", client=share.raw)  # type: ignore[arg-type]
            h = Harness(kind, SessionStore(backend), None, share.prefix, None)
        else:
            h = await build(
                kind, share.prefix if share else f"{key_prefix}f{len(made)}", url, limits
            )
        made.append(h)
        return h

    try:
        yield factory
    finally:
        for h in made:
            if h.raw is not None and kind != "fakeredis":
                keys = [k async for k in h.raw.scan_iter(match=f"{h.prefix}:*")]  # type: ignore[attr-defined]
                if keys:
                    await h.raw.delete(*keys)  # type: ignore[attr-defined]
                await h.raw.aclose()  # type: ignore[attr-defined]
            if h.kind != "memory" or h.store.backend is not harness.store.backend:
                await h.store.close()
