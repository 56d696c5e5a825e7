"""Section ``core``: get/set through ``WorkingMemory`` on every backend.

1. memory backend get/set (target p95 ≤ 25 µs);
2. Redis: ``RedisBackend`` and ``FallbackBackend`` (the production path for redis://
   URLs, built by ``backend_from_url``) against raw ``redis.asyncio`` GET/SET on the
   same server, from a stock client given the production client's settings (hiredis
   parser, ``decode_responses=True``, the same pool and timeouts), all interleaved in
   one measurement (targets: get ≤ 1.3×, set ≤ 1.5× the raw p95);
3. flatness: p95 in a session holding 10 keys vs one holding ``big_session_keys``
   (10 000), for get and set, memory and Redis (target ≤ 1.2×).

Everything this section writes to Redis lives under a fresh key prefix and is torn
down at the end (sessions closed, raw keys deleted).
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from benchmarks.context import BenchContext
from benchmarks.report import Row, SectionResult, Target
from benchmarks.stats import METHOD, Measured, Op, interleaved
from memory_core import Limits, SessionStore, StoreConfig, WorkingMemory, backend_from_url, codec
from memory_core.errors import StorageUnavailableError
from memory_core.keys import new_session_id
from memory_core.storage.base import Backend, SessionCopy
from memory_core.storage.memory import MemoryBackend
from memory_core.storage.redis import RedisBackend

KEY = "core"
TITLE = "core: WorkingMemory get/set (µs, sequential, one event loop)"

# A typical small agent variable (113 bytes of JSON).
VALUE: dict[str, Any] = {
    "city": "Paris",
    "temp_c": 21.5,
    "tags": ["warm", "dry"],
    "ok": True,
    "step": 3,
    "note": "check the forecast again at noon",
}
SMALL_KEYS = 10
LONG_TTL = 3600
MEMORY_P95_LIMIT_US = 25.0
GET_RATIO_LIMIT = 1.3
SET_RATIO_LIMIT = 1.5
FLAT_RATIO_LIMIT = 1.2
SEQUENCE_LENGTH = 4096


def _key(i: int) -> str:
    return f"k{i:05d}"


def _flat_ttl(i: int) -> int | None:
    """Keys of the flatness sessions: every other one carries a (long) TTL."""
    return LONG_TTL if i % 2 == 0 else None


def _picks(n_keys: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(n_keys) for _ in range(SEQUENCE_LENGTH)]


def _getter(m: WorkingMemory, n_keys: int, seed: int) -> Op:
    seq = [_key(i) for i in _picks(n_keys, seed)]
    return lambda i: m.get(seq[i % SEQUENCE_LENGTH])


def _setter(
    m: WorkingMemory, n_keys: int, seed: int, ttl: Callable[[int], int | None] | None = None
) -> Op:
    seq = [(_key(i), None if ttl is None else ttl(i)) for i in _picks(n_keys, seed)]

    def op(i: int) -> Awaitable[None]:
        key, ttl_seconds = seq[i % SEQUENCE_LENGTH]
        return m.set(key, VALUE, ttl_seconds)

    return op


async def _fill(
    m: WorkingMemory, n_keys: int, ttl: Callable[[int], int | None] | None = None
) -> None:
    for i in range(n_keys):
        await m.set(_key(i), VALUE, None if ttl is None else ttl(i))


async def _import_session(backend: Backend, n_keys: int) -> str:
    """A new session of ``n_keys`` variables (flatness TTL rule), written in one step."""
    text = codec.encode(VALUE)
    lease_ms = LONG_TTL * 1000
    state = SessionCopy(
        session_id=new_session_id(),
        principal="local",
        lease_ms=lease_ms,
        expires_in_ms=lease_ms,
        variables={
            _key(i): (text, None if (t := _flat_ttl(i)) is None else t * 1000)
            for i in range(n_keys)
        },
    )
    await backend.import_session(state, only_if_missing=False)
    return state.session_id


def _ratio(m: Measured, base: Measured) -> float:
    return m.summary.p95 / base.summary.p95


# 1. memory backend -------------------------------------------------------------------
async def _memory(ctx: BenchContext, out: SectionResult) -> None:
    opts = ctx.options
    store = SessionStore(MemoryBackend(StoreConfig()))
    await store.start()
    try:
        m = store.memory(await store.open("local"), "local")
        await _fill(m, SMALL_KEYS)
        res = await interleaved(
            {"get": _getter(m, SMALL_KEYS, 1), "set": _setter(m, SMALL_KEYS, 2)},
            rounds=opts.rounds,
            iterations=opts.memory_iterations,
            warmup=opts.warmup * 10,
            block=opts.block * 10,
        )
    finally:
        await store.close()
    for op in ("get", "set"):
        out.rows.append(Row("memory", op, res[op].summary))
        out.targets.append(
            Target(f"memory {op} p95", res[op].summary.p95, MEMORY_P95_LIMIT_US, "µs")
        )


# 2. Redis vs raw redis.asyncio -------------------------------------------------------
async def _redis_vs_raw(ctx: BenchContext, url: str, prefix: str, out: SectionResult) -> None:
    opts = ctx.options
    config = StoreConfig(key_prefix=prefix)
    plain = SessionStore(RedisBackend(config, url))
    raw = _raw_client(url, plain.backend)
    prod = SessionStore(backend_from_url(url, config))
    raw_keys = [f"{prefix}:raw:{_key(i)}" for i in range(SMALL_KEYS)]
    text = codec.encode(VALUE)
    sessions: list[tuple[SessionStore, str]] = []
    try:
        await plain.start()
        await prod.start()
        for store in (plain, prod):
            sid = await store.open("local")
            sessions.append((store, sid))
            await _fill(store.memory(sid, "local"), SMALL_KEYS)
        await raw.mset(dict.fromkeys(raw_keys, text))
        m_plain = plain.memory(sessions[0][1], "local")
        m_prod = prod.memory(sessions[1][1], "local")
        get_seq = [raw_keys[i] for i in _picks(SMALL_KEYS, 3)]
        set_seq = [raw_keys[i] for i in _picks(SMALL_KEYS, 4)]
        variants: dict[str, Op] = {
            "raw GET": lambda i: raw.get(get_seq[i % SEQUENCE_LENGTH]),
            "redis get": _getter(m_plain, SMALL_KEYS, 3),
            "fallback get": _getter(m_prod, SMALL_KEYS, 3),
            "raw SET": lambda i: raw.set(set_seq[i % SEQUENCE_LENGTH], text),
            "redis set": _setter(m_plain, SMALL_KEYS, 4),
            "fallback set": _setter(m_prod, SMALL_KEYS, 4),
        }
        res = await interleaved(
            variants,
            rounds=opts.rounds,
            iterations=opts.iterations,
            warmup=opts.warmup,
            block=opts.block,
        )
        parser = await _parser_name(raw)
    finally:
        for store, sid in sessions:
            await store.close_session(sid, "local")
        await raw.delete(*raw_keys)
        await prod.close()
        await plain.close()
        await raw.aclose()
    out.rows += [
        Row("raw redis.asyncio", "GET", res["raw GET"].summary),
        Row("raw redis.asyncio", "SET", res["raw SET"].summary),
    ]
    for group, label in (("redis", "RedisBackend"), ("fallback", "FallbackBackend (prod)")):
        for op, base, limit in (("get", "GET", GET_RATIO_LIMIT), ("set", "SET", SET_RATIO_LIMIT)):
            mine, raw_m = res[f"{group} {op}"], res[f"raw {base}"]
            ratio = _ratio(mine, raw_m)
            out.rows.append(Row(label, op, mine.summary, ratio, f"raw {base}"))
            out.targets.append(Target(f"{label} {op} p95 / raw {base} p95", ratio, limit, "×"))
    out.notes.append(
        f"raw baseline: stock redis.asyncio client, {parser}, the production client's pool "
        "and socket settings (BlockingConnectionPool, timeouts, decode_responses=True)"
    )


def _raw_client(url: str, like: Backend) -> aioredis.Redis:
    """A stock ``redis.asyncio`` client (default connection class, hiredis parser when
    installed) with the pool and socket settings of ``like``'s client, so the baseline
    pays the same timeouts and pool costs but none of memory_core's code."""
    assert isinstance(like, RedisBackend)
    client: Any = like.client
    pool = client.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    kw = pool.connection_kwargs
    copied = (
        "decode_responses", "socket_connect_timeout", "socket_timeout", "retry", "retry_on_timeout",
    )  # fmt: skip
    return aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=pool.max_connections,
            timeout=pool.timeout,
            **{k: kw[k] for k in copied if k in kw},
        )
    )


