"""The contract every store passes: each entry of the store table (tests/support/stores.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from memory_core import (
    InvalidArgumentError,
    InvalidKeyError,
    InvalidValueError,
    LimitExceededError,
    Limits,
    NotFoundError,
    SessionNotFoundError,
    TaskState,
    TaskStatus,
    ValueTooLargeError,
    WorkingMemory,
)
from memory_core.keys import principal_tag, session_tag
from memory_core.storage.base import SessionRef
from memory_core.storage.snapshot import Snapshot
from tests.support.redis_keys import prefixed_keys
from tests.support.stores import Harness, HarnessFactory

pytestmark = pytest.mark.asyncio


async def open_memory(h: Harness, principal: str = "alice") -> WorkingMemory:
    sid = await h.store.open(principal)
    return h.store.memory(sid, principal)


async def redis_keys(h: Harness) -> list[str]:
    if h.raw is None:
        return []
    return await prefixed_keys(h.raw, h.prefix)


# variables -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -7, 3.25, 10**30, "", "héllo ✓ 🧠", [], {}, [1, "a", None],
     {"nested": {"list": [1, {"x": "y"}]}, "n": None}],
)  # fmt: skip
async def test_set_get_roundtrip_every_json_type(harness: Harness, value: object) -> None:
    m = await open_memory(harness)
    await m.set("k", value)
    assert await m.get("k", default="absent") == value
    entry = await m.get_entry("k")
    assert entry is not None and entry.value == value and entry.ttl_ms is None


async def test_get_missing_returns_default(harness: Harness) -> None:
    m = await open_memory(harness)
    assert await m.get("nope") is None
    assert await m.get("nope", default=42) == 42
    assert await m.get_entry("nope") is None
    assert not await m.exists("nope")
    assert not await m.delete("nope")


async def test_overwrite_delete_exists(harness: Harness) -> None:
    m = await open_memory(harness)
    await m.set("a", 1)
    await m.set("a", {"v": 2})
    assert await m.get("a") == {"v": 2}
    assert await m.exists("a")
    assert await m.delete("a")
    assert not await m.exists("a")
    assert await m.get("a") is None
    assert (await m.usage()).keys == 0


async def test_list_keys_get_all_clear(harness: Harness) -> None:
    m = await open_memory(harness)
    for key in ["b", "a", "user:1", "user:2"]:
        await m.set(key, key.upper())
    assert await m.list_keys() == ["a", "b", "user:1", "user:2"]
    assert await m.list_keys("user:*") == ["user:1", "user:2"]
    assert await m.list_keys("?") == ["a", "b"]
    assert await m.list_keys("[a]*") == ["a"]
    assert await m.list_keys("[!a]") == ["b"]
    assert await m.get_all() == {"a": "A", "b": "B", "user:1": "USER:1", "user:2": "USER:2"}
    assert await m.get_all("user:?") == {"user:1": "USER:1", "user:2": "USER:2"}
    await m.append_scratchpad("kept")
    await m.set_task_state(TaskState(task_id="t"))
    assert await m.clear() == 4
    assert await m.list_keys() == []
    assert await m.get_scratchpad() == ["kept"]
    assert await m.get_task_state() is not None
    assert await m.clear() == 0


async def test_glob_metacharacters_are_data_in_keys(harness_factory: HarnessFactory) -> None:
    m = await open_memory(await harness_factory(Limits()))
    weird = ["*", "?", "[x]", "a\\b", "{tag}", "..", "../etc", "wm:{other}:vars", "a*b"]
    for key in weird:
        await m.set(key, key)
    for key in weird:
        assert await m.get(key) == key
    assert await m.list_keys("\\*") == ["*"]
    assert await m.list_keys("a\\*b") == ["a*b"]
    assert sorted(await m.list_keys()) == sorted(weird)


# TTL ----------------------------------------------------------------------------------
async def test_ttl_expiry_is_consistent_across_reads(harness: Harness) -> None:
    m = await open_memory(harness)
    await m.set("short", 1, ttl_seconds=0.15)
    await m.set("long", 2, ttl_seconds=60)
    await m.set("forever", 3)
    entry = await m.get_entry("short")
    assert entry is not None and 0 < (entry.ttl_ms or 0) <= 150
    await harness.advance(0.2)
    assert await m.get("short") is None
    assert not await m.exists("short")
    assert await m.list_keys() == ["forever", "long"]
    assert set(await m.get_all()) == {"forever", "long"}
    entries = await m.get_entries()
    assert entries["forever"].ttl_ms is None
    assert 0 < (entries["long"].ttl_ms or 0) <= 60_000
    assert (await m.usage()).keys == 2


async def test_overwrite_without_ttl_clears_ttl(harness: Harness) -> None:
    m = await open_memory(harness)
    await m.set("k", 1, ttl_seconds=0.1)
    await m.set("k", 2)
    await harness.advance(0.15)
    assert await m.get("k") == 2
    await m.set("k", 3, ttl_seconds=0.1)
    await harness.advance(0.15)
    assert await m.get("k") is None


@pytest.mark.parametrize("ttl", [0, -1, -0.5, 10**12, True, "10", float("nan")])
async def test_bad_ttl_is_rejected_and_changes_nothing(harness: Harness, ttl: object) -> None:
    m = await open_memory(harness)
    await m.set("k", "before")
    with pytest.raises(InvalidArgumentError):
        await m.set("k", "after", ttl_seconds=ttl)  # type: ignore[arg-type]
    assert await m.get("k") == "before"


async def test_expired_keys_free_their_quota(harness: Harness) -> None:
    m = await open_memory(harness)
    for i in range(5):
        await m.set(f"k{i}", i, ttl_seconds=0.1)
    with pytest.raises(LimitExceededError):
        await m.set("one-more", 1)
    await harness.advance(0.15)
    await m.set("one-more", 1)
    usage = await m.usage()
    assert usage.keys == 1


# validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key", ["", "x" * 33, "new\nline", "tab\t", "nul\x00", "bell\x07", "\ud800", 5, None, ["k"]]
)
async def test_invalid_keys_rejected(harness: Harness, key: object) -> None:
    m = await open_memory(harness)
    with pytest.raises(InvalidKeyError):
        await m.set(key, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        await m.get(key)  # type: ignore[arg-type]
    assert await m.list_keys() == []


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), {1: "x"}, {"a": {1, 2}}, b"bytes", object(), "\ud800"]
)
async def test_non_json_values_rejected(harness: Harness, value: object) -> None:
    m = await open_memory(harness)
    with pytest.raises(InvalidValueError):
        await m.set("k", value)
    assert not await m.exists("k")


async def test_too_deep_value_rejected(harness: Harness) -> None:
    m = await open_memory(harness)
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(InvalidValueError):
        await m.set("k", deep)


@pytest.mark.parametrize("pattern", ["", 5, "x" * 600, "a\nb"])
async def test_bad_patterns_rejected(harness: Harness, pattern: object) -> None:
    m = await open_memory(harness)
    with pytest.raises(InvalidArgumentError):
        await m.list_keys(pattern)  # type: ignore[arg-type]


# limits ---------------------------------------------------------------------------------
async def test_max_keys(harness: Harness) -> None:
    m = await open_memory(harness)
    for i in range(5):
        await m.set(f"k{i}", i)
    with pytest.raises(LimitExceededError) as err:
        await m.set("k5", 5)
    assert err.value.limit == "max_keys" and err.value.maximum == 5 and err.value.current == 5
    assert "max_keys" in str(err.value) and "5" in str(err.value)
    await m.set("k0", "overwrite is fine")
    assert not await m.exists("k5")


async def test_max_value_bytes(harness: Harness) -> None:
    m = await open_memory(harness)
    with pytest.raises(ValueTooLargeError) as err:
        await m.set("big", "x" * 200)
    assert err.value.code == "VALUE_TOO_LARGE"
    assert not await m.exists("big")
    # multi-byte characters count in bytes, not characters
    with pytest.raises(ValueTooLargeError):
        await m.set("big", "é" * 50)


async def test_max_session_bytes(harness: Harness) -> None:
    m = await open_memory(harness)
    for i in range(4):
        await m.set(f"k{i}", "x" * 90)
    for _ in range(4):
        await m.append_scratchpad("y" * 60)
    usage = await m.usage()
    assert usage.bytes == 4 * (2 + 92) + 4 * 60
    big = harness.store.config.limits.max_session_bytes
    assert usage.bytes < big


async def test_session_bytes_limit_enforced(harness_factory: HarnessFactory) -> None:
    h = await harness_factory(Limits(max_session_bytes=1024, max_value_bytes=600))
    m = await open_memory(h)
    await m.set("a", "x" * 500)
    with pytest.raises(LimitExceededError) as err:
        await m.set("b", "x" * 580)
    assert err.value.limit == "max_session_bytes" and err.value.maximum == 1024
    assert not await m.exists("b")
    await m.set("a", "x" * 580)  # replacing frees the old value's bytes first
    await m.append_scratchpad("y" * 400)
    with pytest.raises(LimitExceededError):
        await m.append_scratchpad("y" * 100)
    with pytest.raises(LimitExceededError):
        await m.set_task_state(TaskState(task_id="t", description="d" * 200))
    assert await m.get_task_state() is None


async def test_scratchpad_limits(harness: Harness) -> None:
    m = await open_memory(harness)
    with pytest.raises(ValueTooLargeError):
        await m.append_scratchpad("z" * 65)
    for i in range(4):
        assert await m.append_scratchpad(f"step {i}") == i + 1
    with pytest.raises(LimitExceededError) as err:
        await m.append_scratchpad("one too many")
    assert err.value.limit == "max_scratchpad_entries"
    assert await m.get_scratchpad() == [f"step {i}" for i in range(4)]
    with pytest.raises(InvalidArgumentError):
        await m.append_scratchpad("")
    with pytest.raises(InvalidArgumentError):
        await m.append_scratchpad(5)  # type: ignore[arg-type]


async def test_scratchpad_pages(harness: Harness) -> None:
    m = await open_memory(harness)
    for i in range(4):
        await m.append_scratchpad(f"s{i}")
    assert await m.get_scratchpad_page(1, 2) == (["s1", "s2"], 4)
    assert await m.get_scratchpad_page(3, 10) == (["s3"], 4)
    assert await m.get_scratchpad_page(9, 1) == ([], 4)


# task state -------------------------------------------------------------------------------
async def test_task_state_roundtrip(harness: Harness) -> None:
    m = await open_memory(harness)
    assert await m.get_task_state() is None
    stored = await m.set_task_state(
        TaskState(
            task_id="build",
            description="compile",
            status=TaskStatus.IN_PROGRESS,
            current_step=2,
            total_steps=5,
            progress=0.4,
            metadata={"files": ["a.py"]},
        )
    )
    assert stored.updated_at is not None
    got = await m.get_task_state()
    assert got == stored
    await m.set_task_state(TaskState(task_id="build", status="completed", progress=1.0))
    got = await m.get_task_state()
    assert got is not None and got.status == TaskStatus.COMPLETED and got.description is None


async def test_task_state_validation() -> None:
    from pydantic import ValidationError

    for bad in [
        {"task_id": "", "status": "pending"},
        {"task_id": "t", "status": "paused"},
        {"task_id": "t", "progress": 1.5},
        {"task_id": "t", "current_step": -1},
        {"task_id": "t", "total_steps": -2},
        {"task_id": "t", "unknown": 1},
    ]:
        with pytest.raises(ValidationError):
            TaskState.model_validate(bad)


# sessions --------------------------------------------------------------------------------
async def test_sessions_are_isolated(harness: Harness) -> None:
    a = await open_memory(harness, "alice")
    b = await open_memory(harness, "alice")
    await a.set("k", "a")
    assert await b.get("k") is None
    assert await b.list_keys("*") == []


async def test_other_principal_cannot_use_session(harness: Harness) -> None:
    a = await open_memory(harness, "alice")
    await a.set("secret", 1)
    intruder = harness.store.memory(a.session_id, "mallory")
    for call in (
        intruder.get("secret"),
        intruder.set("secret", 2),
        intruder.list_keys(),
        intruder.append_scratchpad("x"),
        intruder.create_checkpoint(),
        intruder.usage(),
    ):
        with pytest.raises(SessionNotFoundError):
            await call
    assert not await harness.store.close_session(a.session_id, "mallory")
    assert await a.get("secret") == 1


async def test_unknown_session(harness: Harness) -> None:
    m = harness.store.memory("A" * 32, "alice")
    with pytest.raises(SessionNotFoundError):
        await m.get("k")
    with pytest.raises(SessionNotFoundError):
        harness.store.memory("../../etc", "alice")


async def test_lease_expires_idle_session(harness: Harness) -> None:
    sid = await harness.store.open("alice", lease_seconds=1)
    m = harness.store.memory(sid, "alice")
    await m.set("k", 1)
    await harness.advance(0.6)
    assert await m.get("k") == 1  # refreshes the lease
    await harness.advance(0.6)
    assert await m.get("k") == 1
    await harness.advance(1.1)
    with pytest.raises(SessionNotFoundError):
        await m.get("k")
    assert [
        k for k in await redis_keys(harness) if not k.endswith(":cpm") and ":cp:" not in k
    ] == []


async def test_teardown_removes_live_state_atomically(harness: Harness) -> None:
    m = await open_memory(harness)
    await m.set("k", 1, ttl_seconds=100)
    await m.append_scratchpad("s")
    await m.set_task_state(TaskState(task_id="t"))
    cp = await m.create_checkpoint("before close")
    assert await harness.store.close_session(m.session_id, "alice")
    with pytest.raises(SessionNotFoundError):
        await m.get("k")
    assert not await harness.store.close_session(m.session_id, "alice")
    left = await redis_keys(harness)
    # what stays: the checkpoints, the principal's index that finds them after a restart,
    # and the tombstone (one lease) that keeps a mirror from putting the session back
    assert all(
        k.endswith((":cpm", ":rcp", ":rcpm", ":meta:closed")) or ":cp:" in k for k in left
    ), left
    if harness.raw is not None:
        assert any(cp in k for k in left)
        tombstone = next(k for k in left if k.endswith(":meta:closed"))
        assert 0 < await harness.raw.pttl(tombstone) <= harness.store.config.lease_seconds * 1000


async def test_every_redis_key_has_a_ttl_within_the_lease(harness: Harness) -> None:
    if harness.raw is None:
        pytest.skip("inspects Redis")
    m = await open_memory(harness)
    await m.set("a", 1)
    await m.set("b", 2, ttl_seconds=5)
    await m.append_scratchpad("s")
    await m.set_task_state(TaskState(task_id="t"))
    await m.create_checkpoint()
    lease_ms = harness.store.config.lease_seconds * 1000
    retention_ms = harness.store.config.checkpoint_retention_seconds * 1000
    keys = await redis_keys(harness)
    assert len(keys) == 8
    index = {f"{harness.prefix}:{{{principal_tag('alice')}}}:{name}" for name in ("rcp", "rcpm")}
    assert index <= set(keys)
    for key in keys:
        if key not in index:
            assert key.startswith(f"{harness.prefix}:{{{session_tag(m.session_id)}}}:")
        pttl = await harness.raw.pttl(key)
        assert pttl > 0, key
        kept = key.endswith((":cpm", ":rcp", ":rcpm")) or ":cp:" in key
        limit = retention_ms if kept else lease_ms
        assert pttl <= limit, key


async def test_max_sessions_per_process(harness: Harness) -> None:
    for _ in range(50):
        await harness.store.open("alice")
    with pytest.raises(LimitExceededError) as err:
        await harness.store.open("alice")
    assert err.value.limit == "max_sessions"


async def test_max_sessions_per_principal_leaves_room_for_others(
    harness: Harness, harness_factory: HarnessFactory
) -> None:
    """One principal filling its share gets a principal-scoped error; another principal
    still opens sessions until the process limit, which is reported as the process's."""
    limits = harness.store.config.limits.model_copy(
        update={"max_sessions": 5, "max_sessions_per_principal": 3}
    )
    h = await harness_factory(limits)
    alice = [await h.store.open("alice") for _ in range(3)]
    with pytest.raises(LimitExceededError) as err:
        await h.store.open("alice")
    assert (err.value.limit, err.value.scope, err.value.maximum, err.value.current) == (
        "max_sessions_per_principal",
        "principal",
        3,
        3,
    )
    assert "is 3 per principal and your identity is at 3" in err.value.message
    await h.store.open("bob")
    await h.store.open("bob")
    with pytest.raises(LimitExceededError) as err:
        await h.store.open("bob")
    assert (err.value.limit, err.value.scope, err.value.current) == ("max_sessions", "process", 5)
    assert "per process and this server (all clients together) is at 5" in err.value.message
    # a closed session gives its slot back to its principal
    assert await h.store.close_session(alice[0], "alice")
    await h.store.open("alice")
    # bob failing to close alice's session does not free alice's share
    assert not await h.store.close_session(alice[1], "bob")
    with pytest.raises(LimitExceededError):
        await h.store.open("alice")


