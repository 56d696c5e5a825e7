"""Building the one store and the one subscription bus a server process shares across
all its connections."""

from __future__ import annotations

from mcp.server.subscriptions import SubscriptionBus

from mcp_server.errors import StoreURLError
from mcp_server.settings import Settings
from memory_core import SessionStore, WorkingMemoryError, backend_from_url

EVENTS_CHANNEL_SUFFIX = ":events"


def build_store(settings: Settings) -> SessionStore:
    """A new, not yet started store for ``settings`` (memory:// unless a Redis URL is set).

    Fallback: ``WM_FALLBACK`` when set; else off for a process that names itself one of
    several replicas (``WM_REPLICA_ID``), whatever the URL, since private copies per
    replica could diverge; else the URL's default (on for one Redis, off for
    cluster/sentinel).

    Raises:
        StoreURLError: the URL's scheme is unknown or a cluster/sentinel URL is malformed.
    """
    config = settings.store_config()
    fallback = settings.fallback
    if fallback is None and settings.replica_id:
        fallback = False
    try:
        backend = backend_from_url(
            settings.store_url,
            config,
            fallback=fallback,
            connect_timeout=settings.connect_timeout,
            command_timeout=settings.command_timeout,
        )
    except WorkingMemoryError as exc:
        raise StoreURLError(exc.message) from exc
    return SessionStore(backend, config)


def build_bus(settings: Settings) -> SubscriptionBus:
    """A new, not yet started subscription bus for ``settings``.

    ``redis`` (the default whenever Redis is the store): events fan out to every replica
    sharing the Redis, on the channel ``<key_prefix>:events``; ``memory``: this process
    only.
    """
    from mcp_server.events.local import InProcessBus

    if settings.bus_kind == "redis" and settings.redis_url:
        from mcp_server.events.redis_bus import RedisSubscriptionBus

        return RedisSubscriptionBus(
            settings.redis_url,
            channel=settings.key_prefix + EVENTS_CHANNEL_SUFFIX,
            connect_timeout=settings.connect_timeout,
            command_timeout=settings.command_timeout,
        )
    return InProcessBus()
