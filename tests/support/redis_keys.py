"""What a test left in Redis: list it, delete it, close the client that looked.

Tests share one Redis (each under its own key prefix), so every test that writes to it
deletes its prefix at the end. A cluster client's ``scan_iter`` walks every master and its
``unlink`` splits the keys per slot, so these work on every topology. Test cleanup only:
a SCAN of the keyspace is never on a path of the code under test.
"""

from __future__ import annotations

from typing import TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

RawRedis: TypeAlias = aioredis.Redis | RedisCluster
"""A plain redis-py client, independent of the code under test."""

_BATCH = 500


async def prefixed_keys(client: RawRedis, prefix: str) -> list[str]:
    """Every key under ``prefix`` (``<prefix>:*``), sorted."""
    return sorted([k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)])


def kept_on_purpose(key: str) -> bool:
    """A key that outlives its session by design: checkpoints (``:cp:<id>``, ``:cpm``) and
    a principal's index of them (``:rcp``, ``:rcpm``) for the retention time, and the
    tombstone of a deliberate close (``:meta:closed``, one lease, so a mirror never puts a
    closed session back)."""
    part = key.rsplit("}:", 1)[-1]
    return part.startswith(("cp", "rcp")) or part == "meta:closed"


def retained(key: str) -> bool:
    """Kept for the checkpoint retention time (not the lease): checkpoints and their index."""
    return key.rsplit("}:", 1)[-1].startswith(("cp", "rcp"))


async def state_keys(client: RawRedis, prefix: str) -> list[str]:
    """``prefixed_keys`` without the tombstones of deliberate closes (``:meta:closed``) and
    a principal's checkpoint index (``:rcp``, ``:rcpm``): what a session's live state
    leaves behind, plus its checkpoints."""
    return [
        k
        for k in await prefixed_keys(client, prefix)
        if not k.endswith(":meta:closed") and not k.rsplit("}:", 1)[-1].startswith("rcp")
    ]


async def delete_prefix(client: RawRedis, prefix: str) -> int:
    """Delete every key under ``prefix`` (in bounded batches); returns how many."""
    deleted = 0
    batch: list[str] = []
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= _BATCH:
            deleted += await client.unlink(*batch)
            batch = []
    if batch:
        deleted += await client.unlink(*batch)
    return int(deleted)


async def discard(client: RawRedis, prefix: str) -> int:
    """Delete every key under ``prefix``, then close ``client``; returns how many."""
    try:
        return await delete_prefix(client, prefix)
    finally:
        await client.aclose()


async def delete_prefix_at(url: str, prefix: str, *, socket_timeout: float = 10.0) -> int:
    """Delete every key under ``prefix`` on the Redis at ``url`` (a client of its own,
    connect and command timeouts ``socket_timeout``); returns how many."""
    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=socket_timeout, socket_timeout=socket_timeout
    )
    return await discard(client, prefix)