async def test_usage_reports_against_limits(harness: Harness) -> None:
    m = await open_memory(harness)
    await m.set("abc", "xyz")
    await m.append_scratchpad("hello")
    await m.create_checkpoint()
    usage = await m.usage()
    assert usage.keys == 1
    assert usage.bytes == len("abc") + len('"xyz"') + len("hello")
    assert usage.scratchpad_entries == 1
    assert usage.checkpoints == 1
    assert usage.lease_seconds == harness.store.config.lease_seconds


# checkpoints -------------------------------------------------------------------------------
async def test_checkpoint_restore_replaces_everything(harness: Harness) -> None:
    m = await open_memory(harness)
    await m.set("a", 1)
    await m.set("t", "temp", ttl_seconds=30)
    await m.append_scratchpad("one")
    await m.set_task_state(TaskState(task_id="t", current_step=1))
    cp = await m.create_checkpoint("step 1")
    assert cp.startswith("ck_")
    await m.set("a", 2)
    await m.set("b", 3)
    await m.delete("t")
    await m.append_scratchpad("two")
    await m.set_task_state(TaskState(task_id="t", current_step=2))
    await m.restore_checkpoint(cp)
    entries = await m.get_entries()
    assert {k: e.value for k, e in entries.items()} == {"a": 1, "t": "temp"}
    assert entries["a"].ttl_ms is None
    assert 0 < (entries["t"].ttl_ms or 0) <= 30_000
    assert await m.get_scratchpad() == ["one"]
    task = await m.get_task_state()
    assert task is not None and task.current_step == 1
    usage = await m.usage()
    assert usage.bytes == 1 + 1 + 1 + len('"temp"') + 3 + len(task.model_dump_json())


