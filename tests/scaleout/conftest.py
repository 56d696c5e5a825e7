"""Fixtures over local Redis Cluster and Redis Sentinel topologies.

The topologies need the ``redis-server`` and ``redis-cli`` binaries; without them these
tests are skipped with the reason, and fail instead when ``WM_REQUIRE_REDIS=1`` (CI).

``harness``/``harness_factory`` mirror ``tests/core/conftest.py`` so the contract suite
runs unchanged against the topologies (see ``test_contract_topologies.py``). Stores are
built the way a server builds them: ``backend_from_url(url)``, which for these URLs fails
closed during an outage.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from memory_core import Limits, SessionStore, backend_from_url
from tests.core.conftest import SMALL_LIMITS, Harness, make_config
from tests.support.topology import HOST, ClusterTopology, SentinelTopology, missing_binaries

TOPOLOGIES = ["cluster", "sentinel"]


def require_topologies() -> None:
    reason = missing_binaries()
    if reason is None:
        return
    if os.environ.get("WM_REQUIRE_REDIS") == "1":
        pytest.fail(f"WM_REQUIRE_REDIS=1 but local Redis topologies cannot run: {reason}")
    pytest.skip(f"Cluster/Sentinel tier skipped: {reason}")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterTopology]:
    """3 masters + 3 replicas shared by the contract tests (never killed)."""
    require_topologies()
    with ClusterTopology(node_timeout_ms=3000) as topology:
        yield topology


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelTopology]:
    """1 master + 1 replica + 3 sentinels shared by the contract tests (never killed)."""
    require_topologies()
    with SentinelTopology() as topology:
        yield topology


@pytest.fixture
def cluster_to_kill() -> Iterator[ClusterTopology]:
    """A private cluster a failover test may kill nodes of (node timeout 1 s)."""
    require_topologies()
    with ClusterTopology(node_timeout_ms=1000) as topology:
        yield topology


@pytest.fixture
def sentinel_to_kill() -> Iterator[SentinelTopology]:
    """A private sentinel setup a failover test may kill the master of."""
    require_topologies()
    with SentinelTopology(down_after_ms=1000, failover_timeout_ms=3000) as topology:
        yield topology


def raw_client(topology: ClusterTopology | SentinelTopology) -> Any:
    """A plain redis-py client on the topology, independent of the code under test: a
    cluster client (its scan_iter walks every master), or a client of the current master."""
    if isinstance(topology, ClusterTopology):
        return RedisCluster(host=HOST, port=topology.processes[0].port, decode_responses=True)
    return aioredis.Redis(host=HOST, port=topology.master_port(), decode_responses=True)


async def build(
    kind: str,
    topology: ClusterTopology | SentinelTopology,
    prefix: str,
    limits: Limits | None = None,
) -> Harness:
    store = SessionStore(
        backend_from_url(
            topology.url, make_config(prefix, limits), connect_timeout=5, command_timeout=5
        )
    )
    await store.start()
    return Harness(kind, store, raw_client(topology), prefix, None)


async def dispose(h: Harness) -> None:
    await h.store.close()
    raw: Any = h.raw
    keys = [k async for k in raw.scan_iter(match=f"{h.prefix}:*")]
    if keys:
        await raw.delete(*keys)  # the cluster client splits this per slot
    await raw.aclose()


def _topology(request: pytest.FixtureRequest, kind: str) -> ClusterTopology | SentinelTopology:
    return request.getfixturevalue("redis_cluster" if kind == "cluster" else "redis_sentinel")  # type: ignore[no-any-return]


@pytest.fixture(params=TOPOLOGIES)
async def harness(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Harness]:
    h = await build(request.param, _topology(request, request.param), key_prefix, SMALL_LIMITS)
    try:
        yield h
    finally:
        await dispose(h)


@pytest.fixture
async def harness_factory(
    request: pytest.FixtureRequest, harness: Harness, key_prefix: str
) -> AsyncIterator[Callable[..., Any]]:
    """Like tests/core's: more stores of the current topology, other limits; ``share=h``
    builds a second store over ``h``'s keys, as a second server replica would."""
    made: list[Harness] = []
    topology = _topology(request, harness.kind)

    async def factory(limits: Limits, share: Harness | None = None) -> Harness:
        prefix = share.prefix if share else f"{key_prefix}f{len(made)}"
        h = await build(harness.kind, topology, prefix, limits)
        made.append(h)
        return h

    try:
        yield factory
    finally:
        for h in made:
            await dispose(h)
