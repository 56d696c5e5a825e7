"""What clients, orchestrators and operators see for each class of store failure: the
startup line and exit code, ``/readyz``, ``memory://health``, ``session_info`` and the
tool error. Real redis-server processes, real uvicorn, real subprocesses."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mcp_server.http import create_app
from mcp_server.settings import Settings
from tests.server.e2e import ROOT, RunningServer, call, error, serve_in_thread, streamable_client
from tests.support.redis_proc import RedisProcess
from tests.support.results import resource_text

PASSWORD = "app-s3cret"


async def acl_setuser(admin: aioredis.Redis, *rules: str) -> None:
    await admin.execute_command("ACL", "SETUSER", *rules)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_the_cli_refuses_to_start_against_a_store_that_refuses_it(
    redis_server: RedisProcess, transport: str
) -> None:
    redis_server.stop()
    redis_server.extra_args = ["--requirepass", PASSWORD]
    redis_server.start()
    store_url = f"redis://:wrong-{PASSWORD}@127.0.0.1:{redis_server.port}/0"
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server", "--transport", transport, "--port", "0"],
        env={"PATH": "", "WM_REDIS_URL": store_url, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot start" in lines[0] and "authentication failed" in lines[0]
    assert f"redis://:***@127.0.0.1:{redis_server.port}/0" in lines[0]
    assert PASSWORD not in lines[0]


@pytest.fixture
async def admin(redis_server: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    """An admin connection; the server runs as the ACL user ``app``."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await acl_setuser(client, "app", "on", f">{PASSWORD}", "~*", "&*", "+@all")
    try:
        yield client
    finally:
        with contextlib.suppress(RedisError):  # killed by the outage tests
            await client.config_set("maxmemory", "0")
        await client.aclose()


@pytest.fixture
def http_app(
    redis_server: RedisProcess, admin: aioredis.Redis, key_prefix: str
) -> Iterator[RunningServer]:
    with serve_in_thread(
        create_app(
            Settings(
                transport="http",
                redis_url=f"redis://app:{PASSWORD}@127.0.0.1:{redis_server.port}/0",
                key_prefix=key_prefix,
                fallback=False,
                subscription_bus="memory",
            )
        )
    ) as running:
        yield running


async def ready(base: str) -> tuple[int, dict[str, Any]]:
    async with httpx2.AsyncClient() as http:
        response = await http.get(base + "/readyz")
        live = await http.get(base + "/healthz")
    assert live.status_code == 200  # liveness: restarting fixes none of these
    return response.status_code, dict(response.json())


async def health(client: Any) -> dict[str, Any]:
    return dict(json.loads(resource_text(await client.read_resource("memory://health"))))


async def test_a_store_that_refuses_us_later_is_not_ready_and_fails_calls(
    http_app: RunningServer, admin: aioredis.Redis
) -> None:
    assert await ready(http_app.url) == (200, {"status": "ready", "failure": None})
    async with streamable_client(http_app.url) as client:
        await call(client, "memory_set", key="k", value=1)
        await acl_setuser(admin, "app", "-evalsha", "-eval")
        text = await error(client, "memory_set", key="k", value=2)
        assert text.startswith("STORAGE_MISCONFIGURED: ") and "retrying will not help" in text
        assert "app:" not in text and PASSWORD not in text and "127.0.0.1" not in text
        state = await health(client)
        assert (state["healthy"], state["failure"]) == (False, "configuration")
        assert "permission" in state["cause"] and state["mode"] == "redis"
        assert await ready(http_app.url) == (
            503,
            {"status": "not ready", "failure": "configuration"},
        )
        await acl_setuser(admin, "app", "+evalsha", "+eval")
        assert await ready(http_app.url) == (200, {"status": "ready", "failure": None})
        assert (await call(client, "memory_get", key="k"))["value"] == 1


