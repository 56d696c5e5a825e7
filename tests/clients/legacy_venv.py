"""A virtualenv for the clients that cannot live beside ``mcp==2.3.0``.

``mcp`` 1.x and langchain-mcp-adapters (which requires ``mcp<2``) are installed from
``legacy/requirements.txt`` into ``.venv/legacy-clients/<key>``, the key being a hash of
that file and of the Python version: a second run reuses it, a changed pin builds a
new one. A failed install is a test failure, never a skip (every client runs in CI).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
REQUIREMENTS = HERE / "legacy" / "requirements.txt"
DRIVER = HERE / "legacy" / "drive.py"
CACHE = ROOT / ".venv" / "legacy-clients"


def cache_key() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def legacy_python() -> Path:
    """The cached virtualenv's interpreter, created (once per key) if missing."""
    root = CACHE / cache_key()
    python = root / "bin" / "python"
    complete = root / ".complete"
    if complete.exists():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs of one checkout build it once
        if not complete.exists():
            shutil.rmtree(root, ignore_errors=True)  # a half-built one from a killed run
            subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
            pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, timeout=600)
            complete.touch()
    return python


def drive(
    python: Path, scenario: Mapping[str, Any], *, expect_failure: bool = False, timeout: float = 90
) -> dict[str, Any]:
    """Run ``legacy/drive.py`` with ``scenario``: its outcome (``results`` in call order,
    or ``error`` when the client failed, which must be what ``expect_failure`` says)."""
    proc = subprocess.run(
        [str(python), str(DRIVER)],
        input=json.dumps(scenario),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    expected = 3 if expect_failure else 0
    assert proc.returncode == expected and lines, (
        f"exit {proc.returncode}; stdout={proc.stdout!r} stderr={proc.stderr[-3000:]}"
    )
    outcome: dict[str, Any] = json.loads(lines[-1])
    return outcome


def drive_each(python: Path, *scenarios: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run ``scenarios`` one after the other in one interpreter: their outcomes."""
    outcomes: list[dict[str, Any]] = drive(python, {"runs": scenarios})["outcomes"]
    return outcomes


def server_command(env: Mapping[str, str], args: Sequence[str] = ()) -> dict[str, Any]:
    """A stdio server configuration as LangChain and ``StdioServerParameters`` take it."""
    return {
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_server", "--transport", "stdio", *args],
        "env": dict(env),
        "cwd": str(ROOT),
    }
