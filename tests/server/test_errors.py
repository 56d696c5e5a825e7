"""Bad input of every kind: an isError result with a stable code, and nothing changed."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mcp_server.errors import INTERNAL_ERROR
from mcp_server.runtime import build_store
from mcp_server.server import WorkingMemoryServer, create_server
from memory_core import StorageUnavailableError
from tests.server.helpers import agent

SECRET = "s3cr3t-sentinel"
CHECKPOINT_LIKE = "ck_" + "A" * 32 + "." + "B" * 22

BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    # keys
    ("memory_set", {"key": "", "value": 1}, "INVALID_KEY"),
    ("memory_set", {"key": "k" * 257, "value": 1}, "INVALID_KEY"),
    ("memory_set", {"key": "a\nb", "value": 1}, "INVALID_KEY"),
    ("memory_set", {"key": "nul\x00", "value": 1}, "INVALID_KEY"),
    ("memory_set", {"key": 5, "value": 1}, "INVALID_KEY"),
    ("memory_set", {"key": None, "value": 1}, "INVALID_KEY"),
    ("memory_set", {"key": ["a"], "value": 1}, "INVALID_KEY"),
    ("memory_get", {"key": ""}, "INVALID_KEY"),
    ("memory_delete", {"key": "\t"}, "INVALID_KEY"),
    ("memory_exists", {"key": "x" * 300}, "INVALID_KEY"),
    # missing / unknown arguments
    ("memory_set", {"key": "k"}, "INVALID_ARGUMENT"),
    ("memory_set", {"value": 1}, "INVALID_ARGUMENT"),
    ("memory_get", {}, "INVALID_ARGUMENT"),
    ("memory_set", {"key": "k", "value": 1, "ttl": 5}, "INVALID_ARGUMENT"),
    ("memory_clear", {"force": True}, "INVALID_ARGUMENT"),
    # TTLs
    ("memory_set", {"key": "k", "value": 1, "ttl_seconds": -1}, "INVALID_ARGUMENT"),
    ("memory_set", {"key": "k", "value": 1, "ttl_seconds": 0}, "INVALID_ARGUMENT"),
    ("memory_set", {"key": "k", "value": 1, "ttl_seconds": 1e12}, "INVALID_ARGUMENT"),
    ("memory_set", {"key": "k", "value": 1, "ttl_seconds": "5"}, "INVALID_ARGUMENT"),
    ("memory_set", {"key": "k", "value": 1, "ttl_seconds": True}, "INVALID_ARGUMENT"),
    ("memory_set", {"key": "k", "value": 1, "ttl_seconds": [1]}, "INVALID_ARGUMENT"),
    # values
    ("memory_set", {"key": "k", "value": "x" * 70_000}, "VALUE_TOO_LARGE"),
    # listings
    ("memory_list_keys", {"pattern": ""}, "INVALID_ARGUMENT"),
    ("memory_list_keys", {"pattern": 5}, "INVALID_ARGUMENT"),
    ("memory_list_keys", {"limit": 0}, "INVALID_ARGUMENT"),
    ("memory_list_keys", {"limit": 501}, "INVALID_ARGUMENT"),
    ("memory_list_keys", {"limit": "10"}, "INVALID_ARGUMENT"),
    ("memory_list_keys", {"cursor": "not-a-cursor"}, "INVALID_ARGUMENT"),
    ("memory_get_all", {"cursor": "eyJrIjoia2V5cyJ9"}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": "e30"}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"limit": -3}, "INVALID_ARGUMENT"),
    # task state
    ("task_state_set", {"task_id": "t", "status": "done"}, "INVALID_ARGUMENT"),
    ("task_state_set", {"task_id": "", "status": "pending"}, "INVALID_ARGUMENT"),
    ("task_state_set", {"task_id": "t"}, "INVALID_ARGUMENT"),
    ("task_state_set", {"task_id": "t", "status": "pending", "progress": 1.5}, "INVALID_ARGUMENT"),
    (
        "task_state_set",
        {"task_id": "t", "status": "pending", "current_step": -1},
        "INVALID_ARGUMENT",
    ),
    ("task_state_set", {"task_id": "t", "status": "pending", "metadata": [1]}, "INVALID_ARGUMENT"),
    (
        "task_state_set",
        {"task_id": "t", "status": "pending", "description": "d" * 9000},
        "INVALID_ARGUMENT",
    ),
    ("task_state_set", {"task_id": "t" * 300, "status": "pending"}, "INVALID_ARGUMENT"),
    # scratchpad
    ("scratchpad_append", {"content": ""}, "INVALID_ARGUMENT"),
    ("scratchpad_append", {"content": 5}, "INVALID_ARGUMENT"),
    ("scratchpad_append", {"content": "n" * 17_000}, "VALUE_TOO_LARGE"),
    # checkpoints
    ("checkpoint_restore", {"checkpoint_id": "nope"}, "NOT_FOUND"),
    ("checkpoint_restore", {"checkpoint_id": CHECKPOINT_LIKE}, "NOT_FOUND"),
    ("checkpoint_restore", {}, "INVALID_ARGUMENT"),
    ("checkpoint_create", {"label": "bad\nlabel"}, "INVALID_ARGUMENT"),
    ("checkpoint_create", {"label": "l" * 300}, "INVALID_ARGUMENT"),
    ("checkpoint_delete", {"checkpoint_id": 7}, "INVALID_ARGUMENT"),
    # sessions
    ("memory_get", {"key": "k", "session": "nope"}, "SESSION_NOT_FOUND"),
    ("memory_get", {"key": "k", "session": "A" * 32}, "SESSION_NOT_FOUND"),
    ("memory_get", {"key": "k", "session": 12}, "INVALID_ARGUMENT"),
    ("session_open", {"ttl_seconds": 0}, "INVALID_ARGUMENT"),
    ("session_open", {"ttl_seconds": 10**9}, "INVALID_ARGUMENT"),
    ("session_close", {"session": "../../etc"}, "SESSION_NOT_FOUND"),
    # tools
    ("no_such_tool", {}, "NOT_FOUND"),
]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


async def _seed(a: Any) -> None:
    await a.call("memory_set", key="keep", value={"v": 1})
    await a.call("task_state_set", task_id="t", status="pending")
    await a.call("scratchpad_append", content="note")
    await a.call("checkpoint_create", label="cp")


@pytest.mark.parametrize(("tool", "args", "code"), BAD_CALLS)
async def test_bad_input_is_refused_and_changes_nothing(
    server: WorkingMemoryServer, mode: str, tool: str, args: dict[str, Any], code: str
) -> None:
    async with agent(server, mode) as a:
        await _seed(a)
        before = await a.snapshot()
        text = await a.fail(tool, args)
        assert text.startswith(f"{code}: "), text
        assert await a.snapshot() == before


async def test_too_deep_value_is_invalid(server: WorkingMemoryServer) -> None:
    async with agent(server, "legacy") as a:
        text = await a.fail("memory_set", {"key": "k", "value": _nested(80)})
        assert text.startswith("INVALID_VALUE: ")


async def test_rejected_values_are_not_echoed(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        for args in (
            {"key": SECRET + "\n", "value": 1},
            {"key": "k", "value": 1, "ttl_seconds": SECRET},
            {"key": {"x": SECRET}, "value": 1},
            {"key": "k", "value": SECRET * 10_000},
        ):
            assert SECRET not in await a.fail("memory_set", args)


async def test_limits_are_enforced(make_settings: Any, mode: str) -> None:
    settings = make_settings(max_keys=2, max_checkpoints=1)
    server = create_server(settings, build_store(settings))
    async with agent(server, mode) as a:
        await a.call("memory_set", key="a", value=1)
        await a.call("memory_set", key="b", value=1)
        before = await a.snapshot()
        text = await a.fail("memory_set", {"key": "c", "value": 1})
        assert text.startswith("LIMIT_EXCEEDED: ") and "max_keys" in text
        assert await a.snapshot() == before
        await a.call("memory_set", key="a", value=2)  # replacing stays within the limit
        first = (await a.call("checkpoint_create"))["checkpoint_id"]
        second = await a.call("checkpoint_create")
        assert second["evicted"] == [first]


async def test_stateless_call_without_handle_needs_a_session(
    server: WorkingMemoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.runtime.binder, "default_session", False)  # WM_DEFAULT_SESSION=off
    async with agent(server, "stateless") as a:
        a.handle = None
        for tool, args in (
            ("memory_set", {"key": "k", "value": 1}),
            ("memory_get", {"key": "k"}),
            ("session_info", {}),
            ("session_close", {}),
            ("checkpoint_list", {}),
        ):
            text = await a.fail(tool, args)
            assert text.startswith("SESSION_REQUIRED: ") and "session_open" in text


async def test_unexpected_failure_is_generic_and_logged(
    server: WorkingMemoryServer, mode: str, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    async def boom(*args: Any) -> None:
        raise RuntimeError(SECRET)

    async with agent(server, mode) as a:
        monkeypatch.setattr(server.runtime.store.backend, "get", boom)
        with caplog.at_level(logging.ERROR, logger="mcp_server"):
            text = await a.fail("memory_get", {"key": "k"})
        assert text == INTERNAL_ERROR and SECRET not in text
        crash = [r for r in caplog.records if r.name == "mcp_server.tools"]
        assert crash and crash[0].exc_info is not None
        assert SECRET in str(crash[0].exc_info[1])


async def test_storage_unavailable_keeps_its_code(
    server: WorkingMemoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: Any) -> None:
        raise StorageUnavailableError()

    async with agent(server, "legacy") as a:
        await a.call("memory_set", key="k", value=1)
        monkeypatch.setattr(server.runtime.store.backend, "set", down)
        text = await a.fail("memory_set", {"key": "k", "value": 2})
        assert text.startswith("STORAGE_UNAVAILABLE: ") and "retry" in text