async def test_checkpoint_of_empty_session(harness: Harness) -> None:
    m = await open_memory(harness)
    cp = await m.create_checkpoint()
    await m.set("a", 1)
    await m.append_scratchpad("x")
    await m.set_task_state(TaskState(task_id="t"))
    await m.restore_checkpoint(cp)
    assert await m.get_all() == {}
    assert await m.get_scratchpad() == []
    assert await m.get_task_state() is None
    assert (await m.usage()).bytes == 0


async def test_checkpoint_list_delete_and_eviction(harness: Harness) -> None:
    m = await open_memory(harness)
    ids = []
    for i in range(3):
        await m.set("i", i)
        ids.append(await m.create_checkpoint(f"cp{i}"))
        await harness.advance(0.003)
    listed = await m.list_checkpoints()
    assert [c.checkpoint_id for c in listed] == ids
    assert [c.label for c in listed] == ["cp0", "cp1", "cp2"]
    assert all(c.size > 0 for c in listed)
    created = await m.create_checkpoint_info("cp3")
    assert created.evicted == [ids[0]]
    listed = await m.list_checkpoints()
    assert [c.checkpoint_id for c in listed] == [*ids[1:], created.checkpoint_id]
    with pytest.raises(NotFoundError):
        await m.restore_checkpoint(ids[0])
    assert await m.delete_checkpoint(ids[1])
    assert not await m.delete_checkpoint(ids[1])
    with pytest.raises(NotFoundError):
        await m.restore_checkpoint(ids[1])
    await m.restore_checkpoint(ids[2])
    assert await m.get("i") == 2


