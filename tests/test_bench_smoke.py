"""Smoke test of ``python -m benchmarks.run``: it runs, prints its table, exits 0.

The numbers are not checked (a benchmark is not a timed test). With no Redis around
the benchmark skips its Redis parts by itself, so these tests pass either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.report import TABLE_HEADER

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--sections", "core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )


def test_quick_run_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--json", str(out)]
    if url := os.environ.get("WM_TEST_REDIS_URL"):
        args += ["--redis-url", url]
    proc = _bench(*args)
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
