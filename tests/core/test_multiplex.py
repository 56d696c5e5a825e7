"""The pipelined script connection (``storage.redis.multiplex``) against real Redis servers:
replies reach their own callers, concurrent calls share one connection, and every failure
(a hung server, a restart, refused credentials) fails the calls waiting on it and leaves
the next call to connect afresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from memory_core import SessionStore
from memory_core.storage.factory import backend_from_url
from memory_core.storage.redis.multiplex import ScriptConnection
from tests.support.redis_proc import RedisProcess, redis_with


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    try:
        yield server
    finally:
        server.cleanup()


def connection(server: RedisProcess, *, command_timeout: float = 2.0) -> ScriptConnection:
    return ScriptConnection(
        host="127.0.0.1", port=server.port, connect_timeout=1.0, command_timeout=command_timeout
    )


@pytest.fixture
async def scripts(own_redis: RedisProcess) -> AsyncIterator[ScriptConnection]:
    shared = connection(own_redis)
    try:
        yield shared
    finally:
        await shared.close()


async def clients_of(server: RedisProcess) -> int:
    """Connections Redis has open, not counting the one asking."""
    admin = aioredis.Redis(port=server.port)
    try:
        listed = await admin.client_list()
        return len(listed) - 1
    finally:
        await admin.aclose()


async def test_concurrent_calls_share_one_connection_and_get_their_own_replies(
    own_redis: RedisProcess, scripts: ScriptConnection
) -> None:
    replies = await asyncio.gather(*(scripts.execute("ECHO", f"v{i}") for i in range(200)))
    assert replies == [f"v{i}" for i in range(200)]
    assert await clients_of(own_redis) == 1
    await scripts.close()
    assert await clients_of(own_redis) == 0


async def test_an_error_reply_fails_only_its_own_call(scripts: ScriptConnection) -> None:
    calls = [
        scripts.execute("ECHO", "before"),
        scripts.execute("EVALSHA", "0" * 40, 0),
        scripts.execute("ECHO", "after"),
    ]
    before, missing, after = await asyncio.gather(*calls, return_exceptions=True)
    assert (before, after) == ("before", "after")
    assert isinstance(missing, ResponseError) and "NOSCRIPT" in type(missing).__name__.upper()


async def test_a_cancelled_call_leaves_every_other_reply_in_place(
    scripts: ScriptConnection,
) -> None:
    tasks = [asyncio.create_task(scripts.execute("ECHO", f"v{i}")) for i in range(50)]
    await asyncio.sleep(0)  # all queued, none answered
    for task in tasks[::3]:
        task.cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    for i, result in enumerate(done):
        if i % 3:
            assert result == f"v{i}"
        else:
            assert isinstance(result, asyncio.CancelledError)
    assert await scripts.execute("ECHO", "next") == "next"


async def test_a_hung_server_fails_every_waiting_call_then_the_next_call_reconnects(
    own_redis: RedisProcess,
) -> None:
    scripts = connection(own_redis, command_timeout=0.3)
    try:
        assert await scripts.execute("ECHO", "up") == "up"
        own_redis.pause()
        started = time.monotonic()
        try:
            failed = await asyncio.gather(
                *(scripts.execute("ECHO", f"v{i}") for i in range(10)), return_exceptions=True
            )
        finally:
            own_redis.resume()
        assert all(isinstance(f, RedisTimeoutError) for f in failed), failed
        assert time.monotonic() - started < 2.0  # one timeout, not one per call
        assert await scripts.execute("ECHO", "again") == "again"
        assert await clients_of(own_redis) == 1  # the timed-out connection was closed
    finally:
        await scripts.close()


async def test_a_restarted_server_fails_the_calls_then_the_next_call_reconnects(
    own_redis: RedisProcess, scripts: ScriptConnection
) -> None:
    assert await scripts.execute("ECHO", "up") == "up"
    own_redis.kill()
    with pytest.raises(RedisConnectionError):
        await scripts.execute("ECHO", "down")
    own_redis.start()
    assert await scripts.execute("ECHO", "back") == "back"


async def test_password_and_database_come_from_the_url() -> None:
    with redis_with("--requirepass", "s3cret") as server:
        wrong = backend_from_url(f"redis://:nope@127.0.0.1:{server.port}/0")
        with pytest.raises(Exception) as refused:
            await SessionStore(wrong).start()
        assert type(refused.value).__name__ == "StorageMisconfiguredError"
        await wrong.close()

        scripts = ScriptConnection(
            host="127.0.0.1", port=server.port, password="nope", connect_timeout=1.0,
            command_timeout=1.0,
        )  # fmt: skip
        with pytest.raises(AuthenticationError):
            await scripts.execute("ECHO", "x")
        await scripts.close()

        url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
        store = SessionStore(backend_from_url(url, fallback=False))
        await store.start()
        try:
            sid = await store.open()
            await store.memory(sid).set("k", 1)
            admin = aioredis.Redis(port=server.port, password="s3cret", db=3)
            try:
                assert await admin.dbsize() > 0  # written into database 3
            finally:
                await admin.aclose()
        finally:
            await store.close()


async def test_a_unix_socket_store_works(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    with redis_with("--unixsocket", str(sock), "--unixsocketperm", "700"):
        store = SessionStore(backend_from_url(f"unix://{sock}?db=1", fallback=False))
        await store.start()
        try:
            sid = await store.open()
            memory = store.memory(sid)
            await asyncio.gather(*(memory.set(f"k{i}", i) for i in range(20)))
            assert await memory.get_all() == {f"k{i}": i for i in range(20)}
        finally:
            await store.close()


async def test_a_redis_url_backend_runs_concurrent_scripts_over_one_connection(
    own_redis: RedisProcess,
) -> None:
    store = SessionStore(backend_from_url(own_redis.url))
    await store.start()  # PING, INFO, CONFIG over redis-py's pool: one connection
    try:
        sid = await store.open()
        memory = store.memory(sid)
        await asyncio.gather(*(memory.set(f"k{i}", i) for i in range(50)))
        found = await asyncio.gather(*(memory.get(f"k{i}") for i in range(50)))
        assert found == list(range(50))
        assert await clients_of(own_redis) <= 2  # redis-py's pool would open one per call
    finally:
        await store.close()
