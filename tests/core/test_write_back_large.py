"""Write-back of a session at the limits (8 MiB of variables, 32 checkpoints as large)
completes under the 0.5 s command timeout, in pieces no larger than
``WRITE_BACK_PIECE_BYTES``, also when Redis stalls (``DEBUG SLEEP``) halfway; every
acknowledged write is in Redis afterwards and no key is left without a TTL."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import redis.asyncio as aioredis

from memory_core import SessionStore, StoreConfig
from memory_core.storage.factory import compose_breaker
from memory_core.storage.fallback import FallbackBackend
from memory_core.storage.redis import RedisBackend
from memory_core.storage.redis.backend import WRITE_BACK_PIECE_BYTES
from memory_core.storage.redis.layout import KeyLayout
from tests.support.redis_proc import RedisProcess

pytestmark = pytest.mark.asyncio


class Recording(RedisBackend):
    """Records the payload size of every script call."""

    largest = 0

    async def _eval(self, name: str, keys: Any, args: tuple[Any, ...]) -> Any:
        if name.startswith("import"):
            size = sum(len(a if isinstance(a, bytes) else str(a).encode()) for a in args)
            Recording.largest = max(Recording.largest, size)
        return await super()._eval(name, keys, args)


async def fill_to_the_limits(store: SessionStore, sid: str) -> dict[str, str]:
    """Variables up to max_session_bytes, then max_checkpoints checkpoints of them."""
    limits = store.config.limits
    m = store.memory(sid, "p")
    value = "v" * (limits.max_value_bytes - 200)
    budget = limits.max_session_bytes
    # Where checkpoint bytes per principal are bounded too, 32 full checkpoints must fit.
    retained = getattr(limits, "max_retained_bytes_per_principal", None)
    if isinstance(retained, int):
        budget = min(budget, retained * 95 // 100 // limits.max_checkpoints)
    written: dict[str, str] = {}
    i = 0
    while True:
        key = f"k{i:04d}"
        if sum(len(k) + len(json.dumps(v)) for k, v in written.items()) + 2 * len(value) > (budget):
            break
        await m.set(key, value, ttl_seconds=3000 if i % 2 else None)
        written[key] = value
        i += 1
    for n in range(limits.max_checkpoints):
        await m.create_checkpoint(f"cp{n}")
    return written


async def test_a_session_at_the_limits_is_written_back_through_a_stall(
    redis_server: RedisProcess, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.stop()
    redis_server.extra_args = ["--enable-debug-command", "yes"]
    redis_server.start()
    config = StoreConfig(key_prefix=key_prefix)
    primary = Recording(config, redis_server.url, connect_timeout=0.2, command_timeout=0.5)
    backend = compose_breaker(config, primary, fallback=True)
    assert isinstance(backend, FallbackBackend)
    store = SessionStore(backend)
    await store.start()
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        redis_server.kill()  # everything below is acknowledged from the mirror
        sid = await store.open("p")
        written = await fill_to_the_limits(store, sid)
        usage = await store.memory(sid, "p").usage()
        assert usage.checkpoints == config.limits.max_checkpoints
        assert usage.bytes > config.limits.max_session_bytes * 0.9
        with caplog.at_level(logging.WARNING):
            redis_server.start()
            # Stall Redis once the write-back is under way (its staging keys appear).
            for _ in range(2000):  # bounded: the probe starts within a second
                if [k async for k in raw.scan_iter(f"{key_prefix}:*:wb:*", count=1000)]:
                    break
                await asyncio.sleep(0.005)
            else:
                raise AssertionError("the write-back never started")
            await raw.execute_command("DEBUG", "SLEEP", "1")  # type: ignore[no-untyped-call]
            for _ in range(1200):  # bounded: each attempt takes seconds at most
                if (await store.health()).mode == "redis":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the write-back never completed")
        messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any("write-back interrupted" in msg for msg in messages)  # the stall was felt
        assert any("write-back:" in msg and "done" in msg for msg in messages)
        assert Recording.largest <= WRITE_BACK_PIECE_BYTES + 4096  # + ids, counts, TTLs
        # Redis itself holds every acknowledged write.
        layout = KeyLayout(key_prefix)
        meta, vars_key, exp_key, _pad, cpm = layout.session_keys(sid)
        stored = await raw.hgetall(vars_key)
        assert stored == {k: json.dumps(v) for k, v in written.items()}
        # one expiry per variable with a TTL, plus the index's own marker
        assert await raw.zcard(exp_key) == len(written) // 2 + 1
        assert await raw.hlen(cpm) == config.limits.max_checkpoints
        mirror_copy = await backend.mirror.export_session(sid)
        assert mirror_copy is not None
        for cp in mirror_copy.checkpoints:
            assert await raw.get(layout.checkpoint(sid, cp.checkpoint_id)) == cp.blob
        assert int(await raw.hget(meta, "b") or 0) == usage.bytes
        keys = [k async for k in raw.scan_iter(f"{key_prefix}:*", count=1000)]
        assert not [k for k in keys if ":wb:" in k and await raw.pttl(k) < 0]
        for key in keys:
            assert await raw.pttl(key) > 0, key
        assert [c.label for c in await store.memory(sid, "p").list_checkpoints()] == [
            f"cp{n}" for n in range(config.limits.max_checkpoints)
        ]
    finally:
        await raw.aclose()
        await store.close()


async def test_a_write_back_refused_as_full_leaves_no_staging_behind(
    redis_server: RedisProcess, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = StoreConfig(key_prefix=key_prefix)
    primary = RedisBackend(config, redis_server.url, connect_timeout=0.2, command_timeout=0.5)
    store = SessionStore(compose_breaker(config, primary, fallback=True))
    await store.start()
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        redis_server.kill()
        sid = await store.open("p")
        m = store.memory(sid, "p")
        for i in range(20):
            await m.set(f"k{i}", "v" * 60_000)
        for _ in range(4):
            await m.create_checkpoint()  # ~6 MiB in all
        redis_server.start()
        used = int((await raw.info("memory"))["used_memory"])
        await raw.config_set("maxmemory", str(used + 3 * 1024 * 1024))  # about half fits
        await raw.config_set("maxmemory-policy", "noeviction")

        def refusals() -> int:
            return sum("write-back refused" in r.getMessage() for r in caplog.records)

        clean_after_refusal = 0
        with caplog.at_level(logging.WARNING):
            for _ in range(100):  # bounded: the probe retries about every second
                refused_before = refusals()
                staged = {k.split(":wb:")[1].split(":")[0] async for k in raw.scan_iter("*:wb:*")}
                assert len(staged) <= 1, staged  # never an earlier attempt's staging
                if refused_before and not staged:
                    clean_after_refusal += 1  # a refused attempt's staging was freed
                assert (await store.health()).mode == "fallback"
                if refusals() >= 3 and clean_after_refusal:
                    break
                await asyncio.sleep(0.05)
        assert refusals() >= 3 and clean_after_refusal
        assert not await raw.exists(KeyLayout(key_prefix).meta(sid))  # none half-written
        await raw.config_set("maxmemory", "0")
        for _ in range(400):
            if (await store.health()).mode == "redis":
                break
            await asyncio.sleep(0.05)
        assert await raw.hlen(KeyLayout(key_prefix).session_keys(sid)[1]) == 20
        assert [k async for k in raw.scan_iter("*:wb:*")] == []
    finally:
        await raw.aclose()
        await store.close()
