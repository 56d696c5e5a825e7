"""Soak: connect -> use -> disconnect, thousands of times, then nothing may be left over.

Cycles run concurrently over every way in: in-process SDK clients against
``create_server(...)`` in both eras (handshake sessions bound to the connection;
stateless requests with a ``session_open`` handle) -- in a worker process of their own,
see ``soak_support`` -- streamable HTTP (handshake and stateless) and SSE against a
server subprocess, and stdio server spawns. All share one private Redis and one key
prefix. Each cycle writes, reads back and checks a few values, the scratchpad, the task
state and (every fifth) a checkpoint it deletes again, then disconnects (stateless
cycles close their handle).

After a warm-up, and again at the end once teardown has settled (polled, bounded), we
measure and compare:

* Redis keys under the prefix: back to the baseline exactly (0), and none ever
  without a TTL (sampled every 0.5 s);
* sessions open: 0 in the HTTP server (``memory://health``) and in the in-process
  worker (its store and the store's fallback mirror);
* HTTP server process: RSS within ``RSS_SLACK`` of the baseline, open fds within
  ``FD_SLACK``;
* in-process worker: asyncio tasks back to the baseline, fds within ``FD_SLACK``, RSS
  within ``RSS_SLACK``;
* test process (the HTTP, SSE and stdio clients): asyncio tasks back to the baseline,
  fds within ``FD_SLACK``, no child process left but Redis, the HTTP server and the
  worker.

Figures go to ``tests/reliability/results/soak.json``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from mcp import Client

from tests.reliability.chaos_support import (
    ServerProcess,
    children_of,
    fd_count,
    poll,
    read_health,
    rss_bytes,
    shared_output_validators,
    streamable_connection,
    ttl_sample,
    write_results,
)
from tests.reliability.conftest import FULL, scale
from tests.reliability.soak_support import MiB, Soak, Worker
from tests.support.redis_keys import state_keys
from tests.support.redis_proc import RedisProcess

# Allowed growth from the warm baseline to the end. CPython keeps freed memory in its
# arenas and the allocator's free lists, and the server has bounded caches that fill with
# the first few thousand sessions (Redis key names of 4096 sessions, the per-session lock
# table pruned at 2048, pydantic's string cache): ~2.5 MiB when full. A leak of 1 KiB per
# session would add ~10 MiB over the full run and trip this.
RSS_SLACK = 8 * MiB
# Pooled Redis connections and HTTP keep-alive sockets come and go with concurrency.
FD_SLACK = 4
SETTLE_SECONDS = 60.0
INPROC = ("inproc-handshake", "inproc-stateless")
CYCLES = {
    "inproc-handshake": scale(100, 4000),
    "inproc-stateless": scale(60, 3940),
    "http-streamable": scale(16, 800),
    "http-stateless": scale(8, 400),
    "sse": scale(16, 800),
    "stdio": scale(10, 60),  # a spawn costs ~2.5 s of CPU importing the SDK
}
CONCURRENCY = {"inproc": 4, "http": 4, "stdio": 2}
WARMUP = {kind: max(2, n // 50) if kind != "stdio" else 1 for kind, n in CYCLES.items()}
pytestmark = pytest.mark.timeout(scale(180, 900))


def split(plan: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(the worker's in-process part, the test process's part)."""
    return (
        {k: n for k, n in plan.items() if k in INPROC},
        {k: n for k, n in plan.items() if k not in INPROC},
    )