async def test_a_full_store_names_itself_full_and_stays_ready(
    http_app: RunningServer, admin: aioredis.Redis
) -> None:
    async with streamable_client(http_app.url) as client:
        await call(client, "memory_set", key="k", value="before")
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")
        text = await error(client, "memory_set", key="k", value="after")
        assert text.startswith("STORAGE_FULL: ") and "nothing was changed" in text
        info = await call(client, "session_info")
        assert (info["mode"], info["failure"]) == ("redis", "store_full")
        assert (await call(client, "memory_get", key="k"))["value"] == "before"
        state = await health(client)
        assert (state["healthy"], state["failure"], state["fallbacks"]) == (True, "store_full", 0)
        assert await ready(http_app.url) == (200, {"status": "ready", "failure": "store_full"})
        await admin.config_set("maxmemory", "0")
        await call(client, "memory_set", key="k", value="after")
        assert (await call(client, "session_info"))["failure"] is None


async def test_a_forged_cursor_is_a_bad_argument_and_never_the_breaker(
    http_app: RunningServer,
) -> None:
    forged = base64.urlsafe_b64encode(b'{"k":"scratchpad","o":1e30}').decode().rstrip("=")
    huge = base64.urlsafe_b64encode(b'{"k":"scratchpad","o":%d}' % 10**30).decode().rstrip("=")
    async with streamable_client(http_app.url) as client:
        await call(client, "scratchpad_append", content="note")
        for cursor in (forged, huge):
            text = await error(client, "scratchpad_get", cursor=cursor)
            assert text.startswith("INVALID_ARGUMENT: "), text
        state = await health(client)
        assert (state["mode"], state["healthy"], state["fallbacks"]) == ("redis", True, 0)
        assert (await call(client, "scratchpad_get"))["entries"] == ["note"]


async def test_an_outage_without_fallback_is_not_ready(
    http_app: RunningServer, redis_server: RedisProcess
) -> None:
    async with streamable_client(http_app.url) as client:
        await call(client, "memory_set", key="k", value=1)
        redis_server.kill()
        text = await error(client, "memory_get", key="k")
        assert text.startswith("STORAGE_UNAVAILABLE: ")
        state = await health(client)
        assert (state["mode"], state["healthy"], state["failure"]) == ("fallback", False, "outage")
        assert state["cause"]
    assert await ready(http_app.url) == (503, {"status": "not ready", "failure": "outage"})


async def test_an_outage_with_fallback_stays_ready_and_says_why(
    redis_server: RedisProcess, admin: aioredis.Redis, key_prefix: str
) -> None:
    settings = Settings(
        transport="http",
        redis_url=f"redis://app:{PASSWORD}@127.0.0.1:{redis_server.port}/0",
        key_prefix=key_prefix,
        fallback=True,
        subscription_bus="memory",
    )
    with serve_in_thread(create_app(settings)) as running:
        async with streamable_client(running.url) as client:
            await call(client, "memory_set", key="k", value=1)
            redis_server.kill()
            assert (await call(client, "memory_get", key="k"))["value"] == 1
            info = await call(client, "session_info")
            assert (info["mode"], info["failure"]) == ("fallback", "outage")
            assert info["cause"] and "127.0.0.1" not in info["cause"]
        assert await ready(running.url) == (200, {"status": "ready", "failure": "outage"})


async def test_a_runtime_shutting_down_is_not_ready() -> None:
    app = create_app(Settings(transport="http"))
    await app.state.runtime.close("test")
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "failure": "shutting_down"}


def test_the_cli_refuses_an_evicting_policy_when_asked_to(redis_server: RedisProcess) -> None:
    redis_server.stop()
    redis_server.extra_args = ["--maxmemory-policy", "volatile-lru"]
    redis_server.start()
    env = {"PATH": "", "WM_REDIS_URL": redis_server.url, "PYTHONPATH": str(ROOT)}
    strict = subprocess.run(
        [sys.executable, "-m", "mcp_server", "--require-noeviction"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert strict.returncode == 2 and strict.stdout == ""
    lines = strict.stderr.splitlines()
    assert len(lines) == 1, strict.stderr
    assert "cannot start" in lines[0] and "maxmemory-policy volatile-lru" in lines[0]
    # Without the setting it starts (and warns), then ends with its input.
    lenient = subprocess.run(
        [sys.executable, "-m", "mcp_server"],
        env={**env, "WM_LOG_LEVEL": "WARNING"}, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert lenient.returncode == 0, lenient.stderr
    assert "maxmemory-policy volatile-lru" in lenient.stderr
