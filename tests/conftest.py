"""Shared fixtures.

Real Redis: ``WM_TEST_REDIS_URL`` if set, else a throwaway ``redis-server`` on a free
port if the binary exists, else the tier is skipped with a visible reason.
``WM_REQUIRE_REDIS=1`` (CI) turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.redis_proc import RedisProcess


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
async def raw_redis(redis_url: str) -> AsyncIterator[object]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
