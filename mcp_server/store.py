"""Building the one store a server process shares across all its connections."""

from __future__ import annotations

from mcp_server.settings import Settings
from memory_core import SessionStore, backend_from_url


def build_store(settings: Settings) -> SessionStore:
    """A new, not yet started store for ``settings`` (memory:// unless a Redis URL is set)."""
    config = settings.store_config()
    backend = backend_from_url(
        settings.store_url,
        config,
        fallback=settings.fallback,
        connect_timeout=settings.connect_timeout,
        command_timeout=settings.command_timeout,
    )
    return SessionStore(backend, config)
