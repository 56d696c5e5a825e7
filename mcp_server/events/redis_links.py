"""Redis links per topology: how the bus publishes and opens its subscriber connection.

One Redis (``redis://``, ``rediss://``, ``unix://``) and a Sentinel master use
``PUBLISH``/``SUBSCRIBE``; Redis Cluster uses sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``)
on the node serving the channel's slot. This is the one module of ``mcp_server`` that
builds Redis clients from a store URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from memory_core.storage import topology


class Link:
    """How one topology publishes and opens a subscriber connection."""

    publish_command = "PUBLISH"
    subscribe_command = "SUBSCRIBE"
    message_type = "message"

    def __init__(self, connect_timeout: float, command_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.client: aioredis.Redis | RedisCluster

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
        await self.client.aclose()


class SingleLink(Link):
    def __init__(self, url: str, connect_timeout: float, command_timeout: float) -> None:
        super().__init__(connect_timeout, command_timeout)
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": command_timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        self.client = aioredis.Redis.from_url(url, max_connections=4, **options)
        self._pool = aioredis.ConnectionPool.from_url(url, protocol=2, **options)

    async def subscriber(self, channel: str, refresh: bool) -> AbstractConnection:
        pool = self._pool
        return pool.connection_class(**pool.connection_kwargs)


class SentinelLink(Link):
    def __init__(self, url: str, connect_timeout: float, command_timeout: float) -> None:
        super().__init__(connect_timeout, command_timeout)
        self.parsed = topology.parse_url(url)
        self.client = topology.connect(
            url,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            max_connections=4,
            pool_timeout=command_timeout,
        )

    async def subscriber(self, channel: str, refresh: bool) -> AbstractConnection:
        assert isinstance(self.client, topology.SentinelMasterClient)
        assert self.parsed.service is not None
        host, port = await self.client.sentinel_manager.discover_master(self.parsed.service)
        return self._connection(
            host,
            int(port),
            db=self.parsed.db,
            username=self.parsed.username,
            password=self.parsed.password,
        )


class ClusterLink(Link):
    publish_command = "SPUBLISH"
    subscribe_command = "SSUBSCRIBE"
    message_type = "smessage"

    def __init__(self, url: str, connect_timeout: float, command_timeout: float) -> None:
        super().__init__(connect_timeout, command_timeout)
        self.parsed = topology.parse_url(url)
        self.cluster = topology.connect(
            url,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            max_connections=4,
            pool_timeout=command_timeout,
        )
        self.client = self.cluster

    async def subscriber(self, channel: str, refresh: bool) -> AbstractConnection:
        assert isinstance(self.cluster, RedisCluster)
        if refresh:  # the slot may have moved (failover): ask the cluster again
            await self.cluster.nodes_manager.initialize()
        else:
            await self.cluster.initialize()
        node = self.cluster.get_node_from_key(channel)
        if node is None:  # pragma: no cover - get_node_from_key raises instead
            raise ConnectionError("no node serves the events channel")
        return self._connection(
            node.host, int(node.port), username=self.parsed.username, password=self.parsed.password
        )


def link_for(url: str, connect_timeout: float, command_timeout: float) -> Link:
    scheme = urlsplit(url).scheme.lower()
    if scheme == topology.CLUSTER_SCHEME:
        return ClusterLink(url, connect_timeout, command_timeout)
    if scheme == topology.SENTINEL_SCHEME:
        return SentinelLink(url, connect_timeout, command_timeout)
    return SingleLink(url, connect_timeout, command_timeout)
