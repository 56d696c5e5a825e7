"""How requests find their session: connection, process, handle, or SESSION_REQUIRED."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mcp_server.server import WorkingMemoryServer, create_server
from memory_core import ManualClock, SessionNotFoundError, SessionStore, StoreConfig
from memory_core.storage.memory import MemoryBackend
from tests.server.helpers import agent


async def test_two_connections_never_share_memory(server: WorkingMemoryServer) -> None:
    async with agent(server, "legacy") as one, agent(server, "legacy") as two:
        await one.call("memory_set", key="k", value="one")
        await two.call("memory_set", key="k", value="two")
        assert (await one.call("memory_get", key="k"))["value"] == "one"
        assert (await two.call("memory_get", key="k"))["value"] == "two"
        assert (await two.call("memory_list_keys"))["keys"] == ["k"]
        s1 = (await one.call("session_info"))["session"]
        s2 = (await two.call("session_info"))["session"]
        assert s1 != s2


async def test_connection_session_is_torn_down_on_disconnect(
    server: WorkingMemoryServer,
) -> None:
    store = server.runtime.store
    async with agent(server, "legacy") as a:
        await a.call("memory_set", key="k", value=1)
        session = (await a.call("session_info"))["session"]
        assert (await store.usage(session, "anonymous")).keys == 1
    with pytest.raises(SessionNotFoundError):
        await store.usage(session, "anonymous")


async def test_concurrent_first_calls_bind_one_session(make_settings: Any) -> None:
    server = create_server(make_settings())
    async with agent(server, "legacy") as a:
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(a.raw, "memory_set", {"key": f"k{i}", "value": i})
        assert server.runtime.binder.bound_count == 1
        assert (await a.call("session_info"))["usage"]["keys"]["used"] == 10


async def test_closing_the_connection_session_starts_a_fresh_one(
    server: WorkingMemoryServer,
) -> None:
    async with agent(server, "legacy") as a:
        assert await a.call("session_close") == {"closed": False}  # nothing opened yet
        await a.call("memory_set", key="k", value=1)
        first = (await a.call("session_info"))["session"]
        assert await a.call("session_close") == {"closed": True}
        assert (await a.call("memory_get", key="k"))["found"] is False
        second = (await a.call("session_info"))["session"]
        assert second != first


async def test_a_handle_can_be_shared_between_agents(server: WorkingMemoryServer) -> None:
    async with agent(server, "legacy") as lead, agent(server, "stateless") as helper:
        shared = (await lead.call("session_open"))["session"]
        await lead.call("memory_set", key="plan", value="A", session=shared)
        assert (await helper.call("memory_get", key="plan", session=shared))["value"] == "A"
        await helper.call("scratchpad_append", content="done", session=shared)
        info = await lead.call("session_info", session=shared)
        assert info["binding"] == "handle" and info["usage"]["scratchpad_entries"]["used"] == 1
        # the lead's own connection session is a different one
        assert (await lead.call("memory_list_keys"))["keys"] == []


async def test_another_principal_cannot_see_a_session(
    server: WorkingMemoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with agent(server, "stateless") as a:
        await a.call("memory_set", key="secret", value=1)
        monkeypatch.setattr(server.runtime.binder, "anonymous_principal", "mallory")
        for tool, args in (
            ("memory_get", {"key": "secret"}),
            ("memory_list_keys", {}),
            ("session_info", {}),
            ("checkpoint_create", {}),
        ):
            assert (await a.fail(tool, args)).startswith("SESSION_NOT_FOUND: ")
        assert await a.call("session_close") == {"closed": False}
        monkeypatch.undo()
        assert (await a.call("memory_get", key="secret"))["value"] == 1


async def test_handles_expire_with_the_idle_lease(make_settings: Any) -> None:
    clock = ManualClock()
    store = SessionStore(MemoryBackend(StoreConfig(), clock=clock))
    server = create_server(make_settings(), store)
    async with agent(server, "stateless") as a:
        handle = (await a.call("session_open", ttl_seconds=60))["session"]
        await a.call("memory_set", key="k", value=1, session=handle)
        clock.advance(59)
        assert (await a.call("memory_get", key="k", session=handle))["found"] is True
        clock.advance(59)  # the read above renewed the lease
        assert (await a.call("memory_exists", key="k", session=handle))["exists"] is True
        clock.advance(61)
        text = await a.fail("memory_get", {"key": "k", "session": handle})
        assert text.startswith("SESSION_NOT_FOUND: ")


async def test_stdio_binds_every_call_to_the_process_session(make_settings: Any) -> None:
    server = create_server(make_settings(transport="stdio"))
    binder = server.runtime.binder
    opened = await binder.open_process_session()
    async with agent(server, "legacy") as a:
        await a.call("memory_set", key="k", value=1)
        info = await a.call("session_info")
        assert info["binding"] == "process" and info["session"] == opened
    async with agent(server, "stateless") as a:
        a.handle = None  # a 2026-07-28 client on stdio needs no handle either
        assert (await a.call("memory_get", key="k"))["value"] == 1
        assert await a.call("session_close") == {"closed": True}
        fresh = (await a.call("session_info"))["session"]
        assert fresh != opened
    assert await binder.close_all() == 1
    with pytest.raises(SessionNotFoundError):
        await server.runtime.store.usage(fresh, "local")


async def test_shutdown_closes_sessions_of_live_connections(make_settings: Any) -> None:
    server = create_server(make_settings())
    async with agent(server, "legacy") as a:
        await a.call("memory_set", key="k", value=1)
        session = (await a.call("session_info"))["session"]
        assert await server.runtime.binder.close_all() == 1
        with pytest.raises(SessionNotFoundError):
            await server.runtime.store.usage(session, "anonymous")
