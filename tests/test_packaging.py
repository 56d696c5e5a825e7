"""Versions agree everywhere, server.json follows the MCP registry's rules, and the
README documents every tool and every setting."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

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