async def test_soak_connect_use_disconnect(
    redis_server: RedisProcess, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = {"redis_url": redis_server.url, "key_prefix": key_prefix}
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    http = ServerProcess(**settings).launch()
    worker_log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    worker = await Worker.start(redis_server.url, key_prefix, worker_log)
    soak = Soak(None, http.url, settings)
    health: Client | None = None
    trend: list[dict[str, Any]] = []
    ttl_checks = {"samples": 0, "keys": 0, "without_ttl": 0}
    started = time.monotonic()

    async def run(plan: dict[str, int], progress: Any = None) -> dict[str, Any]:
        inproc, local = split(plan)
        answer: dict[str, Any]
        answer, _ = await asyncio.gather(
            worker.request(cmd="run", plan=inproc, concurrency=CONCURRENCY),
            soak.run(local, CONCURRENCY, progress),
        )
        return answer

    try:
        with shared_output_validators():
            await http.ready()
            warm = await run(WARMUP)
            assert warm["failed"] == 0 and soak.failures == [], (warm, soak.failures[:10])
            async with streamable_connection(http.url) as health:
                last: dict[str, Any] = {}

                async def settled() -> bool:
                    last.update(
                        keys=len(await state_keys(raw, key_prefix)),
                        http=(await read_health(health))["sessions_open"],
                        inproc=await worker.request(cmd="snapshot"),
                    )
                    return (
                        last["keys"] == 0
                        and last["http"] == 0
                        and last["inproc"]["sessions_open"] == 0
                        and last["inproc"]["mirror_sessions"] in (None, 0)
                    )

                async def snapshot() -> dict[str, Any]:
                    return {
                        "seconds": round(time.monotonic() - started, 1),
                        "redis_keys": len(await state_keys(raw, key_prefix)),
                        "redis_used_memory_mib": round(
                            int((await raw.info("memory"))["used_memory"]) / MiB, 2
                        ),
                        "http_server": {
                            "rss_mib": round(rss_bytes(http.pid) / MiB, 2),
                            "fds": fd_count(http.pid),
                            "sessions_open": (h := await read_health(health))["sessions_open"],
                            "fallbacks": h["fallbacks"],
                        },
                        "inproc_worker": await worker.request(cmd="snapshot"),
                        "test_process": {
                            "rss_mib": round(rss_bytes() / MiB, 2),
                            "fds": fd_count(),
                            "tasks": len(asyncio.all_tasks()),
                            "children": len(children_of(os.getpid())),
                        },
                    }

                def progress() -> None:
                    trend.append(
                        {
                            "local_cycles": sum(soak.done.values()),
                            "http_server_rss_mib": round(rss_bytes(http.pid) / MiB, 2),
                            "http_server_fds": fd_count(http.pid),
                        }
                    )

                async def ttl_watch() -> None:  # no key is ever without a TTL
                    while True:
                        ttls = await ttl_sample(raw, key_prefix)
                        ttl_checks["samples"] += 1
                        ttl_checks["keys"] += len(ttls)
                        ttl_checks["without_ttl"] += sum(1 for t in ttls.values() if t == -1)
                        await asyncio.sleep(0.5)

                await poll(settled, SETTLE_SECONDS, lambda: f"warm-up teardown: {last}", 0.05)
                baseline = await snapshot()
                watcher = asyncio.create_task(ttl_watch())
                try:
                    main = await run({k: n - WARMUP[k] for k, n in CYCLES.items()}, progress)
                finally:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
                assert main["failed"] == 0, main["failures"]
                assert soak.failures == [], soak.failures[:10]
                settle = await poll(settled, SETTLE_SECONDS, lambda: f"teardown: {last}", 0.05)
                end = await snapshot()
    finally:
        await worker.close()
        http.stop()
        http.cleanup()
        await raw.aclose()
        worker_log.close()

    done = {**soak.done, **main["done"]}
    seconds = {**soak.seconds, **main["seconds"]}
    assert done == CYCLES
    assert ttl_checks["without_ttl"] == 0
    assert end["redis_keys"] == baseline["redis_keys"] == 0
    b_http, e_http = baseline["http_server"], end["http_server"]
    b_in, e_in = baseline["inproc_worker"], end["inproc_worker"]
    b_test, e_test = baseline["test_process"], end["test_process"]
    assert e_http["sessions_open"] == 0 and e_in["sessions_open"] == 0
    assert e_in["mirror_sessions"] in (None, 0)
    assert e_http["rss_mib"] <= b_http["rss_mib"] + RSS_SLACK / MiB, (baseline, end)
    assert e_http["fds"] <= b_http["fds"] + FD_SLACK, (baseline, end)
    assert e_in["rss_mib"] <= b_in["rss_mib"] + RSS_SLACK / MiB, (baseline, end)
    assert e_in["fds"] <= b_in["fds"] + FD_SLACK, (baseline, end)
    assert e_in["tasks"] <= b_in["tasks"], (baseline, end)
    assert e_test["fds"] <= b_test["fds"] + FD_SLACK, (baseline, end)
    assert e_test["tasks"] <= b_test["tasks"], (baseline, end)
    assert e_test["children"] <= b_test["children"], (baseline, end)
    figures = {
        "cycles": done,
        "cycles_total": sum(done.values()),
        "tool_calls": soak.calls + main["calls"],
        "failed_cycles": len(soak.failures) + main["failed"],
        "ms_per_cycle": {k: round(seconds[k] / done[k] * 1000, 1) for k in done},
        "concurrency": CONCURRENCY,
        "warmup": WARMUP,
        "baseline": baseline,
        "end": end,
        "settle_s": round(settle, 2),
        "trend_local": trend,
        "trend_inproc": main["trend"],
        "ttl_checks": ttl_checks,
        "rss_slack_mib": RSS_SLACK / MiB,
        "fd_slack": FD_SLACK,
        "full": FULL,
        "summary": (
            f"{sum(done.values())} cycles in {end['seconds']} s; HTTP server RSS "
            f"{b_http['rss_mib']} -> {e_http['rss_mib']} MiB, fds {b_http['fds']} -> "
            f"{e_http['fds']}; in-process RSS {b_in['rss_mib']} -> {e_in['rss_mib']} MiB, "
            f"tasks {b_in['tasks']} -> {e_in['tasks']}; Redis keys {baseline['redis_keys']} "
            f"-> {end['redis_keys']}"
        ),
    }
    path = write_results("soak", figures)
    with capsys.disabled():
        print(f"\n[soak] {path.name}: {figures['summary']}")
