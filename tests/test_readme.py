"""The README works as written: every fenced block marked ``<!-- snippet: name -->`` is
run here, as a user would run it.

* ``install-wheel`` runs in a copy of the checkout (it builds ``dist/`` there); the wheel
  it builds stands in for ``/path/to/mcp_working_memory-0.1.0-py3-none-any.whl`` in
  the other snippets.
* The stdio client configurations (Claude Desktop, Cursor, VS Code, ``claude mcp add``)
  are parsed, and the server command each configures is launched with its environment
  by the MCP SDK's stdio client, which calls tools on it.
* The Inspector CLI snippet runs with the Inspector pinned in tests/clients/inspector.
* The HTTP server snippet runs (on a free port instead of 8765), and each HTTP client
  configuration connects to it with its URL and bearer header.

The commands find ``uv``, ``uvx``, ``pipx`` and ``mcp-working-memory`` on ``PATH``
(this test puts the dev venv's ``bin`` first), as after ``pip install uv pipx``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.support.child_env import COVERAGE_VARIABLES
from tests.support.npm import npm_project

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
INSPECTOR = ROOT / "tests" / "clients" / "inspector"
README = (ROOT / "README.md").read_text()
WHEEL_PLACEHOLDER = "/path/to/mcp_working_memory-0.1.0-py3-none-any.whl"
SNIPPET = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\n```(\w+)\n(.*?)\n```", re.S)
SNIPPETS: dict[str, tuple[str, str]] = {
    name: (lang, body) for name, lang, body in SNIPPET.findall(README)
}
STDIO_CONFIGS = ("claude-desktop", "cursor", "vscode")
RUN_HERE = {
    "install-wheel",
    *STDIO_CONFIGS,
    "claude-code",
    "inspector",
    "http-server",
    "claude-code-http",
    "vscode-http",
}

pytestmark = pytest.mark.skipif(
    not (BIN / "uv").exists() or not (BIN / "pipx").exists(),
    reason="needs uv and pipx (`make install`)",
)


def snippet(name: str) -> str:
    return SNIPPETS[name][1]


def user_env(**extra: str) -> dict[str, str]:
    """The user's environment with the dev tools first on PATH; none of this run's
    ``WM_*`` settings, virtualenv or coverage start-up."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", *COVERAGE_VARIABLES)
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("WM_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["UV_PYTHON_DOWNLOADS"] = "never"  # the machine's Python, as a user's would be
    return env | extra


def test_every_snippet_is_run_here() -> None:
    assert set(SNIPPETS) == RUN_HERE


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs ``install-wheel`` in a copy of the checkout; its wheel, for the others."""
    checkout = tmp_path_factory.mktemp("checkout")
    skip = shutil.ignore_patterns(".venv*", "node_modules", ".git", "dist", "*_cache", "*.pyc")
    for item in ROOT.iterdir():
        if item.name in (".git", "dist") or item.name.startswith(".venv"):
            continue
        if item.is_dir():
            shutil.copytree(item, checkout / item.name, ignore=skip)
        else:
            shutil.copy(item, checkout / item.name)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet("install-wheel")],
        cwd=checkout,
        env=user_env(PIPX_HOME=str(checkout / ".pipx"), PIPX_BIN_DIR=str(checkout / ".bin")),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("usage: mcp-working-memory") == 2  # uvx, then pipx
    (built,) = (checkout / "dist").glob("*.whl")
    assert str(built).endswith(WHEEL_PLACEHOLDER.rsplit("/", 1)[1])
    return built


def with_wheel(text: str, wheel: Path) -> str:
    assert WHEEL_PLACEHOLDER in text
    return text.replace(WHEEL_PLACEHOLDER, str(wheel))


async def first_calls(client: Client) -> None:
    """What an agent does first: list the tools, remember a value, recall it."""
    names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"memory_set", "memory_get", "checkpoint_create"} <= names
    stored = await client.call_tool("memory_set", {"key": "greeting", "value": "hello"})
    assert not stored.is_error, stored.content
    recalled = await client.call_tool("memory_get", {"key": "greeting"})
    assert recalled.structured_content is not None
    assert recalled.structured_content["value"] == "hello"


async def run_stdio(command: str, args: list[str], env: dict[str, str], cwd: Path) -> None:
    params = StdioServerParameters(command=command, args=args, env=user_env(**env), cwd=cwd)
    async with Client(params, mode="legacy") as client:
        await first_calls(client)


@pytest.mark.parametrize("name", STDIO_CONFIGS)
async def test_stdio_client_configurations(
    name: str, wheel: Path, tmp_path: Path, redis_url: str
) -> None:
    config = json.loads(with_wheel(snippet(name), wheel))
    servers = config["servers"] if name == "vscode" else config["mcpServers"]
    entry = servers["working-memory"]
    assert entry.get("type", "stdio") == "stdio"
    env = dict(entry.get("env", {}))
    if "WM_REDIS_URL" in env:  # the test's own Redis stands in for the README's
        env |= {"WM_REDIS_URL": redis_url, "WM_KEY_PREFIX": f"readme{os.getpid()}"}
    await run_stdio(entry["command"], entry["args"], env, tmp_path)


async def test_claude_code_add(wheel: Path, tmp_path: Path) -> None:
    words = shlex.split(with_wheel(snippet("claude-code"), wheel))
    assert words[:4] == ["claude", "mcp", "add", "working-memory"]
    split = words.index("--")
    options, (command, *args) = words[4:split], words[split + 1 :]
    env = {}
    while options:
        flag, value, *options = options
        assert flag in ("-e", "--env"), flag
        key, _, val = value.partition("=")
        env[key] = val
    await run_stdio(command, args, env, tmp_path)


def inspector_env() -> dict[str, str]:
    """The Inspector starts the server with a minimal environment (PATH, HOME, ...), so
    uvx there sees no certificate variables: on a machine whose TLS is intercepted it
    needs uv's own setting to use the system's certificates. A HOME of this checkout's
    holds it, and uv's cache, kept between runs (``make clean`` removes it)."""
    home = ROOT / ".venv" / ".cache" / "readme-home"
    config = home / ".config" / "uv" / "uv.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("system-certs = true\n")
    return user_env(HOME=str(home))


@pytest.fixture(scope="module")
def inspector() -> Path:
    """tests/clients/inspector, where the Inspector is pinned (npm ci on first use)."""
    return npm_project(INSPECTOR, "@modelcontextprotocol/inspector", "the Inspector CLI")


def run_inspector(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,  # npx finds the pinned Inspector here instead of downloading it
        env=inspector_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_inspector_first_tool_call(wheel: Path, inspector: Path) -> None:
    done = run_inspector(with_wheel(snippet("inspector"), wheel), inspector)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert result["isError"] is False, result
    assert result["structuredContent"] == {"key": "greeting", "ttl_seconds": None}


def test_inspector_strict_finds_no_schema_errors(wheel: Path, inspector: Path) -> None:
    """``--strict`` exits 6 on an error-severity schema problem. Its remaining warnings
    are about type lists (``["number", "null"]``), the lean schemas' deliberate form."""
    first = with_wheel(snippet("inspector"), wheel)
    command = first[: first.index("--method")] + "--method tools/list --strict"
    done = run_inspector(command, inspector)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert re.search(r"^0 errors, \d+ warnings", done.stderr, re.M), done.stderr[-3000:]
    assert "no validation keyword" not in done.stderr  # every property has a type


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """The README's HTTP server example on a free port; its base URL."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    text = snippet("http-server")
    assert "--port 8765" in text
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            ["bash", "-c", text.replace("--port 8765", f"--port {port}")],
            cwd=tmp_path,
            env=user_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own process group, stopped as one
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the HTTP server did not start"
            try:
                if httpx2.get(base + "/healthz").status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def _claude_code_http() -> tuple[str, dict[str, str]]:
    words = shlex.split(snippet("claude-code-http"))
    assert words[:3] == ["claude", "mcp", "add"]
    rest = words[3:]
    headers: dict[str, str] = {}
    positional: list[str] = []
    while rest:
        word, *rest = rest
        if word == "--transport":
            transport, *rest = rest
            assert transport == "http"
        elif word == "--header":
            header, *rest = rest
            name, _, value = header.partition(":")
            headers[name.strip()] = value.strip()
        else:
            positional.append(word)
    assert positional[0] == "working-memory"
    return positional[1], headers


def _vscode_http() -> tuple[str, dict[str, str]]:
    entry: dict[str, Any] = json.loads(snippet("vscode-http"))["servers"]["working-memory"]
    assert entry["type"] == "http"
    return entry["url"], entry["headers"]


@pytest.mark.parametrize("client_config", [_claude_code_http, _vscode_http])
async def test_http_clients_with_a_bearer_header(http_server: str, client_config: Any) -> None:
    url, headers = client_config()
    assert url.startswith("http://127.0.0.1:8765/")
    url = url.replace("http://127.0.0.1:8765", http_server)
    async with httpx2.AsyncClient() as plain:  # without the header: refused
        assert (await plain.post(url, json={})).status_code == 401
    async with (
        create_mcp_http_client(headers=headers) as http,
        # Claude Code and VS Code connect with the handshake (a connection-bound session)
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        await first_calls(client)
