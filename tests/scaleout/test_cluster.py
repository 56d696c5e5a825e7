"""Redis Cluster specifics: one session, one slot; scripts unchanged; NOSCRIPT reload.

The contract suite runs against the cluster too (the store table, tests/support/stores.py);
these tests check what it cannot see: where the keys land.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from memory_core import TaskState
from memory_core.keys import session_tag
from memory_core.storage.redis.layout import KeyLayout
from tests.scaleout.conftest import build
from tests.support.redis_keys import prefixed_keys
from tests.support.stores import Harness
from tests.support.topology import ClusterTopology, cached_scripts, client


@pytest.fixture
async def h(redis_cluster: ClusterTopology, key_prefix: str) -> AsyncIterator[Harness]:
    harness = await build("cluster", redis_cluster, key_prefix)
    try:
        yield harness
    finally:
        await harness.close()


async def test_every_key_of_a_session_lands_in_the_slot_of_its_hash_tag(
    h: Harness, redis_cluster: ClusterTopology
) -> None:
    sid = await h.store.open("alice")
    m = h.store.memory(sid, "alice")
    await m.set("a", 1)
    await m.set("b", {"x": [1, 2]}, ttl_seconds=60)
    await m.append_scratchpad("thought")
    await m.set_task_state(TaskState(task_id="t"))
    checkpoint = await m.create_checkpoint("cp")
    assert h.raw is not None
    everything = await prefixed_keys(h.raw, h.prefix)
    layout = KeyLayout(h.prefix)
    # the principal's recovery index lives in its own slot (its own script)
    index = layout.recent_checkpoints("alice")
    assert set(index) <= set(everything)
    assert len({redis_cluster.keyslot(k) for k in index}) == 1
    keys = [k for k in everything if k not in index]
    # the KEYS every session script declares, plus the checkpoint blob cp_create writes
    assert keys == sorted([*layout.session_keys(sid), layout.checkpoint(sid, checkpoint)])
    slot = redis_cluster.keyslot(f"{{{session_tag(sid)}}}")
    assert {redis_cluster.keyslot(k) for k in keys} == {slot}
    owner = redis_cluster.master_of(slot)
    with client(owner.port) as node:
        assert node.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == len(keys)
        assert sorted(node.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)) == keys


async def test_sessions_spread_over_the_masters_and_recover_across_them(
    h: Harness, redis_cluster: ClusterTopology
) -> None:
    """Sessions shard over the masters, and a retained checkpoint restores into a new
    session served by another master (read under the old tag, applied under the new)."""
    old = await h.store.open("alice")
    m = h.store.memory(old, "alice")
    await m.set("plan", ["x", "y"])
    await m.append_scratchpad("thought")
    checkpoint = await m.create_checkpoint()
    await h.store.close_session(old, "alice")
    old_master = redis_cluster.master_of(redis_cluster.keyslot(f"{{{session_tag(old)}}}")).port

    masters = {old_master}
    for _ in range(24):
        sid = await h.store.open("alice")
        master = redis_cluster.master_of(redis_cluster.keyslot(f"{{{session_tag(sid)}}}")).port
        masters.add(master)
        if master != old_master:
            elsewhere = sid
    assert len(masters) == 3, "24 random session ids should land on all 3 masters"

    restored = h.store.memory(elsewhere, "alice")
    await restored.restore_checkpoint(checkpoint)
    assert await restored.get_all() == {"plan": ["x", "y"]}
    assert await restored.get_scratchpad() == ["thought"]


async def test_scripts_reload_after_script_flush_on_every_master(
    h: Harness, redis_cluster: ClusterTopology
) -> None:
    sid = await h.store.open("alice")
    m = h.store.memory(sid, "alice")
    await m.set("k", "v")
    owner = redis_cluster.master_of(redis_cluster.keyslot(f"{{{session_tag(sid)}}}"))
    with client(owner.port) as node:
        assert cached_scripts(node) > 0
        assert h.raw is not None
        assert await h.raw.script_flush()  # goes to every master
        assert cached_scripts(node) == 0
        assert await m.get("k") == "v"  # EVALSHA -> NOSCRIPT -> SCRIPT LOAD -> EVALSHA
        assert cached_scripts(node) > 0
