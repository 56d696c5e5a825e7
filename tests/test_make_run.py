"""`make run` as a client's stdio command: stdout carries only the protocol.

From another directory the command is `make -s -C <checkout> run` (without `-s`, make
itself prints "Entering directory" lines on stdout, before reading the Makefile)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "make-run-test", "version": "0"},
    },
}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.skipif(not (ROOT / ".venv" / ".runtime").exists(), reason="needs `make runtime`")
@pytest.mark.parametrize(
    "command",
    [["make", "run"], ["make", "-s", "-C", str(ROOT), "run"]],
    ids=["in-checkout", "from-elsewhere"],
)
def test_make_run_writes_only_protocol_messages_to_stdout(command: list[str]) -> None:
    done = subprocess.run(
        command,
        cwd=ROOT,
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines, done.stderr[-2000:]
    messages = [json.loads(line) for line in lines]  # a stray byte fails here
    assert messages[0]["id"] == 1
    assert messages[0]["result"]["serverInfo"]["name"] == "mcp-working-memory"
    assert "serving stdio" in done.stderr  # the logs went to stderr


FAKE_OLD_PYTHON = """#!/bin/sh
# Python 3.10 as far as the Makefile's check can tell (a real one may not be installed).
[ "$1" = "-c" ] || {{ echo "this fake python runs -c only" >&2; exit 2; }}
exec {real} -c 'import sys; sys.version_info = (3, 10, 14, "final", 0); \\
sys.version = "3.10.14"; code = sys.argv[1]; sys.argv = ["-c"]; exec(code)' "$2"
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_an_older_python_is_refused_in_one_line_and_leaves_no_venv(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("Makefile", "pyproject.toml", "requirements"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, checkout / name)
    fake = tmp_path / "python3.10"
    fake.write_text(FAKE_OLD_PYTHON.format(real=sys.executable))
    fake.chmod(0o755)
    done = subprocess.run(
        ["make", "-s", "run", f"PYTHON={fake}"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert (
        "mcp-working-memory needs Python 3.11 or newer; this is 3.10.14 "
        "(set PYTHON=python3.11 or newer)"
    ) in done.stderr
    assert not (checkout / ".venv").exists()
