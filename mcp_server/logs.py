"""Logging to stderr, one line per event (stdout is the stdio protocol stream).

Lines carry the session id (first 8 characters) and tool name, never values,
keys or tokens.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Send every log record to stderr at ``level`` (replacing earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # The SDK logs connection lifecycle at INFO but message payloads (values) at DEBUG,
    # so it never goes below INFO; HTTP client and SSE internals stay at warnings.
    logging.getLogger("mcp").setLevel(max(logging.getLevelName(level), logging.INFO))
    for name in ("httpx", "httpx2", "httpcore", "sse_starlette"):
        logging.getLogger(name).setLevel(logging.WARNING)
