"""Clients for every Redis deployment: one server, Redis Cluster and Redis Sentinel.

``client_from_url`` builds the client for any store URL.

Store URLs:

* ``redis://``, ``rediss://``, ``unix://`` -- one server, as redis-py reads these URLs.
* ``redis+cluster://[[user]:password@]host:port[,host:port...]`` -- some nodes of the
  cluster (startup nodes, default port 6379); the client discovers the others.
* ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[?db=N]``
  -- the sentinels (default port 26379); the client asks them for the master of
  ``service_name`` on every new connection. Credentials in the URL are the master's;
  sentinels with a password of their own take ``?sentinel_password=...``.

Every client has one policy: short connect and command timeouts, a bounded wait for a
free connection, and **no retry of a timed-out command** (the script may have run;
running it twice could append a scratchpad entry twice). What differs for more than
one node:

* **Cluster.** redis-py follows MOVED/ASK itself. On a refused or reset connection,
  CLUSTERDOWN or an uncovered slot it reloads the slot map and retries the call at once,
  at most ``CLUSTER_RETRIES`` times, so a call made after a failover reaches the
  promoted replica. A call made *during* a failover still fails (until a replica is
  promoted no node serves the slot) and the breaker takes over as for one server. A
  connection reset after the command was sent can, rarely, run a script twice: nobody
  can tell whether a dead node ran it.
* **Sentinel.** No retry: a call that hits the dead master fails with
  ``StorageUnavailableError`` (the breaker, ``CircuitBreakerBackend``, then fails fast), and
  the next connection goes to the master the sentinels name by then.

Scripts run unchanged: every session script's keys share the hash tag
``{session_id}``, so redis-py routes EVALSHA by its first key to the master of that one
slot (it refuses keys of different slots before sending), and on NOSCRIPT it loads the
script (SCRIPT LOAD goes to every master) and retries.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, SlotNotCoveredError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import EncodableT

from memory_core.errors import InvalidArgumentError
from memory_core.storage.redis.hiredis_pack import HiredisPackConnection

CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"
TOPOLOGY_SCHEMES = (CLUSTER_SCHEME, SENTINEL_SCHEME)
CLUSTER_RETRIES = 3
_DEFAULT_PORT = {CLUSTER_SCHEME: 6379, SENTINEL_SCHEME: 26379}
_OPTIONS = {CLUSTER_SCHEME: set[str](), SENTINEL_SCHEME: {"db", "sentinel_password"}}


@dataclass(frozen=True, slots=True)
class TopologyURL:
    """A parsed ``redis+cluster://`` or ``redis+sentinel://`` URL."""

    scheme: str
    nodes: tuple[tuple[str, int], ...]
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse_url(url: str) -> TopologyURL:
    """Parse a cluster or sentinel URL.

    Raises:
        InvalidArgumentError: the URL is malformed. The message never repeats the URL,
            which may hold a password.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in TOPOLOGY_SCHEMES:
        raise InvalidArgumentError(f"not a cluster or sentinel URL scheme: {scheme!r}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = tuple(_node(n, _DEFAULT_PORT[scheme]) for n in hostlist.split(","))
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - _OPTIONS[scheme])
    if unknown:
        raise InvalidArgumentError(f"unsupported option(s) in the {scheme} URL: {unknown}")
    service = None
    if scheme == SENTINEL_SCHEME:
        service = unquote(parts.path.strip("/"))
        if not service or "/" in service:
            raise InvalidArgumentError(
                "a sentinel URL names one service: redis+sentinel://host:port[,...]/service_name"
            )
    elif parts.path.strip("/"):
        raise InvalidArgumentError("a cluster URL has no path (a cluster has only database 0)")
    try:
        db = int(options.get("db", "0"))
    except ValueError:
        raise InvalidArgumentError("db must be a database number") from None
    return TopologyURL(
        scheme=scheme,
        nodes=nodes,
        service=service,
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def _node(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        port = 0
    if not host or not 0 < port < 65536:
        raise InvalidArgumentError("each node must be host:port with a port from 1 to 65535")
    return host, port


_SECRET_OPTIONS = frozenset({"password", "sentinel_password"})


def redact_url(url: str) -> str:
    """``url`` with every password replaced by ``***`` (the user name stays): what a log
    line or a startup message may name."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        userinfo = user + (":***" if colon else "")
    query = "&".join(
        f"{name}=***" if name.lower() in _SECRET_OPTIONS else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    netloc = f"{userinfo}{at}{hosts}"
    return parts._replace(netloc=netloc, query=query).geturl()


def client_from_url(
    url: str,
    *,
    connect_timeout: float = 0.25,
    command_timeout: float = 0.5,
    max_connections: int = 64,
    pool_timeout: float = 2.0,
) -> aioredis.Redis | RedisCluster:
    """A redis-py client for any store URL (one server, cluster or sentinel) with the
    project's policy (see the module docstring). No I/O yet: it connects on first use.

    Args:
        connect_timeout: seconds to open a connection.
        command_timeout: seconds to wait for a reply.
        max_connections: connections at most (per node for a cluster).
        pool_timeout: seconds a caller waits for a free connection before failing.

    Raises:
        InvalidArgumentError: a cluster or sentinel URL is malformed.
    """
    if urlsplit(url).scheme.lower() in TOPOLOGY_SCHEMES:
        return connect(
            url,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            max_connections=max_connections,
            pool_timeout=pool_timeout,
        )
    # A blocking pool queues callers when all connections are busy (the plain async
    # pool raises instead); the wait is bounded by pool_timeout.
    extra: dict[str, Any] = {}
    if urlsplit(url).scheme == "redis":
        extra["connection_class"] = HiredisPackConnection
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        **extra,
        **_pool_options(),
        decode_responses=True,
        socket_connect_timeout=connect_timeout,
        socket_timeout=command_timeout,
        max_connections=max_connections,
        timeout=pool_timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )
    return aioredis.Redis(connection_pool=pool)


