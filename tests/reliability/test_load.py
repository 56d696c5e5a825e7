"""Load: K concurrent MCP clients over real HTTP against the server as a subprocess.

Each client works in its own session with the mix 70 % memory_get, 20 % memory_set,
5 % scratchpad_append, 5 % checkpoint_create, for a fixed window. The tests assert
correctness only: no failed call, every operation acknowledged, every read sees the
client's own last write, and each session's final state (variables, scratchpad,
checkpoints) equals a model of the acknowledged operations; sessions are torn down
afterwards. Throughput and latency are printed (``-s``) for ``docs/reliability.md``,
never asserted: the load generator shares the machine's cores with the server.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.reliability.conftest import FULL
from tests.reliability.load_support import (
    ServerProcess,
    percentile,
    running_server,
    write_results,
)
from tests.server.e2e import sse_connection, streamable_client
from tests.support.redis_keys import delete_prefix_at, kept_on_purpose, prefixed_keys
from tests.support.results import resource_text, tool_text

KS = (1, 8, 32, 128) if FULL else (1, 8)
WINDOW_SECONDS = 3.0 if FULL else 0.5
MAX_OPS_PER_CLIENT = 20_000  # a bound on top of the window
CONNECT_CONCURRENCY = 16
KEYS_PER_CLIENT = 16
TRANSPORTS = ("streamable", "sse", "stateless")
MIX = (
    ("memory_get", 0.70),
    ("memory_set", 0.20),
    ("scratchpad_append", 0.05),
    ("checkpoint_create", 0.05),
)
TARGET_P95_MS = 5.0

RESULTS: list[dict[str, Any]] = []

pytestmark = pytest.mark.timeout(600 if FULL else 120)


@dataclass
class Model:
    """What one client's acknowledged operations say its session holds."""

    variables: dict[str, Any] = field(default_factory=dict)
    scratchpad: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)


