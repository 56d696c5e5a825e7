"""The soak's cycles, and a worker process that runs the in-process ones.

A cycle is one agent's visit: connect, use (``use``: write, read back and check a few
values, the scratchpad, the task state, every fifth a checkpoint it deletes again),
disconnect; stateless cycles open a handle first and close it at the end.

The in-process cycles (SDK clients against ``create_server(...)``) run in a worker
process of their own, ``python -m tests.reliability.soak_support <redis-url> <prefix>``,
so that they and the test process's HTTP/SSE/stdio clients use both cores: each side
alone saturates one. Protocol: one JSON object per line on stdin, one answer per line on
stdout -- ``{"cmd": "run", "plan": {...}, "concurrency": {...}}`` (runs the cycles,
answers the counts, failures and an RSS/task trend), ``{"cmd": "snapshot"}`` (asyncio
tasks, fds, RSS, sessions open in the store and its fallback mirror, breaker trips); end of input
closes the store and exits.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client

from mcp_server.runtime import build_store
from mcp_server.server import create_server
from mcp_server.settings import Settings
from tests.reliability.chaos_support import (
    fd_count,
    rss_bytes,
    shared_output_validators,
    sse_connection,
    stdio_connection,
    streamable_connection,
)
from tests.support.child_env import ALL_TOOLS

MiB = 1024 * 1024
CYCLE_SECONDS = 120.0  # one connect-use-disconnect; a stdio spawn takes ~3 s here


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
    """Runs connect -> use -> disconnect cycles of every kind and counts them."""

    def __init__(self, server: Any, http_url: str, stdio_settings: dict[str, Any]) -> None:
        self.server = server  # the in-process WorkingMemoryServer (inproc-* kinds)
        self.http_url = http_url
        self.stdio_settings = stdio_settings
        self.done: Counter[str] = Counter()
        self.calls = 0
        self.failures: list[str] = []
        self.seconds: defaultdict[str, float] = defaultdict(float)

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
            while isinstance(exc, BaseExceptionGroup) and isinstance(exc.exceptions[0], Exception):
                exc = exc.exceptions[0]  # the SDK's task groups wrap the real error
            self.failures.append(f"{kind} #{n}: {type(exc).__name__}: {exc!r}"[:500])
        self.done[kind] += 1
        self.seconds[kind] += time.monotonic() - started

    async def run(
        self,
        plan: dict[str, int],
        concurrency: dict[str, int],
        on_progress: Callable[[], None] | None = None,
        deadline: float = 1e12,
    ) -> None:
        """Run ``plan`` (cycles per kind) with ``concurrency[group]`` workers per group,
        the kinds of a group interleaved."""
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
            *(worker(items) for g, items in queues.items() for _ in range(concurrency[g]))
        )


async def _serve(redis_url: str, prefix: str) -> None:
    settings = Settings(transport="http", redis_url=redis_url, key_prefix=prefix)
    store = build_store(settings)
    await store.start()
    soak = Soak(create_server(settings, store), "", {})
    mirror = getattr(store.backend, "mirror", None)

    async def snapshot() -> dict[str, Any]:
        gc.collect()
        health = await store.health()
        return {
            "fallbacks": health.fallbacks,
            "cycles": sum(soak.done.values()),
            "tasks": len(asyncio.all_tasks()),
            "fds": fd_count(),
            "rss_mib": round(rss_bytes() / MiB, 2),
            "sessions_open": store.open_count(),
            "mirror_sessions": None if mirror is None else mirror.session_count,
        }

    try:
        while line := await asyncio.to_thread(sys.stdin.readline):
            request = json.loads(line)
            if request["cmd"] == "snapshot":
                answer = await snapshot()
            else:
                trend: list[dict[str, Any]] = []

                def progress(trend: list[dict[str, Any]] = trend) -> None:
                    trend.append(
                        {
                            "cycles": sum(soak.done.values()),
                            "rss_mib": round(rss_bytes() / MiB, 2),
                            "tasks": len(asyncio.all_tasks()),
                        }
                    )

                await soak.run(request["plan"], request["concurrency"], progress)
                answer = {
                    "done": dict(soak.done),
                    "seconds": dict(soak.seconds),
                    "calls": soak.calls,
                    "failures": soak.failures[:20],
                    "failed": len(soak.failures),
                    "trend": trend,
                }
            print(json.dumps(answer), flush=True)
    finally:
        await store.close()


class Worker:
    """Test-side handle of the in-process worker (see the module docstring)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, redis_url: str, prefix: str, stderr: Any) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.reliability.soak_support",
            redis_url,
            prefix,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env={"PATH": os.environ.get("PATH", ""), "WM_LOG_LEVEL": "WARNING", **ALL_TOOLS},
        )
        return cls(proc)

    async def request(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        assert line, "the soak worker died (see its stderr)"
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    with shared_output_validators():
        asyncio.run(_serve(sys.argv[1], sys.argv[2]))
