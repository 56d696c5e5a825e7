"""Fixtures over local Redis Cluster and Redis Sentinel topologies that a test may break.

The shared, never-killed topologies (``redis_cluster``, ``redis_sentinel``) live in
tests/conftest.py: the contract suite runs against them through the store table
(tests/support/stores.py). Stores are built the way a server builds them:
``backend_from_url(url)``, which for these URLs fails closed during an outage.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memory_core import Limits
from tests.conftest import require_topologies
from tests.support.stores import STORES, Harness, Target, open_harness
from tests.support.topology import ClusterTopology, SentinelTopology, raw_client


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


async def build(
    kind: str,
    topology: ClusterTopology | SentinelTopology,
    prefix: str,
    limits: Limits | None = None,
) -> Harness:
    """A started store of the table's ``kind`` over ``topology`` (not the shared one),
    with a raw client on it; ``Harness.close`` ends both."""
    store_kind = next(k for k in STORES if k.id == kind)
    target = Target(topology.url, lambda: raw_client(topology))
    return await open_harness(store_kind, target, prefix, limits)