async def _parser_name(client: aioredis.Redis) -> str:
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        return type(getattr(conn, "_parser", None)).__name__
    finally:
        await pool.release(conn)


# 3. flatness: 10 keys vs 10 000 ------------------------------------------------------
def _flat_config(prefix: str, big: int) -> StoreConfig:
    return StoreConfig(
        key_prefix=prefix,
        limits=Limits(max_keys=max(2 * big, 1000), max_session_bytes=256 * 1024 * 1024),
    )


def _flat_variants(small: WorkingMemory, big: WorkingMemory, n_big: int) -> dict[str, Op]:
    return {
        "get small": _getter(small, SMALL_KEYS, 5),
        "get big": _getter(big, n_big, 5),
        "set small": _setter(small, SMALL_KEYS, 6, _flat_ttl),
        "set big": _setter(big, n_big, 6, _flat_ttl),
    }


def _flat_report(
    label: str, res: dict[str, Measured], n_big: int, out: SectionResult, reason: str = ""
) -> None:
    for op in ("get", "set"):
        small, big = res[f"{op} small"], res[f"{op} big"]
        ratio = _ratio(big, small)
        out.rows.append(Row(f"flat: {label}", f"{op} @{SMALL_KEYS} keys", small.summary))
        out.rows.append(
            Row(f"flat: {label}", f"{op} @{n_big} keys", big.summary, ratio, f"@{SMALL_KEYS}")
        )
        out.targets.append(
            Target(
                f"{label} {op} p95 @{n_big} / @{SMALL_KEYS} keys",
                ratio,
                FLAT_RATIO_LIMIT,
                "×",
                reason,
            )
        )


