"""Real HTTP (uvicorn on a free loopback port): streamable HTTP, SSE, stateless
requests, isolation, teardown on disconnect and idle timeout, auth, DNS rebinding."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from mcp_server.http import create_app
from mcp_server.settings import Settings
from memory_core import SessionNotFoundError
from tests.server.e2e import (
    RawStreamable,
    RunningServer,
    call,
    error,
    eventually,
    live_keys,
    serve_in_thread,
    session_keys,
    sse_connection,
    streamable_client,
)

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"


@pytest.fixture
def http() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(Settings(transport="http"))) as running:
        yield running


@pytest.fixture
def http_auth() -> Iterator[RunningServer]:
    settings = Settings(transport="http", auth_tokens=f"{ALICE}=alice,{BOB}=bob")
    with serve_in_thread(create_app(settings)) as running:
        yield running


async def _ended(running: RunningServer, session: str) -> bool:
    try:
        await running.runtime.store.usage(session, "anonymous")
    except SessionNotFoundError:
        return True
    return False


async def test_streamable_and_sse_connections_are_isolated_and_torn_down(
    http: RunningServer,
) -> None:
    async with (
        streamable_client(http.url) as one,
        streamable_client(http.url) as two,
        sse_connection(http.url) as three,
    ):
        sessions = []
        for n, client in enumerate((one, two, three)):
            await call(client, "memory_set", key="who", value=n)
            info = await call(client, "session_info")
            assert info["binding"] == "connection"
            sessions.append(info["session"])
        for n, client in enumerate((one, two, three)):
            assert (await call(client, "memory_get", key="who"))["value"] == n
            assert (await call(client, "memory_list_keys"))["keys"] == ["who"]
        assert len(set(sessions)) == 3
    for session in sessions:  # DELETE (streamable) and stream close (SSE)
        await eventually(functools.partial(_ended, http, session))


async def test_stateless_http_requests_use_handles(http: RunningServer) -> None:
    async with streamable_client(http.url, mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        # without a handle: the principal's default session, apart from every handle
        await call(client, "memory_set", key="d", value=0)
        assert (await call(client, "session_info"))["binding"] == "default"
        handle = (await call(client, "session_open"))["session"]
        assert (await call(client, "memory_get", key="d", session=handle))["found"] is False
        await call(client, "memory_set", key="k", value=1, session=handle)
        assert (await call(client, "memory_get", key="k"))["found"] is False
    async with streamable_client(http.url, mode="auto") as client:  # a later request
        assert (await call(client, "memory_get", key="k", session=handle))["value"] == 1
        assert await call(client, "session_close", session=handle) == {"closed": True}
        text = await error(client, "memory_get", key="k", session=handle)
        assert text.startswith("SESSION_NOT_FOUND: ")


async def test_idle_timeout_tears_the_session_down() -> None:
    app = create_app(Settings(transport="http", http_idle_timeout=0.3))
    with serve_in_thread(app) as running:
        async with httpx2.AsyncClient() as http:
            raw = RawStreamable(http, running.url + "/mcp")
            await raw.initialize()
            await raw.tool("memory_set", key="k", value=1)
            session = (await raw.tool("session_info"))["session"]
            assert not await _ended(running, session)
            await eventually(lambda: _ended(running, session))


async def test_shutdown_tears_down_open_connections() -> None:
    app = create_app(Settings(transport="http"))
    with serve_in_thread(app) as running:
        async with httpx2.AsyncClient() as http:
            raw = RawStreamable(http, running.url + "/mcp")
            await raw.initialize()
            await raw.tool("memory_set", key="k", value=1)
            session = (await raw.tool("session_info"))["session"]
    assert await _ended(running, session)


async def test_auth_is_required_and_principals_are_isolated(http_auth: RunningServer) -> None:
    async with httpx2.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
            response = await http.post(http_auth.url + "/mcp", json=body, headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].lower().startswith("bearer")
            sse = await http.get(http_auth.url + "/sse", headers=headers)
            assert sse.status_code == 401
        health = await http.get(http_auth.url + "/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}

    async with (
        streamable_client(http_auth.url, token=ALICE) as alice,
        sse_connection(http_auth.url, token=ALICE) as alice_sse,
    ):
        # a handle opened over SSE works over streamable HTTP: both see principal alice
        handle = (await call(alice_sse, "session_open"))["session"]
        await call(alice, "memory_set", key="secret", value=42, session=handle)
        own = (await call(alice, "session_info"))["session"]
        async with (
            streamable_client(http_auth.url, token=BOB) as bob,
            sse_connection(http_auth.url, token=BOB) as bob_sse,
        ):
            for client in (bob, bob_sse):
                for session in (handle, own):
                    text = await error(client, "memory_get", key="secret", session=session)
                    assert text.startswith("SESSION_NOT_FOUND: ")
                    with pytest.raises(MCPError, match=r"^SESSION_NOT_FOUND: "):
                        await client.read_resource(f"memory://session/{session}")
                assert await call(client, "session_close", session=handle) == {"closed": False}
            assert (await call(bob, "memory_list_keys"))["keys"] == []
        assert (await call(alice_sse, "memory_get", key="secret", session=handle))["value"] == 42


async def test_dns_rebinding_and_body_limit(http: RunningServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient() as client:
        bad_host = await client.post(
            http.url + "/mcp", json=body, headers={**accept, "Host": "evil.example:8765"}
        )
        assert bad_host.status_code == 421
        sse_bad_host = await client.get(http.url + "/sse", headers={"Host": "evil.example"})
        assert sse_bad_host.status_code == 421
        bad_origin = await client.post(
            http.url + "/mcp", json=body, headers={**accept, "Origin": "http://evil.example"}
        )
        assert bad_origin.status_code == 403
        huge = await client.post(
            http.url + "/mcp",
            content=b"[" + b"1," * 600_000 + b"1]",
            headers={**accept, "Content-Type": "application/json"},
        )
        assert huge.status_code == 413
        assert (await client.get(http.url + "/healthz")).json() == {"status": "ok"}


# --- with Redis: nothing of a session's live state is left after teardown ------------


@pytest.fixture
def http_redis(redis_backend: str, key_prefix: str) -> Iterator[RunningServer]:
    settings = Settings(transport="http", redis_url=redis_backend, key_prefix=key_prefix)
    with serve_in_thread(create_app(settings)) as running:
        yield running


async def test_redis_teardown_on_disconnect(
    http_redis: RunningServer, key_prefix: str, raw_redis: Any
) -> None:
    sessions = []
    async with streamable_client(http_redis.url) as one, sse_connection(http_redis.url) as two:
        for client in (one, two):
            await call(client, "memory_set", key="k", value=1, ttl_seconds=600)
            await call(client, "task_state_set", task_id="t", status="in_progress")
            await call(client, "scratchpad_append", content="note")
            await call(client, "checkpoint_create", label="keep")
            info = await call(client, "session_info")
            assert info["mode"] == "redis"
            sessions.append(info["session"])
            assert await live_keys(raw_redis, key_prefix, info["session"])
    for session in sessions:

        async def gone(s: str = session) -> bool:
            return await live_keys(raw_redis, key_prefix, s) == []

        await eventually(gone)
        kept = await session_keys(raw_redis, key_prefix, session)
        assert kept and all(
            ":cp" in k or k.endswith(":meta:closed") for k in kept
        )  # cps outlive it


async def test_redis_stateless_handles_survive_between_requests(
    http_redis: RunningServer, key_prefix: str, raw_redis: Any
) -> None:
    async with streamable_client(http_redis.url, mode="auto") as client:
        handle = (await call(client, "session_open", ttl_seconds=30))["session"]
        await call(client, "memory_set", key="k", value=[1], session=handle)
    assert await live_keys(raw_redis, key_prefix, handle)
    async with streamable_client(http_redis.url, mode="auto") as client:
        assert (await call(client, "memory_get", key="k", session=handle))["value"] == [1]
        await call(client, "session_close", session=handle)
    assert await live_keys(raw_redis, key_prefix, handle) == []
