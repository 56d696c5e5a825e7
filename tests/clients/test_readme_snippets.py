"""The README's "Keeping memory across connections" snippets, run as written.

Each fenced block of that section runs against a fresh server and a private Redis. Only
the placeholders for where the server is are replaced:

- ``/path/to/checkout`` (the Claude Desktop ``command``) becomes this checkout;
- ``redis://127.0.0.1:6379/0`` becomes the private Redis's URL;
- ``http://127.0.0.1:8765`` becomes the test server's address (a server started as the
  README says: ``--transport http``, no tokens, loopback);
- ``mcp-working-memory`` is found on ``PATH`` as the snippets assume (this venv's bin).

A snippet passes when it shows what its comment promises: the value set by one
connection or process is read back by another. A block in a language this test does not
know fails it, so a new snippet cannot go unrun.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from mcp_server.http import create_app
from mcp_server.settings import Settings
from tests.clients.legacy_venv import drive_each
from tests.server.e2e import ROOT, RunningServer, serve_in_thread
from tests.support.redis_proc import RedisProcess

# The first test of a run may build the client's environment (a virtualenv or npm ci).
pytestmark = pytest.mark.timeout(600)

SECTION = "## Keeping memory across connections"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
README_REDIS = "redis://127.0.0.1:6379/0"
README_HTTP = "http://127.0.0.1:8765"


def snippets() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    return [(m[1], m[2]) for m in FENCE.finditer(readme[start : end if end > 0 else None])]


SNIPPETS = snippets()


@pytest.fixture
def http_server() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(Settings(transport="http"))) as running:
        yield running


def placed(code: str, redis: RedisProcess, server: RunningServer) -> str:
    return (
        code.replace("/path/to/checkout", str(ROOT))
        .replace(README_REDIS, redis.url)
        .replace(README_HTTP, server.url)
    )


def snippet_env() -> dict[str, str]:
    path = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return {"PATH": path, "HOME": os.environ.get("HOME", "/")}


def run_python(code: str, legacy: Path, tmp_path: Path) -> str:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    python = legacy if "langchain_mcp_adapters" in code else Path(sys.executable)
    proc = subprocess.run(
        [str(python), str(script)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=snippet_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout


async def read_named(server: RunningServer, name: str) -> Any:
    transport = StreamableHttpTransport(server.url + "/mcp", headers={"X-Memory-Session": name})
    async with Client(transport) as client:
        result = await client.call_tool("memory_get", {"key": "plan"})
        assert result.structured_content is not None
        return result.structured_content["value"]


def test_the_section_has_the_promised_snippets() -> None:
    kinds = [kind for kind, _ in SNIPPETS]
    assert kinds.count("python") >= 4 and "json" in kinds and "sh" in kinds, kinds
    assert set(kinds) <= {"python", "json", "sh"}, kinds


@pytest.mark.parametrize(("kind", "code"), SNIPPETS, ids=[k for k, _ in SNIPPETS])
def test_snippet_runs_and_keeps_memory(
    kind: str,
    code: str,
    legacy: Path,
    redis_server: RedisProcess,
    http_server: RunningServer,
    tmp_path: Path,
) -> None:
    code = placed(code, redis_server, http_server)
    if kind == "python":
        out = run_python(code, legacy, tmp_path)
        assert "step 1" in out, out  # memory_get printed the value set before
    elif kind == "json":
        # As Claude Desktop runs it: the command, its args and env; one process, then
        # another (an app restart), which must find what the first remembered.
        (entry,) = json.loads(code)["mcpServers"].values()
        server = {"transport": "stdio", "cwd": str(ROOT), **entry}
        remember = [{"tool": "memory_set", "args": {"key": "plan", "value": "step 1"}}]
        recall = [{"tool": "memory_get", "args": {"key": "plan"}}]
        _, later = drive_each(
            legacy,
            {"client": "mcp1", "server": server, "steps": remember},
            {"client": "mcp1", "server": server, "steps": recall},
        )
        assert later["results"][0]["value"] == "step 1"
    else:
        proc = subprocess.run(
            ["bash", "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 0, proc.stderr
        body = proc.stdout
        data = body.split("data:", 1)[1] if "data:" in body else body
        answer = json.loads(data)
        assert answer["result"]["isError"] is False, answer
        name = re.search(r"X-Memory-Session: ([^']+)'", code)
        assert name is not None
        assert anyio.run(read_named, http_server, name[1]) == "step 1"
