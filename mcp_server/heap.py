"""The startup heap, out of the garbage collector's way.

Startup leaves a heap of ~80 MB (the SDK, pydantic schemas, our modules) that never
becomes garbage, yet every full collection walks all of it again: 60-70 ms pauses every
few seconds under load, which set the p99. ``freeze_startup_heap`` moves it to the
permanent generation once the server is ready to serve (stdio and HTTP alike), and from
then on each collection is timed (``wm_gc_pause_seconds`` by generation, on ``/metrics``).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from mcp_server import metrics

_started: float = 0.0


def freeze_startup_heap() -> None:
    """Keep what startup allocated out of every later garbage collection, and time
    every later collection."""
    gc.collect()
    gc.freeze()
    if _timed not in gc.callbacks:
        gc.callbacks.append(_timed)


_PAUSES = [metrics.GC_PAUSES.labels(str(generation)) for generation in range(3)]


def _timed(phase: str, info: dict[str, Any]) -> None:
    global _started  # noqa: PLW0603 - one collection runs at a time
    if phase == "start":
        _started = time.perf_counter()
    else:
        _PAUSES[info["generation"]].observe(time.perf_counter() - _started)
