"""Redis links per topology: how the bus publishes and opens its subscriber connection.

One Redis (``redis://``, ``rediss://``, ``unix://``) and a Sentinel master use
``PUBLISH``/``SUBSCRIBE``; Redis Cluster uses sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``)
on the node serving the channel's slot. This is the one module of ``mcp_server`` that
builds Redis clients from a store URL.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.backoff import NoBackoff

from memory_core.storage.redis import client_from_url


class Link:
    """How one topology publishes and opens a subscriber connection."""

    publish_command = "PUBLISH"
    subscribe_command = "SUBSCRIBE"
    message_type = "message"

    def __init__(
        self, client: aioredis.Redis | RedisCluster, connect_timeout: float, command_timeout: float
    ) -> None:
        self.client = client
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout

    async def publish(self, channel: str, payload: str) -> None:
        await self.client.execute_command(self.publish_command, channel, payload)

    async def subscriber(self, channel: str, refresh: bool) -> AbstractConnection:
        """A new connection to the node that carries ``channel`` (not yet subscribed)."""
        raise NotImplementedError

    def _connection(self, host: str, port: int, **extra: Any) -> Connection:
        # RESP2: subscribed-mode replies come back as plain arrays on this connection.
        return Connection(
            host=host,
            port=port,
            protocol=2,
            decode_responses=True,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.command_timeout,
            retry=Retry(NoBackoff(), 0),
            **extra,
        )

    async def close(self) -> None:
        client = self.client
        if isinstance(client, RedisCluster):
            await client.aclose()
        else:  # the client was handed its pool: aclose() alone leaves it open
            await client.aclose(close_connection_pool=True)


class SingleLink(Link):
    """One Redis server (``redis://``, ``rediss://``, ``unix://``)."""

    def __init__(
        self, url: str, client: aioredis.Redis, connect_timeout: float, command_timeout: float
    ) -> None:
        super().__init__(client, connect_timeout, command_timeout)
        # A RESP2 pool only to describe the subscriber connection: the URL's kind of
        # connection (TCP, TLS or a Unix socket) with its credentials.
        self._pool = aioredis.ConnectionPool.from_url(
            url,
            protocol=2,
            decode_responses=True,
            socket_connect_timeout=connect_timeout,
            socket_timeout=command_timeout,
            retry=Retry(NoBackoff(), 0),
        )

    async def subscriber(self, channel: str, refresh: bool) -> AbstractConnection:
        pool = self._pool
        return pool.connection_class(**pool.connection_kwargs)


class SentinelLink(Link):
    """The master a Sentinel group names: subscribe on whichever node that is now."""

    def __init__(
        self,
        client: aioredis.Redis,
        pool: SentinelConnectionPool,
        connect_timeout: float,
        command_timeout: float,
    ) -> None:
        super().__init__(client, connect_timeout, command_timeout)
        self._pool = pool

    async def subscriber(self, channel: str, refresh: bool) -> AbstractConnection:
        pool = self._pool
        host, port = await pool.sentinel_manager.discover_master(pool.service_name)
        options = pool.connection_kwargs
        return self._connection(
            host,
            int(port),
            db=options.get("db", 0),
            username=options.get("username"),
            password=options.get("password"),
        )


class ClusterLink(Link):
    """Redis Cluster: sharded pub/sub on the master of the channel's slot."""

    publish_command = "SPUBLISH"
    subscribe_command = "SSUBSCRIBE"
    message_type = "smessage"

    def __init__(self, cluster: RedisCluster, connect_timeout: float, command_timeout: float):
        super().__init__(cluster, connect_timeout, command_timeout)
        self.cluster = cluster

    async def subscriber(self, channel: str, refresh: bool) -> AbstractConnection:
        if refresh:  # the slot may have moved (failover): ask the cluster again
            await self.cluster.nodes_manager.initialize()
        else:
            await self.cluster.initialize()
        node = self.cluster.get_node_from_key(channel)
        if node is None:  # pragma: no cover - get_node_from_key raises instead
            raise ConnectionError("no node serves the events channel")
        options = self.cluster.nodes_manager.connection_kwargs
        return self._connection(
            node.host,
            int(node.port),
            username=options.get("username"),
            password=options.get("password"),
        )


def link_for(url: str, connect_timeout: float, command_timeout: float) -> Link:
    """The link for a store URL; the client comes from memory_core, which owns what a
    store URL means (so the bus reaches the same Redis as the store, by the same rules).

    Raises:
        InvalidArgumentError: a cluster or sentinel URL is malformed.
    """
    client = client_from_url(
        url,
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
        max_connections=4,
        pool_timeout=command_timeout,
    )
    if isinstance(client, RedisCluster):
        return ClusterLink(client, connect_timeout, command_timeout)
    if isinstance(client.connection_pool, SentinelConnectionPool):
        return SentinelLink(client, client.connection_pool, connect_timeout, command_timeout)
    return SingleLink(url, client, connect_timeout, command_timeout)
