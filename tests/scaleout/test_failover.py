"""Failover: kill -9 the master while a client writes; calls recover within a bound and no
acknowledged write is lost.

What Redis promises: replication is asynchronous, so a write the master acknowledged but
had not yet streamed to its replica when it died is lost when the replica is promoted.
Redis documents this for Sentinel ("Consistency under partitions") and for Cluster (the
specification's "Write safety"); neither is a bug of this store. A client that needs a
write to survive a failover asks ``WAIT numreplicas timeout``, which returns how many
replicas have its writes so far.

So the writer below counts a write as **replicated** only once ``WAIT 1 1000`` said a
replica has it. WAIT covers the writes of its own connection, so the writer sets a fence
key in the session's slot and WAITs on one connection to the current master: the
replication stream is ordered, so a replica holding the fence holds every write the
master acknowledged before it. Each master here has one replica, which is the one
promoted, so every replicated write must survive. Writes acknowledged after the failover
(by the promoted master, which has no replica left) must be there too. A write the old
master acknowledged whose fence did not complete before the kill is the one Redis may
lose; it is reported, not asserted.

Bounds: the master is declared down after 1 s (Sentinel ``down-after-milliseconds``,
Cluster ``cluster-node-timeout``), then agreement, election and promotion take 1-2 s, and
the store's breaker probes at least once a second. Calls must work again within
``RECOVERY_BOUND`` seconds of the kill, and no single call may hang longer than
``CALL_BOUND`` (they fail fast with StorageUnavailableError meanwhile).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from memory_core import SessionStore, StorageUnavailableError, StoreConfig, backend_from_url
from memory_core.keys import session_tag
from memory_core.working_memory import WorkingMemory
from tests.support.redis_proc import RedisProcess
from tests.support.topology import (
    HOST,
    ClusterTopology,
    SentinelTopology,
    TopologyError,
    client,
    wait_until,
)

RECOVERY_BOUND = 8.0
CALL_BOUND = 1.5
WRITES_EACH_SIDE = 50


class Fence:
    """``SET <fence> ; WAIT 1 1000`` on one connection to the master of the fence's slot."""

    def __init__(self, key: str, locate: Callable[[], int]) -> None:
        self.key = key
        self.locate = locate  # -> port of the current master (raises while unknown)
        self.client: aioredis.Redis | None = None

    async def replicated(self) -> bool:
        try:
            if self.client is None:
                self.client = aioredis.Redis(
                    host=HOST, port=self.locate(), single_connection_client=True,
                    socket_timeout=2, retry=Retry(NoBackoff(), 0),
                )  # fmt: skip
            await self.client.set(self.key, "1", px=60_000)
            return int(await self.client.wait(1, 1000)) >= 1  # WAIT 1 1000
        except (RedisError, OSError, TopologyError):
            await self.close()  # find the master again next time
            return False

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()


@dataclass
class Writer:
    memory: WorkingMemory
    fence: Fence
    killed_at: float | None = None
    replicated: list[int] = field(default_factory=list)  # WAITed before the kill
    unconfirmed: list[int] = field(default_factory=list)  # the master died before WAIT said
    after: list[int] = field(default_factory=list)  # acknowledged after the kill
    recovered_at: float | None = None
    failed_calls: int = 0
    slowest_call: float = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.memory.set(f"k{i}", i)
            except StorageUnavailableError:
                self.failed_calls += 1
                await asyncio.sleep(0.02)
                continue  # retry the same write (set is idempotent)
            finally:
                self.slowest_call = max(self.slowest_call, time.monotonic() - started)
            if self.killed_at is None or started < self.killed_at:
                (self.replicated if await self.fence.replicated() else self.unconfirmed).append(i)
            else:
                self.recovered_at = self.recovered_at or time.monotonic()
                self.after.append(i)
            i += 1

    def __str__(self) -> str:
        return (
            f"{len(self.replicated)} replicated before the kill, {len(self.unconfirmed)} "
            f"unconfirmed, {len(self.after)} after; {self.failed_calls} calls failed fast, "
            f"slowest call {self.slowest_call * 1000:.0f} ms"
        )


