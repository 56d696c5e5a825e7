"""An ``mcp`` 1.x client (the latest 1.x, pinned in legacy/requirements.txt; many hosts
still run it) in its own virtualenv: the handshake era over stdio and streamable HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import ALICE, BOB, bearer, set_then_get
from tests.clients.legacy_venv import drive, server_command
from tests.server.e2e import RunningServer
from tests.support.child_env import ALL_TOOLS, measured

# The first test of a run may build the client's environment (a virtualenv or npm ci).
pytestmark = pytest.mark.timeout(600)

LATEST_1X_PROTOCOL = "2025-11-25"


def http(running: RunningServer, headers: dict[str, str]) -> dict[str, Any]:
    return {"transport": "streamable_http", "url": running.url + "/mcp", "headers": headers}


def test_stdio_handshake_tools_and_memory(legacy: Path) -> None:
    steps = [*set_then_get(), {"tool": "memory_set", "args": {"key": "", "value": 1}}]
    server = server_command(measured(ALL_TOOLS))
    outcome = drive(legacy, {"client": "mcp1", "server": server, "steps": steps})
    assert outcome["protocol"] == LATEST_1X_PROTOCOL
    assert {"memory_set", "memory_get", "session_open", "checkpoint_list"} <= set(outcome["tools"])
    _, read, bad = outcome["results"]
    assert read["found"] is True and read["value"]["notes"][0] == "emoji \U0001f600"
    assert bad["error"].startswith("INVALID_KEY")


def test_http_handshake_keeps_memory_per_connection(
    legacy: Path, http_server: RunningServer
) -> None:
    outcome = drive(
        legacy,
        {"client": "mcp1", "server": http(http_server, bearer(ALICE)), "steps": set_then_get()},
    )
    assert outcome["protocol"] == LATEST_1X_PROTOCOL
    assert outcome["results"][1]["found"] is True
    # Another connection (another principal here) starts empty.
    other = drive(
        legacy,
        {"client": "mcp1", "server": http(http_server, bearer(BOB)), "steps": set_then_get()[1:]},
    )
    assert other["results"][0]["found"] is False
