"""A client that is not ours: the official MCP TypeScript SDK drives the stdio server.

Skipped with a reason when node/npm are missing; ``WM_REQUIRE_NODE=1`` (CI) makes
that a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.child_env import ALL_TOOLS
from tests.support.npm import npm_project
from tests.support.replicas import ServerProcess

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def node_client() -> Path:
    npm_project(HERE, "@modelcontextprotocol/sdk", "the TypeScript SDK client test")
    return HERE / "client.mjs"


def run_client(script: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", str(script)],
        check=False,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result line; stdout={proc.stdout!r} stderr={proc.stderr[-2000:]!r}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert proc.returncode == 0 and result["ok"], result.get("error") or proc.stderr[-2000:]
    return result


def stdio_env(**extra: str) -> dict[str, str]:
    return {
        **ALL_TOOLS,
        "WM_TS_TRANSPORT": "stdio",
        "WM_SERVER_COMMAND": sys.executable,
        "WM_SERVER_ARGS": json.dumps(["-m", "mcp_server", "--transport", "stdio"]),
        **extra,
    }


def test_typescript_sdk_over_stdio_in_memory(node_client: Path) -> None:
    result = run_client(node_client, stdio_env())
    assert int(result["checks"]) > 60


def test_typescript_sdk_over_stdio_with_redis(
    node_client: Path, redis_url: str, key_prefix: str
) -> None:
    result = run_client(node_client, stdio_env(WM_REDIS_URL=redis_url, WM_KEY_PREFIX=key_prefix))
    assert int(result["checks"]) > 60


@pytest.mark.parametrize("stack", ["fast", "pure"])
@pytest.mark.parametrize(("transport", "path"), [("http", "/mcp"), ("sse", "/sse")])
def test_typescript_sdk_over_http(
    node_client: Path, transport: str, path: str, stack: str, redis_url: str, key_prefix: str
) -> None:
    """The SDK's HTTP transports against the server as deployed (JSON answers to POSTs,
    notifications on the stream) on both HTTP stacks, with Redis."""
    env = {"WM_HTTP_STACK": stack, "WM_REDIS_URL": redis_url, "WM_KEY_PREFIX": key_prefix}
    with ServerProcess(env, f"ts-{transport}") as server:
        server.start().wait_ready()
        result = run_client(
            node_client, {"WM_TS_TRANSPORT": transport, "WM_SERVER_URL": server.url + path}
        )
    assert int(result["checks"]) > 60
