"""Section ``mcp``: full MCP tool calls against the server running as a subprocess.

For each transport and store, a server process (``python -m mcp_server``: the
production build, with ``WM_ENABLE_ECHO_TOOL=1``) and an SDK ``Client`` in this process:

* **stdio**: the SDK's stdio client spawns the server and speaks the handshake era
  (``mode="legacy"``); the tools work on the process session;
* **streamable HTTP, handshake**: the server under uvicorn on a free loopback port,
  the SDK's streamable HTTP client with ``mode="legacy"``; the tools work on the
  connection's session (``Mcp-Session-Id``);
* **streamable HTTP, stateless** (2026-07-28, the same server process): the client
  opens a session with ``session_open`` and passes the handle as ``session``.

Stores: in-memory and Redis (a fresh key prefix; every key left under it once the
servers stopped is counted and deleted).

In every group ``echo`` (a tool of the same server build that returns its text: the
protocol floor), ``memory_set`` and ``memory_get`` are the variants of one interleaved
measurement (``benchmarks.stats.interleaved``) on one connection, so the ratio of p95s
compares calls made in the same stretch of time to the same process. Targets: p95 ≤
1.2× echo with the in-memory store, ≤ 1.3× with Redis, and p95 < 5 ms.

Every server process is started first, all at once (their start-up takes seconds:
this keeps ``--quick`` short); nothing is timed until all of them answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from redis.exceptions import RedisError

from benchmarks.context import BenchContext, Options
from benchmarks.core import VALUE
from benchmarks.report import Row, SectionResult, Target
from benchmarks.stats import METHOD, Measured, Op, interleaved
from memory_core import codec
from tests.support.redis_keys import delete_prefix_at
from tests.support.redis_proc import free_port

KEY = "mcp"
TITLE = "mcp: full MCP tool calls, server as a subprocess (µs, sequential, SDK client)"

ROOT = Path(__file__).resolve().parents[1]
SERVER = [sys.executable, "-m", "mcp_server"]
TRANSPORTS = ("stdio", "http handshake", "http stateless")
STORES = ("memory", "redis")
SMALL_KEYS = 10
SEQUENCE_LENGTH = 4096
MEMORY_RATIO_LIMIT = 1.2
REDIS_RATIO_LIMIT = 1.3
P95_LIMIT_US = 5000.0
STARTUP_TIMEOUT = 30.0
ECHO_TEXT = codec.encode(VALUE)  # a string as long as the value's JSON


class BenchError(RuntimeError):
    """A server misbehaved: did not start, or a call returned an error."""


@dataclass(frozen=True, slots=True)
class Group:
    """One measurement: a transport (and protocol era) on one store."""

    transport: str  # one of TRANSPORTS
    store: str  # one of STORES

    @property
    def label(self) -> str:
        return f"{self.transport} · {self.store}"

    @property
    def ratio_limit(self) -> float:
        return MEMORY_RATIO_LIMIT if self.store == "memory" else REDIS_RATIO_LIMIT


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    iterations: int
    warmup: int
    block: int


def plan_for(opts: Options, group: Group) -> Plan:
    # A stdio call costs a third of an HTTP one or less: 3x the calls, similar time.
    factor = 3 if group.transport == "stdio" else 1
    return Plan(opts.mcp_rounds, opts.mcp_iterations * factor, opts.mcp_warmup, opts.mcp_block)


@dataclass(slots=True)
class RunState:
    results: dict[Group, dict[str, Measured]] = field(default_factory=dict)
    failed: dict[Group, str] = field(default_factory=dict)
    protocols: dict[str, str] = field(default_factory=dict)
    timings: list[str] = field(default_factory=list)


# servers -----------------------------------------------------------------------------
def server_env(store: str, redis_url: str | None = None, prefix: str = "") -> dict[str, str]:
    """The server's environment: this one without any ``WM_*`` (a stray
    ``WM_AUTH_TOKENS`` would change what is measured), plus every tool (session_info and
    session_close are outside the default group), the echo tool and the store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WM_")}
    env["WM_TOOLS"] = "all"
    env["WM_ENABLE_ECHO_TOOL"] = "1"
    if store == "redis":
        if not redis_url or not prefix:
            raise ValueError("the redis store needs a URL and a key prefix")
        env["WM_REDIS_URL"] = redis_url
        env["WM_KEY_PREFIX"] = prefix
    return env


