"""langchain-mcp-adapters (pinned in legacy/requirements.txt) against the real server.

Its default, ``MultiServerMCPClient(...).get_tools()``, opens a new MCP connection for
every tool call: a new stdio process, or a new ``initialize`` over HTTP. Without a
session name each connection is its own session, so memory does not carry from one
call to the next (documented here, so a change is noticed). ``client.session(name)``
keeps one connection, and memory with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import ALICE, bearer, set_then_get
from tests.clients.legacy_venv import drive, server_command
from tests.server.e2e import RunningServer
from tests.support.child_env import ALL_TOOLS, measured

# The first test of a run may build the client's environment (a virtualenv or npm ci).
pytestmark = pytest.mark.timeout(600)


def stdio(**env: str) -> dict[str, Any]:
    return server_command(measured({**ALL_TOOLS, **env}))


def http(running: RunningServer, headers: dict[str, str]) -> dict[str, Any]:
    return {"transport": "streamable_http", "url": running.url + "/mcp", "headers": headers}


def test_per_call_stdio_without_a_name_is_one_session_per_call(legacy: Path) -> None:
    scenario = {"client": "langchain-per-call", "server": stdio(), "steps": set_then_get()}
    stored, read = drive(legacy, scenario)["results"]
    assert stored == {"key": "plan", "ttl_seconds": None}
    assert read["found"] is False  # another process: another session


def test_session_mode_stdio_keeps_memory_and_reports_errors(legacy: Path) -> None:
    steps = [*set_then_get(), {"tool": "memory_get", "args": {"key": ""}}]
    scenario = {"client": "langchain-session", "server": stdio(), "steps": steps}
    _, read, bad = drive(legacy, scenario)["results"]
    assert read["found"] is True
    assert read["value"] == {"step": 2, "notes": ["emoji \U0001f600", "ünïcode"]}
    assert "INVALID_KEY" in bad["error"]


def test_per_call_http_without_a_name_is_one_session_per_call(
    legacy: Path, http_server: RunningServer
) -> None:
    server = http(http_server, bearer(ALICE))
    scenario = {"client": "langchain-per-call", "server": server, "steps": set_then_get()}
    _, read = drive(legacy, scenario)["results"]
    assert read["found"] is False


def test_session_mode_http_keeps_memory(legacy: Path, http_server: RunningServer) -> None:
    server = http(http_server, bearer(ALICE))
    scenario = {"client": "langchain-session", "server": server, "steps": set_then_get()}
    _, read = drive(legacy, scenario)["results"]
    assert read["found"] is True and read["value"]["step"] == 2


def test_http_without_a_token_is_refused(legacy: Path, http_server: RunningServer) -> None:
    scenario = {"client": "langchain-session", "server": http(http_server, {}), "steps": []}
    outcome = drive(legacy, scenario, expect_failure=True)
    assert "401" in outcome["error"]