@dataclass
class Cell:
    """One K × transport × store run."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    issued: int = 0
    acknowledged: int = 0
    finished: list[float] = field(default_factory=list)
    client_cpu: float = 0.0  # CPU seconds of this (load generator) process in the window
    server_cpu: float = 0.0  # CPU seconds of the server process in the window


class Session:
    """A client plus the handle its calls carry (stateless clients only)."""

    def __init__(self, client: Client, handle: str | None) -> None:
        self.client, self.handle = client, handle

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        if self.handle is not None:
            args["session"] = self.handle
        result = await self.client.call_tool(tool, args)
        if result.is_error or result.structured_content is None:
            text = tool_text(result) if result.content else ""
            raise AssertionError(f"{tool} failed: {text[:200]}")
        return dict(result.structured_content)


def _connector(url: str, transport: str) -> Callable[[], AbstractAsyncContextManager[Client]]:
    if transport == "sse":
        return lambda: sse_connection(url)
    mode = "auto" if transport == "stateless" else "legacy"
    return lambda: streamable_client(url, mode=mode)


def _pick(rng: random.Random) -> str:
    roll = rng.random()
    for tool, share in MIX:
        if roll < share:
            return tool
        roll -= share
    return MIX[0][0]


async def _one_op(s: Session, tool: str, *, n: int, me: int, rng: random.Random, m: Model) -> None:
    """One operation of the mix, checked against the model as it is acknowledged."""
    if tool == "memory_get":
        key = f"k{rng.randrange(KEYS_PER_CLIENT)}"
        got = await s.call("memory_get", key=key)
        expected = m.variables.get(key)
        if got["found"] != (key in m.variables) or got["value"] != expected:
            raise AssertionError(f"read {key}: got {got!r}, acknowledged {expected!r}")
    elif tool == "memory_set":
        key = f"k{rng.randrange(KEYS_PER_CLIENT)}"
        value = {"client": me, "n": n, "note": "x" * rng.randrange(8, 96)}
        await s.call("memory_set", key=key, value=value)
        m.variables[key] = value
    elif tool == "scratchpad_append":
        note = f"client {me} step {n}"
        got = await s.call("scratchpad_append", content=note)
        m.scratchpad.append(note)
        if got["length"] != len(m.scratchpad):
            raise AssertionError(f"scratchpad length {got['length']} != {len(m.scratchpad)}")
    else:
        got = await s.call("checkpoint_create", label=f"c{me}-{n}")
        m.checkpoints.append(got["checkpoint_id"])
        for evicted in got["evicted"]:
            m.checkpoints.remove(evicted)


async def _final_state(s: Session) -> Model:
    """The session's state as the server reports it, every page."""
    state = Model()
    cursor: str | None = None
    for _page in range(100):
        args: dict[str, Any] = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = await s.call("memory_get_all", **args)
        state.variables.update(page["values"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    cursor = None
    for _page in range(100):
        args = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = await s.call("scratchpad_get", **args)
        state.scratchpad.extend(page["entries"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    state.checkpoints = [c["id"] for c in (await s.call("checkpoint_list"))["checkpoints"]]
    return state


async def run_cell(
    url: str, transport: str, k: int, seed: int, server_pid: int | None = None
) -> tuple[Cell, float, list[str]]:
    """K clients for one window; returns the cell, its wall time and the session ids."""
    cell = Cell(latencies={tool: [] for tool, _ in MIX})
    connect = _connector(url, transport)
    limiter = anyio.CapacityLimiter(CONNECT_CONCURRENCY)
    ready = 0
    all_ready, start, ops_done = anyio.Event(), anyio.Event(), anyio.Event()
    clock: dict[str, float] = {}
    sessions: list[str] = []

    async def worker(me: int) -> None:
        nonlocal ready
        rng = random.Random(seed * 1000 + me)
        model = Model()
        async with AsyncExitStack() as stack:
            async with limiter:
                client = await stack.enter_async_context(connect())
                await client.list_tools()  # the SDK's output-schema cache, outside the window
                handle = None
                if transport == "stateless":
                    handle = (await Session(client, None).call("session_open"))["session"]
                s = Session(client, handle)
                sessions.append((await s.call("session_info"))["session"])
            ready += 1
            if ready == k:
                all_ready.set()
            await start.wait()
            deadline = clock["deadline"]
            n = 0
            while n < MAX_OPS_PER_CLIENT and time.perf_counter() < deadline:
                n += 1
                tool = _pick(rng)
                cell.issued += 1
                began = time.perf_counter()
                try:
                    await _one_op(s, tool, n=n, me=me, rng=rng, m=model)
                except Exception as exc:  # recorded, then the run goes on
                    cell.errors.append(f"client {me} op {n} {tool}: {exc!r}"[:300])
                    if len(cell.errors) > 20:
                        break
                    continue
                cell.latencies[tool].append((time.perf_counter() - began) * 1000)
                cell.acknowledged += 1
            cell.finished.append(time.perf_counter())
            if len(cell.finished) == k:
                ops_done.set()
            final = await _final_state(s)
            if final != model:
                cell.errors.append(
                    f"client {me}: final state differs from the acknowledged operations: "
                    f"{len(final.variables)}/{len(model.variables)} variables, "
                    f"{len(final.scratchpad)}/{len(model.scratchpad)} notes, "
                    f"{len(final.checkpoints)}/{len(model.checkpoints)} checkpoints"
                )
            if handle is not None:
                await s.call("session_close")

    with anyio.fail_after(WINDOW_SECONDS + 240):
        async with anyio.create_task_group() as tg:
            for me in range(k):
                tg.start_soon(worker, me)
            await all_ready.wait()
            cpu = time.process_time(), _process_cpu(server_pid)
            began = time.perf_counter()
            clock["deadline"] = began + WINDOW_SECONDS
            start.set()
            await ops_done.wait()
            cell.client_cpu = time.process_time() - cpu[0]
            cell.server_cpu = _process_cpu(server_pid) - cpu[1]
    wall = max(cell.finished, default=began) - began
    return cell, wall, sessions


def _process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) another process has used so far (Linux /proc)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summary(store: str, transport: str, k: int, cell: Cell, wall: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "store": store,
        "transport": transport,
        "k": k,
        "ops": cell.acknowledged,
        "ops_per_s": cell.acknowledged / wall if wall > 0 else 0.0,
        "client_cpu": cell.client_cpu / wall if wall > 0 else 0.0,
        "server_cpu": cell.server_cpu / wall if wall > 0 else 0.0,
    }
    everything = [v for values in cell.latencies.values() for v in values]
    for name, values in (
        ("get", cell.latencies["memory_get"]),
        ("set", cell.latencies["memory_set"]),
        ("all", everything),
    ):
        for q in (50, 95, 99):
            row[f"{name}_p{q}"] = percentile(values, q)
    return row


async def _health(url: str) -> dict[str, Any]:
    async with streamable_client(url, mode="auto") as client:
        result = await client.read_resource("memory://health", cache_mode="bypass")
        return dict(json.loads(resource_text(result)))


async def _live_keys(raw_redis: Any, prefix: str) -> list[str]:
    return [k for k in await prefixed_keys(raw_redis, prefix) if not kept_on_purpose(k)]


# --- fixtures ------------------------------------------------------------------------


@dataclass
class Target:
    store: str
    server: ServerProcess
    prefix: str | None = None
    redis_url: str | None = None


@pytest.fixture(scope="module", params=("memory", "redis"))
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    env = {"WM_CHECKPOINT_RETENTION_SECONDS": "120", "WM_MAX_SESSIONS": "10000"}
    prefix = redis_url = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        prefix = f"wml{uuid.uuid4().hex[:10]}"
        env |= {"WM_REDIS_URL": redis_url, "WM_KEY_PREFIX": prefix}
    with running_server(env) as server:
        yield Target(request.param, server, prefix, redis_url)
        assert server.crashes() == [], server.log()[-4000:]
    if redis_url is not None and prefix is not None:
        anyio.run(delete_prefix_at, redis_url, prefix)


@pytest.fixture(scope="module", autouse=True)
def _print_report() -> Iterator[None]:
    before = os.getloadavg()
    yield
    if RESULTS:
        load = " -> ".join(f"{a[0]:.2f}" for a in (before, os.getloadavg()))
        text = f"1-min load average {load} on {os.cpu_count()} CPUs\n" + report(RESULTS)
        print("\n" + text)
        mode = "full" if FULL else "short"
        write_results(f"load-{mode}", {"window_s": WINDOW_SECONDS, "rows": RESULTS, "report": text})


@pytest.fixture
async def redis_client(target: Target) -> AsyncIterator[Any]:
    if target.redis_url is None:
        yield None
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(target.redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


# --- the test ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_load_mix_is_correct_at_every_k(
    target: Target, transport: str, redis_client: Any
) -> None:
    url = target.server.url
    baseline = (await _health(url))["sessions_open"]
    for k in KS:
        pid = target.server.proc.pid if target.server.proc else None
        cell, wall, sessions = await run_cell(url, transport, k, seed=k, server_pid=pid)
        assert cell.errors == [], cell.errors[:5]
        assert cell.acknowledged == cell.issued > 0
        assert len(set(sessions)) == k  # every client had a session of its own
        RESULTS.append(_summary(target.store, transport, k, cell, wall))
        # every session is torn down (DELETE, SSE close or session_close)

        async def settled() -> bool:
            if (await _health(url))["sessions_open"] != baseline:
                return False
            if redis_client is not None:
                assert target.prefix is not None
                return await _live_keys(redis_client, target.prefix) == []
            return True

        with anyio.fail_after(30):
            while not await settled():  # noqa: ASYNC110 - the state lives in another process
                await anyio.sleep(0.1)
    assert target.server.crashes() == []


# --- the report ----------------------------------------------------------------------


def report(rows: list[dict[str, Any]]) -> str:
    """A markdown table per store × transport × K, plus saturation and the 5 ms K."""
    lines = [
        "| store | transport | K | ops | ops/s | get p50 | get p95 | get p99 "
        "| set p50 | set p95 | set p99 | all p99 | CPU client/server |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['transport']} | {r['k']} | {r['ops']} | {r['ops_per_s']:.0f} "
            f"| {r['get_p50']:.1f} | {r['get_p95']:.1f} | {r['get_p99']:.1f} "
            f"| {r['set_p50']:.1f} | {r['set_p95']:.1f} | {r['set_p99']:.1f} "
            f"| {r['all_p99']:.1f} | {r['client_cpu']:.2f}/{r['server_cpu']:.2f} |"
        )
    lines.append("")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["store"], r["transport"]), []).append(r)
    for (store, transport), group in groups.items():
        best = max(group, key=lambda r: r["ops_per_s"])
        saturated = next(r for r in group if r["ops_per_s"] >= 0.9 * best["ops_per_s"])
        holds = [
            r["k"] for r in group if r["get_p95"] < TARGET_P95_MS and r["set_p95"] < TARGET_P95_MS
        ]
        lines.append(
            f"- {store}/{transport}: peak {best['ops_per_s']:.0f} ops/s at K={best['k']}; "
            f"90 % of peak from K={saturated['k']}; get/set p95 < {TARGET_P95_MS:g} ms at "
            f"K={', '.join(map(str, holds)) if holds else 'none'}"
        )
    return "\n".join(lines)