@pytest.mark.parametrize(
    "bad_id", ["", "nope", "ck_", "ck_" + "A" * 32 + ".short", "ck_../../x.AAAAAAAAAAAAAAAAAAAAAA"]
)
async def test_unknown_checkpoint_ids(harness: Harness, bad_id: str) -> None:
    m = await open_memory(harness)
    await m.set("a", 1)
    with pytest.raises(NotFoundError):
        await m.restore_checkpoint(bad_id)
    assert not await m.delete_checkpoint(bad_id)
    assert await m.get("a") == 1


async def test_checkpoint_belongs_to_its_session(harness: Harness) -> None:
    a = await open_memory(harness, "alice")
    b = await open_memory(harness, "alice")
    await a.set("a", 1)
    cp = await a.create_checkpoint()
    await b.set("b", 2)
    with pytest.raises(NotFoundError) as err:
        await b.restore_checkpoint(cp)
    unknown = "ck_" + a.session_id + ".AAAAAAAAAAAAAAAAAAAAAA"
    with pytest.raises(NotFoundError) as err2:
        await b.restore_checkpoint(unknown)
    assert str(err.value) == str(err2.value)
    assert [c.checkpoint_id for c in await b.list_checkpoints()] == []
    assert not await b.delete_checkpoint(cp)
    assert await b.get_all() == {"b": 2}


