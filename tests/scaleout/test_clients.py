"""Cluster and Sentinel store URLs: parsing, the client each builds, the fallback default.

No server needed: clients connect on first use.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from memory_core import InvalidArgumentError, StoreConfig, backend_from_url
from memory_core.storage.fallback import CircuitBreakerBackend
from memory_core.storage.redis import RedisBackend
from memory_core.storage.redis.topology import (
    BlockingSentinelConnectionPool,
    GatedRedisCluster,
    SentinelMasterClient,
    TopologyURL,
    connect,
    parse_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,node3",
            TopologyURL("redis+cluster", (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("node3", 6379))),
        ),
        (
            "redis+cluster://:s%40cret@[::1]:7000",
            TopologyURL("redis+cluster", (("::1", 7000),), password="s@cret"),
        ),
        (
            "redis+sentinel://s1:26380,s2/mymaster",
            TopologyURL("redis+sentinel", (("s1", 26380), ("s2", 26379)), service="mymaster"),
        ),
        (
            "REDIS+SENTINEL://app:pw@s1:1/svc/?db=3&sentinel_password=spw",
            TopologyURL(
                "redis+sentinel", (("s1", 1),), service="svc", db=3, username="app",
                password="pw", sentinel_password="spw",
            ),
        ),
    ],
)  # fmt: skip
def test_parse(url: str, expected: TopologyURL) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1:26379",  # no service
        "redis+sentinel://s1:26379/a/b",  # two services
        "redis+sentinel://s1:26379/svc?db=x",
        "redis+sentinel://s1:26379/svc?timeout=5",  # unknown option
        "redis+cluster://n1:7000/1",  # a cluster has only db 0
        "redis+cluster://n1:7000?db=1",
        "redis+cluster://n1:70000",
        "redis+cluster://n1:port",
        "redis+cluster://n1:7000,,n2:7001",
        "redis+cluster://:secret@",
    ],
)
def test_malformed_urls_are_rejected_without_echoing_secrets(url: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        backend_from_url(url)
    assert "secret" not in str(err.value)


def retried(cluster: Any) -> tuple[type[Exception], ...]:
    """The errors a cluster client (class or instance) retries; redis-py types the tuple
    narrower than the membership checks below ask of it."""
    return tuple(cluster.ERRORS_ALLOW_RETRY)


async def test_cluster_url_builds_a_cluster_client_with_the_single_node_policy() -> None:
    backend = backend_from_url(
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001", connect_timeout=0.1, command_timeout=0.3
    )
    assert isinstance(backend, CircuitBreakerBackend) and isinstance(backend.primary, RedisBackend)
    client = backend.primary.client
    assert isinstance(client, GatedRedisCluster)
    kwargs = client.get_connection_kwargs()
    assert kwargs["socket_connect_timeout"] == 0.1 and kwargs["socket_timeout"] == 0.3
    # failover errors are retried after a slot map refresh; a timed-out script may have run
    assert {RedisConnectionError, ClusterDownError} <= set(client.ERRORS_ALLOW_RETRY)
    assert RedisTimeoutError in retried(RedisCluster)
    assert RedisTimeoutError not in retried(client)
    await backend.close()


async def test_sentinel_url_builds_a_master_client_with_the_single_node_policy() -> None:
    backend = backend_from_url(
        "redis+sentinel://:pw@127.0.0.1:26379/svc?db=2&sentinel_password=spw",
        connect_timeout=0.1,
        command_timeout=0.3,
    )
    assert isinstance(backend, CircuitBreakerBackend) and isinstance(backend.primary, RedisBackend)
    client = backend.primary.client
    assert isinstance(client, SentinelMasterClient)
    pool = client.connection_pool
    assert isinstance(pool, BlockingSentinelConnectionPool)
    assert pool.service_name == "svc" and pool.is_master
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["password"]) == (2, "pw")
    assert kwargs["socket_connect_timeout"] == 0.1 and kwargs["socket_timeout"] == 0.3
    assert kwargs["retry"].get_retries() == 0
    sentinel_kwargs = client.sentinel_manager.sentinel_kwargs
    assert sentinel_kwargs["password"] == "spw" and sentinel_kwargs["socket_timeout"] == 0.3
    await backend.close()


async def test_busy_cluster_client_queues_callers_for_at_most_the_pool_timeout() -> None:
    client = connect(
        "redis+cluster://127.0.0.1:1",
        connect_timeout=0.1, command_timeout=0.1, max_connections=1, pool_timeout=0.05,
    )  # fmt: skip
    await client._gate.acquire()  # type: ignore[union-attr]  # the one connection is busy
    with pytest.raises(RedisConnectionError, match="No connection available"):
        await client.ping()
    await client.aclose()


@pytest.mark.parametrize(
    ("url", "fallback", "expected"),
    [
        ("redis://127.0.0.1:1/0", None, True),
        ("redis+cluster://127.0.0.1:1", None, False),
        ("redis+sentinel://127.0.0.1:1/svc", None, False),
        ("redis://127.0.0.1:1/0", False, False),
        ("redis+cluster://127.0.0.1:1", True, True),
        ("redis+sentinel://127.0.0.1:1/svc", True, True),
    ],
)
async def test_fallback_defaults_to_fail_closed_for_cluster_and_sentinel(
    url: str, fallback: bool | None, expected: bool
) -> None:
    backend = backend_from_url(url, StoreConfig(), fallback=fallback)
    assert isinstance(backend, CircuitBreakerBackend)
    assert backend.fallback_enabled is expected
    assert (backend.mirror is not None) is expected
    await backend.close()
