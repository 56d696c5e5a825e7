"""The wheel as users get it: built from this checkout, then run the two ways the
README gives, `uvx --from <wheel>` and `pipx run --spec <wheel>`, each answering an MCP
``initialize`` on stdout.

uv and pipx come from the dev extra. Downloads are cached between runs: uv in its user
cache, pipx's pip in pip's cache, and pipx's shared pip in ``.venv/.cache/pipx-shared``
(this checkout's own); every run installs the freshly built wheel into a new
environment, so a stale one can never pass for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.child_env import COVERAGE_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
UV = BIN / "uv"
PIPX = BIN / "pipx"

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "wheel-test", "version": "0"},
    },
}

pytestmark = pytest.mark.skipif(
    not (UV.exists() and PIPX.exists()), reason="needs uv and pipx (`make install`)"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [str(UV), "build", "--wheel", "--quiet", "--out-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (path,) = out.glob("mcp_working_memory-*.whl")
    return path


def test_the_wheel_holds_the_packages_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    dist_info = next(t for t in top if t.endswith(".dist-info"))
    assert top == {"memory_core", "mcp_server", dist_info}, top  # no tests/, benchmarks/
    assert any(n.startswith("memory_core/storage/redis/lua/") for n in names), "Lua scripts"
    assert f"{dist_info}/licenses/LICENSE" in names


def _serve_once(command: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        command,
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=cwd,  # not the checkout: nothing may come from the source tree
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line, *rest) = done.stdout.splitlines()
    assert rest == [], done.stdout[-2000:]  # stdout carries the protocol only
    answer = json.loads(line)
    assert answer["id"] == 1
    assert answer["result"]["serverInfo"]["name"] == "mcp-working-memory"
    assert "serving stdio" in done.stderr


def _env() -> dict[str, str]:
    """The user's environment (certificates, pip configuration, caches) without this
    test run's: no virtualenv, no ``WM_*`` settings, no coverage start-up."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", *COVERAGE_VARIABLES)
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("WM_")}
    return env


def test_uvx_runs_the_wheel(wheel: Path, tmp_path: Path) -> None:
    env = _env()
    env["UV_TOOL_DIR"] = str(tmp_path / "uv-tools")
    env["UV_PYTHON_DOWNLOADS"] = "never"  # the machine's Python, as a user's would be
    uvx = shutil.which("uvx", path=str(BIN)) or str(BIN / "uvx")
    _serve_once(
        [uvx, "--python", sys.executable, "--from", str(wheel), "mcp-working-memory"], env, tmp_path
    )


def test_pipx_runs_the_wheel(wheel: Path, tmp_path: Path) -> None:
    env = _env()
    env["PIPX_HOME"] = str(tmp_path / "pipx")
    env["PIPX_BIN_DIR"] = str(tmp_path / "pipx-bin")
    env["PIPX_SHARED_LIBS"] = str(ROOT / ".venv" / ".cache" / "pipx-shared")
    env["PIPX_DEFAULT_PYTHON"] = sys.executable
    _serve_once([str(PIPX), "run", "--spec", str(wheel), "mcp-working-memory"], env, tmp_path)
