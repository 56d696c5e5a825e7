"""Smoke test of ``python -m benchmarks.run``: it runs, prints its table, exits 0.

The numbers are not checked (a benchmark is not a timed test). With no Redis around
the benchmark skips its Redis parts by itself, so these tests pass either way. The
``mcp`` section starts real server subprocesses (stdio and HTTP); ``--quick`` keeps it
to about 20 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import TABLE_HEADER

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str, sections: str = "core") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--sections", sections, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )


def _bench_saving(out: Path, sections: str = "core") -> subprocess.CompletedProcess[str]:
    """A quick run of ``sections`` saving its JSON to ``out``, on the test Redis if set."""
    args = ["--json", str(out)]
    if url := os.environ.get("WM_TEST_REDIS_URL"):
        args += ["--redis-url", url]
    return _bench(*args, sections=sections)


def test_quick_run_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = _bench_saving(out)
    assert proc.returncode == 0, proc.stderr
    assert TABLE_HEADER in proc.stdout
    assert "## targets" in proc.stdout
    core = json.loads(out.read_text(encoding="utf-8"))["sections"]["core"]
    assert {row["operation"] for row in core["rows"]} >= {"get", "set"}
    assert all(t["verdict"] in ("PASS", "MISS", "SKIP") for t in core["targets"])


def test_quick_run_without_redis_skips_the_redis_parts() -> None:
    proc = _bench("--no-redis")
    assert proc.returncode == 0, proc.stderr
    assert TABLE_HEADER in proc.stdout
    assert "skipped: Redis parts: Redis disabled (--no-redis)" in proc.stdout
    assert "| SKIP (no Redis) |" in proc.stdout


def test_quick_mcp_section_calls_the_tools_over_stdio_and_http(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = _bench_saving(out, sections="mcp")
    assert proc.returncode == 0, proc.stderr
    assert TABLE_HEADER in proc.stdout
    assert "## mcp: " in proc.stdout
    assert "## targets" in proc.stdout
    mcp = json.loads(out.read_text(encoding="utf-8"))["sections"]["mcp"]
    rows = {(row["group"], row["operation"]) for row in mcp["rows"]}
    for transport in ("stdio", "http handshake", "http stateless"):
        for operation in ("echo (floor)", "memory_set", "memory_get"):
            assert (f"{transport} · memory", operation) in rows
    assert all(t["verdict"] in ("PASS", "MISS", "SKIP") for t in mcp["targets"])
    assert len(mcp["targets"]) == 24  # 6 groups x (2 ratios + 2 absolute p95s)


def test_quick_http_section_drives_the_server_with_wrk(tmp_path: Path) -> None:
    """wrk against the real server: every combination answered, no non-2xx. Skipped
    without wrk, unless ``WM_REQUIRE_WRK=1`` (CI installs it)."""
    if shutil.which("wrk") is None:
        if os.environ.get("WM_REQUIRE_WRK") == "1":
            pytest.fail("wrk is required (WM_REQUIRE_WRK=1) but not installed")
        pytest.skip("wrk is not installed (Debian: apt-get install wrk)")
    out = tmp_path / "bench.json"
    proc = _bench_saving(out, sections="http")
    assert proc.returncode == 0, proc.stderr
    http = json.loads(out.read_text(encoding="utf-8"))["sections"]["http"]
    assert http["skipped"] == [] or not os.environ.get("WM_TEST_REDIS_URL"), http["skipped"]
    [table] = http["tables"]
    rows = [line.split("|")[1:-1] for line in table[2:]]
    seen = {(r[0].strip(), r[1].strip(), r[2].strip()) for r in rows}
    for era in ("stateless", "handshake"):
        for call in ("echo", "memory_get", "memory_set"):
            assert ("memory", era, call) in seen
    assert ("—", "bare ASGI", "fixed answer") in seen
    assert all(int(r[-1]) == 0 for r in rows), "non-2xx or socket errors under load"
    assert all(float(r[4]) > 0 for r in rows)  # calls/s
    assert not any("NON-2XX" in note for note in http["notes"])
    assert all(t["verdict"] in ("PASS", "MISS", "SKIP") for t in http["targets"])


def test_quick_checkpoints_section_measures_both_stores(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = _bench_saving(out, sections="checkpoints")
    assert proc.returncode == 0, proc.stderr
    section = json.loads(out.read_text(encoding="utf-8"))["sections"]["checkpoints"]
    [table] = section["tables"]
    stores = [line.split("|")[1].strip() for line in table[2:]]
    assert stores[0] == "memory"
    assert stores[1:] == (["redis"] if os.environ.get("WM_TEST_REDIS_URL") else stores[1:])
    assert all(float(line.split("|")[2]) > 0 for line in table[2:])  # create ms
    assert [t["verdict"] in ("PASS", "MISS") for t in section["targets"]] == [True] * len(stores)
