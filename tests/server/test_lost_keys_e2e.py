"""FLUSHDB and FLUSHALL under live sessions, over real transports: the stdio process
session and an HTTP session keep working with everything they had; Redis holds it again
(inspected directly)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as aioredis
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_server.http import create_app
from mcp_server.settings import Settings
from memory_core.keys import session_tag
from tests.server.e2e import ROOT, call, serve_in_thread, streamable_client
from tests.support.child_env import ALL_TOOLS, measured
from tests.support.redis_proc import RedisProcess

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def raw(redis_server: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def held_session_survives(client: Client, raw: aioredis.Redis, flush: str) -> None:
    await call(client, "memory_set", key="k", value={"n": 1}, ttl_seconds=600)
    await call(client, "scratchpad_append", content="note")
    session = (await call(client, "session_info"))["session"]
    await raw.execute_command(flush)  # type: ignore[no-untyped-call]
    with anyio.fail_after(10):
        got = await call(client, "memory_get", key="k")
        assert (got["found"], got["value"]) == (True, {"n": 1})
        await call(client, "memory_set", key="k2", value=2)
        info = await call(client, "session_info")
    assert info["session"] == session and info["mode"] == "redis"
    tag = session_tag(session)
    keys = [k async for k in raw.scan_iter(f"*{{{tag}}}:vars")]
    assert len(keys) == 1 and set(await raw.hkeys(keys[0])) == {"k", "k2"}
    for key in [k async for k in raw.scan_iter(f"*{{{tag}}}*")]:
        assert await raw.pttl(key) > 0, key


@pytest.mark.parametrize("flush", ["FLUSHDB", "FLUSHALL"])
async def test_the_stdio_process_session_survives_a_flush(
    redis_server: RedisProcess, raw: aioredis.Redis, key_prefix: str, flush: str
) -> None:
    env = measured({**ALL_TOOLS, "WM_REDIS_URL": redis_server.url, "WM_KEY_PREFIX": key_prefix})
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server"], env=env, cwd=ROOT
    )
    with tempfile.TemporaryFile("w+") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            await held_session_survives(client, raw, flush)
        errlog.seek(0)
        assert "restored it from the in-process copy" in errlog.read()


@pytest.mark.parametrize("flush", ["FLUSHDB", "FLUSHALL"])
async def test_an_http_session_survives_a_flush(
    redis_server: RedisProcess, raw: aioredis.Redis, key_prefix: str, flush: str
) -> None:
    settings = Settings(
        transport="http",
        redis_url=redis_server.url,
        key_prefix=key_prefix,
        subscription_bus="memory",
    )
    with serve_in_thread(create_app(settings)) as running:
        async with streamable_client(running.url) as client:
            await held_session_survives(client, raw, flush)
