"""Build a backend from a URL: the one place that knows every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from memory_core.clock import Clock
from memory_core.config import StoreConfig
from memory_core.errors import InvalidArgumentError
from memory_core.storage.base import Backend

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

REDIS_SCHEMES = ("redis", "rediss", "unix")


def backend_from_url(
    url: str,
    config: StoreConfig | None = None,
    *,
    fallback: bool | None = None,
    connect_timeout: float = 0.25,
    command_timeout: float = 0.5,
    clock: Clock | None = None,
    client: Redis | RedisCluster | None = None,
) -> Backend:
    """Build the backend a store URL names.

    * ``memory://`` -- the in-process store.
    * ``redis://``, ``rediss://``, ``unix://`` -- one Redis server.
    * ``redis+cluster://host:port[,host:port...]`` -- Redis Cluster (any of its nodes).
    * ``redis+sentinel://host:port[,host:port...]/service_name`` -- the master of
      ``service_name`` as Redis Sentinel names it (see ``storage.topology``).

    Every Redis kind sits behind a circuit breaker (``FallbackBackend``).

    Args:
        fallback: what callers get while Redis is unreachable. True serves them from an
            in-process mirror and writes back later; False fails closed with
            ``StorageUnavailableError`` until Redis answers again. None (the default)
            picks the safe policy for the URL: True for a single Redis server (one
            process, one store), False for Cluster and Sentinel, which are deployed for
            several server replicas: a private in-memory copy per replica could let two
            replicas accept diverging writes to one session during an outage (split
            brain), so they fail closed unless fallback is asked for explicitly.
        client: a Redis client to use instead of one built from the URL (tests inject
            fakeredis this way); ignored for ``memory://``.

    Raises:
        InvalidArgumentError: the scheme is unknown or a cluster/sentinel URL is malformed.
    """
    config = config or StoreConfig()
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from memory_core.storage.memory import MemoryBackend

        return MemoryBackend(config, clock=clock)
    from memory_core.storage.topology import TOPOLOGY_SCHEMES

    if scheme in REDIS_SCHEMES or scheme in TOPOLOGY_SCHEMES:
        from memory_core.storage.redis import RedisBackend

        redis = RedisBackend(
            config,
            url,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            client=client,
        )
        from memory_core.storage.fallback import FallbackBackend

        if fallback is None:
            fallback = scheme in REDIS_SCHEMES
        return FallbackBackend(config, redis, fallback=fallback, clock=clock)
    raise InvalidArgumentError(
        f"unsupported store URL scheme {scheme!r}; use memory://, redis://, rediss://, "
        "unix://, redis+cluster:// or redis+sentinel://"
    )
