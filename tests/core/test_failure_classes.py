"""Every Redis failure is classified once (storage edge) and has its own behaviour:
outage -> breaker; configuration -> refused at startup, later unhealthy and a clear error
(no fallback); store full -> the write is refused, nothing changes; a script error ->
never the breaker. Real redis-server processes, configured as operators run them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from memory_core import (
    SessionStore,
    StorageFullError,
    StorageInternalError,
    StorageMisconfiguredError,
    StoreConfig,
    TaskState,
)
from memory_core.storage.base import SessionRef
from memory_core.storage.factory import compose_breaker
from memory_core.storage.fallback import CircuitBreakerBackend
from memory_core.storage.redis import RedisBackend
from memory_core.storage.redis.layout import KeyLayout
from memory_core.storage.redis.topology import redact_url
from tests.support.redis_proc import RedisProcess

pytestmark = pytest.mark.asyncio

PASSWORD = "s3cret-pw"


def store_for(url: str, prefix: str, *, fallback: bool = True) -> SessionStore:
    config = StoreConfig(key_prefix=prefix)
    primary = RedisBackend(config, url, connect_timeout=0.2, command_timeout=0.3)
    return SessionStore(compose_breaker(config, primary, fallback=fallback))


def breaker(store: SessionStore) -> CircuitBreakerBackend:
    backend = store.backend
    assert isinstance(backend, CircuitBreakerBackend)
    return backend


@pytest.fixture
def locked_redis(redis_server: RedisProcess) -> Iterator[RedisProcess]:
    """A Redis with requirepass (the fixture's own server, so the binary check applies)."""
    redis_server.stop()
    redis_server.extra_args = ["--requirepass", PASSWORD]
    redis_server.start()
    yield redis_server


async def acl_setuser(admin: aioredis.Redis, *rules: str) -> None:
    await admin.execute_command("ACL", "SETUSER", *rules)  # type: ignore[no-untyped-call]


def url(server: RedisProcess, auth: str = "", db: int = 0, scheme: str = "redis") -> str:
    return f"{scheme}://{auth}127.0.0.1:{server.port}/{db}"


async def refused_at_start(store_url: str, prefix: str) -> StorageMisconfiguredError:
    store = store_for(store_url, prefix)
    try:
        with pytest.raises(StorageMisconfiguredError) as err:
            await store.start()
    finally:
        await store.close()
    assert breaker(store).fallbacks == 0  # never taken for an outage
    return err.value


async def test_the_right_password_works(locked_redis: RedisProcess, key_prefix: str) -> None:
    store = store_for(url(locked_redis, f":{PASSWORD}@"), key_prefix)
    await store.start()
    try:
        sid = await store.open("p")
        await store.memory(sid, "p").set("k", 1)
        health = await store.health()
        assert (health.mode, health.healthy, health.failure) == ("redis", True, None)
    finally:
        await store.close()


@pytest.mark.parametrize("auth", [":wrong-pw@", "", "nobody:wrong-pw@"])
async def test_a_wrong_or_missing_password_is_refused_at_startup(
    locked_redis: RedisProcess, key_prefix: str, auth: str
) -> None:
    error = await refused_at_start(url(locked_redis, auth), key_prefix)
    assert "authentication failed" in error.cause
    line = error.operator_line()
    assert f"127.0.0.1:{locked_redis.port}/0" in line and "wrong-pw" not in line
    assert error.code == "STORAGE_MISCONFIGURED" and "retrying will not help" in error.message


async def test_an_acl_user_without_evalsha_is_refused_at_startup(
    redis_server: RedisProcess, key_prefix: str
) -> None:
    admin = aioredis.Redis.from_url(redis_server.url)
    await acl_setuser(admin, "app", "on", ">app-pw", "~*", "+@all", "-evalsha")
    await admin.aclose()
    error = await refused_at_start(url(redis_server, "app:app-pw@"), key_prefix)
    assert "permission" in error.cause and "evalsha" in error.cause
    assert "app-pw" not in error.operator_line() and "app:***@" in error.operator_line()


async def test_an_unknown_database_is_refused_at_startup(
    redis_server: RedisProcess, key_prefix: str
) -> None:
    error = await refused_at_start(url(redis_server, db=99), key_prefix)
    assert "database" in error.cause


async def test_tls_against_plain_text_is_refused_at_startup(
    redis_server: RedisProcess, key_prefix: str
) -> None:
    error = await refused_at_start(url(redis_server, scheme="rediss"), key_prefix)
    assert "TLS" in error.cause


async def test_a_port_that_is_not_redis_is_refused_at_startup(key_prefix: str) -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    web = await asyncio.start_server(http, "127.0.0.1", 0)
    port = web.sockets[0].getsockname()[1]
    try:
        error = await refused_at_start(f"redis://127.0.0.1:{port}/0", key_prefix)
    finally:
        web.close()
        await web.wait_closed()
    assert "does not speak the Redis protocol" in error.cause


async def test_passwords_are_redacted_from_every_url_form() -> None:
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("redis://u@h:1/0") == "redis://u@h:1/0"
    assert redact_url("redis+cluster://u:p@a:1,b:2") == "redis+cluster://u:***@a:1,b:2"
    assert (
        redact_url("redis+sentinel://s:1/m?sentinel_password=x&db=1")
        == "redis+sentinel://s:1/m?sentinel_password=***&db=1"
    )


@pytest.fixture
async def app_user(redis_server: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    """An ACL user ``app`` the server runs as, and an admin connection to change it."""
    admin = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await acl_setuser(admin, "app", "on", ">app-pw", "~*", "+@all")
    try:
        yield admin
    finally:
        await admin.aclose()


async def test_a_permission_revoked_later_fails_calls_without_fallback(
    redis_server: RedisProcess, app_user: aioredis.Redis, key_prefix: str
) -> None:
    store = store_for(url(redis_server, "app:app-pw@"), key_prefix)
    await store.start()
    try:
        sid = await store.open("p")
        memory = store.memory(sid, "p")
        await memory.set("k", 1)
        await acl_setuser(app_user, "app", "-evalsha", "-eval")
        with pytest.raises(StorageMisconfiguredError):
            await memory.set("k", 2)  # not served from the mirror
        with pytest.raises(StorageMisconfiguredError):
            await memory.get("k")
        health = await store.health()
        assert (health.mode, health.healthy, health.failure) == ("redis", False, "configuration")
        assert health.cause is not None and "permission" in health.cause
        assert breaker(store).fallbacks == 0
        await acl_setuser(app_user, "app", "+evalsha", "+eval")
        # health re-checks by itself: no call may come while readiness is failing
        health = await store.health()
        assert (health.healthy, health.failure) == (True, None)
        assert (await memory.get("k")) == 1  # the refused write changed nothing
    finally:
        await store.close()


async def test_a_full_store_refuses_the_write_and_changes_nothing(
    redis_server: RedisProcess, key_prefix: str
) -> None:
    store = store_for(redis_server.url, key_prefix)
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await store.start()
    try:
        sid = await store.open("p")
        memory = store.memory(sid, "p")
        await memory.set("k", "before")
        vars_key = KeyLayout(key_prefix).session_keys(sid)[1]
        before = await raw.hgetall(vars_key)
        await raw.config_set("maxmemory-policy", "noeviction")
        await raw.config_set("maxmemory", "1")  # already over: every growing write refused
        with pytest.raises(StorageFullError) as err:
            await memory.set("k", "after")
        assert err.value.code == "STORAGE_FULL" and "full" in err.value.message
        with pytest.raises(StorageFullError):
            await memory.set("new", "x")
        assert await raw.hgetall(vars_key) == before  # nothing changed in Redis
        assert (await memory.get("k")) == "before"  # reads still work, from Redis
        health = await store.health()
        assert (health.mode, health.healthy, health.failure) == ("redis", True, "store_full")
        assert breaker(store).fallbacks == 0  # the breaker stayed closed
        await raw.config_set("maxmemory", "0")
        await memory.set("k", "after")
        assert (await store.health()).failure is None
        assert await raw.hget(vars_key, "k") == '"after"'
    finally:
        await raw.config_set("maxmemory", "0")
        await raw.aclose()
        await store.close()


@pytest.mark.parametrize("fallback", [True, False])
async def test_a_script_error_never_opens_the_breaker(
    redis_server: RedisProcess, key_prefix: str, fallback: bool
) -> None:
    store = store_for(redis_server.url, key_prefix, fallback=fallback)
    await store.start()
    try:
        sid = await store.open("p")
        ref = SessionRef(sid, "p")
        await store.memory(sid, "p").append_scratchpad("note")
        # past the engine's validation: Redis's LRANGE refuses an offset of 1e30
        with pytest.raises(StorageInternalError) as err:
            await store.backend.get_scratchpad(ref, 10**30, 1)
        assert err.value.code == "INTERNAL_ERROR"
        health = await store.health()
        assert (health.mode, health.healthy, health.failure) == ("redis", True, None)
        assert breaker(store).fallbacks == 0
        # another caller is served from Redis as before
        other = await store.open("q")
        await store.memory(other, "q").set("k", 1)
        entries, total = await store.memory(sid, "p").get_scratchpad_page(0, 10)
        assert (entries, total) == (["note"], 1)
    finally:
        await store.close()


# --- least privilege: no INFO, no @dangerous on any path ------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_acl(prefix: str, *, info: bool) -> list[str]:
    """The user ``wm`` of README's ACL line, for this test's key prefix."""
    line = next(x for x in README.read_text().splitlines() if x.startswith("ACL SETUSER wm "))
    rules = line.split()[2:]
    rules = [r.replace("wm:", f"{prefix}:").replace(">CHANGE-ME", ">wm-pw") for r in rules]
    return rules if info else [r for r in rules if r != "+info"]


ACLS = {
    "documented": lambda prefix: documented_acl(prefix, info=True),
    "documented-without-info": lambda prefix: documented_acl(prefix, info=False),
    "all-but-dangerous": lambda prefix: ["wm", "on", ">wm-pw", "~*", "&*", "+@all", "-@dangerous"],
}


async def wait_for_redis(store: SessionStore) -> None:
    for _ in range(500):  # bounded: the probe backs off to 1 s at most
        if (await store.health()).mode == "redis":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the store did not switch back to Redis")


@pytest.mark.parametrize("acl", list(ACLS))
async def test_every_path_works_under_least_privilege(
    redis_server: RedisProcess, key_prefix: str, acl: str
) -> None:
    redis_server.stop()
    redis_server.extra_args = ["--user", *ACLS[acl](key_prefix)]
    redis_server.start()
    store_url = url(redis_server, "wm:wm-pw@")
    admin = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    store, other = store_for(store_url, key_prefix), store_for(store_url, key_prefix)
    await store.start()  # not refused: INFO is optional
    await other.start()
    try:
        sid, clean = await store.open("p"), await store.open("p")
        m = store.memory(sid, "p")
        await m.set("a", 1, ttl_seconds=100)
        await m.set("b", 2)
        assert await m.exists("a") and await m.list_keys() == ["a", "b"]
        assert await m.get_all() == {"a": 1, "b": 2} and await m.delete("b")
        await m.set_task_state(TaskState(task_id="t"))
        assert (await m.get_task_state()) is not None
        await m.append_scratchpad("note")
        assert await m.get_scratchpad_page(0, 5) == (["note"], 1)
        cp = await m.create_checkpoint("x")
        assert [c.checkpoint_id for c in await m.list_checkpoints()] == [cp]
        await m.restore_checkpoint(cp)
        assert (await m.usage()).keys == 1 and await m.touch() > 0
        assert await other.memory(sid, "p").get("a") == 1  # copied in by another process
        await store.memory(clean, "p").set("c", 3)
        # an outage with a restart that loses everything
        redis_server.kill()
        await m.set("d", 4)  # served from the mirror
        redis_server.start()
        await wait_for_redis(store)
        keys = KeyLayout(key_prefix)
        assert await admin.hgetall(keys.session_keys(sid)[1]) == {"a": "1", "d": "4"}
        assert await admin.hgetall(keys.session_keys(clean)[1]) == {"c": "3"}
        # a checkpoint of an ended session restored into a new one (cp_read), clear, close
        assert await store.close_session(sid, "p")
        fresh = store.memory(await store.open("p"), "p")
        await fresh.restore_checkpoint(cp)
        assert await fresh.get_all() == {"a": 1}
        assert await fresh.clear() == 1 and not await fresh.delete_checkpoint(cp)
        health = await store.health()
        assert (health.healthy, health.failure) == (True, None)
    finally:
        await admin.aclose()
        await other.close()
        await store.close()


async def test_a_full_store_refuses_writes_whose_first_step_frees_memory(
    redis_server: RedisProcess, key_prefix: str
) -> None:
    """Redis lets a script through once it wrote anything: a set that first drops an
    expired key (HDEL), an open (DEL) and the write-back (DEL) are refused all the same."""
    store = store_for(redis_server.url, key_prefix)
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await store.start()
    try:
        sid = await store.open("p")
        memory = store.memory(sid, "p")
        await memory.set("old", "x", ttl_seconds=100)
        _, vars_key, exp_key, *_ = KeyLayout(key_prefix).session_keys(sid)
        await raw.zadd(exp_key, {"old": 1})  # expired long ago: the next set purges it first
        await raw.config_set("maxmemory-policy", "noeviction")
        await raw.config_set("maxmemory", "1")
        with pytest.raises(StorageFullError):
            await memory.set("k", "v")
        assert await raw.hgetall(vars_key) == {"old": '"x"'}  # not even the purge ran
        with pytest.raises(StorageFullError):
            await store.open("p")
        copy = await store.backend.export_session(sid)
        assert copy is not None
        copy.variables = {"new": ('"y"', None)}
        with pytest.raises(StorageFullError):
            await breaker(store).primary.import_session(copy, only_if_missing=False)
        # the export reclaimed the expired key (freeing memory is allowed); the refused
        # import wrote nothing (its first step, a DEL, would have let it through)
        assert await raw.hgetall(vars_key) == {}
        assert await raw.exists(KeyLayout(key_prefix).session_keys(sid)[0]) == 1
        assert breaker(store).fallbacks == 0
    finally:
        await raw.config_set("maxmemory", "0")
        await raw.aclose()
        await store.close()


async def test_write_back_waits_while_the_store_is_full(
    redis_server: RedisProcess, key_prefix: str
) -> None:
    store = store_for(redis_server.url, key_prefix)
    await store.start()
    try:
        sid = await store.open("p")
        memory = store.memory(sid, "p")
        await memory.set("a", 1)
        redis_server.kill()
        await memory.set("b", 2)  # the outage: served from the mirror
        redis_server.extra_args = ["--maxmemory", "1", "--maxmemory-policy", "noeviction"]
        redis_server.start()
        raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
        try:
            vars_key = KeyLayout(key_prefix).session_keys(sid)[1]
            for _ in range(20):  # bounded: each probe's write-back is refused as full
                assert (await store.health()).mode == "fallback"
                assert await raw.hgetall(vars_key) == {}  # nothing written past maxmemory
                await asyncio.sleep(0.05)
            assert await memory.get_all() == {"a": 1, "b": 2}
            await raw.config_set("maxmemory", "0")
            await wait_for_redis(store)
            assert await raw.hgetall(vars_key) == {"a": "1", "b": "2"}
        finally:
            await raw.aclose()
    finally:
        await store.close()