async def _flat_memory(ctx: BenchContext, out: SectionResult) -> None:
    opts, n_big = ctx.options, ctx.options.big_session_keys
    store = SessionStore(MemoryBackend(_flat_config("wm", n_big)))
    await store.start()
    try:
        small = store.memory(await store.open("local"), "local")
        big = store.memory(await store.open("local"), "local")
        await _fill(small, SMALL_KEYS, _flat_ttl)
        await _fill(big, n_big, _flat_ttl)
        res = await interleaved(
            _flat_variants(small, big, n_big),
            rounds=opts.rounds,
            iterations=opts.memory_iterations,
            warmup=opts.warmup * 10,
            block=opts.block * 10,
        )
    finally:
        await store.close()
    _flat_report("memory", res, n_big, out)


async def _flat_redis(ctx: BenchContext, url: str, prefix: str, out: SectionResult) -> None:
    opts, n_big = ctx.options, ctx.options.big_session_keys
    config = _flat_config(prefix, n_big)
    plain = SessionStore(RedisBackend(config, url))
    prod = SessionStore(backend_from_url(url, config))
    owned: list[tuple[SessionStore, str]] = []
    try:
        await plain.start()
        await prod.start()
        # The four sessions are written in one script each (the backend's import, as
        # the fallback's write-back does); the production store then picks its two up
        # like sessions opened by another process: its mirror loads them on first use,
        # before timing starts.
        sizes = (SMALL_KEYS, n_big, SMALL_KEYS, n_big)
        sids = [await _import_session(plain.backend, n) for n in sizes]
        owned = [(plain, sids[0]), (plain, sids[1]), (prod, sids[2]), (prod, sids[3])]
        mems = [store.memory(sid, "local") for store, sid in owned]
        for m in mems[2:]:
            await m.get(_key(0))
        variants = {
            **{f"{k} redis": v for k, v in _flat_variants(mems[0], mems[1], n_big).items()},
            **{f"{k} fallback": v for k, v in _flat_variants(mems[2], mems[3], n_big).items()},
        }
        res = await interleaved(
            variants,
            rounds=opts.rounds,
            iterations=opts.iterations,
            warmup=opts.warmup,
            block=opts.block,
        )
    finally:
        for store, sid in owned:
            await store.close_session(sid, "local")
        await prod.close()
        await plain.close()
    for suffix, label in (("redis", "RedisBackend"), ("fallback", "FallbackBackend (prod)")):
        picked = {k.removesuffix(f" {suffix}"): v for k, v in res.items() if k.endswith(suffix)}
        _flat_report(label, picked, n_big, out)


