"""Fault tests: a real redis-server the test starts, kills, pauses and restarts."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import pytest

from memory_core import (
    SessionNotFoundError,
    SessionStore,
    StorageUnavailableError,
    StoreConfig,
    TaskState,
    backend_from_url,
)
from memory_core.storage.base import SessionRef
from memory_core.storage.factory import compose_breaker
from memory_core.storage.fallback import FallbackBackend
from memory_core.storage.redis import RedisBackend
from tests.support.redis_proc import RedisProcess, free_port

pytestmark = pytest.mark.asyncio


def fallback_store(url: str, prefix: str, *, fallback: bool = True) -> SessionStore:
    config = StoreConfig(key_prefix=prefix)
    primary = RedisBackend(config, url, connect_timeout=0.2, command_timeout=0.3)
    backend = compose_breaker(
        config, primary, fallback=fallback, probe_min_seconds=0.05, probe_max_seconds=0.3
    )
    return SessionStore(backend)


async def wait_mode(store: SessionStore, mode: str, limit: float = 15.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if (await store.health()).mode == mode:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"store did not reach mode {mode} within {limit}s")


async def redis_view(url: str, prefix: str) -> SessionStore:
    store = SessionStore(backend_from_url(url, StoreConfig(key_prefix=prefix), fallback=False))
    await store.start()
    return store


@pytest.fixture
async def store_on(redis_server: RedisProcess, key_prefix: str) -> AsyncIterator[SessionStore]:
    store = fallback_store(redis_server.url, key_prefix)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_startup_with_redis_down_then_write_back(key_prefix: str) -> None:
    port = free_port()
    store = fallback_store(f"redis://127.0.0.1:{port}/0", key_prefix)
    started = time.monotonic()
    await store.start()
    assert time.monotonic() - started < 1.0
    try:
        health = await store.health()
        assert health.mode == "fallback" and health.healthy and health.fallbacks == 1
        sid = await store.open("alice")
        m = store.memory(sid, "alice")
        await m.set("k", {"v": 1})
        await m.append_scratchpad("during outage")
        assert await m.get("k") == {"v": 1}
        server = RedisProcess(port=port).start()
        try:
            await wait_mode(store, "redis")
            health = await store.health()
            assert health.write_backs == 1 and health.write_back_sessions == 1
            view = await redis_view(server.url, key_prefix)
            vm = view.memory(sid, "alice")
            assert await vm.get("k") == {"v": 1}
            assert await vm.get_scratchpad() == ["during outage"]
            await view.close()
        finally:
            server.cleanup()
    finally:
        await store.close()


async def test_kill_mid_workload_loses_no_acknowledged_write(
    redis_server: RedisProcess, store_on: SessionStore, key_prefix: str
) -> None:
    store = store_on
    sessions = [await store.open("alice") for _ in range(8)]
    model: dict[str, dict[str, int]] = {sid: {} for sid in sessions}
    pads: dict[str, list[str]] = {sid: [] for sid in sessions}
    rng = random.Random(7)
    mismatches: list[str] = []

    async def worker(sid: str, steps: int) -> None:
        m = store.memory(sid, "alice")
        for i in range(steps):
            key = f"k{rng.randrange(20)}"
            roll = rng.random()
            if roll < 0.5:
                await m.set(key, i)
                model[sid][key] = i
            elif roll < 0.7:
                await m.append_scratchpad(f"s{i}")
                pads[sid].append(f"s{i}")
            elif roll < 0.8:
                await m.delete(key)
                model[sid].pop(key, None)
            else:
                got = await m.get(key)
                if got != model[sid].get(key):
                    mismatches.append(f"{sid}:{key} read {got} expected {model[sid].get(key)}")
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(sid, 60) for sid in sessions))
    redis_server.kill()  # kill -9, no persistence: Redis comes back empty
    await asyncio.gather(*(worker(sid, 60) for sid in sessions))
    assert (await store.health()).mode == "fallback"
    redis_server.start()
    elapsed = await wait_mode(store, "redis")
    await asyncio.gather(*(worker(sid, 30) for sid in sessions))
    assert mismatches == []
    assert elapsed < 5.0

    view = await redis_view(redis_server.url, key_prefix)
    try:
        for sid in sessions:
            vm = view.memory(sid, "alice")
            assert await vm.get_all() == model[sid]
            assert await vm.get_scratchpad() == pads[sid]
    finally:
        await view.close()


async def test_restart_with_same_data_writes_back_only_changes(
    key_prefix: str,
) -> None:
    server = RedisProcess(extra_args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    store = fallback_store(server.url, key_prefix)
    await store.start()
    try:
        quiet = await store.open("alice")
        busy = await store.open("alice")
        await store.memory(quiet, "alice").set("q", 1)
        await store.memory(busy, "alice").set("b", 1)
        server.kill()
        await store.memory(busy, "alice").set("b", 2)
        await store.memory(busy, "alice").set_task_state(TaskState(task_id="t"))
        assert await store.memory(quiet, "alice").get("q") == 1
        server.start()  # same dir: the append-only file brings the data back
        await wait_mode(store, "redis")
        health = await store.health()
        assert health.write_back_sessions == 1  # only the session changed in the outage
        view = await redis_view(server.url, key_prefix)
        assert await view.memory(quiet, "alice").get("q") == 1
        assert await view.memory(busy, "alice").get("b") == 2
        assert await view.memory(busy, "alice").get_task_state() is not None
        await view.close()
    finally:
        await store.close()
        server.cleanup()


async def test_hung_redis_bounded_by_timeouts(
    redis_server: RedisProcess, store_on: SessionStore
) -> None:
    store = store_on
    sid = await store.open("alice")
    m = store.memory(sid, "alice")
    await m.set("k", 1)
    redis_server.pause()
    try:
        started = time.monotonic()
        await m.set("k", 2)  # times out against the hung server, then served from memory
        first = time.monotonic() - started
        started = time.monotonic()
        for i in range(20):
            await m.set(f"x{i}", i)
        rest = time.monotonic() - started
        assert first < 1.5
        assert rest < 0.2  # breaker open: no Redis call on the request path
        assert await m.get("k") == 2
    finally:
        redis_server.resume()
    await wait_mode(store, "redis")
    assert await m.get("k") == 2
    assert await m.get("x19") == 19


async def test_fail_closed_when_fallback_disabled(
    redis_server: RedisProcess, key_prefix: str
) -> None:
    store = fallback_store(redis_server.url, key_prefix, fallback=False)
    await store.start()
    try:
        sid = await store.open("alice")
        m = store.memory(sid, "alice")
        await m.set("k", 1)
        redis_server.kill()
        with pytest.raises(StorageUnavailableError) as err:
            await m.set("k", 2)
        assert err.value.code == "STORAGE_UNAVAILABLE"
        assert "6379" not in str(err.value) and "redis" not in str(err.value).lower()
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError):
            await m.get("k")
        assert time.monotonic() - started < 0.05  # the breaker answers at once
        health = await store.health()
        assert health.mode == "fallback" and not health.healthy
        redis_server.start()
        await wait_mode(store, "redis")
        with pytest.raises(SessionNotFoundError):  # Redis came back empty: honest
            await m.get("k")
    finally:
        await store.close()


async def test_sessions_opened_and_closed_during_outage(
    redis_server: RedisProcess, store_on: SessionStore, key_prefix: str
) -> None:
    store = store_on
    doomed = await store.open("alice")
    await store.memory(doomed, "alice").set("k", 1)
    redis_server.kill()
    born = await store.open("alice")
    await store.memory(born, "alice").set("new", True)
    assert await store.close_session(doomed, "alice")
    with pytest.raises(SessionNotFoundError):
        await store.memory(doomed, "alice").get("k")
    redis_server.start()
    await wait_mode(store, "redis")
    view = await redis_view(redis_server.url, key_prefix)
    try:
        assert await view.memory(born, "alice").get("new") is True
        with pytest.raises(SessionNotFoundError):
            await view.memory(doomed, "alice").get("k")
    finally:
        await view.close()


async def test_session_from_another_process_is_mirrored_on_first_use(
    redis_server: RedisProcess, store_on: SessionStore, key_prefix: str
) -> None:
    other = fallback_store(redis_server.url, key_prefix)
    await other.start()
    sid = await other.open("alice")
    await other.memory(sid, "alice").set("shared", "yes")
    await other.close()
    m = store_on.memory(sid, "alice")
    assert await m.get("shared") == "yes"  # first use copies it into the mirror
    redis_server.kill()
    assert await m.get("shared") == "yes"
    await m.set("more", 1)
    unknown = store_on.memory("Z" * 32, "alice")
    with pytest.raises(StorageUnavailableError):
        await unknown.get("k")


async def test_mirror_reloads_when_it_cannot_follow_redis(
    redis_server: RedisProcess, store_on: SessionStore, key_prefix: str
) -> None:
    sid = await store_on.open("alice")
    mine = store_on.memory(sid, "alice")
    await mine.set("k", 1)
    other = fallback_store(redis_server.url, key_prefix)
    await other.start()
    theirs = other.memory(sid, "alice")
    await theirs.set("from_other", 2)
    cp = await theirs.create_checkpoint()  # exists in Redis, not in this mirror
    await other.close()
    await mine.restore_checkpoint(cp)  # Redis applies it; the mirror cannot: reload
    assert await mine.get("from_other") == 2  # next use reloads the mirror from Redis
    redis_server.kill()
    assert await mine.get_all() == {"k": 1, "from_other": 2}


async def test_outage_during_write_back_keeps_serving(
    redis_server: RedisProcess, store_on: SessionStore
) -> None:
    store = store_on
    sid = await store.open("alice")
    m = store.memory(sid, "alice")
    redis_server.kill()
    for i in range(10):
        await m.set(f"k{i}", i)
    redis_server.start()
    redis_server.kill()
    for i in range(10, 20):
        await m.set(f"k{i}", i)
    redis_server.start()
    await wait_mode(store, "redis")
    assert await m.get_all() == {f"k{i}": i for i in range(20)}


async def test_recovery_never_resurrects_a_session_closed_elsewhere(
    redis_server: RedisProcess, store_on: SessionStore, key_prefix: str
) -> None:
    store = store_on
    closed_elsewhere = await store.open("alice")
    await store.memory(closed_elsewhere, "alice").set("k", 1)
    other = fallback_store(redis_server.url, key_prefix)
    await other.start()
    assert await other.close_session(closed_elsewhere, "alice")
    await other.close()
    busy = await store.open("alice")
    redis_server.pause()  # the same Redis process comes back: it lost nothing
    try:
        await store.memory(busy, "alice").set("during", 1)
    finally:
        redis_server.resume()
    await wait_mode(store, "redis")
    assert (await store.health()).write_back_sessions == 1
    view = await redis_view(redis_server.url, key_prefix)
    try:
        with pytest.raises(SessionNotFoundError):
            await view.memory(closed_elsewhere, "alice").get("k")
        assert await view.memory(busy, "alice").get("during") == 1
    finally:
        await view.close()


async def test_restarted_redis_does_not_trip_on_stale_connections(key_prefix: str) -> None:
    """Regression: pooled connections to a Redis that was restarted were handed out
    again (redis-py 8 skips its dead-connection check while maintenance notifications
    are on "auto"), so the first call on each one failed and tripped the breaker:
    one restart showed as several outages, with a write-back each."""
    server = RedisProcess(extra_args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    store = fallback_store(server.url, key_prefix)
    await store.start()
    try:
        sids = [await store.open("alice") for _ in range(4)]

        async def writes(rounds: int) -> None:
            async def one(sid: str) -> None:
                for i in range(rounds):
                    await store.memory(sid, "alice").set(f"k{i}", i)

            await asyncio.gather(*(one(sid) for sid in sids for _ in range(2)))

        await writes(5)  # several pooled connections
        server.kill()
        server.start()  # same data, restarted between two calls: no call saw it down
        await asyncio.sleep(0.1)  # let the event loop see the old sockets close
        await writes(5)
        assert (await store.health()).fallbacks == 0
        server.kill()
        await writes(3)  # an outage under load
        server.start()
        await wait_mode(store, "redis")
        await writes(5)
        health = await store.health()
        assert (health.mode, health.fallbacks, health.write_backs) == ("redis", 1, 1)
    finally:
        await store.close()
        server.cleanup()


async def test_redis_restarted_empty_between_calls_loses_nothing(
    redis_server: RedisProcess, store_on: SessionStore, key_prefix: str
) -> None:
    """Regression: Redis restarted empty so quickly that no call saw it down answered
    the next call with "no such session", and the agent lost a session this process
    still held. A changed Redis run_id now sends that call down the outage path."""
    store = store_on
    sid = await store.open("alice")
    m = store.memory(sid, "alice")
    await m.set("k", 1)
    await m.append_scratchpad("note")
    redis_server.kill()
    redis_server.start()  # empty: no persistence
    await asyncio.sleep(0.1)  # let the event loop see the old sockets close
    assert await m.get("k") == 1
    await m.set("k2", 2)
    await wait_mode(store, "redis")
    view = await redis_view(redis_server.url, key_prefix)
    try:
        assert await view.memory(sid, "alice").get_all() == {"k": 1, "k2": 2}
        assert await view.memory(sid, "alice").get_scratchpad() == ["note"]
    finally:
        await view.close()


async def test_write_back_keeps_writes_made_while_it_closes_sessions(
    redis_server: RedisProcess,
    store_on: SessionStore,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: after writing the dirty sessions back, recovery closed the sessions
    ended during the outage -- awaiting Redis with the breaker still open. A session
    opened or changed in that window was marked dirty but never written, the breaker
    closed over it, and its next call answered SESSION_NOT_FOUND (found by the soak,
    which closes sessions all the time)."""
    store = store_on
    doomed = await store.open("alice")
    redis_server.kill()
    assert await store.close_session(doomed, "alice")  # ended during the outage
    backend = store.backend
    assert isinstance(backend, FallbackBackend)
    close = backend.primary.close_session
    late: list[str] = []

    async def close_while_an_agent_writes(ref: SessionRef) -> bool:
        if not late:  # an agent arrives while recovery is closing `doomed`
            sid = await store.open("alice")
            await store.memory(sid, "alice").set("k", 1)
            late.append(sid)
        return await close(ref)

    monkeypatch.setattr(backend.primary, "close_session", close_while_an_agent_writes)
    redis_server.start()
    await wait_mode(store, "redis")
    assert late
    assert await store.memory(late[0], "alice").get("k") == 1
    view = await redis_view(redis_server.url, key_prefix)
    try:
        assert await view.memory(late[0], "alice").get("k") == 1
    finally:
        await view.close()


