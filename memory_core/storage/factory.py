"""Build a backend from a URL: the one place that knows every backend."""

from __future__ import annotations

from urllib.parse import urlsplit

from memory_core.clock import Clock
from memory_core.config import StoreConfig
from memory_core.errors import InvalidArgumentError
from memory_core.storage.base import Backend

REDIS_SCHEMES = ("redis", "rediss", "unix")


def backend_from_url(
    url: str,
    config: StoreConfig | None = None,
    *,
    fallback: bool = True,
    connect_timeout: float = 0.25,
    command_timeout: float = 0.5,
    clock: Clock | None = None,
) -> Backend:
    """``memory://`` -> in-process store; ``redis://``, ``rediss://``, ``unix://`` ->
    Redis behind a circuit breaker, with the in-memory fallback unless ``fallback`` is
    False (then calls fail closed with ``StorageUnavailableError`` during an outage)."""
    config = config or StoreConfig()
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from memory_core.storage.memory import MemoryBackend

        return MemoryBackend(config, clock=clock)
    if scheme in REDIS_SCHEMES:
        from memory_core.storage.redis import RedisBackend

        redis = RedisBackend(
            config, url, connect_timeout=connect_timeout, command_timeout=command_timeout
        )
        from memory_core.storage.fallback import FallbackBackend

        return FallbackBackend(config, redis, fallback=fallback, clock=clock)
    raise InvalidArgumentError(
        f"unsupported store URL scheme {scheme!r}; use memory://, redis://, rediss:// or unix://"
    )
