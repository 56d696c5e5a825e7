"""Resources: the session state (own and by handle) and server health."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from mcp_server.server import WorkingMemoryServer, create_server
from tests.server.helpers import agent
from tests.support.results import resource_text


async def test_resources_are_listed(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        resources = {str(r.uri): r for r in (await a.client.list_resources()).resources}
        templates = [
            t.uri_template for t in (await a.client.list_resource_templates()).resource_templates
        ]
    assert set(resources) == {"memory://session/current", "memory://health"}
    assert all(r.mime_type == "application/json" and r.description for r in resources.values())
    assert templates == ["memory://session/{session}"]


async def test_session_state(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        await a.call("memory_set", key="plan", value=[1, 2], ttl_seconds=100)
        await a.call("task_state_set", task_id="t", status="in_progress")
        await a.call("scratchpad_append", content="note")
        cid = (await a.call("checkpoint_create", label="cp"))["checkpoint_id"]
        state = await a.state()
    assert state["binding"] == ("connection" if mode == "legacy" else "handle")
    assert state["variables"]["plan"]["value"] == [1, 2]
    assert 0 < state["variables"]["plan"]["ttl_seconds_remaining"] <= 100
    assert state["variables_total"] == 1 and state["variables_next_cursor"] is None
    assert state["task_state"]["task_id"] == "t"
    assert state["scratchpad"] == ["note"] and state["scratchpad_next_cursor"] is None
    assert [c["id"] for c in state["checkpoints"]] == [cid]
    assert state["usage"]["keys"] == {"used": 1, "limit": 1000}
    assert state["lease_seconds"] == 3600


async def test_session_state_is_bounded(make_settings: Any) -> None:
    server = create_server(make_settings(page_size=3))
    async with agent(server, "legacy") as a:
        for i in range(5):
            await a.call("memory_set", key=f"k{i}", value=i)
            await a.call("scratchpad_append", content=f"n{i}")
        state = await a.state()
        assert list(state["variables"]) == ["k0", "k1", "k2"] and state["variables_total"] == 5
        assert state["scratchpad"] == ["n0", "n1", "n2"] and state["scratchpad_total"] == 5
        rest = await a.call("memory_get_all", cursor=state["variables_next_cursor"])
        assert rest == {"values": {"k3": 3, "k4": 4}, "next_cursor": None}
        notes = await a.call("scratchpad_get", cursor=state["scratchpad_next_cursor"])
        assert notes == {"entries": ["n3", "n4"], "next_cursor": None}


async def test_state_by_handle_needs_a_live_handle_of_yours(
    server: WorkingMemoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with agent(server, "stateless") as a:
        await a.call("memory_set", key="k", value=1)
        uri = f"memory://session/{a.handle}"
        assert (await a.state())["session"] == a.handle
        for bad in ("memory://session/" + "Z" * 32, "memory://session/nope"):
            with pytest.raises(MCPError, match=r"^SESSION_NOT_FOUND: "):
                await a.client.read_resource(bad)
        monkeypatch.setattr(server.runtime.binder, "anonymous_principal", "mallory")
        with pytest.raises(MCPError, match=r"^SESSION_NOT_FOUND: "):
            await a.client.read_resource(uri)


async def test_current_session_needs_a_connection(
    server: WorkingMemoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.runtime.binder, "default_session", False)
    async with agent(server, "stateless") as a:
        with pytest.raises(MCPError, match=r"^SESSION_REQUIRED: "):
            await a.client.read_resource("memory://session/current")


async def test_health(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        result = await a.client.read_resource("memory://health")
    health = json.loads(resource_text(result))
    assert health["mode"] == "memory" and health["healthy"] is True
    assert health["failure"] is None and health["cause"] is None
    assert health["sessions_open"] >= 1 and health["version"]
    assert set(health) == {
        "mode",
        "healthy",
        "failure",
        "cause",
        "last_switch_at",
        "fallbacks",
        "write_backs",
        "write_back_sessions",
        "sessions_open",
        "subscription_bus",
        "version",
    }
    assert health["subscription_bus"]["kind"] == "memory"
