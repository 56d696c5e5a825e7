"""Named sessions in the store: (principal, name) -> one session, on every store kind."""

from __future__ import annotations

import asyncio

import pytest

from memory_core import InvalidArgumentError, LimitExceededError, SessionNotFoundError
from memory_core.keys import (
    DEFAULT_SESSION_NAME,
    MAX_SESSION_NAME_LENGTH,
    named_session_id,
    session_tag,
)
from memory_core.storage.base import SessionRef
from tests.support.stores import SMALL_LIMITS, Harness, HarnessFactory


async def test_a_name_is_one_session_per_principal(harness: Harness) -> None:
    store = harness.store
    sid, created = await store.open_named("alice", "work")
    assert created is True
    await store.memory(sid, "alice").set("k", 1)
    again, created = await store.open_named("alice", "work")
    assert (again, created) == (sid, False)
    assert await store.memory(again, "alice").get("k") == 1
    # another principal's same name, and another name, are other sessions
    bob, created = await store.open_named("bob", "work")
    other, _ = await store.open_named("alice", "play")
    assert created is True and len({sid, bob, other}) == 3
    assert await store.memory(bob, "bob").get_entry("k") is None
    assert await store.memory(other, "alice").get_entry("k") is None
    with pytest.raises(SessionNotFoundError):  # the id grants nothing to another principal
        await store.memory(sid, "bob").get("k")


async def test_a_closed_named_session_comes_back_empty(harness: Harness) -> None:
    store = harness.store
    sid, _ = await store.open_named("alice", "work")
    await store.memory(sid, "alice").set("k", 1)
    assert await store.close_session(sid, "alice") is True
    again, created = await store.open_named("alice", "work")
    assert (again, created) == (sid, True)
    assert await store.memory(sid, "alice").get_entry("k") is None


async def test_two_processes_racing_for_a_name_get_one_session(
    harness: Harness, harness_factory: HarnessFactory
) -> None:
    other = await harness_factory(SMALL_LIMITS, share=harness)
    await harness.store.open_named("alice", "warm")  # both resume an existing one too
    for name in ("race", "warm"):
        (a, created_a), (b, created_b) = await asyncio.gather(
            harness.store.open_named("alice", name), other.store.open_named("alice", name)
        )
        assert a == b
        assert [created_a, created_b].count(True) == (1 if name == "race" else 0)
    await harness.store.memory(a, "alice").set("seen", "here")
    assert await other.store.memory(a, "alice").get("seen") == "here"


async def test_a_named_session_held_here_is_served_without_asking_the_store_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = harness.store
    opened: list[SessionRef] = []
    real_open = store.backend.open_session

    async def counting(ref: SessionRef, lease_ms: int, *, keep: bool = False) -> bool:
        opened.append(ref)
        return await real_open(ref, lease_ms, keep=keep)

    monkeypatch.setattr(store.backend, "open_session", counting)
    await (await store.named("alice", "work")).set("k", 1)
    for _ in range(3):
        assert await (await store.named("alice", "work")).get("k") == 1
    await (await store.named("alice", DEFAULT_SESSION_NAME)).set("d", 1)
    assert len(opened) == 2  # once per name: every later call is one operation only


async def test_a_named_session_closed_elsewhere_comes_back_empty_on_the_next_call(
    harness: Harness,
) -> None:
    store = harness.store
    memory = await store.named("alice", "work")
    await memory.set("k", 1)
    # another process (or a tool on another connection) ends it behind this one's back
    assert await store.backend.close_session(SessionRef(memory.session_id, "alice"))
    again = await store.named("alice", "work")
    assert again.session_id == memory.session_id
    await again.set("fresh", 2)  # resumed (empty), then the write runs once more
    assert await again.get_all() == {"fresh": 2}
    with pytest.raises(SessionNotFoundError):  # a handle is never resumed
        await store.backend.close_session(SessionRef(memory.session_id, "alice"))
        await store.memory(memory.session_id, "alice").get("fresh")


@pytest.mark.parametrize(
    "name",
    ["", "   ", "a\nb", "tab\there", "nul\x00", "x" * (MAX_SESSION_NAME_LENGTH + 1), 7, None],
)
async def test_bad_names_are_refused_and_change_nothing(harness: Harness, name: object) -> None:
    before = harness.store.open_count()
    with pytest.raises(InvalidArgumentError, match="session name"):
        await harness.store.open_named("alice", name)  # type: ignore[arg-type]
    assert harness.store.open_count() == before


async def test_names_are_data(harness: Harness) -> None:
    for name in ("{tag}", "a:b*c?", "ünï ☃ 名前", "x" * MAX_SESSION_NAME_LENGTH, "../../etc"):
        sid, created = await harness.store.open_named("alice", name)
        assert created is True
        await harness.store.memory(sid, "alice").set("n", 1)
    if harness.raw is not None:  # no name reaches a key: every key is under a session tag
        keys = [k async for k in harness.raw.scan_iter(match=f"{harness.prefix}:*")]
        for key in keys:
            assert key.split(":", 2)[1].startswith("{") and "☃" not in key and "{tag}" not in key


async def test_named_sessions_count_against_max_sessions(
    harness: Harness, harness_factory: HarnessFactory
) -> None:
    one = await harness_factory(SMALL_LIMITS.model_copy(update={"max_sessions": 2}))
    await one.store.open("alice")
    await one.store.open_named("alice", "work")
    await one.store.open_named("alice", "work")  # resuming one it holds is no new session
    with pytest.raises(LimitExceededError):
        await one.store.open_named("alice", "other")
    with pytest.raises(LimitExceededError):
        await one.store.open_named("alice", DEFAULT_SESSION_NAME)


def test_derived_ids_and_tags() -> None:
    sid = named_session_id("alice", "work")
    assert sid == named_session_id("alice", "work") != named_session_id("bob", "work")
    assert len(sid) == 32 and len(session_tag(sid)) == 22
    assert session_tag(sid) not in sid and sid not in session_tag(sid)


async def test_earlier_sessions_checkpoints_are_listed_newest_first(harness: Harness) -> None:
    store = harness.store
    ended = []
    for n in range(2):
        sid = await store.open("alice")
        await store.memory(sid, "alice").set("n", n)
        ended.append(await store.memory(sid, "alice").create_checkpoint(f"cp{n}"))
        await store.close_session(sid, "alice")
    live = await store.open("alice")  # another live session's checkpoint is not offered
    await store.memory(live, "alice").create_checkpoint("live")
    bob = await store.open("bob")
    await store.memory(bob, "bob").create_checkpoint("bob's")
    await store.close_session(bob, "bob")

    fresh = store.memory(await store.open("alice"), "alice")
    own = await fresh.create_checkpoint("mine")
    listed = await fresh.list_earlier_checkpoints(10)
    assert [c.label for c in listed] == ["cp1", "cp0"]
    assert [c.checkpoint_id for c in listed] == ended[::-1]
    assert [c.checkpoint_id for c in await fresh.list_checkpoints()] == [own]
    assert [c.label for c in await fresh.list_earlier_checkpoints(1)] == ["cp1"]
    await fresh.restore_checkpoint(listed[1].checkpoint_id)
    assert await fresh.get("n") == 0
    bobs = store.memory(await store.open("bob"), "bob")
    assert [c.label for c in await bobs.list_earlier_checkpoints(10)] == ["bob's"]
