"""The stdio server as a real subprocess: SDK client, end of input, signals, crashes."""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from memory_core.keys import session_tag
from tests.server.e2e import ROOT, StdioProcess, call, error, eventually, live_keys
from tests.support.child_env import ALL_TOOLS, measured
from tests.support.results import resource_text

TEARDOWN_BUDGET = 2.0  # the SDK's stdio client kills the server after 2 s


def _params(env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_server"],
        env=measured({**ALL_TOOLS, **(env or {})}),
        cwd=ROOT,
    )


async def _use_over_sdk_client(env: dict[str, str] | None = None) -> tuple[str, str]:
    """Drive the server with the SDK's stdio client; return (session id, server stderr)."""
    with tempfile.TemporaryFile("w+") as errlog:
        async with Client(stdio_client(_params(env), errlog=errlog), mode="legacy") as client:
            await call(client, "memory_set", key="zebra", value={"quokka": 1}, ttl_seconds=60)
            got = await call(client, "memory_get", key="zebra")
            assert got["value"] == {"quokka": 1} and got["found"] is True
            assert (await error(client, "memory_get", key="")).startswith("INVALID_KEY: ")
            info = await call(client, "session_info")
            assert info["binding"] == "process"
            state = await client.read_resource("memory://session/current")
            text = resource_text(state)
            assert '"binding":"process"' in text and "quokka" in text
            assert info["session"] not in text  # only session_info hands out the handle
        errlog.seek(0)
        return info["session"], errlog.read()


async def test_stdio_serves_tools_and_tears_down_at_end_of_input() -> None:
    session, log = await _use_over_sdk_client({"WM_LOG_LEVEL": "DEBUG"})
    tag = session_tag(session)[:8]  # logs name a session by its tag, never by its handle
    assert f"session ended session={tag} reason=end of input" in log
    assert f"tool=memory_set session={tag} outcome=ok" in log
    assert f"tool=memory_get session={tag} outcome=INVALID_KEY" in log
    assert session[:8] not in log
    assert "zebra" not in log and "quokka" not in log  # keys and values are never logged


async def test_stdio_modern_client_needs_no_handle() -> None:
    async with Client(stdio_client(_params())) as client:  # 2026-07-28 over stdio
        await call(client, "memory_set", key="k", value=1)
        assert (await call(client, "memory_get", key="k"))["value"] == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stdio_signal_tears_down_quickly(signum: signal.Signals) -> None:
    server = StdioProcess()
    try:
        server.initialize()
        server.tool("memory_set", key="k", value=1)
        session = server.tool("session_info")["session"]
        started = time.monotonic()
        server.proc.send_signal(signum)
        assert server.wait(TEARDOWN_BUDGET) == 0
        assert time.monotonic() - started < TEARDOWN_BUDGET
        log = server.stderr()
        assert f"session ended session={session_tag(session)[:8]} reason={signum.name}" in log
    finally:
        server.close()


def _redis_env(url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {"WM_REDIS_URL": url, "WM_KEY_PREFIX": prefix, "WM_LOG_LEVEL": "INFO", **extra}


async def test_stdio_redis_end_of_input_leaves_nothing(
    redis_backend: str, key_prefix: str, raw_redis: Any
) -> None:
    session, _ = await _use_over_sdk_client(_redis_env(redis_backend, key_prefix))
    assert await live_keys(raw_redis, key_prefix, session) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_stdio_redis_signal_leaves_nothing(
    redis_backend: str, key_prefix: str, raw_redis: Any, signum: signal.Signals
) -> None:
    server = StdioProcess(_redis_env(redis_backend, key_prefix))
    try:
        server.initialize()
        server.tool("memory_set", key="k", value=1)
        server.tool("scratchpad_append", content="note")
        session = server.tool("session_info")["session"]
        assert await live_keys(raw_redis, key_prefix, session)
        server.proc.send_signal(signum)
        assert server.wait(TEARDOWN_BUDGET) == 0
        assert await live_keys(raw_redis, key_prefix, session) == []
    finally:
        server.close()


async def test_stdio_redis_crash_is_cleaned_up_by_the_lease(
    redis_backend: str, key_prefix: str, raw_redis: Any
) -> None:
    """kill -9 runs no teardown: the idle lease must remove the session by itself."""
    server = StdioProcess(_redis_env(redis_backend, key_prefix, WM_LEASE_SECONDS="1"))
    try:
        server.initialize()
        server.tool("memory_set", key="k", value=1)
        session = server.tool("session_info")["session"]
        server.kill()
        assert await live_keys(raw_redis, key_prefix, session)

        async def gone() -> bool:
            return await live_keys(raw_redis, key_prefix, session) == []

        await eventually(gone, seconds=5)
    finally:
        server.close()


async def test_stdio_starts_with_redis_down_and_says_so(key_prefix: str) -> None:
    pytest.importorskip("memory_core.storage.redis", reason="memory_core Redis backend not landed")
    env = _redis_env("redis://127.0.0.1:1/0", key_prefix)
    with tempfile.TemporaryFile("w+") as errlog:
        async with Client(stdio_client(_params(env), errlog=errlog), mode="legacy") as client:
            with anyio.fail_after(10):
                await call(client, "memory_set", key="k", value=1)
                health = await client.read_resource("memory://health")
            assert '"mode":"fallback"' in resource_text(health)
        errlog.seek(0)
        assert "store=fallback" in errlog.read()
