"""Shared fixtures.

Real Redis: ``WM_TEST_REDIS_URL`` if set, else a throwaway ``redis-server`` on a free
port if the binary exists, else the tier is skipped with a visible reason.
``WM_REQUIRE_REDIS=1`` (CI) turns that skip into a failure.

Local Redis Cluster and Sentinel topologies need the ``redis-server`` and ``redis-cli``
binaries; without them their tests are skipped with the reason, and fail instead when
``WM_REQUIRE_REDIS=1``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests.support.child_env import ALL_TOOLS
from tests.support.redis_proc import RedisProcess
from tests.support.topology import ClusterTopology, SentinelTopology, missing_binaries


@pytest.fixture(scope="session", autouse=True)
def _every_tool() -> Iterator[None]:
    """In-process servers list every tool (subprocesses get ``ALL_TOOLS``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WM_TOOLS", ALL_TOOLS["WM_TOOLS"])
        yield


def _require_redis() -> bool:
    return os.environ.get("WM_REQUIRE_REDIS") == "1"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("WM_TEST_REDIS_URL")
    if url:
        yield url
        return
    if shutil.which("redis-server") is None:
        if _require_redis():
            pytest.fail("WM_REQUIRE_REDIS=1 but no redis-server binary and no WM_TEST_REDIS_URL")
        pytest.skip("real-Redis tier skipped: no redis-server binary and no WM_TEST_REDIS_URL")
    server = RedisProcess().start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A private redis-server this test may kill, pause and restart."""
    if shutil.which("redis-server") is None:
        if _require_redis():
            pytest.fail("WM_REQUIRE_REDIS=1 but no redis-server binary")
        pytest.skip("needs the redis-server binary")
    server = RedisProcess().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def key_prefix() -> str:
    """A unique key prefix so tests sharing one Redis never see each other's keys."""
    return f"wmt{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


def require_topologies() -> None:
    reason = missing_binaries()
    if reason is None:
        return
    if _require_redis():
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