async def test_retained_checkpoint_recovers_into_new_session_of_same_principal(
    harness: Harness,
) -> None:
    a = await open_memory(harness, "alice")
    await a.set("plan", ["x", "y"])
    await a.append_scratchpad("thought")
    cp = await a.create_checkpoint("recover me")
    await harness.store.close_session(a.session_id, "alice")
    mallory = await open_memory(harness, "mallory")
    with pytest.raises(NotFoundError):
        await mallory.restore_checkpoint(cp)
    assert await mallory.get_all() == {}
    b = await open_memory(harness, "alice")
    await b.restore_checkpoint(cp)
    assert await b.get_all() == {"plan": ["x", "y"]}
    assert await b.get_scratchpad() == ["thought"]


async def test_restore_is_atomic_under_concurrent_writers(harness: Harness) -> None:
    m = await open_memory(harness)
    await m.set("a", "old")
    await m.set("b", "old")
    cp = await m.create_checkpoint()
    await m.set("a", "new")
    await m.set("b", "new")

    async def reader() -> list[tuple[object, object]]:
        seen = []
        for _ in range(30):
            both = await m.get_all()
            seen.append((both.get("a"), both.get("b")))
        return seen

    results = await asyncio.gather(reader(), m.restore_checkpoint(cp), reader())
    for seen in (results[0], results[2]):
        assert all(a == b for a, b in seen), seen  # never a mix of old and new
    assert await m.get_all() == {"a": "old", "b": "old"}


