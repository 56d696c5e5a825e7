"""The MCP Inspector CLI (pinned in package.json here) against the real server, over
stdio and streamable HTTP with a bearer header. Each invocation is one connection.

Skipped with a reason when node/npm are missing; ``WM_REQUIRE_NODE=1`` (CI) makes
that a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import ALICE
from tests.server.e2e import ROOT, RunningServer
from tests.support.child_env import ALL_TOOLS, measured
from tests.support.npm import npm_project

# The first test of a run may build the client's environment (a virtualenv or npm ci).
pytestmark = pytest.mark.timeout(600)

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    npm_project(HERE, "@modelcontextprotocol/inspector", "the MCP Inspector CLI test")
    # The CLI keeps a server catalog, by default in ~/.mcp-inspector: not the user's.
    os.environ.setdefault("MCP_CATALOG_PATH", str(tmp_path_factory.mktemp("inspector") / "c.json"))
    return [str(HERE / "node_modules" / ".bin" / "mcp-inspector"), "--cli"]


def run(command: Sequence[str], *, expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(command), capture_output=True, text=True, timeout=60, check=False, cwd=HERE
    )
    if expect_ok:
        assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stdout} {proc.stderr[-3000:]}"
    return proc


def stdio_target(**extra: str) -> list[str]:
    env = [arg for k, v in measured({**ALL_TOOLS, **extra}).items() for arg in ("-e", f"{k}={v}")]
    return [*env, "--cwd", str(ROOT), sys.executable, "-m", "mcp_server"]


def http_target(running: RunningServer, token: str) -> list[str]:
    url = running.url + "/mcp"
    return [url, "--transport", "http", "--header", f"Authorization: Bearer {token}"]


def answer(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def call(target: list[str], tool: str, *pairs: str) -> list[str]:
    return [*target, "--method", "tools/call", "--tool-name", tool, "--tool-arg", *pairs]


def test_stdio_tools_list_is_portable_and_a_call_works(inspector: list[str]) -> None:
    # --strict exits 6 on an error-severity schema problem (warnings are allowed).
    listed = answer(run([*inspector, *stdio_target(), "--method", "tools/list", "--strict"]))
    names = {tool["name"] for tool in listed["tools"]}
    assert {"memory_set", "memory_get", "session_open", "checkpoint_create"} <= names
    stored = answer(
        run([*inspector, *call(stdio_target(), "memory_set", "key=plan", 'value={"a":1}')])
    )
    assert stored["isError"] is False and stored["structuredContent"]["key"] == "plan"


def test_stdio_bad_argument_is_a_clear_tool_error(inspector: list[str]) -> None:
    bad = call(stdio_target(), "memory_set", "key=plan", "value=1", "ttl_seconds=-5")
    proc = run([*inspector, *bad], expect_ok=False)
    assert proc.returncode != 0  # the CLI exits non-zero on a tool error
    result = answer(proc)
    assert result["isError"] is True
    assert result["content"][0]["text"].startswith("INVALID_ARGUMENT: ttl_seconds")


def test_http_with_a_bearer_header(inspector: list[str], http_server: RunningServer) -> None:
    target = http_target(http_server, ALICE)
    listed = answer(run([*inspector, *target, "--method", "tools/list"]))
    assert "memory_set" in {tool["name"] for tool in listed["tools"]}
    read = answer(run([*inspector, *call(target, "memory_get", "key=plan")]))
    assert read["structuredContent"]["found"] is False


def test_http_with_a_wrong_token_fails(inspector: list[str], http_server: RunningServer) -> None:
    # Our 401 makes the CLI look for OAuth, which it cannot do without a terminal: a
    # clear refusal, not a listing (field.md: the same without any token).
    target = http_target(http_server, "not-a-token-0123456789")
    proc = run([*inspector, *target, "--method", "tools/list"], expect_ok=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert json.loads(proc.stderr.splitlines()[-1])["error"]["code"] == "auth_required"


# --- named sessions (one CLI invocation is one connection or one process) -------------


def test_stdio_named_session_on_redis_carries_across_invocations(
    inspector: list[str], redis_url: str, key_prefix: str
) -> None:
    store = {"WM_REDIS_URL": redis_url, "WM_KEY_PREFIX": key_prefix}
    named = stdio_target(WM_SESSION_NAME="inspector", **store)
    run([*inspector, *call(named, "memory_set", "key=plan", "value=7")])
    read = answer(run([*inspector, *call(named, "memory_get", "key=plan")]))
    assert read["structuredContent"]["value"] == 7
    unnamed = answer(run([*inspector, *call(stdio_target(**store), "memory_get", "key=plan")]))
    assert unnamed["structuredContent"]["found"] is False


def test_http_session_header_carries_across_connections(
    inspector: list[str], http_server: RunningServer
) -> None:
    named = [*http_target(http_server, ALICE), "X-Memory-Session: inspector"]
    run([*inspector, *call(named, "memory_set", "key=plan", "value=8")])
    read = answer(run([*inspector, *call(named, "memory_get", "key=plan")]))
    assert read["structuredContent"]["value"] == 8
