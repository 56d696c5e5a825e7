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
until their timeout closes them).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from mcp_server.settings import Settings


def guarded(http: str, request_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol ``http`` ("auto", "h11", "httptools"), closing a
    connection whose next request line and headers take over ``request_timeout``."""
    base: type[Any] = import_from_string(HTTP_PROTOCOLS.get(http, http))

    class Guarded(base):  # type: ignore[misc]
        _wm_timer: asyncio.TimerHandle | None = None
        _wm_cycle: object = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._wm_arm()

        def data_received(self, data: bytes) -> None:
            waiting = self._wm_waiting()
            if waiting and self._wm_timer is None:
                self._wm_arm()  # the first byte of the next request
            super().data_received(data)
            if self._wm_timer is not None and self.cycle is not self._wm_cycle:
                self._wm_cancel()  # its headers are complete: the app has the request

        def connection_lost(self, exc: Exception | None) -> None:
            self._wm_cancel()
            super().connection_lost(exc)

        def _wm_waiting(self) -> bool:
            cycle = self.cycle
            return cycle is None or bool(getattr(cycle, "response_complete", False))

        def _wm_arm(self) -> None:
            self._wm_cancel()
            self._wm_cycle = self.cycle
            self._wm_timer = asyncio.get_running_loop().call_later(request_timeout, self._wm_expire)

        def _wm_cancel(self) -> None:
            if self._wm_timer is not None:
                self._wm_timer.cancel()
                self._wm_timer = None

        def _wm_expire(self) -> None:
            self._wm_timer = None
            if self.cycle is self._wm_cycle and self.transport is not None:
                self.transport.close()

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


def uvicorn_options(settings: Settings, http: str = "auto") -> dict[str, Any]:
    """The connection bounds as ``uvicorn.Config`` keyword arguments."""
    return {
        "http": guarded(http, settings.http_request_timeout),
        "limit_concurrency": settings.max_connections,
    }