def _log_file() -> TextIO:
    """A server's stderr: an anonymous temporary file, closed by its owner."""
    return cast(TextIO, tempfile.TemporaryFile("w+", encoding="utf-8"))


def _tail(log: TextIO, lines: int = 15) -> str:
    """The end of a server's log (only read once that server is of no further use)."""
    with contextlib.suppress(OSError, ValueError):
        log.flush()
        log.seek(0)
        return "".join(log.readlines()[-lines:]).strip()
    return ""


@asynccontextmanager
async def stdio_server(env: dict[str, str], log: TextIO) -> AsyncIterator[Client]:
    """The server spawned by the SDK's stdio client, handshake done; on exit the
    client closes its stdin (the server tears its session down and exits)."""
    params = StdioServerParameters(command=SERVER[0], args=SERVER[1:], env=env, cwd=ROOT)
    try:
        async with Client(stdio_client(params, errlog=log), mode="legacy") as client:
            yield client
    except Exception as exc:
        if (ours := _bench_error(exc)) is not None:
            raise ours from None
        raise BenchError(f"stdio server failed ({exc!r}); its log:\n{_tail(log)}") from exc


class HttpServer:
    """``python -m mcp_server --transport http`` on a free loopback port.

    ``spawn`` only starts the process (several can import in parallel), ``ready``
    waits until ``/healthz`` answers, ``stop`` sends SIGTERM (uvicorn shuts down
    gracefully and the server closes every session it bound), then kills."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.log = _log_file()
        self.base = f"http://127.0.0.1:{free_port()}"
        self.proc: asyncio.subprocess.Process | None = None
        self._ready = False

    async def spawn(self) -> None:
        port = self.base.rsplit(":", 1)[1]
        self.proc = await asyncio.create_subprocess_exec(
            *SERVER, "--transport", "http", "--host", "127.0.0.1", "--port", port,
            cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
        )  # fmt: skip

    async def ready(self) -> str:
        if self.proc is None:
            await self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        async with httpx2.AsyncClient(timeout=1.0) as http:
            while not self._ready:
                if self.proc.returncode is not None:
                    why = f"exited with {self.proc.returncode}"
                    raise BenchError(f"HTTP server {why}; its log:\n{_tail(self.log)}")
                if time.monotonic() > deadline:
                    why = f"not healthy after {STARTUP_TIMEOUT:.0f} s"
                    raise BenchError(f"HTTP server {why}; its log:\n{_tail(self.log)}")
                with contextlib.suppress(httpx2.HTTPError):
                    self._ready = (await http.get(self.base + "/healthz")).status_code == 200
                if not self._ready:
                    await asyncio.sleep(0.05)
        return self.base

    async def stop(self) -> None:
        proc = self.proc
        try:
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout=10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        finally:
            self.log.close()


@asynccontextmanager
async def http_client(base: str, mode: str) -> AsyncIterator[Client]:
    """The SDK's streamable HTTP client; on exit it sends DELETE (session teardown)."""
    try:
        async with create_mcp_http_client() as http:
            transport = streamable_http_client(base + "/mcp", http_client=http)
            async with Client(transport, mode=mode) as client:
                yield client
    except Exception as exc:
        if (ours := _bench_error(exc)) is not None:
            raise ours from None
        raise BenchError(f"streamable HTTP client at {base} failed ({exc!r})") from exc


