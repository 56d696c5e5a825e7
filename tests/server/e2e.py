"""End-to-end helpers: uvicorn in a thread, the stdio server as a raw subprocess,
clients over real sockets, and what a session left behind in Redis."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from starlette.applications import Starlette

from mcp_server.http_stack import FAST
from mcp_server.runtime import Runtime
from memory_core.keys import session_tag
from tests.support.child_env import ALL_TOOLS, measured
from tests.support.results import tool_text

ROOT = Path(__file__).resolve().parents[2]
HANDSHAKE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "e2e", "version": "0"},
}


@dataclass
class RunningServer:
    url: str
    app: Starlette

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime


@contextmanager
def serve_in_thread(app: Starlette) -> Iterator[RunningServer]:
    """uvicorn on a free loopback port in a background thread, stopped on exit, on the
    stack the server runs on by default (uvloop and httptools), as ``cli.serve_http``
    starts it: ``anyio.run`` with uvloop, not ``uvicorn.Server.run``, whose older
    versions install uvloop's event loop policy for the whole test process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        http=FAST.http,
    )
    server = uvicorn.Server(config)

    def run() -> None:
        anyio.run(server.serve, [sock], backend_options={"use_uvloop": FAST.uvloop})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@asynccontextmanager
async def serve_here(app: Starlette, **options: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """uvicorn on a free loopback port in this event loop (the test then reaches the
    server's runtime directly), with ``options`` for ``uvicorn.Config``; stopped on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        **options,
    )
    server = uvicorn.Server(config)
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn's own flag
                    await anyio.sleep(0.01)
            try:
                yield f"http://127.0.0.1:{sock.getsockname()[1]}", server
            finally:
                server.should_exit = True


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@asynccontextmanager
async def streamable_client(
    base: str, *, token: str | None = None, mode: str = "legacy"
) -> AsyncIterator[Client]:
    async with create_mcp_http_client(headers=bearer(token)) as http:
        transport = streamable_http_client(base + "/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


@asynccontextmanager
async def sse_connection(base: str, *, token: str | None = None) -> AsyncIterator[Client]:
    async with Client(sse_client(base + "/sse", headers=bearer(token)), mode="legacy") as client:
        yield client


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def error(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return tool_text(result)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Poll ``check`` until true (teardown runs shortly after a disconnect)."""
    with anyio.fail_after(seconds):
        while not await check():  # noqa: ASYNC110 - the state lives in another task/process
            await anyio.sleep(0.02)


class RawStreamable:
    """Bare JSON-RPC over streamable HTTP: no GET stream, so the idle timer can run."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self.http, self.url = http, url
        self.session_id: str | None = None
        self._next_id = 0

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream"}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
            headers["Mcp-Protocol-Version"] = "2025-11-25"
        return headers

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        body = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        response = await self.http.post(self.url, json=body, headers=self._headers())
        assert response.status_code == 200, response.text
        self.session_id = self.session_id or response.headers.get("mcp-session-id")
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                message: dict[str, Any] = json.loads(line[5:])
                if message.get("id") == self._next_id:
                    return message
        return dict(response.json())

    async def initialize(self) -> None:
        await self.request("initialize", HANDSHAKE)
        notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        response = await self.http.post(self.url, json=notice, headers=self._headers())
        assert response.status_code == 202, response.text

    async def tool(self, name: str, **args: Any) -> dict[str, Any]:
        message = await self.request("tools/call", {"name": name, "arguments": args})
        result: dict[str, Any] = message["result"]
        assert not result.get("isError"), result
        return dict(result["structuredContent"])


class StdioProcess:
    """The stdio server as a subprocess driven line by line (for signals and kills)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=measured({"PATH": os.environ.get("PATH", ""), **ALL_TOOLS, **(env or {})}),
        )
        self._next_id = 0

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, self.stderr()
        message: dict[str, Any] = json.loads(line)
        return message

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def initialize(self) -> None:
        self.request("initialize", HANDSHAKE)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def tool(self, name: str, **args: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.request("tools/call", {"name": name, "arguments": args})[
            "result"
        ]
        assert not result.get("isError"), result
        return dict(result["structuredContent"])

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        """Kill the process if it still runs and close its pipes (end of a test)."""
        self.kill()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


async def session_keys(raw_redis: Any, prefix: str, session_id: str) -> list[str]:
    """Every Redis key of a session (``<prefix>:{<session id>}:...``)."""
    match = f"{prefix}:{{{session_tag(session_id)}}}:*"
    return sorted([k async for k in raw_redis.scan_iter(match=match, count=1000)])


async def live_keys(raw_redis: Any, prefix: str, session_id: str) -> list[str]:
    """Keys of the session's live state; checkpoints (``:cp:``, ``:cpm``) are kept on purpose,
    and so is the tombstone of a deliberate close (``:meta:closed``, one lease)."""
    base = f"{prefix}:{{{session_tag(session_id)}}}:"
    return [
        k
        for k in await session_keys(raw_redis, prefix, session_id)
        if not k.startswith(base + "cp") and k != base + "meta:closed"
    ]
