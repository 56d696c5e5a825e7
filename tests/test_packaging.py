"""Versions agree everywhere, server.json follows the MCP registry's rules, and the
README documents every tool and every setting."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import mcp_server
import memory_core
from mcp_server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SERVER_JSON = json.loads((ROOT / "server.json").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
README = (ROOT / "README.md").read_text()
TOOLS = [
    "memory_set", "memory_get", "memory_delete", "memory_exists", "memory_list_keys",
    "memory_get_all", "memory_clear", "task_state_set", "task_state_get", "scratchpad_append",
    "scratchpad_get", "checkpoint_create", "checkpoint_restore", "checkpoint_list",
    "checkpoint_delete", "session_open", "session_close", "session_info",
]  # fmt: skip


def test_versions_agree() -> None:
    version = PYPROJECT["project"]["version"]
    assert memory_core.__version__ == version
    assert mcp_server.__version__ == version
    assert SERVER_JSON["version"] == version
    for package in SERVER_JSON["packages"]:
        assert package["version"] == version


def test_server_json_follows_registry_rules() -> None:
    assert SERVER_JSON["$schema"].endswith("/schemas/2025-12-11/server.schema.json")
    name = SERVER_JSON["name"]
    assert name.count("/") == 1
    namespace, server = name.split("/")
    assert re.fullmatch(r"[a-z0-9]+(\.[a-z0-9-]+)+", namespace), "reverse-DNS namespace"
    assert re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", server)
    assert 1 <= len(SERVER_JSON["description"]) <= 100
    assert re.fullmatch(r"\d+\.\d+\.\d+", SERVER_JSON["version"]), "an exact version"
    (package,) = SERVER_JSON["packages"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == PYPROJECT["project"]["name"]
    assert package["transport"] == {"type": "stdio"}
    fields = Settings.model_fields
    for variable in package["environmentVariables"]:
        assert variable["name"].startswith("WM_")
        assert variable["name"][3:].lower() in fields, variable["name"]
        assert variable["description"]
        assert variable["format"] in ("string", "number", "boolean", "filepath")


def test_readme_carries_the_registry_marker() -> None:
    assert f"mcp-name: {SERVER_JSON['name']}" in README


def test_console_script_is_declared() -> None:
    assert PYPROJECT["project"]["scripts"]["mcp-working-memory"] == "mcp_server.cli:main"


def test_readme_documents_every_tool_and_setting() -> None:
    for tool in TOOLS:
        assert f"`{tool}`" in README, tool
    for name in Settings.model_fields:
        assert f"`WM_{name.upper()}`" in README, name


def test_the_lock_files_follow_pyproject() -> None:
    """Every requirement of pyproject.toml, extras included, is pinned in the dev lock
    to a version its range allows, and the runtime ones in the runtime lock: a changed
    dependency without `make lock` fails here, not on someone else's machine."""
    runtime = _pins(ROOT / "requirements" / "runtime.txt")
    dev = _pins(ROOT / "requirements" / "dev.txt")
    lowest = _pins(ROOT / "requirements" / "lowest.txt")
    project = PYPROJECT["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    for lock, requirements in ((runtime, project["dependencies"]), (dev, extras)):
        for line in requirements:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in lock, f"{name} is not locked: run `make lock`"
            assert lock[name] in requirement.specifier, f"{name}=={lock[name]}: run `make lock`"
    # the lowest lock: the runtime and the dev tools (the `clients` extra pins clients that
    # need the newest SDK, so it stays out of the floor `make lowest` tests)
    for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        lower = min(
            (Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")),
            default=None,
        )
        assert lower is not None, f"{line}: every dependency has a tested lower bound"
        assert lowest[name] == lower, f"{name}: lowest lock has {lowest[name]}, run `make lock`"


def _pins(path: Path) -> dict[str, Version]:
    """name -> version of every ``name==version`` line (markers ignored: the runtime
    packages we name have one version for every platform)."""
    pins: dict[str, Version] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = Version(match[3])
    return pins
