"""Section ``replicas``: the load mix through 1 and 2 server replicas on a Redis Cluster,
against one replica on a single Redis, in one run (``--sections replicas``).

Setups, all alive at once and measured in alternating order (A B C, C B A, ...):

* **single Redis, 1 replica** -- the baseline;
* **Cluster, 1 replica** -- a local Redis Cluster (3 masters + 3 replicas, started by
  this section with ``tests.support.topology``);
* **Cluster, 2 replicas** -- two server processes on the same cluster; every request
  goes to the next replica in turn (what a round-robin load balancer does with
  stateless requests), so each session is used through both.

Replicas are ``python -m mcp_server --transport http`` processes (the production build,
WARNING logging; the Redis subscription bus on, as by default with Redis). Load:
``WORKERS`` concurrent workers in this process, each with a keep-alive HTTP connection per
replica sending stateless (2026-07-28) ``tools/call`` requests as the SDK client does
(without its per-call output validation) with its own session handle, doing the mix of the
reliability issue -- 70 % ``memory_get``, 20 % ``memory_set``, 5 % ``scratchpad_append``,
5 % ``checkpoint_create`` -- back to back. Per setup and round: ``SECONDS`` with all workers
(throughput: successful calls per second), then ``LATENCY_SECONDS`` with one worker alone
(per-operation latency without queueing, p95 ratios against the single Redis). Figures are
medians over rounds.

Everything runs on one machine: load generator, replicas and all Redis processes share
its cores, so the throughput of 2 replicas shows the cost of the extra process and hop
more than the capacity two machines would add. Bounded: about 90 s in total.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2

from benchmarks.context import BenchContext
from benchmarks.report import Row, SectionResult
from benchmarks.stats import Measured, summarize

KEY = "replicas"
TITLE = "Replicas: the load mix on 1 and 2 replicas over Redis Cluster vs a single Redis"
MIX = (("memory_get", 70), ("memory_set", 20), ("scratchpad_append", 5), ("checkpoint_create", 5))
WORKERS = 8
SECONDS = 5.0  # all workers: throughput
LATENCY_SECONDS = 3.0  # one worker: latency per operation without queueing
ROUNDS = 3
QUICK = {"seconds": 1.5, "rounds": 1}
BASELINE = "single Redis, 1 replica"
KEYS = 50


@dataclass
class Setup:
    name: str
    urls: list[str]
    throughput: list[float] = field(default_factory=list)
    latencies: dict[str, Measured] = field(default_factory=dict)
    errors: int = 0
    workers: list[tuple[list[StatelessCaller], str]] = field(default_factory=list)


META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


class StatelessCaller:
    """Stateless (2026-07-28) ``tools/call`` requests as an SDK client sends them, over one
    keep-alive connection, without the SDK client's own per-call work (output schema
    validation): the load generator shares the machine, so it must cost little."""

    def __init__(self, http: httpx2.AsyncClient, base: str) -> None:
        self.http = http
        self.url = base + "/mcp"
        self._id = 0

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        """The structured result, or None for an error result."""
        self._id += 1
        body = {
            "jsonrpc": "2.0",
            "id": self._id,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": META},
        }
        headers = {
            "Accept": "application/json, text/event-stream",
            "Mcp-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": tool,
        }
        response = await self.http.post(self.url, json=body, headers=headers)
        result = response.json().get("result") if response.status_code == 200 else None
        if not isinstance(result, dict) or result.get("isError"):
            return None
        structured = result.get("structuredContent")
        return structured if isinstance(structured, dict) else {}


@asynccontextmanager
async def stateless_caller(base: str) -> AsyncIterator[StatelessCaller]:
    async with httpx2.AsyncClient(timeout=30) as http:
        yield StatelessCaller(http, base)


def _arguments(tool: str, rng: random.Random, i: int) -> dict[str, Any]:
    if tool == "memory_get":
        return {"key": f"k{rng.randrange(KEYS)}"}
    if tool == "memory_set":
        return {"key": f"k{rng.randrange(KEYS)}", "value": {"n": i, "note": "x" * 64}}
    if tool == "scratchpad_append":
        return {"content": f"note {i}"}
    return {"label": f"cp{i}"}


async def _worker(
    clients: list[StatelessCaller],
    handle: str,
    seconds: float,
    seed: int,
    samples: dict[str, list[int]],
) -> tuple[int, int]:
    """Calls the mix until ``seconds`` pass; returns (ok, errors)."""
    rng = random.Random(seed)
    tools = [t for t, _ in MIX]
    weights = [w for _, w in MIX]
    ok = errors = 0
    deadline = time.monotonic() + seconds
    i = seed  # the replica of the first call differs between workers
    while time.monotonic() < deadline:
        tool = rng.choices(tools, weights)[0]
        args = {**_arguments(tool, rng, i), "session": handle}
        client = clients[i % len(clients)]
        t0 = time.perf_counter_ns()
        result = await client.call(tool, args)
        elapsed = time.perf_counter_ns() - t0
        i += 1
        if result is None:
            errors += 1
        else:
            ok += 1
            samples[tool].append(elapsed)
    return ok, errors


async def _prepare(setup: Setup, stack: AsyncExitStack) -> None:
    """Per worker: a client per replica and a session with its keys, kept for every round."""
    for _ in range(WORKERS):
        clients = [await stack.enter_async_context(stateless_caller(url)) for url in setup.urls]
        opened = await clients[0].call("session_open", {})
        assert opened is not None, "session_open failed"
        handle = str(opened["session"])
        for k in range(KEYS):  # gets find their key
            await clients[k % len(clients)].call(
                "memory_set", {"key": f"k{k}", "value": k, "session": handle}
            )
        setup.workers.append((clients, handle))


async def _measure(setup: Setup, seconds: float, round_: int, *, throughput: bool) -> None:
    """All workers at once (throughput), or the first one alone (latency per operation)."""
    workers = setup.workers if throughput else setup.workers[:1]
    samples: dict[str, list[int]] = {t: [] for t, _ in MIX}
    started = time.perf_counter()
    done = await asyncio.gather(
        *(
            _worker(clients, handle, seconds, 1000 * round_ + w, samples)
            for w, (clients, handle) in enumerate(workers)
        )
    )
    elapsed = time.perf_counter() - started
    setup.errors += sum(err for _, err in done)
    if throughput:
        setup.throughput.append(sum(ok for ok, _ in done) / elapsed)
        return
    for tool, values in samples.items():
        if values:
            setup.latencies.setdefault(tool, Measured(tool)).rounds.append(summarize(values))


async def _close_sessions(setup: Setup) -> None:
    for clients, handle in setup.workers:
        await clients[0].call("session_close", {"session": handle})


async def run(ctx: BenchContext) -> SectionResult:
    out = SectionResult(KEY, TITLE)
    opts = ctx.options
    seconds = QUICK["seconds"] if opts.quick else SECONDS
    latency_seconds = QUICK["seconds"] if opts.quick else LATENCY_SECONDS
    rounds = int(QUICK["rounds"]) if opts.quick else ROUNDS
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if missing:
        out.skipped.append(f"needs {' and '.join(missing)} (a local Redis Cluster)")
        return out
    single_url, origin = await ctx.redis()
    if single_url is None:
        out.skipped.append(f"single Redis baseline: {origin}")
        return out

    # The topology and process helpers live with the tests (one implementation).
    from tests.support.redis_keys import delete_prefix_at
    from tests.support.replicas import ServerProcess, start_replicas
    from tests.support.topology import ClusterTopology

    prefix = f"wmbenchrep{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    cluster = ClusterTopology(node_timeout_ms=3000)
    replicas: list[ServerProcess] = []
    try:
        await asyncio.to_thread(cluster.__enter__)
        cluster_env = {"WM_REDIS_URL": cluster.url, "WM_KEY_PREFIX": prefix}
        single_env = {"WM_REDIS_URL": single_url, "WM_KEY_PREFIX": prefix}
        replicas = await asyncio.to_thread(start_replicas, [single_env, cluster_env, cluster_env])
        startup = time.perf_counter() - t0
        single, c1, c2 = (r.url for r in replicas)
        setups = [
            Setup(BASELINE, [single]),
            Setup("Cluster, 1 replica", [c1]),
            Setup("Cluster, 2 replicas", [c1, c2]),
        ]
        async with AsyncExitStack() as stack:
            for setup in setups:
                await _prepare(setup, stack)
            for r in range(rounds):
                for setup in setups if r % 2 == 0 else setups[::-1]:
                    await _measure(setup, seconds, r, throughput=True)
                    await _measure(setup, latency_seconds, r, throughput=False)
            for setup in setups:
                await _close_sessions(setup)
    finally:
        for replica in replicas:
            await asyncio.to_thread(replica.cleanup)
        await asyncio.to_thread(cluster.cleanup)
        left = await delete_prefix_at(single_url, prefix)

    base = setups[0]
    for setup in setups:
        for tool, _ in MIX:
            measured = setup.latencies.get(tool)
            if measured is None:
                continue
            summary = measured.summary
            ratio = None
            if setup is not base and tool in base.latencies:
                ratio = summary.p95 / base.latencies[tool].summary.p95
            out.rows.append(
                Row(setup.name, tool, summary, ratio, None if ratio is None else "single")
            )
    for setup in setups:
        rate = statistics.median(setup.throughput)
        vs = rate / statistics.median(base.throughput)
        out.notes.append(
            f"throughput {setup.name}: {rate:.0f} calls/s ({vs:.2f}× single Redis); "
            f"error results: {setup.errors}"
        )
    out.notes += [
        f"method: throughput with {WORKERS} concurrent workers for {seconds:.1f} s, then "
        f"latency with one of them alone for {latency_seconds:.1f} s, per setup and round; "
        "each worker has its own session and a keep-alive connection per replica (stateless "
        "2026-07-28 tools/call over streamable HTTP) and calls the mix "
        f"{', '.join(f'{w} % {t}' for t, w in MIX)} back to back; {rounds} round(s), setups "
        "in alternating order; figures are medians over rounds; the rows are the latency "
        "phase",
        "Cluster: 3 masters + 3 replicas on loopback (tests.support.topology); single "
        f"Redis: {single_url} ({origin}); start-up of the cluster and the 3 replicas "
        f"{startup:.1f} s; keys left under the prefix on the single Redis: {left} (deleted)",
    ]
    return out