async def _until(check: Callable[[], bool], seconds: float, task: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if task.done():
            task.result()  # raise what stopped the writer
            raise AssertionError("the writer stopped")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s")
        await asyncio.sleep(0.02)


async def _kill_master_while_writing(
    topology_url: str,
    key_prefix: str,
    fence_for: Callable[[str], Fence],
    master: Callable[[str], RedisProcess],
) -> tuple[Writer, WorkingMemory, SessionStore, RedisProcess]:
    """Write until 50 writes are replicated, kill -9 the session's master, write until 50
    more succeed. Returns the stopped writer and the still-open store (caller closes)."""
    store = SessionStore(backend_from_url(topology_url, StoreConfig(key_prefix=key_prefix)))
    await store.start()
    sid = await store.open("alice")
    m = store.memory(sid, "alice")
    writer = Writer(m, fence_for(sid))
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    try:
        await _until(lambda: len(writer.replicated) >= WRITES_EACH_SIDE, 10, task)
        victim = master(sid)
        writer.killed_at = time.monotonic()
        victim.kill()
        await _until(lambda: len(writer.after) >= WRITES_EACH_SIDE, RECOVERY_BOUND + 5, task)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {writer}") from None
    finally:
        stop.set()
        await task
        await writer.fence.close()
    return writer, m, store, victim


async def _assert_recovered_and_nothing_acknowledged_lost(
    name: str, writer: Writer, m: WorkingMemory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert writer.killed_at is not None and writer.recovered_at is not None
    recovery = writer.recovered_at - writer.killed_at
    survivors = await m.get_all()
    lost_unconfirmed = [i for i in writer.unconfirmed if survivors.get(f"k{i}") != i]
    with capsys.disabled():
        print(
            f"\n{name} failover: calls recovered {recovery:.2f} s after kill -9 of the master; "
            f"{writer}; unconfirmed writes lost: {len(lost_unconfirmed)}"
        )
    assert recovery < RECOVERY_BOUND
    assert writer.slowest_call < CALL_BOUND
    lost = [i for i in writer.replicated + writer.after if survivors.get(f"k{i}") != i]
    assert lost == [], f"acknowledged writes lost: {lost}"


async def test_sentinel_promotes_the_replica_and_no_acknowledged_write_is_lost(
    sentinel_to_kill: SentinelTopology, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    topo = sentinel_to_kill
    old_master = topo.master_port()
    writer, m, store, _ = await _kill_master_while_writing(
        topo.url,
        key_prefix,
        lambda sid: Fence(f"fence:{{{session_tag(sid)}}}", topo.master_port),
        lambda sid: topo.master(),
    )
    try:
        await _assert_recovered_and_nothing_acknowledged_lost("Sentinel", writer, m, capsys)
        assert topo.master_port() != old_master
    finally:
        await store.close()


async def test_cluster_replica_takes_over_and_no_acknowledged_write_is_lost(
    cluster_to_kill: ClusterTopology, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    topo = cluster_to_kill
    replica: list[RedisProcess] = []

    def master(sid: str) -> RedisProcess:
        owner = topo.master_of(topo.keyslot(f"{{{session_tag(sid)}}}"))
        replica.append(topo.replica_of(owner))
        return owner

    writer, m, store, _ = await _kill_master_while_writing(
        topo.url,
        key_prefix,
        lambda sid: Fence(
            f"fence:{{{session_tag(sid)}}}",
            lambda: topo.master_of(topo.keyslot(f"{{{session_tag(sid)}}}")).port,
        ),
        master,
    )
    try:
        await _assert_recovered_and_nothing_acknowledged_lost("Cluster", writer, m, capsys)
        assert topo.master_of(topo.keyslot(f"{{{session_tag(m.session_id)}}}")) is replica[0]
    finally:
        await store.close()


async def test_a_dead_shard_does_not_stop_the_others(
    cluster_to_kill: ClusterTopology, key_prefix: str
) -> None:
    """With ``cluster-require-full-coverage no`` the healthy shards keep serving while a
    whole shard (master and replica) is down -- including scripts they never ran yet (a
    promoted replica starts with an empty script cache, too)."""
    topo = cluster_to_kill
    for node in topo.processes:
        with client(node.port) as c:
            c.config_set("cluster-require-full-coverage", "no")
    store = SessionStore(backend_from_url(topo.url, StoreConfig(key_prefix=key_prefix)))
    await store.start()
    try:
        sids = [await store.open("alice") for _ in range(12)]
        dead = topo.master_of(0)
        alive = next(
            s
            for s in sids
            if topo.master_of(topo.keyslot(f"{{{session_tag(s)}}}")).port != dead.port
        )
        await store.memory(alive, "alice").set("k", 1)
        topo.replica_of(dead).kill()
        dead.kill()
        wait_until(
            lambda: all(_sees_failed(p.port, dead.port) for p in topo.live()),
            10,
            "the surviving shards to mark the dead master failed and serve again",
        )
        assert await store.memory(alive, "alice").get("k") == 1  # first use of "get"
    finally:
        await store.close()


def _sees_failed(port: int, dead_port: int) -> bool:
    """``port`` says cluster_state:ok and flags the master on ``dead_port`` as failed."""
    with client(port) as c:
        if "cluster_state:ok" not in str(c.execute_command("CLUSTER", "INFO")):
            return False
        nodes = str(c.execute_command("CLUSTER", "NODES")).splitlines()
    # each line: <id> <host:port@bus> <flags,...> ...
    flags = [line.split()[2] for line in nodes if f":{dead_port}@" in line.split()[1]]
    return flags != [] and "fail" in flags[0].split(",")