def _bench_error(exc: BaseException) -> BenchError | None:
    """Our own error, also from inside the exception groups of the SDK's task groups."""
    if isinstance(exc, BenchError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _bench_error(inner)) is not None:
                return found
    return None


async def leftover_keys(url: str, prefix: str) -> str:
    """Delete every key under ``prefix``; says how many there were."""
    try:
        deleted = await delete_prefix_at(url, prefix, socket_timeout=5)
    except (RedisError, OSError) as exc:
        return f"unknown, Redis failed ({type(exc).__name__})"
    return f"{deleted} (then deleted)" if deleted else "0"


# calls -------------------------------------------------------------------------------
async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    if result.is_error or result.structured_content is None:
        text = getattr(result.content[0], "text", "?") if result.content else "?"
        raise BenchError(f"{tool} failed: {text}")
    return dict(result.structured_content)


def _key(i: int) -> str:
    return f"k{i:02d}"


def _caller(client: Client, tool: str, arguments: list[dict[str, Any]]) -> Op:
    """A variant: the i-th call sends the i-th arguments; an error result aborts the run."""
    n = len(arguments)

    async def op(i: int) -> None:
        result = await client.call_tool(tool, arguments[i % n])
        if result.is_error:
            raise BenchError(f"{tool} returned an error: {result.content}")

    return op


def variants(client: Client, session: str | None, seed: int = 7) -> dict[str, Op]:
    extra = {} if session is None else {"session": session}
    rng = random.Random(seed)
    keys = [_key(rng.randrange(SMALL_KEYS)) for _ in range(2 * SEQUENCE_LENGTH)]
    return {
        "echo": _caller(client, "echo", [{"text": ECHO_TEXT}]),
        "memory_set": _caller(
            client,
            "memory_set",
            [{"key": k, "value": VALUE, **extra} for k in keys[:SEQUENCE_LENGTH]],
        ),
        "memory_get": _caller(
            client, "memory_get", [{"key": k, **extra} for k in keys[SEQUENCE_LENGTH:]]
        ),
    }


async def measure(
    client: Client, session: str | None, group: Group, opts: Options
) -> dict[str, Measured]:
    extra = {} if session is None else {"session": session}
    for i in range(SMALL_KEYS):  # so that every memory_get finds its key
        await call(client, "memory_set", {"key": _key(i), "value": VALUE, **extra})
    got = await call(client, "memory_get", {"key": _key(0), **extra})
    if not got.get("found") or got.get("value") != VALUE:
        raise BenchError(f"{group.label}: memory_get did not return the value just set")
    await check_mode(client, extra, group)
    plan = plan_for(opts, group)
    res = await interleaved(
        variants(client, session),
        rounds=plan.rounds,
        iterations=plan.iterations,
        warmup=plan.warmup,
        block=plan.block,
    )
    await check_mode(client, extra, group)
    return res


async def check_mode(client: Client, extra: dict[str, Any], group: Group) -> None:
    """The server's backend mode must be the store measured: a server whose Redis is
    unreachable serves from memory (fallback) and would pass for a fast Redis."""
    mode = (await call(client, "session_info", extra))["mode"]
    if mode != group.store:
        raise BenchError(f"{group.label}: the server's backend mode is {mode!r}")


# groups ------------------------------------------------------------------------------
class StdioRun:
    """One stdio group in a task of its own (the SDK client must be entered and left in
    one task): it spawns its server and does the handshake at once, then waits for
    ``go`` before measuring, so every server can start while nothing is timed."""

    def __init__(self, group: Group, env: dict[str, str]) -> None:
        self.group, self.env = group, env
        self.ready = asyncio.Event()  # connected, or failed
        self.go = asyncio.Event()

    async def main(self, opts: Options, state: RunState) -> None:
        try:
            with _log_file() as log:
                t0 = time.perf_counter()
                async with stdio_server(self.env, log) as client:
                    state.protocols[self.group.transport] = str(client.protocol_version)
                    started = time.perf_counter() - t0
                    self.ready.set()
                    await self.go.wait()
                    t1 = time.perf_counter()
                    state.results[self.group] = await measure(client, None, self.group, opts)
                    t2 = time.perf_counter()
            stopped = time.perf_counter() - t2
            state.timings.append(
                f"{self.group.label} {t2 - t1:.1f} s (start {started:.1f} s, stop {stopped:.1f} s)"
            )
        finally:
            self.ready.set()