def _skip_redis_targets(out: SectionResult, reason: str, n_big: int) -> None:
    for label in ("RedisBackend", "FallbackBackend (prod)"):
        out.targets.append(
            Target(f"{label} get p95 / raw GET p95", None, GET_RATIO_LIMIT, "×", reason)
        )
        out.targets.append(
            Target(f"{label} set p95 / raw SET p95", None, SET_RATIO_LIMIT, "×", reason)
        )
    for label in ("RedisBackend", "FallbackBackend (prod)"):
        for op in ("get", "set"):
            out.targets.append(
                Target(
                    f"{label} {op} p95 @{n_big} / @{SMALL_KEYS} keys",
                    None,
                    FLAT_RATIO_LIMIT,
                    "×",
                    reason,
                )
            )


async def _redis_version(url: str) -> str:
    backend = RedisBackend(StoreConfig(), url)
    try:
        info = await backend.client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        await backend.close()


async def run(ctx: BenchContext) -> SectionResult:
    out = SectionResult(KEY, TITLE)
    opts = ctx.options
    timings: list[str] = []

    async def timed(name: str, work: Awaitable[None]) -> None:
        t0 = time.perf_counter()
        await work
        timings.append(f"{name} {time.perf_counter() - t0:.1f} s")

    await timed("memory", _memory(ctx, out))
    await timed("flat memory", _flat_memory(ctx, out))
    url, origin = await ctx.redis()
    if url is None:
        out.skipped.append(f"Redis parts: {origin}")
        _skip_redis_targets(out, "no Redis", opts.big_session_keys)
    else:
        prefix = f"wmbench{uuid.uuid4().hex[:8]}"
        out.notes.append(f"Redis {await _redis_version(url)} at {url} ({origin}), prefix {prefix}")
        for name, part in (("redis vs raw", _redis_vs_raw), ("flat redis", _flat_redis)):
            try:
                await timed(name, part(ctx, url, prefix, out))
            except (StorageUnavailableError, RedisError, OSError) as exc:
                # Redis went away mid-run: report it, keep what was measured.
                out.skipped.append(f"{name}: Redis failed ({type(exc).__name__}: {exc})")
    # Keep the table in reading order: memory, redis comparison, then flatness.
    out.rows.sort(key=lambda r: r.group.startswith("flat: "))
    out.targets.sort(key=lambda t: " @" in t.name)
    out.notes += [
        "method: "
        + METHOD.format(rounds=opts.rounds, iterations="N", block="B")
        + f"; in-process variants N = {opts.memory_iterations}, B = {opts.block * 10}, "
        f"warm-up {opts.warmup * 10}; Redis variants N = {opts.iterations}, B = {opts.block}, "
        f"warm-up {opts.warmup}",
        f"value: {len(codec.encode(VALUE))}-byte JSON object; set without TTL in the "
        f"comparison, raw SET without expiry; flatness sessions give every other key a "
        f"{LONG_TTL} s TTL (fill and timed sets alike)",
        "ratio = median over rounds of our p95 / median over rounds of the baseline's p95",
        f"python {sys.version.split()[0]}, asyncio default loop; timings: {', '.join(timings)}",
    ]
    return out