async def test_named_sessions_in_an_outage_never_overwrite_redis(
    redis_server: RedisProcess, store_on: SessionStore, key_prefix: str
) -> None:
    other = fallback_store(redis_server.url, key_prefix)
    await other.start()
    for name in ("used here", "only elsewhere"):
        sid, _ = await other.open_named("alice", name)
        await other.memory(sid, "alice").set("kept", name)
    await other.close()
    used, created = await store_on.open_named("alice", "used here")
    assert created is False and await store_on.memory(used, "alice").get("kept") == "used here"
    redis_server.pause()  # hung: Redis keeps its data, the breaker opens
    again, created = await store_on.open_named("alice", "used here")  # held by the mirror
    assert (again, created) == (used, False)
    await store_on.memory(used, "alice").set("outage", 1)
    with pytest.raises(StorageUnavailableError):  # Redis may hold it: not opened empty here
        await store_on.open_named("alice", "only elsewhere")
    redis_server.resume()
    await wait_mode(store_on, "redis")
    view = await redis_view(redis_server.url, key_prefix)
    try:
        elsewhere, created = await view.open_named("alice", "only elsewhere")
        assert created is False and await view.memory(elsewhere, "alice").get("kept") == (
            "only elsewhere"
        )
        assert await view.memory(used, "alice").get("outage") == 1  # written back
    finally:
        await view.close()


