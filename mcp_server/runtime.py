"""The server's process-wide state: built once from settings, entered once.

``Runtime(settings)`` builds what every connection of the process shares: the store,
the subscription events (and their bus), the session binder, page sizes and the bearer
tokens. ``async with runtime:`` starts the store and the events; leaving it (or
``close``) closes, in this order and within ``teardown_seconds``, the sessions still
bound to a connection or the process, then the events (after the sessions: other
replicas hear of those ends), then the store. stdio, HTTP and the tests all use it.

A store or bus passed in (tests) is owned exactly like a built one: the runtime starts
it on entry and closes it on exit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio
from mcp.server.mcpserver import Context
from mcp.server.subscriptions import SubscriptionBus

from mcp_server.auth import ANONYMOUS_PRINCIPAL, load_tokens
from mcp_server.binding import Resolved, SessionBinder
from mcp_server.errors import StoreRefusedError, StoreURLError
from mcp_server.events.sessions import SessionEvents
from mcp_server.paging import PageSize
from mcp_server.settings import Settings
from memory_core import (
    LOCAL_PRINCIPAL,
    SessionStore,
    StorageMisconfiguredError,
    WorkingMemoryError,
    backend_from_url,
)

log = logging.getLogger("mcp_server.runtime")

EVENTS_CHANNEL_SUFFIX = ":events"
STDIO_TEARDOWN_SECONDS = 1.5
"""The SDK's stdio client closes stdin, waits 2 s, then kills the server."""
HTTP_TEARDOWN_SECONDS = 5.0
"""After uvicorn's graceful shutdown: closing the sessions bound to connections, the bus
and the store. Together with ``cli.GRACEFUL_SHUTDOWN_SECONDS`` the bound on SIGTERM."""


class Runtime:
    """What tools, resources and transports share (see the module docstring).

    Raises:
        AuthConfigError: the auth token configuration is unusable.
        StoreURLError: the store URL names no usable store.
    """

    def __init__(
        self,
        settings: Settings,
        store: SessionStore | None = None,
        *,
        bus: SubscriptionBus | None = None,
    ) -> None:
        stdio = settings.transport == "stdio"
        self.settings = settings
        self.tokens: dict[str, str] = {} if stdio else load_tokens(settings)
        self.store = store or build_store(settings)
        self.events = SessionEvents(bus or build_bus(settings))
        self.binder = SessionBinder(
            self.store,
            process_bound=stdio,
            anonymous_principal=LOCAL_PRINCIPAL if stdio else ANONYMOUS_PRINCIPAL,
            process_name=settings.session_name if stdio else None,
            default_session=settings.default_session == "on",
            on_ended=self.events.session_ended,
        )
        self.pages = PageSize(settings.page_size, settings.max_page_size, settings.max_page_bytes)
        self.teardown_seconds = STDIO_TEARDOWN_SECONDS if stdio else HTTP_TEARDOWN_SECONDS
        self._started = False
        self._closed = False

    # lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> Runtime:
        """Start the store and the events, once: entering a started runtime again does
        nothing (the HTTP launcher starts it before binding its port, the app's lifespan
        enters it again), and the first exit closes it (``close`` runs once).

        Raises:
            StoreRefusedError: the store answers but refuses this server.
        """
        if self._started:
            return self
        self._started = True
        try:
            await self.store.start()
        except StorageMisconfiguredError as exc:
            self._closed = True
            await self.store.close()
            raise StoreRefusedError(exc) from exc
        await self.events.start()
        return self

    @property
    def closing(self) -> bool:
        """Shutting down: no longer ready to serve."""
        return self._closed

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close("shutdown" if exc is None else "error")

    async def close(self, reason: str) -> None:
        """Close bound sessions, then events, then the store: once, bounded, shielded
        from cancellation (a signal or a cancelled serve loop must not cut it short)."""
        if self._closed:
            return
        self._closed = True
        # Each step gets its own share of the bound, so sessions that take long to close
        # cannot leave the bus's tasks or the store's connections running: a task left
        # behind would keep the event loop (and the process) from ending.
        steps: tuple[tuple[str, float, Callable[[], Awaitable[object]]], ...] = (
            ("closing sessions", 0.6, lambda: self.binder.close_all(reason)),
            ("stopping the subscription bus", 0.2, self.events.close),
            ("closing the store", 0.2, self.store.close),
        )
        for what, share, step in steps:
            seconds = self.teardown_seconds * share
            with anyio.move_on_after(seconds, shield=True) as scope:
                await step()
            if scope.cancelled_caught:
                log.warning("shutdown: %s took over %.1f s; cut short", what, seconds)

    # per request ----------------------------------------------------------------------
    async def session(self, ctx: Context, handle: str | None) -> Resolved:
        """The session this tool call works on (see ``mcp_server.binding``)."""
        return await self.binder.resolve(ctx.request_context, handle)

    async def changed(self, resolved: Resolved) -> None:
        await self.events.changed(resolved.memory.session_id)


def runtime_of(ctx: Context) -> Runtime:
    """The runtime of the server serving ``ctx`` (a ``WorkingMemoryServer``)."""
    runtime = getattr(ctx.mcp_server, "runtime", None)
    if not isinstance(runtime, Runtime):  # pragma: no cover - tools run on our server only
        raise TypeError("tool served by a server without a Runtime")
    return runtime


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
    if settings.bus_kind == "redis" and settings.redis_url:
        from mcp_server.events.redis_bus import RedisSubscriptionBus

        return RedisSubscriptionBus(
            settings.redis_url,
            channel=settings.key_prefix + EVENTS_CHANNEL_SUFFIX,
            connect_timeout=settings.connect_timeout,
            command_timeout=settings.command_timeout,
        )
    from mcp_server.events.local import InProcessBus

    return InProcessBus()
