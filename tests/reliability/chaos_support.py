"""Fault injection and process probes for the chaos and soak suites.

* (``tcp_proxy.TcpProxy`` -- the steerable loopback TCP proxy -- has a module of its own.)
* ``ServerProcess`` -- ``mcp-working-memory --transport http`` as a subprocess on a
  free loopback port, ready when ``/healthz`` answers; ``kill()`` is kill -9.
* ``rss_bytes`` / ``fd_count`` -- from ``/proc/<pid>``.
* ``ttl_sample`` / ``TtlWatch`` -- every key under a prefix with its ``PTTL`` (a key
  without a TTL answers -1), sampled once or in the background.
* ``poll`` -- await a condition with a deadline (never a bare sleep).
* ``redis_view`` -- a fallback-less ``SessionStore`` on the same Redis and prefix: what
  Redis itself holds, with no mirror in between.

All sockets are on 127.0.0.1; every loop is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from redis.exceptions import RedisError

from memory_core import SessionStore, StoreConfig, backend_from_url
from tests.support.child_env import ALL_TOOLS
from tests.support.redis_keys import prefixed_keys
from tests.support.redis_proc import free_port
from tests.support.results import resource_text

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
RESULTS = Path(__file__).resolve().parent / "results"
STARTUP_SECONDS = 60.0  # importing the SDK takes ~2 s of CPU; the machine is shared


# --- polling ------------------------------------------------------------------------


async def poll(
    check: Callable[[], Awaitable[bool]],
    within: float,
    what: str | Callable[[], str],
    interval: float = 0.02,
) -> float:
    """Await ``check()`` until true; return the seconds it took.

    Raises:
        AssertionError: still false after ``within`` seconds (``what``, or what it
            returns when called then, says what was awaited).
    """
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > within:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {within:.1f} s waiting for {said}")
        await asyncio.sleep(interval)


# --- server processes -------------------------------------------------------------------


def server_env(**settings: Any) -> dict[str, str]:
    """A clean environment for a server subprocess: PATH plus the given ``WM_*``
    settings (``lease_seconds=2`` -> ``WM_LEASE_SECONDS=2``), nothing inherited."""
    env = {"PATH": os.environ.get("PATH", ""), "WM_LOG_LEVEL": "WARNING", **ALL_TOOLS}
    for name, value in settings.items():
        env["WM_" + name.upper()] = str(value)
    return env


class ServerProcess:
    """``python -m mcp_server --transport http`` on a free loopback port."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in cleanup()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def launch(self) -> ServerProcess:
        """Spawn the process (returns at once; ``ready``/``wait_ready`` wait for it)."""
        self.port = free_port()
        env = server_env(transport="http", host=HOST, port=self.port, **self.settings)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_server"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        return self

    def _failed(self) -> RuntimeError:
        self.kill()
        return RuntimeError(f"HTTP server did not start: {self.log()[-2000:]}")

    def start(self, timeout: float = STARTUP_SECONDS) -> ServerProcess:
        """Launch and wait until ``/healthz`` answers (blocking)."""
        self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.05)
        raise self._failed()

    async def ready(self, within: float = STARTUP_SECONDS) -> ServerProcess:
        """Wait (without blocking the event loop) until ``/healthz`` answers."""
        async with httpx2.AsyncClient() as http:

            async def up() -> bool:
                if not self.alive():
                    raise self._failed()
                with contextlib.suppress(httpx2.HTTPError):
                    return (await http.get(self.url + "/healthz", timeout=1.0)).status_code == 200
                return False

            try:
                await poll(up, within, "the HTTP server to start", interval=0.05)
            except AssertionError:
                raise self._failed() from None
        return self

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no teardown at all."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def cleanup(self) -> None:
        self.kill()
        self._log.close()


@contextmanager
def running_server(**settings: Any) -> Iterator[ServerProcess]:
    server = ServerProcess(**settings).start()
    try:
        yield server
    finally:
        server.stop()
        server.cleanup()


def stdio_server(**settings: Any) -> StdioServerParameters:
    """Spawn parameters for the stdio server with the given ``WM_*`` settings."""
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server"], env=server_env(**settings), cwd=ROOT
    )


@asynccontextmanager
async def stdio_connection(errlog: Any = None, **settings: Any) -> AsyncIterator[Client]:
    """An SDK client (handshake era) on a freshly spawned stdio server."""
    with contextlib.ExitStack() as files:
        sink = errlog if errlog is not None else files.enter_context(tempfile.TemporaryFile("w+"))
        transport = stdio_client(stdio_server(**settings), errlog=sink)
        async with Client(transport, mode="legacy") as client:
            yield client


class Hosts:
    """Keeps SDK clients open, each in a task of its own.

    An SDK client is a task group: when its transport breaks (the server was killed)
    it cancels the task that entered it. Entered here, that is a host task, never the
    test: the test keeps using the client object and sees failed calls, not a
    cancellation. ``close()`` ends every client (bounded) and ignores what a client
    says about its dead server.
    """

    OPEN_SECONDS = 90.0  # a stdio spawn imports the SDK: seconds on a busy machine
    CLOSE_SECONDS = 15.0

    def __init__(self) -> None:
        self._hosts: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def open(self, connection: contextlib.AbstractAsyncContextManager[Client]) -> Client:
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        release = asyncio.Event()

        async def host() -> None:
            try:
                async with connection as client:
                    ready.set_result(client)
                    await release.wait()
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(RuntimeError(f"connecting failed: {exc!r}"))
                if not isinstance(exc, Exception):
                    raise

        task = asyncio.create_task(host(), name="mcp-client-host")
        self._hosts.append((release, task))
        return await asyncio.wait_for(asyncio.shield(ready), self.OPEN_SECONDS)

    async def close(self) -> None:
        hosts, self._hosts = self._hosts, []
        for release, _ in hosts:
            release.set()
        tasks = [task for _, task in hosts]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.CLOSE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


