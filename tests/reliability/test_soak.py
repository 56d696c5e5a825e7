"""Soak: connect -> use -> disconnect, thousands of times, then nothing may be left over.

Cycles run concurrently over every way in: in-process SDK clients against
``create_server(...)`` in both eras (handshake sessions bound to the connection;
stateless requests with a ``session_open`` handle), streamable HTTP (handshake and
stateless) and SSE against a server subprocess, and stdio server spawns. All share one
private Redis and one key prefix. Each cycle writes, reads back and checks a few
values, the scratchpad, the task state and (every fifth) a checkpoint it deletes again,
then disconnects (stateless cycles close their handle).

After a warm-up, and again at the end once teardown has settled (polled, bounded), we
measure and compare:

* Redis keys under the prefix: back to the baseline exactly (0);
* sessions open: 0 in the subprocess (``memory://health``) and in-process (the store,
  its fallback mirror);
* server subprocess: RSS within ``RSS_SLACK`` of the baseline, open fds within
  ``FD_SLACK``;
* test process (in-process server and all clients): asyncio tasks back to the baseline,
  open fds within ``FD_SLACK``, no child process left but Redis and the HTTP server;
  its RSS is reported, not asserted (it holds every client library too).

Figures go to ``tests/reliability/results/soak.json``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from mcp import Client

from mcp_server.server import create_server
from mcp_server.settings import Settings
from mcp_server.store import build_store
from tests.reliability.chaos_support import (
    ServerProcess,
    children_of,
    fd_count,
    keys_under,
    poll,
    read_health,
    rss_bytes,
    shared_output_validators,
    sse_connection,
    stdio_connection,
    streamable_connection,
    ttl_sample,
    write_results,
)
from tests.reliability.conftest import FULL, scale
from tests.support.redis_proc import RedisProcess

MiB = 1024 * 1024
# Allowed growth from the warm baseline to the end. CPython keeps freed memory in its
# arenas and the allocator's free lists, so RSS does not drop back byte for byte; a leak
# of 1 KiB per session would add ~10 MiB over the full run and trip this.
RSS_SLACK = 8 * MiB
# Pooled Redis connections and HTTP keep-alive sockets come and go with concurrency.
FD_SLACK = 4
SETTLE_SECONDS = 60.0
CYCLE_SECONDS = 120.0  # one connect-use-disconnect; a stdio spawn takes ~3 s here
CYCLES = {
    "inproc-handshake": scale(100, 4000),
    "inproc-stateless": scale(60, 3900),
    "http-streamable": scale(16, 800),
    "http-stateless": scale(8, 400),
    "sse": scale(16, 800),
    "stdio": scale(10, 100),
}
CONCURRENCY = {"inproc": 4, "http": 4, "stdio": 2}
pytestmark = pytest.mark.timeout(scale(180, 900))
WARMUP = {kind: max(2, n // 50) if kind != "stdio" else 1 for kind, n in CYCLES.items()}


def group(kind: str) -> str:
    return kind.split("-", maxsplit=1)[0] if kind != "sse" else "http"


class SoakFailure(AssertionError):
    pass


async def use(client: Client, n: int, handle: str | None) -> int:
    """One agent's short visit; returns the tool calls made. Raises SoakFailure."""
    extra = {"session": handle} if handle else {}
    calls = 0

    async def call(tool: str, **args: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        result = await client.call_tool(tool, {**args, **extra})
        if result.is_error or result.structured_content is None:
            raise SoakFailure(f"{tool}: {result.content}")
        return dict(result.structured_content)

    def check(ok: bool, what: str) -> None:
        if not ok:
            raise SoakFailure(what)

    await call("memory_set", key="a", value={"n": n, "s": "ü" * (n % 40)}, ttl_seconds=600)
    await call("memory_set", key="b", value=[n, str(n)])
    got = await call("memory_get", key="a")
    check(got["value"] == {"n": n, "s": "ü" * (n % 40)}, f"memory_get a: {got}")
    check((await call("scratchpad_append", content=f"note {n}"))["length"] == 1, "append")
    if n % 4 == 0:
        await call("task_state_set", task_id=f"t{n}", status="in_progress", current_step=1)
        check((await call("task_state_get"))["state"]["task_id"] == f"t{n}", "task state")
    if n % 5 == 0:
        cp = (await call("checkpoint_create", label="soak"))["checkpoint_id"]
        check((await call("checkpoint_delete", checkpoint_id=cp))["deleted"], "checkpoint")
    if n % 7 == 0:
        check((await call("memory_delete", key="b"))["deleted"], "memory_delete")
        check((await call("memory_list_keys"))["keys"] == ["a"], "list after delete")
    else:
        check((await call("memory_list_keys"))["keys"] == ["a", "b"], "memory_list_keys")
    return calls


class Soak:
    def __init__(self, server: Any, http_url: str, stdio_settings: dict[str, Any]) -> None:
        self.server = server  # in-process WorkingMemoryServer
        self.http_url = http_url
        self.stdio_settings = stdio_settings
        self.done: Counter[str] = Counter()
        self.calls = 0
        self.failures: list[str] = []
        self.seconds: Counter[str] = Counter()

    @asynccontextmanager
    async def connect(self, kind: str) -> AsyncIterator[Client]:
        if kind == "inproc-handshake":
            async with Client(self.server, mode="legacy") as client:
                yield client
        elif kind == "inproc-stateless":
            async with Client(self.server, mode="auto") as client:
                yield client
        elif kind == "http-streamable":
            async with streamable_connection(self.http_url) as client:
                yield client
        elif kind == "http-stateless":
            async with streamable_connection(self.http_url, mode="auto") as client:
                yield client
        elif kind == "sse":
            async with sse_connection(self.http_url) as client:
                yield client
        else:
            async with stdio_connection(**self.stdio_settings) as client:
                yield client

    async def cycle(self, kind: str, n: int) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(CYCLE_SECONDS), self.connect(kind) as client:
                handle = None
                if kind.endswith("stateless"):
                    opened = await client.call_tool("session_open", {})
                    if opened.is_error or opened.structured_content is None:
                        raise SoakFailure(f"session_open: {opened.content}")
                    handle = opened.structured_content["session"]
                self.calls += await use(client, n, handle)
                if handle is not None:
                    closed = await client.call_tool("session_close", {"session": handle})
                    if closed.is_error or closed.structured_content != {"closed": True}:
                        raise SoakFailure(f"session_close: {closed.content}")
        except Exception as exc:
            self.failures.append(f"{kind} #{n}: {type(exc).__name__}: {exc}"[:500])
        self.done[kind] += 1
        self.seconds[kind] += time.monotonic() - started

    async def run(
        self,
        plan: dict[str, int],
        on_progress: Callable[[], None] | None = None,
        deadline: float = 1e12,
    ) -> None:
        """Run ``plan`` (cycles per kind) with CONCURRENCY workers per group, the kinds
        of a group interleaved."""
        queues: dict[str, list[tuple[str, int]]] = {}
        for kind, count in plan.items():
            queues.setdefault(group(kind), []).extend(
                (kind, self.done[kind] + i) for i in range(count)
            )
        for items in queues.values():
            random.Random(len(items)).shuffle(items)
        total = sum(plan.values())
        step = max(1, total // 10)
        finished = 0

        async def worker(items: list[tuple[str, int]]) -> None:
            nonlocal finished
            while items and time.monotonic() < deadline:
                kind, n = items.pop()
                await self.cycle(kind, n)
                finished += 1
                if on_progress is not None and finished % step == 0:
                    on_progress()

        await asyncio.gather(
            *(worker(items) for g, items in queues.items() for _ in range(CONCURRENCY[g]))
        )


async def test_soak_connect_use_disconnect(
    redis_server: RedisProcess, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = {"redis_url": redis_server.url, "key_prefix": key_prefix}
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    http = ServerProcess(**settings).launch()
    store = build_store(Settings(transport="http", **settings))
    await store.start()
    server = create_server(Settings(transport="http", **settings), store)
    soak = Soak(server, http.url, settings)
    mirror = getattr(store.backend, "mirror", None)
    health: Client | None = None
    trend: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        with shared_output_validators():
            await http.ready()
            await soak.run(WARMUP)
            assert soak.failures == [], soak.failures[:10]
            async with streamable_connection(http.url) as health:

                async def settled() -> bool:
                    return (
                        not await keys_under(raw, key_prefix)
                        and (await read_health(health))["sessions_open"] == 0
                        and store.open_count() == 0
                        and (mirror is None or mirror.session_count == 0)
                    )

                async def snapshot() -> dict[str, Any]:
                    gc.collect()
                    return {
                        "cycles": sum(soak.done.values()),
                        "server_rss_mib": round(rss_bytes(http.pid) / MiB, 2),
                        "server_fds": fd_count(http.pid),
                        "test_rss_mib": round(rss_bytes() / MiB, 2),
                        "test_fds": fd_count(),
                        "test_tasks": len(asyncio.all_tasks()),
                        "test_children": len(children_of(os.getpid())),
                        "redis_keys": len(await keys_under(raw, key_prefix)),
                        "redis_used_memory_mib": round(
                            int((await raw.info("memory"))["used_memory"]) / MiB, 2
                        ),
                        "sessions_open_http": (await read_health(health))["sessions_open"],
                        "sessions_open_inproc": store.open_count(),
                        "mirror_sessions": None if mirror is None else mirror.session_count,
                        "seconds": round(time.monotonic() - started, 1),
                    }

                await poll(settled, SETTLE_SECONDS, "warm-up teardown to settle", 0.05)
                baseline = await snapshot()
                main = {kind: n - WARMUP[kind] for kind, n in CYCLES.items()}
                ttl_checks = {"samples": 0, "keys": 0, "without_ttl": 0}

                def progress() -> None:
                    trend.append(
                        {
                            "cycles": sum(soak.done.values()),
                            "server_rss_mib": round(rss_bytes(http.pid) / MiB, 2),
                            "server_fds": fd_count(http.pid),
                            "test_tasks": len(asyncio.all_tasks()),
                        }
                    )

                async def ttl_watch() -> None:  # no key is ever without a TTL
                    while True:
                        ttls = await ttl_sample(raw, key_prefix)
                        ttl_checks["samples"] += 1
                        ttl_checks["keys"] += len(ttls)
                        ttl_checks["without_ttl"] += sum(1 for t in ttls.values() if t == -1)
                        await asyncio.sleep(0.5)

                watcher = asyncio.create_task(ttl_watch())
                try:
                    await soak.run(main, progress, deadline=time.monotonic() + 1800)
                finally:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
                assert soak.failures == [], soak.failures[:10]
                settle = await poll(settled, SETTLE_SECONDS, "teardown to settle", 0.05)
                end = await snapshot()
    finally:
        http.stop()
        http.cleanup()
        await store.close()
        await raw.aclose()

    assert dict(soak.done) == CYCLES
    assert ttl_checks["without_ttl"] == 0
    assert end["redis_keys"] == baseline["redis_keys"] == 0
    assert end["sessions_open_http"] == 0 and end["sessions_open_inproc"] == 0
    assert end["mirror_sessions"] in (None, 0)
    assert end["server_rss_mib"] <= baseline["server_rss_mib"] + RSS_SLACK / MiB, (baseline, end)
    assert end["server_fds"] <= baseline["server_fds"] + FD_SLACK, (baseline, end)
    assert end["test_fds"] <= baseline["test_fds"] + FD_SLACK, (baseline, end)
    assert end["test_tasks"] <= baseline["test_tasks"], (baseline, end)
    assert end["test_children"] <= baseline["test_children"], (baseline, end)
    figures = {
        "cycles": dict(soak.done),
        "cycles_total": sum(soak.done.values()),
        "tool_calls": soak.calls,
        "failed_cycles": len(soak.failures),
        "seconds_per_cycle_ms": {
            k: round(soak.seconds[k] / soak.done[k] * 1000, 1) for k in soak.done
        },
        "concurrency": CONCURRENCY,
        "warmup": WARMUP,
        "baseline": baseline,
        "end": end,
        "settle_s": round(settle, 2),
        "trend": trend,
        "ttl_checks": ttl_checks,
        "rss_slack_mib": RSS_SLACK / MiB,
        "fd_slack": FD_SLACK,
        "full": FULL,
        "summary": (
            f"{sum(soak.done.values())} cycles in {end['seconds']} s; server RSS "
            f"{baseline['server_rss_mib']} -> {end['server_rss_mib']} MiB, fds "
            f"{baseline['server_fds']} -> {end['server_fds']}, tasks {baseline['test_tasks']} "
            f"-> {end['test_tasks']}, Redis keys {baseline['redis_keys']} -> {end['redis_keys']}"
        ),
    }
    path = write_results("soak", figures)
    with capsys.disabled():
        print(f"\n[soak] {path.name}: {figures['summary']}")
