"""`make run` as a client's stdio command: stdout carries only the protocol.

From another directory the command is `make -s -C <checkout> run` (without `-s`, make
itself prints "Entering directory" lines on stdout, before reading the Makefile)."""

from __future__ import annotations

import json
import shutil
import subprocess
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
