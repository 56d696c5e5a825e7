"""Section ``http``: throughput over streamable HTTP under a load generator that is not the
bottleneck (wrk), in calls per server CPU-second.

wrk (Debian's ``wrk``) drives ``POST /mcp`` in closed loop with 1, 8, 32 and 128
connections: ``echo``, ``memory_get`` (a present key) and ``memory_set`` on the in-memory
and the Redis store, in both protocol eras (2026-07-28 stateless requests carrying an
explicit session handle; 2025-11-25 handshake sessions, one per connection, opened
beforehand). The server is ``python -m mcp_server`` with default settings (plus the echo
tool), pinned to one CPU and wrk to the other when ``taskset`` exists. The floor is a bare
ASGI app answering a fixed JSON-RPC result on the same uvicorn stack.

Per run: wrk's calls/s and latency percentiles, the server's CPU time from
``/proc/<pid>/stat`` (so throughput per server CPU-second barely moves with machine
noise), non-2xx answers (must be 0), and the server's garbage-collection pauses from its
``/metrics`` (``wm_gc_pause_seconds``). Without wrk the section is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from benchmarks.context import BenchContext
from benchmarks.mcp import leftover_keys, server_env
from benchmarks.report import SectionResult, Target
from tests.support.redis_proc import free_port

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = (1, 8, 32, 128)
QUICK_CONNECTIONS = (8,)
CALLS = ("echo", "memory_get", "memory_set")
VALUE = {"plan": ["read the issue", "write the test", "make it pass"], "step": 2, "ok": True}
STATELESS_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "wrk", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
HANDSHAKE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "wrk", "version": "0"},
}
ACCEPT = "application/json, text/event-stream"

WRK_SCRIPT = r"""
-- Each request gets its own JSON-RPC id (a cycle of 8192, far more than can be in
-- flight): requests of one handshake session may be in flight at once on several
-- connections, and the SDK refuses a duplicate id. Requests are formatted once, in init.
local requests = {}
local count = 0
init = function(args)
  local specs = {}
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    specs[#specs + 1] = load("return " .. line)()
  end
  f:close()
  for id = 1, 8192 do
    local spec = specs[(id % #specs) + 1]
    local headers = {}
    for name, value in pairs(spec.headers) do headers[name] = value end
    requests[id] = wrk.format("POST", spec.path, headers, spec.before .. id .. spec.after)
  end
  count = 8192
end
local i = 0
request = function()
  i = (i % count) + 1
  return requests[i]
end
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"status":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50":%d,"p95":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""

BARE_APP = """
import sys, anyio, uvicorn
BODY = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}'
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), http="httptools",
                        log_level="warning", lifespan="off")
anyio.run(uvicorn.Server(config).serve, backend_options={"use_uvloop": True})
"""


@dataclass
class Run:
    store: str
    era: str
    call: str
    connections: int
    calls_per_s: float
    cpu_us_per_call: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int

    @property
    def per_cpu_second(self) -> float:
        return 1e6 / self.cpu_us_per_call if self.cpu_us_per_call else 0.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


class Server:
    """A server (or the bare app) on a free port, pinned to CPU 1."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*_pin(1), *command],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def wait(self, path: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read()[-2000:]!r}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=0.5):
                    return
            except OSError as exc:
                if getattr(exc, "code", None) is not None:
                    return  # any HTTP answer: it serves
                time.sleep(0.05)
        raise RuntimeError("server did not start in 30 s")

    def cpu(self) -> float:
        return _cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def _server_env(store: str, redis_url: str | None, prefix: str) -> dict[str, str]:
    """The ``mcp`` section's server environment (every tool, the echo tool, the store) on
    HTTP, quiet, with room for a session per connection. The caller's other ``WM_*``
    settings pass through (``WM_HTTP_STACK=pure`` to compare stacks), its store never."""
    ours = {
        **server_env(store, redis_url, prefix),
        "WM_TRANSPORT": "http",
        "WM_LOG_LEVEL": "WARNING",
        "WM_MAX_SESSIONS_PER_PRINCIPAL": "1000",
    }
    store_settings = ("WM_REDIS_URL", "WM_KEY_PREFIX")
    caller = {
        k: v for k, v in os.environ.items() if k.startswith("WM_") and k not in store_settings
    }
    return {**caller, **ours}


def _arguments(call: str, session: str | None) -> tuple[str, dict[str, Any]]:
    args: dict[str, Any]
    if call == "echo":
        args = {"text": "x" * 113}
    elif call == "memory_get":
        args = {"key": "k0"}
    elif call == "memory_set":
        args = {"key": "k1", "value": VALUE}
    else:
        args = {}
    if session is not None:
        args["session"] = session
    return call, args


def _call_body(call: str, session: str | None, meta: bool) -> dict[str, Any]:
    name, args = _arguments(call, session)
    params: dict[str, Any] = {"name": name, "arguments": args}
    if meta:
        params["_meta"] = STATELESS_META
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def _answer(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    text = response.text
    if text.startswith("{"):
        return dict(json.loads(text))
    for line in text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            return dict(json.loads(line[5:]))
    raise AssertionError(f"no answer in {text[:200]!r}")


def _stateless_headers(call: str) -> dict[str, str]:
    return {
        "Accept": ACCEPT,
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": call,
    }


def _stateless_requests(url: str, call: str) -> list[dict[str, Any]]:
    """One request for every connection: a session handle with k0 set."""
    with httpx2.Client(timeout=10) as http:
        opened = _answer(
            http.post(
                url,
                json=_call_body("session_open", None, True),
                headers=_stateless_headers("session_open"),
            )
        )
        handle = opened["result"]["structuredContent"]["session"]
        body = _call_body("memory_set", handle, True)
        body["params"]["arguments"]["key"] = "k0"
        _answer(http.post(url, json=body, headers=_stateless_headers("memory_set")))
    session = None if call == "echo" else handle
    text = json.dumps(_call_body(call, session, True))
    return [{"headers": _stateless_headers(call), "body": text, "handle": handle}]


def _close_sessions(url: str, specs: list[dict[str, Any]]) -> None:
    """End the sessions a run opened, as clients do: the next run starts from the same
    heap (sessions kept open would grow it, and every full collection with it)."""
    with httpx2.Client(timeout=10) as http:
        for spec in specs:
            if "handle" in spec:
                body = _call_body("session_close", spec["handle"], True)
                _answer(http.post(url, json=body, headers=_stateless_headers("session_close")))
            else:
                closed = http.delete(url, headers=spec["headers"])
                assert closed.status_code in (200, 204), closed.text


def _handshake_requests(url: str, call: str, sessions: int) -> list[dict[str, Any]]:
    """One handshake session per connection, each with k0 set."""
    specs = []
    with httpx2.Client(timeout=10) as http:
        for _ in range(sessions):
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HANDSHAKE}
            response = http.post(url, json=init, headers={"Accept": ACCEPT})
            _answer(response)
            headers = {
                "Accept": ACCEPT,
                "Content-Type": "application/json",
                "Mcp-Session-Id": response.headers["mcp-session-id"],
                "MCP-Protocol-Version": "2025-11-25",
            }
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert http.post(url, json=note, headers=headers).status_code == 202
            body = _call_body("memory_set", None, False)
            body["params"]["arguments"]["key"] = "k0"
            _answer(http.post(url, json=body, headers=headers))
            specs.append({"headers": headers, "body": json.dumps(_call_body(call, None, False))})
    return specs


def _lua_table(spec: dict[str, Any]) -> str:
    headers = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in spec["headers"].items())
    before, after = spec["body"].split('"id": 1,', 1)
    before += '"id": '
    after = "," + after
    return (
        f'{{path = "/mcp", headers = {{{headers}}}, '
        f"before = {json.dumps(before)}, after = {json.dumps(after)}}}"
    )


def _wrk(
    url: str, specs: list[dict[str, Any]], connections: int, seconds: float, work: Path
) -> dict[str, Any]:
    script = work / "load.lua"
    script.write_text(WRK_SCRIPT)
    lines = work / "requests.txt"
    lines.write_text("\n".join(_lua_table(s) for s in specs) + "\n")
    command = [
        *_pin(0),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url + "/mcp",
        "--",
        str(lines),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return dict(json.loads(line[8:]))
    raise RuntimeError(f"wrk gave no result: {done.stdout[-500:]} {done.stderr[-500:]}")


def _measure(
    server: Server, specs: list[dict[str, Any]], connections: int, seconds: float, work: Path
) -> dict[str, Any]:
    if seconds > 1:
        _wrk(server.url, specs, connections, 1, work)  # warm-up (not in --quick)
    before = server.cpu()
    result = _wrk(server.url, specs, connections, seconds, work)
    result["cpu_s"] = server.cpu() - before
    return result


def _run(store: str, era: str, call: str, connections: int, result: dict[str, Any]) -> Run:
    calls = result["requests"]
    errors = (
        result["status"] + result["connect"] + result["read"] + result["write"] + result["timeout"]
    )
    return Run(
        store=store,
        era=era,
        call=call,
        connections=connections,
        calls_per_s=calls / (result["duration_us"] / 1e6),
        cpu_us_per_call=result["cpu_s"] * 1e6 / calls if calls else 0.0,
        p50_ms=result["p50"] / 1000,
        p95_ms=result["p95"] / 1000,
        p99_ms=result["p99"] / 1000,
        errors=errors,
    )


def _gc_pauses(url: str) -> dict[str, tuple[float, float]]:
    """Generation -> (collections, total seconds) from the server's /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        for kind in ("count", "sum"):
            prefix = f'wm_gc_pause_seconds_{kind}{{generation="'
            if line.startswith(prefix):
                generation = line[len(prefix) :].split('"', 1)[0]
                found.setdefault(generation, [0.0, 0.0])[kind == "sum"] = float(
                    line.rsplit(" ", 1)[1]
                )
    return {g: (v[0], v[1]) for g, v in found.items()}


def _serve_and_measure(
    store: str,
    env: dict[str, str],
    connections: tuple[int, ...],
    seconds: float,
    work: Path,
    calls: tuple[str, ...] = CALLS,
) -> tuple[list[Run], dict[str, tuple[float, float]]]:
    port = free_port()
    server = Server([sys.executable, "-m", "mcp_server"], {**env, "WM_PORT": str(port)}, port)
    runs = []
    try:
        server.wait("/healthz")
        for era in ("stateless", "handshake"):
            for call in calls:
                for n in connections:
                    url = server.url + "/mcp"
                    specs = (
                        _stateless_requests(url, call)
                        if era == "stateless"
                        else _handshake_requests(url, call, n)
                    )
                    measured = _measure(server, specs, n, seconds, work)
                    runs.append(_run(store, era, call, n, measured))
                    _close_sessions(url, specs)
        pauses = _gc_pauses(server.url)
    finally:
        server.stop()
    return runs, pauses


def _bare(connections: tuple[int, ...], seconds: float, work: Path) -> list[Run]:
    port = free_port()
    script = work / "bare.py"
    script.write_text(BARE_APP)
    server = Server(
        [sys.executable, str(script), str(port)], {"PATH": os.environ.get("PATH", "")}, port
    )
    runs = []
    try:
        server.wait("/")
        spec = {
            "headers": _stateless_headers("echo"),
            "body": json.dumps(_call_body("echo", None, True)),
        }
        for n in connections:
            runs.append(
                _run(
                    "—", "bare ASGI", "fixed answer", n, _measure(server, [spec], n, seconds, work)
                )
            )
    finally:
        server.stop()
    return runs


def _table(runs: list[Run]) -> list[str]:
    lines = [
        "| store | era | call | conns | calls/s | server CPU µs/call | calls per CPU-s "
        "| p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.store} | {r.era} | {r.call} | {r.connections} | {r.calls_per_s:.0f} "
            f"| {r.cpu_us_per_call:.0f} | {r.per_cpu_second:.0f} | {r.p50_ms:.1f} "
            f"| {r.p95_ms:.1f} | {r.p99_ms:.1f} | {r.errors} |"
        )
    return lines


def _median_cpu(runs: list[Run], store: str, era: str, call: str) -> float | None:
    values = [
        r.cpu_us_per_call
        for r in runs
        if (r.store, r.era, r.call) == (store, era, call) and r.connections >= 8
    ]
    return statistics.median(values) if values else None


def _targets(runs: list[Run]) -> list[Target]:
    targets = []
    for era, floor in (("stateless", 1400), ("handshake", 1200)):
        measured = _median_cpu(runs, "memory", era, "memory_get")
        targets.append(
            Target(
                f"http {era} memory_get, in-memory: server CPU per call (≥ {floor} calls per "
                "CPU-s, median over 8-128 connections)",
                measured,
                round(1e6 / floor, 1),
                "µs",
            )
        )
    memory = _median_cpu(runs, "memory", "stateless", "memory_get")
    redis = _median_cpu(runs, "redis", "stateless", "memory_get")
    targets.append(
        Target(
            "http stateless memory_get: server CPU per call, Redis / in-memory",
            redis / memory if memory and redis else None,
            1.15,
            "×",
            "" if redis else "no Redis",
        )
    )
    for era in ("stateless", "handshake"):
        at8 = [
            r
            for r in runs
            if (r.store, r.era, r.call, r.connections) == ("memory", era, "memory_get", 8)
        ]
        targets.append(
            Target(
                f"http {era} memory_get, in-memory, 8 connections: p99 / p50",
                at8[0].p99_ms / at8[0].p50_ms if at8 and at8[0].p50_ms else None,
                2.5,
                "×",
            )
        )
    return targets


async def run(ctx: BenchContext) -> SectionResult:
    result = SectionResult(
        key="http", title="http: throughput under wrk (closed loop, streamable HTTP)"
    )
    if shutil.which("wrk") is None:
        result.skipped.append("http: wrk is not installed (Debian: apt-get install wrk)")
        return result
    quick = ctx.options.quick
    connections = QUICK_CONNECTIONS if quick else CONNECTIONS
    seconds = 1.0 if quick else 3.0
    stores = ["memory"]
    url, origin = await ctx.redis() if ctx.options.use_redis else (None, "disabled")
    if url is not None:
        stores.append("redis")
    else:
        result.skipped.append(f"http · redis: no Redis ({origin})")
    prefix = f"wmbenchhttp{uuid.uuid4().hex[:8]}"
    runs: list[Run] = []
    pauses: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs += await asyncio.to_thread(_bare, connections, seconds, work)
        for store in stores:
            env = _server_env(store, url, prefix)
            store_runs, pauses[store] = await asyncio.to_thread(
                _serve_and_measure, store, env, connections, seconds, work
            )
            runs += store_runs
        # the pure-Python stack beside it (WM_HTTP_STACK=pure), for comparison
        pure = {**_server_env("memory", None, prefix), "WM_HTTP_STACK": "pure"}
        pure_runs, _ = await asyncio.to_thread(
            _serve_and_measure, "memory", pure, (8,), seconds, work, ("memory_get",)
        )
        for r in pure_runs:
            r.store = "memory, pure stack"
        runs += pure_runs
    if url is not None:
        left = await leftover_keys(url, prefix)
        result.notes.append(
            f"Redis at {url} ({origin}); keys under the bench prefix after the servers "
            f"stopped (close markers, kept for one lease, expire): {left}"
        )
    result.tables.append(_table(runs))
    result.targets += _targets(runs)
    bad = [r for r in runs if r.errors]
    if bad:
        result.notes.append(
            "NON-2XX OR SOCKET ERRORS: "
            + ", ".join(f"{r.store}/{r.era}/{r.call}@{r.connections}: {r.errors}" for r in bad)
        )
    for store, by_generation in pauses.items():
        parts = [
            f"gen {g}: {int(n)} collections, mean {1000 * s / n:.2f} ms" if n else f"gen {g}: none"
            for g, (n, s) in sorted(by_generation.items())
        ]
        result.notes.append(
            f"GC pauses of the {store} server over its whole run: " + "; ".join(parts)
        )
    pinned = (
        "server on CPU 1, wrk on CPU 0 (taskset)"
        if _pin(0)
        else "not pinned (no taskset or one CPU)"
    )
    result.notes.append(
        f"method: wrk 1 thread, closed loop, {seconds:.0f} s per run (after a 1 s warm-up "
        "unless --quick), "
        f"{pinned}; server CPU = utime + stime of the server process over the run; "
        "stateless requests carry an explicit session handle (echo none), handshake runs "
        "use one session per connection, opened before the run; every session is closed "
        "after its run; errors = non-2xx + socket "
        "errors (must be 0); the bare ASGI app answers a fixed JSON-RPC result on "
        "uvicorn + httptools + uvloop"
    )
    return result