async def test_write_back_finishes_while_clients_keep_writing(
    redis_server: RedisProcess, store_on: SessionStore, key_prefix: str
) -> None:
    """Write-back passes until nothing is dirty; clients served from the mirror meanwhile
    dirty sessions again. Unpaced writers used to outrun the passes for good (the breaker
    never closed). From the second pass on, changes wait for the write-back instead."""
    store = store_on
    sessions = [await store.open("alice") for _ in range(5)]
    acked: dict[str, int] = {}
    writing = True

    async def writer(sid: str) -> None:
        m = store.memory(sid, "alice")
        i = 0
        while writing:
            await m.set("k", i)
            acked[sid] = i
            i += 1
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(writer(sid)) for sid in sessions]
    try:
        await asyncio.sleep(0.1)
        redis_server.kill()
        await wait_mode(store, "fallback")
        await asyncio.sleep(0.2)  # every writer is on the mirror now
        redis_server.start()
        assert await wait_mode(store, "redis", limit=5.0) < 5.0
        await asyncio.sleep(0.1)  # and back on Redis
    finally:
        writing = False
        await asyncio.gather(*tasks)
    view = await redis_view(redis_server.url, key_prefix)
    try:
        for sid in sessions:
            assert await view.memory(sid, "alice").get("k") == acked[sid]
    finally:
        await view.close()