async def run_http(group: Group, server: HttpServer, opts: Options, state: RunState) -> None:
    """One HTTP group on its store's server: the handshake client uses its connection's
    session; the stateless one opens a session handle and closes it at the end."""
    base = await server.ready()
    stateless = group.transport == "http stateless"
    t0 = time.perf_counter()
    async with http_client(base, "auto" if stateless else "legacy") as client:
        state.protocols[group.transport] = str(client.protocol_version)
        if not stateless:
            state.results[group] = await measure(client, None, group, opts)
        else:
            handle = str((await call(client, "session_open", {}))["session"])
            try:
                state.results[group] = await measure(client, handle, group, opts)
            finally:
                await call(client, "session_close", {"session": handle})
    state.timings.append(f"{group.label} {time.perf_counter() - t0:.1f} s")


async def measure_all(
    opts: Options, stores: list[str], redis_url: str | None, prefix: str, state: RunState
) -> None:
    """stdio for every store, then HTTP (handshake, stateless) for every store. Every
    server is started first, all at once; timing starts once all of them answer. A
    failure in a Redis group is recorded in ``state.failed``; with the in-memory store
    it is a crash of the section."""
    envs = {store: server_env(store, redis_url, prefix) for store in stores}
    async with contextlib.AsyncExitStack() as stack:
        servers: dict[str, HttpServer] = {}
        for store in stores:
            servers[store] = server = HttpServer(envs[store])
            stack.push_async_callback(server.stop)
            await server.spawn()

        stdio = [StdioRun(Group("stdio", store), envs[store]) for store in stores]
        tasks = [asyncio.create_task(run.main(opts, state)) for run in stdio]
        try:
            for run in stdio:
                await run.ready.wait()
            for server in servers.values():
                with contextlib.suppress(BenchError):  # reported by its own groups
                    await server.ready()
            for run, task in zip(stdio, tasks, strict=True):
                run.go.set()
                await guarded(state, run.group, task)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for store in stores:
            for transport in TRANSPORTS[1:]:
                group = Group(transport, store)
                await guarded(state, group, run_http(group, servers[store], opts, state))


async def guarded(state: RunState, group: Group, work: Awaitable[None]) -> None:
    """Await ``work``; a failure with Redis is recorded, one with memory raised."""
    if group.store == "memory":
        await work
        return
    try:
        await work
    except (BenchError, RedisError, OSError) as exc:
        state.failed[group] = f"{type(exc).__name__}: {exc}"


# report ------------------------------------------------------------------------------
def _order(group: Group) -> tuple[int, int]:
    return TRANSPORTS.index(group.transport), STORES.index(group.store)


def report(group: Group, res: dict[str, Measured], out: SectionResult) -> None:
    echo = res["echo"].summary
    out.rows.append(Row(group.label, "echo (floor)", echo))
    for tool in ("memory_set", "memory_get"):
        mine = res[tool].summary
        out.rows.append(Row(group.label, tool, mine, mine.p95 / echo.p95, "echo"))
    add_targets(group, res, out)


def p50_overhead(group: Group, res: dict[str, Measured]) -> str:
    echo = res["echo"].summary.p50
    parts = []
    for tool in ("memory_set", "memory_get"):
        p50 = res[tool].summary.p50
        parts.append(f"{tool.removeprefix('memory_')} {p50 - echo:+.0f} µs ({p50 / echo:.2f}×)")
    return f"{group.label} {', '.join(parts)}"


