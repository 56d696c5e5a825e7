"""Property test: random operation sequences give the same observable results on the
memory backend and on real Redis (and on fakeredis)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_core import SessionStore, TaskState, WorkingMemoryError
from memory_core.storage.memory import MemoryBackend
from memory_core.storage.redis import RedisBackend
from tests.support.redis_keys import delete_prefix
from tests.support.stores import SMALL_LIMITS, make_config

KEYS = st.sampled_from(["a", "b", "c", "user:1", "user:2", "*", "[x]", "d"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
OPS = st.one_of(
    st.tuples(st.just("set"), KEYS, JSON, st.sampled_from([None, 600])),
    st.tuples(st.just("set_big"), KEYS),
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("delete"), KEYS),
    st.tuples(st.just("exists"), KEYS),
    st.tuples(st.just("list"), st.sampled_from(["*", "user:*", "?", "[ab]", "\\*", "[!a]*"])),
    st.tuples(st.just("get_all")),
    st.tuples(st.just("clear")),
    st.tuples(st.just("append"), st.text(min_size=1, max_size=40)),
    st.tuples(st.just("pad")),
    st.tuples(st.just("task"), st.integers(0, 5)),
    st.tuples(st.just("get_task")),
    st.tuples(st.just("checkpoint")),
    st.tuples(st.just("restore"), st.integers(0, 4)),
    st.tuples(st.just("delete_checkpoint"), st.integers(0, 4)),
    st.tuples(st.just("list_checkpoints")),
    st.tuples(st.just("usage")),
)


async def run_ops(  # noqa: C901, PLR0912 - one branch per operation of the model
    store: SessionStore, ops: list[tuple[Any, ...]]
) -> list[object]:
    sid = await store.open("p")
    m = store.memory(sid, "p")
    checkpoints: list[str] = []
    out: list[object] = []
    for op in ops:
        name = op[0]
        try:
            if name == "set":
                await m.set(op[1], op[2], ttl_seconds=op[3])
                result: object = None
            elif name == "set_big":
                await m.set(op[1], "x" * 90)
                result = None
            elif name == "get":
                entry = await m.get_entry(op[1])
                result = None if entry is None else (entry.value, entry.ttl_ms is None)
            elif name == "delete":
                result = await m.delete(op[1])
            elif name == "exists":
                result = await m.exists(op[1])
            elif name == "list":
                result = await m.list_keys(op[1])
            elif name == "get_all":
                result = await m.get_all()
            elif name == "clear":
                result = await m.clear()
            elif name == "append":
                result = await m.append_scratchpad(op[1])
            elif name == "pad":
                result = await m.get_scratchpad()
            elif name == "task":
                await m.set_task_state(TaskState(task_id="t", current_step=op[1]))
                result = None
            elif name == "get_task":
                task = await m.get_task_state()
                result = None if task is None else task.current_step
            elif name == "checkpoint":
                info = await m.create_checkpoint_info()
                checkpoints.append(info.checkpoint_id)
                result = [checkpoints.index(e) for e in info.evicted]
            elif name == "restore":
                if op[1] >= len(checkpoints):
                    continue
                await m.restore_checkpoint(checkpoints[op[1]])
                result = None
            elif name == "delete_checkpoint":
                if op[1] >= len(checkpoints):
                    continue
                result = await m.delete_checkpoint(checkpoints[op[1]])
            elif name == "list_checkpoints":
                result = [checkpoints.index(c.checkpoint_id) for c in await m.list_checkpoints()]
            else:
                u = await m.usage()
                result = (u.keys, u.bytes, u.scratchpad_entries, u.checkpoints)
        except WorkingMemoryError as exc:
            result = ("error", exc.code, str(exc))
        out.append((op, result))
    return out


async def compare(ops: list[tuple[Any, ...]], redis_url: str | None) -> None:
    prefix = f"wmp{uuid.uuid4().hex[:8]}"
    config = make_config(prefix, SMALL_LIMITS)
    memory = SessionStore(MemoryBackend(config, sweep_interval_seconds=0))
    if redis_url is None:
        import fakeredis

        backend = RedisBackend(
            config, "redis://fake", client=fakeredis.FakeAsyncRedis(decode_responses=True)
        )
    else:
        backend = RedisBackend(config, redis_url, connect_timeout=5, command_timeout=5)
    other = SessionStore(backend)
    try:
        expected = await run_ops(memory, ops)
        got = await run_ops(other, ops)
        assert got == expected
    finally:
        if redis_url is not None:
            await delete_prefix(backend.client, prefix)
        await other.close()


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(ops=st.lists(OPS, min_size=1, max_size=40))
def test_memory_and_real_redis_agree(redis_url: str, ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(compare(ops, redis_url))


@SETTINGS
@given(ops=st.lists(OPS, min_size=1, max_size=40))
def test_memory_and_fakeredis_agree(ops: list[tuple[Any, ...]]) -> None:
    pytest.importorskip("lupa")
    asyncio.run(compare(ops, None))
