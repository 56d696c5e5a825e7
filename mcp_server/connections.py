"""Bounds on HTTP connections, below the app: how many, and how long a request may
take to arrive.

uvicorn keeps a connection whose request headers never end for ever (its keep-alive
timer runs only between complete requests, and any byte cancels it), so enough
half-open sockets exhaust file descriptors before authentication or the body limit
ever run. ``guarded`` wraps uvicorn's HTTP protocol class (h11, httptools or auto) so
that, from a connection's first byte and from the first byte after each response, the
next request's line and headers must arrive within ``request_timeout`` seconds or the
connection is closed. The body is bounded in time where it is read
(``http.CheckedBodies``).

Connections per process are bounded by uvicorn's ``limit_concurrency``: past it, a new
connection's request is answered 503 (open streams count; half-open sockets count
until their timeout closes them), counted as ``wm_limit_refusals_total{limit="connections"}``.

Each request's scope also carries ``streams.ABORT``: how the app closes a connection
whose event stream has stopped being read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from mcp_server import metrics
from mcp_server.settings import Settings
from mcp_server.streams import ABORT


class _Guard:
    """Mixed in before one of uvicorn's HTTP protocol classes (``guarded``)."""

    # set by uvicorn's protocol classes
    cycle: Any
    transport: Any
    connections: set[Any]
    tasks: set[Any]
    limit_concurrency: int | None
    # ours
    _wm_request_timeout: float = 10.0
    _wm_timer: asyncio.TimerHandle | None = None
    _wm_cycle: object = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._wm_arm()

    def data_received(self, data: bytes) -> None:
        waiting = self._wm_waiting()
        if waiting and self._wm_timer is None:
            self._wm_arm()  # the first byte of the next request
        before, full = self.cycle, self._wm_full()
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before and self.cycle is not None:
            self._wm_started(self.cycle, full)
        if self._wm_timer is not None and self.cycle is not self._wm_cycle:
            self._wm_cancel()  # its headers are complete: the app has the request

    def connection_lost(self, exc: Exception | None) -> None:
        self._wm_cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def _wm_waiting(self) -> bool:
        cycle = self.cycle
        return cycle is None or bool(getattr(cycle, "response_complete", False))

    def _wm_arm(self) -> None:
        self._wm_cancel()
        self._wm_cycle = self.cycle
        loop = asyncio.get_running_loop()
        self._wm_timer = loop.call_later(self._wm_request_timeout, self._wm_expire)

    def _wm_cancel(self) -> None:
        if self._wm_timer is not None:
            self._wm_timer.cancel()
            self._wm_timer = None

    def _wm_full(self) -> bool:
        """uvicorn's limit_concurrency check: a request arriving now gets 503."""
        limit = self.limit_concurrency
        return limit is not None and max(len(self.connections), len(self.tasks)) >= limit

    def _wm_started(self, cycle: Any, full: bool) -> None:
        # A new request: its app task has not run yet, so its scope can still carry
        # the way to abort this connection (streams.StalledStreams).
        cycle.scope.setdefault("extensions", {})[ABORT] = self._wm_abort
        if full:
            metrics.limit_refused("connections")

    def _wm_abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # drop what is buffered: the reader stopped reading

    def _wm_expire(self) -> None:
        self._wm_timer = None
        if self.cycle is self._wm_cycle and self.transport is not None:
            self.transport.close()


def guarded(http: str, request_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol ``http`` ("auto", "h11", "httptools"), closing a
    connection whose next request line and headers take over ``request_timeout``."""
    base: type[Any] = import_from_string(HTTP_PROTOCOLS.get(http, http))
    protocol: type[asyncio.Protocol] = type(
        f"Guarded{base.__name__}", (_Guard, base), {"_wm_request_timeout": request_timeout}
    )
    return protocol


def uvicorn_options(settings: Settings, http: str = "auto") -> dict[str, Any]:
    """The connection bounds as ``uvicorn.Config`` keyword arguments."""
    return {
        "http": guarded(http, settings.http_request_timeout),
        "limit_concurrency": settings.max_connections,
    }
