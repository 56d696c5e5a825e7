"""Every tool's happy path, in both protocol eras (in-process SDK client)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_server.server import WorkingMemoryServer, create_server
from mcp_server.tools import TOOL_NAMES
from memory_core import SessionStore
from tests.server.helpers import agent

READ_ONLY = {
    "memory_get",
    "memory_exists",
    "memory_list_keys",
    "memory_get_all",
    "task_state_get",
    "scratchpad_get",
    "checkpoint_list",
    "session_info",
}
DESTRUCTIVE = {
    "memory_delete",
    "memory_clear",
    "checkpoint_restore",
    "checkpoint_delete",
    "session_close",
}


async def test_tool_list_is_the_contract(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        tools = {t.name: t for t in (await a.client.list_tools()).tools}
    assert tuple(tools) == TOOL_NAMES
    for name, tool in tools.items():
        assert tool.description and len(tool.description) > 30, name
        assert tool.output_schema is not None, name
        assert tool.input_schema["type"] == "object"
        ann = tool.annotations
        assert ann is not None
        assert ann.read_only_hint is (name in READ_ONLY), name
        assert ann.destructive_hint is (name in DESTRUCTIVE), name
        assert ann.idempotent_hint is not None and ann.open_world_hint is False
        if name != "session_open":
            assert "session" in tool.input_schema["properties"], name


async def test_echo_tool_only_when_enabled(store: SessionStore, make_settings: Any) -> None:
    on = create_server(make_settings(enable_echo_tool=True), store)
    async with agent(on, "legacy") as a:
        assert "echo" in {t.name for t in (await a.client.list_tools()).tools}
        assert await a.call("echo", text="hi") == {"text": "hi"}
    async with agent(create_server(make_settings(), store), "legacy") as a:
        assert "echo" not in {t.name for t in (await a.client.list_tools()).tools}


async def test_variables(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        assert await a.call("memory_set", key="plan", value={"steps": [1, 2]}) == {
            "key": "plan",
            "ttl_seconds": None,
        }
        assert await a.call("memory_set", key="tmp", value="x", ttl_seconds=30) == {
            "key": "tmp",
            "ttl_seconds": 30.0,
        }
        got = await a.call("memory_get", key="plan")
        assert got == {
            "key": "plan",
            "found": True,
            "value": {"steps": [1, 2]},
            "ttl_seconds_remaining": None,
        }
        tmp = await a.call("memory_get", key="tmp")
        assert 0 < tmp["ttl_seconds_remaining"] <= 30
        missing = await a.call("memory_get", key="nope", default={"d": 1})
        assert missing == {
            "key": "nope",
            "found": False,
            "value": {"d": 1},
            "ttl_seconds_remaining": None,
        }
        assert (await a.call("memory_get", key="nope"))["value"] is None
        assert await a.call("memory_exists", key="plan") == {"exists": True}
        assert await a.call("memory_exists", key="nope") == {"exists": False}
        assert await a.call("memory_list_keys") == {"keys": ["plan", "tmp"], "next_cursor": None}
        assert await a.call("memory_list_keys", pattern="p*") == {
            "keys": ["plan"],
            "next_cursor": None,
        }
        assert await a.call("memory_get_all", pattern="t?p") == {
            "values": {"tmp": "x"},
            "next_cursor": None,
        }
        assert await a.call("memory_delete", key="tmp") == {"deleted": True}
        assert await a.call("memory_delete", key="tmp") == {"deleted": False}
        assert await a.call("memory_clear") == {"cleared": 1}
        assert await a.call("memory_list_keys") == {"keys": [], "next_cursor": None}


@pytest.mark.parametrize(
    "value", ["[1, 2]", "null", "true", "12", '{"a": 1}', "", "ünïcode ✓", 0, False, None, [], {}]
)
async def test_values_round_trip_exactly(server: WorkingMemoryServer, value: object) -> None:
    """A string that looks like JSON stays a string (the SDK would re-parse it)."""
    async with agent(server, "legacy") as a:
        await a.call("memory_set", key="k", value=value)
        got = await a.call("memory_get", key="k")
        assert got["value"] == value and type(got["value"]) is type(value)
        await a.call("memory_set", key="k2", value=1)
        assert (await a.call("memory_get", key="absent", default=value))["value"] == value


async def test_string_arguments_stay_strings(server: WorkingMemoryServer) -> None:
    """Strings are never re-parsed where a string is valid; objects sent as JSON text
    are still accepted where only an object is (a common client quirk)."""
    async with agent(server, "legacy") as a:
        created = await a.call("checkpoint_create", label="null")
        listed = await a.call("checkpoint_list")
        assert listed["checkpoints"][0]["label"] == "null" and created["checkpoint_id"]
        await a.call("memory_set", key="[1]", value=1)
        assert await a.call("memory_list_keys", pattern="[[]*") == {
            "keys": ["[1]"],
            "next_cursor": None,
        }
        # outside the published schema on purpose (metadata is an object): raw, not call
        quirk = {"task_id": "7", "status": "pending", "metadata": '{"a": 1}'}
        state = (await a.raw("task_state_set", quirk)).structured_content
        assert state is not None
        assert state["state"]["task_id"] == "7" and state["state"]["metadata"] == {"a": 1}


async def test_task_state(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        assert await a.call("task_state_get") == {"state": None}
        stored = await a.call(
            "task_state_set",
            task_id="t1",
            status="in_progress",
            description="write tests",
            current_step=2,
            total_steps=5,
            progress=0.4,
            metadata={"owner": "me"},
        )
        state = stored["state"]
        assert state["task_id"] == "t1" and state["status"] == "in_progress"
        assert state["progress"] == 0.4 and state["metadata"] == {"owner": "me"}
        assert state["updated_at"]
        assert (await a.call("task_state_get"))["state"] == state
        minimal = await a.call("task_state_set", task_id="t2", status="completed")
        assert minimal["state"]["current_step"] == 0 and minimal["state"]["description"] is None


async def test_scratchpad(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        assert await a.call("scratchpad_get") == {"entries": [], "next_cursor": None}
        assert await a.call("scratchpad_append", content="first") == {"length": 1}
        assert await a.call("scratchpad_append", content="second") == {"length": 2}
        assert await a.call("scratchpad_get") == {
            "entries": ["first", "second"],
            "next_cursor": None,
        }


async def test_checkpoints(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        await a.call("memory_set", key="x", value=1)
        await a.call("scratchpad_append", content="note")
        created = await a.call("checkpoint_create", label="before")
        cid = created["checkpoint_id"]
        assert created["created_at"] and created["evicted"] == []
        listed = await a.call("checkpoint_list")
        assert [(c["id"], c["label"]) for c in listed["checkpoints"]] == [(cid, "before")]
        assert listed["checkpoints"][0]["size"] > 0

        await a.call("memory_set", key="x", value=2)
        await a.call("memory_set", key="y", value=3)
        await a.call("scratchpad_append", content="later")
        assert await a.call("checkpoint_restore", checkpoint_id=cid) == {
            "restored": True,
            "checkpoint_id": cid,
        }
        assert (await a.call("memory_get_all"))["values"] == {"x": 1}
        assert (await a.call("scratchpad_get"))["entries"] == ["note"]

        assert await a.call("checkpoint_delete", checkpoint_id=cid) == {"deleted": True}
        assert await a.call("checkpoint_delete", checkpoint_id=cid) == {"deleted": False}
        assert (await a.call("checkpoint_list"))["checkpoints"] == []


async def test_session_tools(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        await a.call("memory_set", key="x", value="abc")
        info = await a.call("session_info")
        assert info["mode"] == "memory"
        assert info["binding"] == ("connection" if mode == "legacy" else "handle")
        assert info["usage"]["keys"] == {"used": 1, "limit": 1000}
        assert info["usage"]["bytes"]["used"] > 0
        assert set(info["usage"]) == {"keys", "bytes", "scratchpad_entries", "checkpoints"}
        assert info["lease_seconds"] == 3600 and 0 < info["expires_in"] <= 3600

        opened = await a.call("session_open", ttl_seconds=60)
        assert opened["expires_in"] == 60 and opened["session"] != info["session"]
        other = opened["session"]
        await a.call("memory_set", key="shared", value=1, session=other)
        assert (await a.call("memory_list_keys", session=other))["keys"] == ["shared"]
        assert (await a.call("memory_list_keys"))["keys"] == ["x"]
        assert await a.call("session_close", session=other) == {"closed": True}
        assert await a.call("session_close", session=other) == {"closed": False}
        text = await a.fail("memory_get", {"key": "shared", "session": other})
        assert text.startswith("SESSION_NOT_FOUND: ")