def _pool_options() -> dict[str, Any]:
    """Turn redis-py's maintenance notifications off (a Redis Enterprise feature we do
    not use): while they are on "auto" (redis-py 8's default with RESP3) the pool skips
    its check that a pooled connection is still alive, so after a Redis restart every
    pooled connection fails its next command once. redis-py 7 has them in its sync
    client only: its asyncio connections take no such option (and have nothing to turn
    off)."""
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # pragma: no cover - redis-py before maintenance notifications
        return {}
    if "maint_notifications_config" not in inspect.signature(AbstractConnection).parameters:
        return {}  # pragma: no cover - redis-py 7 (`make lowest`)
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


def connect(
    url: str,
    *,
    connect_timeout: float,
    command_timeout: float,
    max_connections: int,
    pool_timeout: float,
) -> aioredis.Redis | RedisCluster:
    """A client for a cluster or sentinel ``url`` (no I/O yet: it connects on first use)."""
    parsed = parse_url(url)
    if parsed.scheme == CLUSTER_SCHEME:
        return GatedRedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
            pool_timeout=pool_timeout,
            max_connections=max_connections,
            username=parsed.username,
            password=parsed.password,
            decode_responses=True,
            socket_connect_timeout=connect_timeout,
            socket_timeout=command_timeout,
            # Only the count is used: redis-py's async cluster client does not back off.
            retry=Retry(NoBackoff(), CLUSTER_RETRIES),
            # Serve the slots that are up while a shard is down (the server decides
            # with cluster-require-full-coverage; the client should not be stricter).
            require_full_coverage=False,
        )
    no_retry = Retry(NoBackoff(), 0)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(parsed.nodes),
        sentinel_kwargs={
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": command_timeout,
            "retry": no_retry,
            "password": parsed.sentinel_password,
        },
    )
    pool = BlockingSentinelConnectionPool(  # type: ignore[no-untyped-call]
        parsed.service,
        sentinel,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        decode_responses=True,
        socket_connect_timeout=connect_timeout,
        socket_timeout=command_timeout,
        max_connections=max_connections,
        timeout=pool_timeout,
        retry=no_retry,
    )
    return SentinelMasterClient(pool, sentinel)


class GatedRedisCluster(RedisCluster):
    """``RedisCluster`` that queues callers when ``max_connections`` calls are in flight.

    The cluster client's per-node pools raise at once when exhausted; the single-node
    client waits (bounded by ``pool_timeout``) instead, and so does this one. Timeouts
    are not retried (see the module docstring).
    """

    # redis-py's list minus TimeoutError: a timed-out script may have run.
    ERRORS_ALLOW_RETRY = (RedisConnectionError, ClusterDownError, SlotNotCoveredError)  # type: ignore[assignment]

    def __init__(self, *, pool_timeout: float, max_connections: int, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._gate = asyncio.Semaphore(max_connections)
        self._gate_timeout = pool_timeout

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._gate_timeout):
                await self._gate.acquire()
        except TimeoutError:
            raise RedisConnectionError("No connection available.") from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._gate.release()


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Connections to the master the sentinels name, with the blocking pool's bounded
    wait for a free connection (the plain sentinel pool raises instead)."""


class SentinelMasterClient(aioredis.Redis):
    """The master's client; closing it also closes the connections to the sentinels."""

    def __init__(self, pool: SentinelConnectionPool, sentinel: Sentinel) -> None:
        super().__init__(connection_pool=pool)
        self.auto_close_connection_pool = True  # the client owns its pool
        self.sentinel_manager = sentinel

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            await self.sentinel_manager.aclose()
