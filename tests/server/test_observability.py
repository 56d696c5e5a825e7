"""What an operator sees: ``/metrics`` scraped over a real socket and read with the
Prometheus text-format parser, the log line per authentication failure, the access log
and JSON log lines."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import httpx2
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from mcp_server.http import create_app
from mcp_server.logs import JsonFormatter, configure_logging
from mcp_server.server import create_server
from mcp_server.settings import Settings
from memory_core import SessionStore
from tests.server.e2e import RunningServer, call, error, serve_in_thread, streamable_client
from tests.server.helpers import agent
from tests.support.child_env import ALL_TOOLS

ALICE = "alice-token-0123456789"
SCRAPER = "scrape-token-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value of every sample of a scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def open_server() -> Iterator[RunningServer]:
    settings = Settings(transport="http", tools=ALL_TOOLS["WM_TOOLS"], max_keys=1)
    with serve_in_thread(create_app(settings)) as running:
        yield running


@pytest.fixture
def guarded_server() -> Iterator[RunningServer]:
    settings = Settings(
        transport="http", auth_tokens=f"{ALICE}=alice", metrics_token=SCRAPER, access_log=True
    )
    with serve_in_thread(create_app(settings)) as running:
        yield running


async def scrape(running: RunningServer, token: str | None = None) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient() as http:
        return await http.get(running.url + "/metrics", headers=headers)


async def test_metrics_count_calls_refusals_and_state(open_server: RunningServer) -> None:
    before = samples((await scrape(open_server)).text)
    async with streamable_client(open_server.url) as client:
        await call(client, "memory_set", key="a", value=1)
        text = await error(client, "memory_set", key="b", value=2)
        assert text.startswith("LIMIT_EXCEEDED: ")
        await error(client, "memory_get", key="")
        response = await scrape(open_server)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        after = samples(response.text)
        assert value(after, "wm_sessions_open") == 1  # this connection's session

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("wm_tool_calls_total", tool="memory_set", outcome="ok") == 1
    assert grew("wm_tool_calls_total", tool="memory_set", outcome="LIMIT_EXCEEDED") == 1
    assert grew("wm_tool_calls_total", tool="memory_get", outcome="INVALID_KEY") == 1
    assert grew("wm_limit_refusals_total", limit="max_keys") == 1
    assert grew("wm_tool_call_duration_seconds_count", tool="memory_set") == 2
    assert grew("wm_tool_call_duration_seconds_bucket", tool="memory_set", le="+Inf") == 2
    assert value(after, "wm_store_mode", mode="memory") == 1
    assert value(after, "wm_store_mode", mode="redis") == 0
    assert value(after, "wm_store_healthy") == 1
    assert ("wm_store_fallbacks_total", ()) in after
    assert ("wm_store_write_backs_total", ()) in after
    assert value(after, "wm_bus_connected", bus="memory") == 1
    assert value(after, "process_cpu_seconds_total") > 0


async def test_metrics_need_the_scrape_token_on_a_server_with_auth(
    guarded_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await scrape(guarded_server, SCRAPER)).status_code == 200
    caplog.set_level(logging.INFO)
    for token in (None, ALICE, "wrong-token-0123456789"):
        response = await scrape(guarded_server, token)
        assert response.status_code == 401, token
        assert "wm_" not in response.text
    failures = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(failures) == 3
    assert "reason=missing" in failures[0] and "reason=invalid" in failures[1]
    assert all("path=/metrics" in line for line in failures)
    assert not any(ALICE in r.getMessage() for r in caplog.records)


async def test_metrics_without_a_scrape_token_are_refused_when_auth_is_on() -> None:
    settings = Settings(transport="http", auth_tokens=f"{ALICE}=alice")
    with serve_in_thread(create_app(settings)) as running:
        response = await scrape(running, ALICE)  # a memory token reads no process figures
        assert response.status_code == 403
        assert "WM_METRICS_TOKEN" in response.json()["error"]


async def test_each_auth_failure_is_logged_without_the_token(
    guarded_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = samples((await scrape(guarded_server, SCRAPER)).text)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    wrong = "not-the-right-token-0123456789"
    async with httpx2.AsyncClient() as http:
        for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": "Basic x"}):
            response = await http.post(guarded_server.url + "/mcp", json=body, headers=headers)
            assert response.status_code == 401
    lines = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert [line.split()[2] for line in lines] == [
        "reason=missing",
        "reason=invalid",
        "reason=malformed",
    ]
    assert all("path=/mcp" in line and "client=127.0.0.1:" in line for line in lines)
    assert not any(wrong in r.getMessage() for r in caplog.records)
    after = samples((await scrape(guarded_server, SCRAPER)).text)
    for reason in ("missing", "invalid", "malformed"):
        grew = value(after, "wm_auth_failures_total", reason=reason) - value(
            before, "wm_auth_failures_total", reason=reason
        )
        assert grew == 1, reason


async def test_the_access_log_names_request_status_and_principal(
    guarded_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_server.access")
    async with streamable_client(guarded_server.url, token=ALICE) as client:
        await call(client, "memory_set", key="k", value="v")
    lines = [r.getMessage() for r in caplog.records if r.name == "mcp_server.access"]
    assert any(line.startswith("POST /mcp 200 ") and "principal=alice" in line for line in lines), (
        lines
    )
    assert not any("?" in line.split()[1] for line in lines)


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        log = logging.getLogger("mcp_server.test")
        log.warning("refused %s", "a body")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("crashed")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        for handler in list(logging.getLogger().handlers):
            if isinstance(handler.formatter, JsonFormatter):
                logging.getLogger().removeHandler(handler)
    assert lines[0]["level"] == "WARNING" and lines[0]["message"] == "refused a body"
    assert lines[0]["logger"] == "mcp_server.test" and lines[0]["time"].endswith("+00:00")
    assert "RuntimeError: boom" in lines[1]["exception"]


def test_log_format_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WM_LOG_FORMAT", "JSON")
    assert Settings().log_format == "json"


async def test_a_store_serving_from_the_fallback_says_so() -> None:
    """Redis unreachable at startup: the store serves from the fallback, and /metrics
    shows the mode and the switch (an operator alerts on these)."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
    settings = Settings(transport="http", redis_url=f"redis://127.0.0.1:{dead}/0", fallback=True)
    with serve_in_thread(create_app(settings)) as running:
        scraped = samples((await scrape(running)).text)
    assert value(scraped, "wm_store_mode", mode="fallback") == 1
    assert value(scraped, "wm_store_mode", mode="redis") == 0
    assert value(scraped, "wm_store_fallbacks_total") >= 1
    assert value(scraped, "wm_store_last_switch_timestamp_seconds") > 0


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's OpenTelemetry tracer provider, exporting to memory (what an operator
    gets from ``opentelemetry-instrument`` with an OTLP exporter)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()


async def test_the_sdk_emits_one_server_span_per_request(
    spans: InMemorySpanExporter, store: SessionStore
) -> None:
    """What README "OpenTelemetry" promises: a SERVER span per request named after the
    method and tool, with the tool's name, and ``error.type`` on a failed call."""
    spans.clear()
    server = create_server(Settings(transport="http"), store)
    async with agent(server, "legacy") as a:
        await a.call("memory_set", key="k", value=1)
        await a.fail("memory_get", {"key": ""})
    by_name = {span.name: span for span in spans.get_finished_spans()}
    ok, failed = by_name["tools/call memory_set"], by_name["tools/call memory_get"]
    assert ok.kind is SpanKind.SERVER
    assert ok.attributes is not None and failed.attributes is not None
    assert ok.attributes["mcp.method.name"] == "tools/call"
    assert ok.attributes["gen_ai.tool.name"] == "memory_set"
    assert "error.type" not in ok.attributes
    assert failed.attributes["error.type"] == "tool_error"
    assert "initialize" in by_name
