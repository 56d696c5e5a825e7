"""``WM_HTTP_STACK``: uvloop and httptools by default, asyncio and h11 when asked for or
when the fast ones cannot load; and the startup heap frozen once the server serves."""

from __future__ import annotations

import gc
import logging
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from mcp_server import metrics
from mcp_server.heap import freeze_startup_heap
from mcp_server.http_stack import FAST, PURE, http_stack
from mcp_server.settings import Settings
from tests.support.replicas import ServerProcess


def test_fast_is_the_default() -> None:
    assert Settings().http_stack == "fast"
    assert http_stack(Settings()) == FAST
    assert FAST.name == "uvloop+httptools" and PURE.name == "asyncio+h11"


def test_pure_when_asked_for_in_any_case() -> None:
    assert http_stack(Settings(http_stack="PURE")) == PURE
    with pytest.raises(ValidationError):
        Settings(http_stack="turbo")


@pytest.mark.parametrize("missing", ["uvloop", "httptools"])
def test_fast_falls_back_to_pure_with_a_warning(
    missing: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # import raises ImportError
    with caplog.at_level(logging.WARNING, logger="mcp_server.http_stack"):
        assert http_stack(Settings()) == PURE
    [record] = caplog.records
    assert missing in record.getMessage() and "WM_HTTP_STACK=pure" in record.getMessage()


def test_freezing_moves_the_heap_out_of_collections_and_times_the_rest() -> None:
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 10_000
        before = _count()
        gc.collect()
        assert _count() == before + 1
    finally:
        gc.unfreeze()


def _count() -> float:
    return float(
        next(
            s.value
            for family in metrics.GC_PAUSES.collect()
            for s in family.samples
            if s.name.endswith("_count") and s.labels == {"generation": "2"}
        )
    )


def _loaded(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize(("stack", "fast"), [("fast", True), ("pure", False)])
def test_the_server_runs_on_the_stack_it_is_given(stack: str, fast: bool) -> None:
    with ServerProcess({"WM_HTTP_STACK": stack}, f"stack-{stack}") as server:
        server.start().wait_ready()
        assert server.proc is not None
        maps = _loaded(server.proc.pid)
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
            scrape = response.read().decode()
    assert ("uvloop/loop." in maps) is fast
    assert ("httptools/parser/parser." in maps) is fast
    frozen = {
        s.name: s.value for family in text_string_to_metric_families(scrape) for s in family.samples
    }["wm_gc_frozen_objects"]
    assert frozen > 10_000  # the startup heap, frozen once the server serves
