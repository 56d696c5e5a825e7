"""Logging to stderr, one line per event (stdout is the stdio protocol stream).

Lines carry the session id (first 8 characters) and tool name, never values,
keys or tokens. ``WM_LOG_FORMAT=json`` writes each line as one JSON object (``time``,
``level``, ``logger``, ``message``, and ``exception`` with the traceback when there is
one) for log pipelines that parse JSON.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "text") -> None:
    """Send every log record to stderr at ``level`` (replacing earlier handlers), as
    text or (``fmt="json"``) one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(FORMAT))
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
