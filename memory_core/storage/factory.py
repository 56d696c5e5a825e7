"""Build a backend from a URL: the one place that knows every backend and composes
the circuit breaker and its fallback mirror."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from memory_core.clock import Clock
from memory_core.config import StoreConfig
from memory_core.errors import InvalidArgumentError
from memory_core.storage.base import Backend, PrimaryBackend
from memory_core.storage.fallback import CircuitBreakerBackend, FallbackBackend

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
      ``service_name`` as Redis Sentinel names it (see ``storage.redis.topology``).

    Every Redis kind sits behind a circuit breaker (see ``compose_breaker``).

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
    from memory_core.storage.redis.topology import TOPOLOGY_SCHEMES

    if scheme in REDIS_SCHEMES or scheme in TOPOLOGY_SCHEMES:
        from memory_core.storage.redis import RedisBackend

        redis = RedisBackend(
            config,
            url,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            clock=clock,
            client=client,
        )
        if fallback is None:
            fallback = scheme in REDIS_SCHEMES
        return compose_breaker(config, redis, fallback=fallback, clock=clock)
    raise InvalidArgumentError(
        f"unsupported store URL scheme {scheme!r}; use memory://, redis://, rediss://, "
        "unix://, redis+cluster:// or redis+sentinel://"
    )


def compose_breaker(
    config: StoreConfig,
    primary: PrimaryBackend,
    *,
    fallback: bool = True,
    clock: Clock | None = None,
    probe_min_seconds: float = 0.1,
    probe_max_seconds: float = 1.0,
) -> CircuitBreakerBackend:
    """Put ``primary`` behind a circuit breaker.

    Args:
        fallback: True gives a ``FallbackBackend`` that serves an in-process mirror
            (a ``MemoryBackend``) while the breaker is open; False a
            ``CircuitBreakerBackend`` that fails closed.
        clock: the breaker's and the mirror's clock (default: the primary's).
        probe_min_seconds, probe_max_seconds: the backoff of the probe while open.
    """
    clock = clock or primary.clock
    if not fallback:
        return CircuitBreakerBackend(
            config,
            primary,
            clock=clock,
            probe_min_seconds=probe_min_seconds,
            probe_max_seconds=probe_max_seconds,
        )
    from memory_core.storage.memory import MemoryBackend

    return FallbackBackend(
        config,
        primary,
        MemoryBackend(config, clock=clock),
        clock=clock,
        probe_min_seconds=probe_min_seconds,
        probe_max_seconds=probe_max_seconds,
    )
