"""Prometheus metrics: what happened (counted where it happens) and what is (read at
scrape time).

Events are counted in this process's ``EVENTS`` registry by the code where they happen,
cheaply (a cached labelled child, one lock-protected add): tool calls by tool and
outcome with their latency (``server.WorkingMemoryServer.call_tool``), limit refusals by
limit (``errors.error_text``, the one place every limit error is worded), authentication
failures by reason (``http.AuthFailures``). State is read from the runtime when
``/metrics`` is scraped, so the request path pays nothing for it: the store's mode and
switch counters (``memory://health``'s figures), sessions open, the subscription bus.

Label values are bounded sets: tool names (unknown names are ``<unknown>``), error
codes, limit names, a few reasons; never keys, sessions or principals.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

if TYPE_CHECKING:
    from mcp_server.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STORE_MODES = ("redis", "fallback", "memory")
UNKNOWN_TOOL = "<unknown>"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds: a memory call is about a millisecond in process, a few over HTTP and Redis."""

EVENTS = CollectorRegistry(auto_describe=True)
TOOL_CALLS = Counter(
    "wm_tool_calls",
    "Tool calls by tool and outcome (ok, or the error code answered).",
    ("tool", "outcome"),
    registry=EVENTS,
)
TOOL_LATENCY = Histogram(
    "wm_tool_call_duration_seconds",
    "Time from a tool call reaching the server to its result, by tool.",
    ("tool",),
    buckets=LATENCY_BUCKETS,
    registry=EVENTS,
)
LIMIT_REFUSALS = Counter(
    "wm_limit_refusals",
    "Calls refused because a configured limit or quota would be exceeded, by limit.",
    ("limit",),
    registry=EVENTS,
)
GC_PAUSES = Histogram(
    "wm_gc_pause_seconds",
    "Garbage collections after startup and how long each stopped the process, by generation.",
    ("generation",),
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
    registry=EVENTS,
)
AUTH_FAILURES = Counter(
    "wm_auth_failures",
    "HTTP requests refused for want of a valid bearer token, by reason.",
    ("reason",),
    registry=EVENTS,
)

_calls: dict[tuple[str, str], Counter] = {}
_latency: dict[str, Histogram] = {}


def tool_call(tool: str, outcome: str, seconds: float) -> None:
    """Count one tool call (``tool`` already bounded by the caller)."""
    counter = _calls.get((tool, outcome))
    if counter is None:
        counter = _calls[(tool, outcome)] = TOOL_CALLS.labels(tool, outcome)
    counter.inc()
    histogram = _latency.get(tool)
    if histogram is None:
        histogram = _latency[tool] = TOOL_LATENCY.labels(tool)
    histogram.observe(seconds)


def limit_refused(limit: str) -> None:
    LIMIT_REFUSALS.labels(limit).inc()


def auth_failed(reason: str) -> None:
    AUTH_FAILURES.labels(reason).inc()


class _Snapshot:
    """A collector over metric families computed before the scrape renders them."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def state_families(runtime: Runtime) -> list[Metric]:
    """What the runtime is now: store mode and switches, sessions, subscription bus."""
    health = await runtime.store.health()
    mode = GaugeMetricFamily(
        "wm_store_mode", "1 for the mode the store serves from now.", labels=("mode",)
    )
    for name in STORE_MODES:
        mode.add_metric((name,), 1.0 if health.mode == name else 0.0)
    healthy = GaugeMetricFamily("wm_store_healthy", "1 while the store can serve calls.")
    healthy.add_metric((), 1.0 if health.healthy else 0.0)
    switched = GaugeMetricFamily(
        "wm_store_last_switch_timestamp_seconds",
        "When the store last switched mode (0: never).",
    )
    switched.add_metric((), health.last_switch_at.timestamp() if health.last_switch_at else 0.0)
    fallbacks = CounterMetricFamily(
        "wm_store_fallbacks", "Switches from Redis to the in-process fallback."
    )
    fallbacks.add_metric((), health.fallbacks)
    write_backs = CounterMetricFamily(
        "wm_store_write_backs", "Returns to Redis after writing the fallback's sessions back."
    )
    write_backs.add_metric((), health.write_backs)
    written = CounterMetricFamily(
        "wm_store_write_back_sessions", "Sessions written back to Redis after outages."
    )
    written.add_metric((), health.write_back_sessions)
    sessions = GaugeMetricFamily("wm_sessions_open", "Sessions open in this process.")
    sessions.add_metric((), runtime.store.open_count())
    subscribers = GaugeMetricFamily(
        "wm_resource_subscribers", "resources/subscribe subscriptions held by this process."
    )
    subscribers.add_metric((), runtime.events.subscriber_count())
    frozen = GaugeMetricFamily(
        "wm_gc_frozen_objects",
        "Objects of the startup heap kept out of garbage collections (mcp_server.heap).",
    )
    frozen.add_metric((), gc.get_freeze_count())
    return [
        mode,
        healthy,
        switched,
        fallbacks,
        write_backs,
        written,
        sessions,
        subscribers,
        frozen,
        *_bus_families(runtime),
    ]


def _bus_families(runtime: Runtime) -> Iterator[Metric]:
    stats = runtime.events.stats()
    labels = ("bus",)
    connected = GaugeMetricFamily(
        "wm_bus_connected", "1 while the subscription bus is connected.", labels=labels
    )
    connected.add_metric((stats.kind,), 1.0 if stats.connected else 0.0)
    yield connected
    for name, value, text in (
        ("published", stats.published, "Change events published on the subscription bus."),
        ("received", stats.received, "Change events received from the subscription bus."),
        ("dropped", stats.dropped, "Change events the subscription bus dropped."),
        ("reconnects", stats.reconnects, "Reconnections of the subscription bus."),
    ):
        family = CounterMetricFamily(f"wm_bus_{name}", text, labels=labels)
        family.add_metric((stats.kind,), value)
        yield family


class Exposition:
    """The ``/metrics`` answer of one app: this process's events and resources, then
    the runtime's state, in the Prometheus text format."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.process = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.process)
        GCCollector(registry=self.process)

    async def render(self) -> bytes:
        state = CollectorRegistry(auto_describe=False)
        state.register(_Snapshot(await state_families(self.runtime)))
        return generate_latest(EVENTS) + generate_latest(self.process) + generate_latest(state)
