"""Which event loop and HTTP parser serve HTTP (``WM_HTTP_STACK``).

The SDK and the HTTP stack, not our code, take most of the server's CPU per request.
uvloop and httptools (C) cost a fifth of asyncio and h11 (pure Python) per request, so
``fast`` is the default; ``pure`` is the fallback for a platform where they do not
build, and it is chosen by itself, with one warning, when either fails to import.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

from mcp_server.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpStack:
    """What ``uvicorn`` and ``anyio.run`` are given."""

    http: str  # uvicorn's HTTP protocol: "httptools" or "h11"
    uvloop: bool

    @property
    def name(self) -> str:
        return f"{'uvloop' if self.uvloop else 'asyncio'}+{self.http}"


FAST = HttpStack(http="httptools", uvloop=True)
PURE = HttpStack(http="h11", uvloop=False)


def http_stack(settings: Settings) -> HttpStack:
    """The stack ``settings.http_stack`` asks for, or the pure one where the fast one
    cannot load (with a warning naming what is missing)."""
    if settings.http_stack == "pure":
        return PURE
    missing = [name for name in ("uvloop", "httptools") if not _importable(name)]
    if missing:
        log.warning(
            "WM_HTTP_STACK=fast but %s cannot be imported: serving with asyncio and h11 "
            "(slower; install uvloop and httptools, or set WM_HTTP_STACK=pure to silence this)",
            " and ".join(missing),
        )
        return PURE
    return FAST


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