def add_targets(
    group: Group, res: dict[str, Measured] | None, out: SectionResult, why: str = ""
) -> None:
    for tool in ("memory_set", "memory_get"):
        ratio = None if res is None else res[tool].summary.p95 / res["echo"].summary.p95
        name = f"mcp {group.label}: {tool} p95 / echo p95"
        out.targets.append(Target(name, ratio, group.ratio_limit, "×", why))
    for tool in ("memory_set", "memory_get"):
        p95 = None if res is None else res[tool].summary.p95
        out.targets.append(Target(f"mcp {group.label}: {tool} p95", p95, P95_LIMIT_US, "µs", why))


async def run(ctx: BenchContext) -> SectionResult:
    out = SectionResult(KEY, TITLE)
    opts = ctx.options
    state = RunState()
    url, origin = await ctx.redis()
    stores = ["memory"] if url is None else ["memory", "redis"]
    prefix = f"wmbenchmcp{uuid.uuid4().hex[:8]}"
    try:
        await measure_all(opts, stores, url, prefix, state)
    finally:
        left = None if url is None else await leftover_keys(url, prefix)

    groups = sorted((Group(t, s) for s in STORES for t in TRANSPORTS), key=_order)
    for group in groups:
        if group in state.results:
            report(group, state.results[group], out)
        elif group.store == "redis" and url is None:
            add_targets(group, None, out, "no Redis")
        else:
            add_targets(group, None, out, "Redis failed")
            out.skipped.append(f"{group.label}: {state.failed.get(group, 'not measured')}")
    if url is None:
        out.skipped.append(f"Redis store: {origin}")
    else:
        out.notes.append(
            f"Redis at {url} ({origin}), key prefix {prefix}; keys left under it once the "
            f"servers had stopped: {left}"
        )
    over = [
        r.group for r in out.rows if r.operation.startswith("echo") and r.summary.p95 > P95_LIMIT_US
    ]
    if over:
        out.notes.append(f"the echo floor alone has p95 above 5 ms in: {', '.join(over)}")
    if state.results:
        out.notes.append(
            "p50 cost over echo (the median is far less noisy than p95): "
            + "; ".join(
                p50_overhead(group, state.results[group])
                for group in sorted(state.results, key=_order)
            )
        )
    method = METHOD.format(rounds=opts.mcp_rounds, iterations="N", block="B")
    plans = {t: plan_for(opts, Group(t, "memory")) for t in TRANSPORTS}
    sizes = "; ".join(f"{t}: N = {p.iterations}" for t, p in plans.items())
    out.notes += [
        f"method: {method}; {sizes}; B = {opts.mcp_block}, warm-up {opts.mcp_warmup} calls "
        "per variant",
        "server: `python -m mcp_server` (the production build, default INFO logging to a "
        "file) with WM_ENABLE_ECHO_TOOL=1; one process per store for stdio (spawned by the "
        "SDK's stdio client) and one per store for HTTP (uvicorn, free loopback port, /mcp); "
        "client: the SDK's `Client` (mcp 2.3.0) in this process, one call at a time",
        "protocols: " + ", ".join(f"{k} {v}" for k, v in state.protocols.items()),
        f"calls: memory_set of a {len(ECHO_TEXT)}-byte JSON object under one of {SMALL_KEYS} "
        f"keys (no TTL); memory_get of one of those keys (always found); echo of a "
        f"{len(ECHO_TEXT)}-character string; sessions: stdio the process's, http handshake "
        "the connection's, http stateless an explicit `session` handle from session_open",
        f"ratio = p95 / echo p95 of the same group; targets ≤ {MEMORY_RATIO_LIMIT}× with "
        f"the in-memory store, ≤ {REDIS_RATIO_LIMIT}× with Redis, p95 < "
        f"{P95_LIMIT_US / 1000:.0f} ms",
        f"timings: {', '.join(state.timings)}",
    ]
    return out