# concurrency ---------------------------------------------------------------------------
async def test_200_concurrent_appends_and_sets_lose_nothing(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory(Limits())
    m = await open_memory(h)
    await asyncio.gather(
        *(m.append_scratchpad(f"e{i}") for i in range(200)),
        *(m.set(f"k{i}", i) for i in range(200)),
    )
    assert sorted(await m.get_scratchpad()) == sorted(f"e{i}" for i in range(200))
    assert await m.get_all() == {f"k{i}": i for i in range(200)}
    usage = await m.usage()
    assert usage.keys == 200 and usage.scratchpad_entries == 200


async def test_two_stores_on_one_backend_never_see_each_others_sessions(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory(Limits())
    other = await harness_factory(Limits(), share=h)
    a = await open_memory(h)
    b = await open_memory(other)
    await a.set("k", "a")
    await b.set("k", "b")
    assert await a.get("k") == "a" and await b.get("k") == "b"
    with pytest.raises(SessionNotFoundError):
        await other.store.memory(a.session_id, "mallory").get("k")


# copying whole sessions ------------------------------------------------------------------
async def test_export_import_roundtrip(harness: Harness) -> None:
    m = await open_memory(harness)
    await m.set("a", [1, 2])
    await m.set("t", "x", ttl_seconds=50)
    await m.append_scratchpad("p")
    await m.set_task_state(TaskState(task_id="t"))
    first = await m.create_checkpoint("one")
    second = await m.create_checkpoint("two")
    backend = harness.store.backend
    state = await backend.export_session(m.session_id)
    assert state is not None and state.principal == "alice"
    assert [c.checkpoint_id for c in state.checkpoints] == [first, second]
    assert not await backend.import_session(state, only_if_missing=True)
    await m.set("a", "changed")
    await m.delete_checkpoint(first)
    assert await backend.import_session(state, only_if_missing=False)
    assert await m.get("a") == [1, 2]
    assert [c.checkpoint_id for c in await m.list_checkpoints()] == [first, second]
    assert [c.label for c in await m.list_checkpoints()] == ["one", "two"]
    entry = await m.get_entry("t")
    assert entry is not None and 0 < (entry.ttl_ms or 0) <= 50_000
    assert await m.get_scratchpad() == ["p"]
    usage = await m.usage()
    assert usage.keys == 2 and usage.checkpoints == 2
    assert await backend.export_session("Q" * 32) is None
    await harness.store.close_session(m.session_id, "alice")
    assert await backend.export_session(m.session_id) is None
    assert await backend.import_session(state, only_if_missing=True)
    assert await m.get("a") == [1, 2]


async def test_a_page_reads_only_its_own_values(
    harness: Harness, harness_factory: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paging through many variables reads each value once, a page at a time: the whole
    session is never loaded (items) and no store call returns more than one page."""
    limits = harness.store.config.limits.model_copy(
        update={"max_keys": 200, "max_value_bytes": 1000, "max_session_bytes": 1024 * 1024}
    )
    h = await harness_factory(limits)
    m = await open_memory(h)
    for i in range(60):
        await m.set(f"k{i:03}", "x" * 500)  # 4 + 502 stored bytes each
    for i in range(5):
        await m.set(f"other{i}", 1)
    backend = h.store.backend
    returned: list[int] = []
    real_values_of = backend.values_of

    async def no_items(*args: object) -> object:
        raise AssertionError("a page must not load the whole session")

    async def values_of(ref: SessionRef, keys: list[str], max_bytes: int) -> list[Any]:
        assert len(keys) <= 10
        got = await real_values_of(ref, keys, max_bytes)
        returned.append(len(got))
        return got

    monkeypatch.setattr(backend, "items", no_items)
    monkeypatch.setattr(backend, "values_of", values_of)
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page, more = await m.get_page("k*", after, 10, 2048)
        assert len(page) == (4 if more else len(page)) and page
        assert all(e.value == "x" * 500 for e in page.values())
        seen += list(page)
        pages += 1
        if pages == 3:
            assert await m.delete("k013")  # deleted ahead of the walk: skipped
        if not more:
            break
        after = list(page)[-1]
    assert seen == [f"k{i:03}" for i in range(60) if i != 13]
    assert max(returned) <= 5  # the store stopped at the byte budget, not at 10 keys
    # one entry larger than the whole budget still comes, alone
    await m.set("k0000", "y" * 900)
    page, more = await m.get_page("k*", None, 10, 100)
    assert list(page) == ["k000"] and more
    page, more = await m.get_page("k*", "k000", 10, 100)
    assert list(page) == ["k0000"] and more


async def test_retained_checkpoint_bytes_are_bounded_per_principal_and_process(
    harness: Harness, harness_factory: HarnessFactory
) -> None:
    """Open, fill, checkpoint, close, repeat: checkpoints outlive their sessions, so the
    bytes a principal keeps this way are bounded (refused past the limit), apart from
    every other principal's, and the process's total is bounded too."""
    limits = harness.store.config.limits.model_copy(
        update={
            "max_value_bytes": 1000,
            "max_retained_bytes_per_principal": 4000,
            "max_retained_bytes": 7000,
        }
    )
    h = await harness_factory(limits)

    async def cycle(principal: str) -> str:
        m = await open_memory(h, principal)
        await m.set("k", "x" * 900)
        checkpoint = await m.create_checkpoint()
        assert await h.store.close_session(m.session_id, principal)
        return checkpoint

    kept = [await cycle("alice") for _ in range(4)]  # about 1 KB each
    with pytest.raises(LimitExceededError) as err:
        await cycle("alice")
    assert (err.value.limit, err.value.scope, err.value.maximum) == (
        "max_retained_bytes_per_principal",
        "principal",
        4000,
    )
    assert err.value.current >= 4000
    assert "per principal and your identity is at" in err.value.message
    # nothing of the refused call was stored; the checkpoints kept are still restorable
    m = await open_memory(h, "alice")
    await m.restore_checkpoint(kept[0])
    assert await m.get("k") == "x" * 900
    bob = [await cycle("bob") for _ in range(3)]
    with pytest.raises(LimitExceededError) as err:
        await cycle("carol")  # carol holds nothing, but the process is at its limit
    assert (err.value.limit, err.value.scope) == ("max_retained_bytes", "process")
    assert bob and "this server (all clients together)" in err.value.message


async def test_deleting_or_evicting_checkpoints_frees_retained_bytes(
    harness: Harness, harness_factory: HarnessFactory
) -> None:
    limits = harness.store.config.limits.model_copy(
        update={"max_value_bytes": 1000, "max_retained_bytes_per_principal": 2500}
    )
    h = await harness_factory(limits)
    m = await open_memory(h)
    await m.set("k", "x" * 900)
    first = await m.create_checkpoint()
    await m.create_checkpoint()
    await m.create_checkpoint()  # the third fits: the check runs before each checkpoint
    with pytest.raises(LimitExceededError):
        await m.create_checkpoint()
    assert await m.delete_checkpoint(first)
    await m.create_checkpoint()  # room again
    held, _ = h.store.retained.usage("alice", h.store.clock.now_ms())
    assert 2500 <= held < 3500


async def test_checkpoints_are_made_and_restored_without_encoding_json_in_process(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session at its limits is ~8 MiB: encoding it as JSON on the event loop (the
    in-memory store, the fallback's mirror following Redis) held every other client of
    the process for ~20 ms per checkpoint, parsing it back on restore for ~8 ms. In
    process a checkpoint is a list of the session's own strings; JSON is only what the
    Redis scripts store."""
    m = await open_memory(harness)
    await m.set("k", {"v": 1})
    await m.append_scratchpad("step")

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a checkpoint was encoded or parsed as JSON in process")

    monkeypatch.setattr(Snapshot, "to_json", refused)
    monkeypatch.setattr(Snapshot, "from_json", refused)
    checkpoint = await m.create_checkpoint("label")
    await m.set("k", 2)
    await m.restore_checkpoint(checkpoint)
    assert await m.get("k") == {"v": 1}
    assert [c.size > 0 for c in await m.list_checkpoints()] == [True]