# --- client connections ---------------------------------------------------------------------

_TLS = ssl.create_default_context()  # built once: httpx would load the CA store per client


def http_client(
    headers: dict[str, str] | None = None,
    timeout: httpx2.Timeout | None = None,
    auth: httpx2.Auth | None = None,
) -> httpx2.AsyncClient:
    """``create_mcp_http_client`` with a shared TLS context: a new httpx client per MCP
    connection costs ~1 ms instead of ~30 ms of CPU, which matters over thousands."""
    return httpx2.AsyncClient(
        headers=headers,
        timeout=timeout or httpx2.Timeout(30.0, read=300.0),
        auth=auth,
        verify=_TLS,
    )


@asynccontextmanager
async def streamable_connection(base: str, mode: str = "legacy") -> AsyncIterator[Client]:
    """An SDK client over streamable HTTP (``legacy``: handshake session with its own
    ``Mcp-Session-Id``; ``auto``: the stateless 2026-07-28 era), on its own TCP
    connection(s)."""
    async with http_client() as http:
        transport = streamable_http_client(base + "/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


def sse_connection(base: str) -> Client:
    """An SDK client over SSE (``GET /sse`` + ``POST /messages/``)."""
    return Client(sse_client(base + "/sse", httpx_client_factory=http_client), mode="legacy")


@contextmanager
def shared_output_validators() -> Iterator[None]:
    """Let every SDK client share compiled output-schema validators.

    The SDK's client compiles each tool's output schema once per connection (~10 ms per
    tool here): over thousands of short connections that is the test, not the server,
    burning the CPU. Validation itself still runs on every result.
    """
    original = ClientSession._output_schema_validator
    cache: dict[tuple[str, str], Any] = {}

    def cached(self: ClientSession, name: str, output_schema: dict[str, Any]) -> Any:
        key = (name, json.dumps(output_schema, sort_keys=True))
        validator = cache.get(key)
        if validator is None:
            validator = cache[key] = original(self, name, output_schema)
        return validator

    ClientSession._output_schema_validator = cached  # type: ignore[method-assign]
    try:
        yield
    finally:
        ClientSession._output_schema_validator = original  # type: ignore[method-assign]


# --- /proc probes -----------------------------------------------------------------------


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children_of(pid: int) -> list[int]:
    """Live child processes of ``pid`` (zombies included)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        return []
    return [int(p) for p in path.read_text().split()]


# --- what Redis holds ---------------------------------------------------------------------


async def ttl_sample(raw: Any, prefix: str) -> dict[str, int]:
    """Every key under ``prefix`` with its PTTL in ms (-1: no TTL; -2: just expired)."""
    keys = await prefixed_keys(raw, prefix)
    if not keys:
        return {}
    async with raw.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.pttl(key)
        ttls = await pipe.execute()
    return {k: int(t) for k, t in zip(keys, ttls, strict=True) if int(t) != -2}


def _constant(limit: int) -> Callable[[str], int]:
    return lambda _key: limit


class TtlWatch:
    """Samples ``PTTL`` of every key under a prefix in the background and records any
    key without a TTL (``PTTL == -1``) or with a TTL longer than ``max_ms`` (a number,
    or a function of the key)."""

    def __init__(
        self, raw: Any, prefix: str, max_ms: int | Callable[[str], int], interval: float = 0.1
    ) -> None:
        self.raw, self.prefix, self.interval = raw, prefix, interval
        self.max_ms: Callable[[str], int] = max_ms if callable(max_ms) else _constant(max_ms)
        self.samples = 0
        self.keys_seen = 0
        self.max_keys = 0
        self.immortal: list[str] = []
        self.too_long: list[tuple[str, int]] = []
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> None:
        try:
            ttls = await ttl_sample(self.raw, self.prefix)
        except (RedisError, OSError):  # Redis is down in a chaos test
            self.errors += 1
            return
        self.samples += 1
        self.keys_seen += len(ttls)
        self.max_keys = max(self.max_keys, len(ttls))
        self.immortal += [k for k, t in ttls.items() if t == -1]
        self.too_long += [(k, t) for k, t in ttls.items() if t > self.max_ms(k)]

    async def _loop(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> TtlWatch:
        self._task = asyncio.create_task(self._loop(), name="ttl-watch")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.sample()


async def redis_view(url: str, prefix: str) -> SessionStore:
    """A started, fallback-less store on ``url``: reads show what Redis holds."""
    store = SessionStore(
        backend_from_url(
            url,
            StoreConfig(key_prefix=prefix),
            fallback=False,
            connect_timeout=2.0,
            command_timeout=5.0,
        )
    )
    await store.start()
    return store


async def read_health(client: Client) -> dict[str, Any]:
    result = await client.read_resource("memory://health")
    return dict(json.loads(resource_text(result)))


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write ``figures`` to ``tests/reliability/results/<name>.json`` (gitignored)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
    return path
