"""Section ``checkpoints``: checkpoint create/restore of a session at its limits, and what
they cost every other call meanwhile.

One session holds 1000 variables of ~8 KB (the default ``max_keys``, ~8 MiB: about the
default ``max_session_bytes``). One task creates a checkpoint of it and restores it, in
turn, while another task makes ``memory_get``-sized calls (``WorkingMemory.get``) on a
second session, one after another. Reported per store (in-memory, Redis with its
fallback mirror): create and restore times, the longest the event loop went without
running anything else (a 1 ms ticker's worst lateness), and p50/p99 of the other calls,
each with and without the checkpoint load (the baseline, measured in the same run).
Target: checkpoints stall the event loop at most 5 ms longer than it stalls idle (the
machine's own noise): a checkpoint must not hold every other client of the process.
On Redis the script itself runs inside Redis, which serves nothing else meanwhile: that
shows in the other calls' p99, not in the stall.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

from benchmarks.context import BenchContext
from benchmarks.report import SectionResult, Target
from benchmarks.stats import percentile
from memory_core import SessionStore, StoreConfig, WorkingMemory
from memory_core.storage.factory import backend_from_url
from tests.support.redis_keys import delete_prefix_at

KEY = "checkpoints"
TITLE = "checkpoints: create/restore at the limits, and every other call meanwhile"
KEYS = 1000
VALUE = "x" * 8000
STALL_LIMIT_MS = 5.0


async def _fill(memory: WorkingMemory) -> None:
    for start in range(0, KEYS, 100):
        await asyncio.gather(*(memory.set(f"k{i:04d}", VALUE) for i in range(start, start + 100)))


async def _other_calls(memory: WorkingMemory, seconds: float) -> list[float]:
    """Latencies (ms) of sequential gets for ``seconds``."""
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        await memory.get("small")
        latencies.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0)  # an in-memory get never yields: let the others run
    return latencies


async def _measure(store: SessionStore, rounds: int) -> dict[str, float]:
    big = store.memory(await store.open())
    other = store.memory(await store.open())
    await _fill(big)
    await other.set("small", {"a": 1})

    stalls: list[float] = []
    running = True

    async def ticker() -> None:
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stalls.append((now - last - 0.001) * 1000)
            last = now

    creates: list[float] = []
    restores: list[float] = []

    async def checkpoints() -> None:
        for _ in range(rounds):
            t0 = time.perf_counter()
            checkpoint_id = await big.create_checkpoint("bench")
            creates.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0)
            t0 = time.perf_counter()
            await big.restore_checkpoint(checkpoint_id)
            restores.append((time.perf_counter() - t0) * 1000)
            await big.delete_checkpoint(checkpoint_id)
            await asyncio.sleep(0)  # calls of a client are requests of their own

    tick = asyncio.create_task(ticker())
    baseline = await _other_calls(other, 1.0)
    idle_stall = max(stalls, default=0.0)
    stalls.clear()
    work = asyncio.create_task(checkpoints())
    loaded: list[float] = []
    while not work.done():
        loaded += await _other_calls(other, 0.2)
    await work
    running = False
    await tick
    return {
        "create_ms": statistics.median(creates),
        "restore_ms": statistics.median(restores),
        "idle_stall_ms": idle_stall,
        "stall_ms": max(stalls, default=0.0),
        "base_p50": percentile(sorted(baseline), 50),
        "base_p99": percentile(sorted(baseline), 99),
        "load_p50": percentile(sorted(loaded), 50),
        "load_p99": percentile(sorted(loaded), 99),
    }


async def run(ctx: BenchContext) -> SectionResult:
    out = SectionResult(KEY, TITLE)
    rounds = 3 if ctx.options.quick else 20
    config = StoreConfig(key_prefix=f"wmbenchcp{uuid.uuid4().hex[:8]}")  # default limits
    stores = [("memory", "memory://")]
    url, origin = await ctx.redis() if ctx.options.use_redis else (None, "disabled")
    if url is not None:
        stores.append(("redis", url))
    else:
        out.skipped.append(f"checkpoints · redis: no Redis ({origin})")
    lines = [
        "| store | create ms (median) | restore ms (median) "
        "| longest event-loop stall ms, idle / during checkpoints "
        "| other calls p50 / p99 ms, idle | same, during checkpoints |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, store_url in stores:
        store = SessionStore(backend_from_url(store_url, config))
        await store.start()
        try:
            m = await _measure(store, rounds)
        finally:
            await store.close()
        lines.append(
            f"| {name} | {m['create_ms']:.1f} | {m['restore_ms']:.1f} "
            f"| {m['idle_stall_ms']:.1f} / {m['stall_ms']:.1f} "
            f"| {m['base_p50']:.2f} / {m['base_p99']:.2f} "
            f"| {m['load_p50']:.2f} / {m['load_p99']:.2f} |"
        )
        out.targets.append(
            Target(
                f"checkpoints, {name}: event-loop stall while a session at its limits is "
                "checkpointed and restored, beyond the idle one (machine noise)",
                max(0.0, m["stall_ms"] - m["idle_stall_ms"]) * 1000,
                STALL_LIMIT_MS * 1000,
                "µs",
            )
        )
    if url is not None:
        await delete_prefix_at(url, config.key_prefix)
        out.notes.append(f"Redis at {url} ({origin})")
    out.tables.append(lines)
    out.notes.append(
        f"session: {KEYS} variables of {len(VALUE)} bytes; {rounds} create+restore rounds"
    )
    return out
