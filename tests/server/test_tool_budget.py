"""What the tool list costs a model, measured on the real ``tools/list`` answer over an
MCP client in both protocol eras, and how a host picks tools with ``WM_TOOLS``.

Budget by bytes of compact JSON (no tokenizer ships offline here): name, description and
input schema of every default tool together at most 4.5 KB (about 1,500 tokens), the
whole ``tools/list`` answer, output schemas and annotations included, at most 12 KB.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_server.cli import main
from mcp_server.server import create_server
from mcp_server.settings import Settings
from mcp_server.tool_groups import ALWAYS, GROUPS, select_tools
from mcp_server.tools import TOOL_NAMES
from memory_core import SessionStore
from tests.server.helpers import agent

MODEL_BUDGET = 4_500
ANSWER_BUDGET = 12_000
CORE = (
    "memory_set",
    "memory_get",
    "memory_delete",
    "memory_list_keys",
    "scratchpad_append",
    "scratchpad_get",
    "checkpoint_create",
    "checkpoint_restore",
    "checkpoint_list",
    "session_open",
)


def compact(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def tools_list(settings: Settings, mode: str) -> dict[str, Any]:
    """The ``tools/list`` answer as a client receives it (JSON, by wire names)."""
    async with agent(create_server(settings), mode) as a:
        result = await a.client.list_tools()
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


def model_cost(answer: dict[str, Any]) -> int:
    seen = [
        {"name": t["name"], "description": t["description"], "inputSchema": t["inputSchema"]}
        for t in answer["tools"]
    ]
    return compact(seen)


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("WM_TOOLS", raising=False)  # the run lists every tool
    return Settings(transport="http")


async def test_the_default_list_is_within_budget(default_settings: Settings, mode: str) -> None:
    answer = await tools_list(default_settings, mode)
    assert tuple(t["name"] for t in answer["tools"]) == CORE
    assert model_cost(answer) <= MODEL_BUDGET, model_cost(answer)
    assert compact(answer) <= ANSWER_BUDGET, compact(answer)
    for tool in answer["tools"]:
        assert tool["outputSchema"]["type"] == "object", tool["name"]


def _keywords(schema: object, path: str = "") -> list[tuple[str, str, object]]:
    """Every (path, keyword, value) of a schema, skipping property names."""
    found: list[tuple[str, str, object]] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("properties", "$defs"):
                for name, sub in value.items():
                    found += _keywords(sub, f"{path}/{key}/{name}")
            else:
                found.append((path, key, value))
                found += _keywords(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            found += _keywords(sub, f"{path}/{i}")
    return found


async def test_schemas_are_lean(mode: str) -> None:
    answer = await tools_list(Settings(transport="http", tools="all"), mode)
    assert tuple(t["name"] for t in answer["tools"]) == TOOL_NAMES
    session_phrasings = set()
    for tool in answer["tools"]:
        for kind in ("inputSchema", "outputSchema"):
            for path, key, value in _keywords(tool[kind]):
                where = f"{tool['name']} {kind}{path}"
                assert key != "title", where
                assert not (key == "anyOf" and {"type": "null"} in value), where  # type: ignore[operator]
                assert not (key == "default" and value is None and kind == "inputSchema"), where
                assert not (key == "additionalProperties" and value is True), where
        session = tool["inputSchema"]["properties"].get("session")
        if session is not None:
            assert session["type"] == "string", tool["name"]
            session_phrasings.add(session["description"])
        assert len(tool["description"]) <= 160, tool["name"]
    assert len(session_phrasings) == 1 and len(next(iter(session_phrasings))) <= 80


async def test_every_argument_has_a_type(mode: str) -> None:
    """Schema checkers (the MCP Inspector's ``--strict``) warn about a property without a
    ``type``; "any JSON value" is published as the list of every JSON type."""
    answer = await tools_list(Settings(transport="http", tools="all"), mode)
    for tool in answer["tools"]:
        for name, prop in tool["inputSchema"]["properties"].items():
            assert "type" in prop or "$ref" in prop, f"{tool['name']}.{name}"
    (memory_set,) = [t for t in answer["tools"] if t["name"] == "memory_set"]
    value = memory_set["inputSchema"]["properties"]["value"]
    assert set(value["type"]) == {"object", "array", "string", "number", "boolean", "null"}
    (memory_get,) = [t for t in answer["tools"] if t["name"] == "memory_get"]
    assert memory_get["outputSchema"]["properties"]["value"]["type"] == value["type"]


async def test_every_tool_stays_reachable(mode: str) -> None:
    """All tools listed is the larger answer; it still publishes every output schema."""
    answer = await tools_list(Settings(transport="http", tools="all"), mode)
    assert len(answer["tools"]) == len(TOOL_NAMES)
    assert all("outputSchema" in t for t in answer["tools"])


@pytest.mark.parametrize(
    ("spec", "listed"),
    [
        ("core", CORE),
        ("all", TOOL_NAMES),
        ("", ALWAYS),
        ("memory_clear", (*ALWAYS[:2], "memory_clear", *ALWAYS[2:])),
        ("CORE, task_state_set,task_state_get", None),
    ],
)
def test_selection(spec: str, listed: tuple[str, ...] | None) -> None:
    chosen = select_tools(spec)
    assert chosen == tuple(n for n in TOOL_NAMES if n in chosen)  # listing order
    assert set(ALWAYS) <= set(chosen)
    if listed is not None:
        assert chosen == listed
    else:
        assert set(chosen) == {*GROUPS["core"], "task_state_set", "task_state_get"}


async def test_a_tool_not_listed_is_not_callable(store: SessionStore, mode: str) -> None:
    server = create_server(Settings(transport="http", tools="memory_clear"), store)
    async with agent(server, mode) as a:
        names = [t.name for t in (await a.client.list_tools()).tools]
        assert "memory_clear" in names and "memory_delete" not in names
        await a.call("memory_set", key="k", value=1)
        assert await a.fail("memory_delete", {"key": "k"}) == (
            "NOT_FOUND: the tool 'memory_delete' is not enabled on this server; use the tools "
            "in tools/list, or ask the operator to enable it with WM_TOOLS=all or "
            "WM_TOOLS=core,memory_delete"
        )
        assert (await a.call("memory_get", key="k"))["found"] is True
        assert await a.fail("memory_forget", {}) == (
            "NOT_FOUND: there is no tool named 'memory_forget'; call tools/list to see the tools"
        )


def test_an_unknown_name_in_wm_tools_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WM_TOOLS", "core,memory_forget")
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "mcp-working-memory: WM_TOOLS='core,memory_forget' is not accepted; expected core, "
        "all, or tool names separated by commas (see the README)\n"
    )


def test_instructions_name_only_listed_families(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WM_TOOLS", raising=False)
    core = create_server(Settings(transport="http")).instructions or ""
    every = create_server(Settings(transport="http", tools="all")).instructions or ""
    assert "task_state_*" not in core and "task_state_*" in every
    for family in ("memory_*", "scratchpad_*", "checkpoint_*", "session_open"):
        assert family in core and family in every
