"""Named and default sessions through real clients: memory kept where the configuration
promises it, isolation where it promises that.

- stdio: ``WM_SESSION_NAME`` in the server's ``env`` (LangChain's per-call default starts
  a process per call; on Redis, processes with one name share its session);
- HTTP: the ``X-Memory-Session`` header in the client's ``headers`` binds every
  connection to the named session of the caller's principal;
- stateless-era clients (fastmcp's default mode) with neither a handle nor a name use
  the principal's default session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from mcp_server.http import create_app
from mcp_server.settings import Settings
from tests.clients.conftest import ALICE, BOB, TOKENS, bearer, set_then_get
from tests.clients.legacy_venv import drive_each, server_command
from tests.server.e2e import RunningServer, serve_in_thread
from tests.support.child_env import ALL_TOOLS, measured

# The first test of a run may build the client's environment (a virtualenv or npm ci).
pytestmark = pytest.mark.timeout(600)

NAME = "X-Memory-Session"
GET = set_then_get()[1:]


def stdio(**env: str) -> dict[str, Any]:
    return server_command(measured({**ALL_TOOLS, **env}))


def http(running: RunningServer, **headers: str) -> dict[str, Any]:
    return {"transport": "streamable_http", "url": running.url + "/mcp", "headers": headers}


def setting(client: str, server: dict[str, Any]) -> dict[str, Any]:
    """Set ``plan`` and read it back through ``client`` (per call: two connections)."""
    return {"client": client, "server": server, "steps": set_then_get()}


def reading(client: str, server: dict[str, Any]) -> dict[str, Any]:
    """Read ``plan`` through another connection of ``client``."""
    return {"client": client, "server": server, "steps": GET}


def found(outcome: dict[str, Any]) -> bool:
    """Whether the outcome's last call, a ``memory_get``, found ``plan``."""
    return bool(outcome["results"][-1]["found"])


# --- LangChain's per-call default ----------------------------------------------------


def test_langchain_per_call_stdio_with_a_name_on_redis_shares_across_processes(
    legacy: Path, redis_url: str, key_prefix: str
) -> None:
    store = {"WM_REDIS_URL": redis_url, "WM_KEY_PREFIX": key_prefix}
    per_call = "langchain-per-call"
    # (Without a name each process is its own session: test_langchain.py.)
    named, other = drive_each(
        legacy,
        setting(per_call, stdio(WM_SESSION_NAME="research", **store)),  # set, get: 2 processes
        reading(per_call, stdio(WM_SESSION_NAME="other", **store)),
    )
    assert found(named) and named["results"][1]["value"]["step"] == 2
    assert not found(other)  # another name: another session


def test_langchain_per_call_http_with_the_header_shares_across_connections(
    legacy: Path, http_server: RunningServer
) -> None:
    alice = http(http_server, **bearer(ALICE), **{NAME: "research"})
    named, session_mode, bob, other = drive_each(
        legacy,
        setting("langchain-per-call", alice),
        reading("langchain-session", alice),  # session mode resumes it too
        # The name belongs to its principal; another name is another session.
        reading("langchain-per-call", http(http_server, **bearer(BOB), **{NAME: "research"})),
        reading("langchain-per-call", http(http_server, **bearer(ALICE), **{NAME: "x"})),
    )
    assert found(named) and found(session_mode)
    assert not found(bob) and not found(other)


# --- mcp 1.x -------------------------------------------------------------------------


def test_mcp1_with_the_header_resumes_the_named_session(
    legacy: Path, http_server: RunningServer
) -> None:
    server = http(http_server, **bearer(BOB), **{NAME: "notes"})
    first, second, unnamed = drive_each(
        legacy,
        setting("mcp1", server),
        reading("mcp1", server),  # a second connection with the same name
        reading("mcp1", http(http_server, **bearer(BOB))),
    )
    assert found(first) and found(second)
    assert not found(unnamed)


# --- fastmcp's default mode (the stateless era) --------------------------------------


def fastmcp(running: RunningServer, **headers: str) -> Client[Any]:
    return Client(StreamableHttpTransport(running.url + "/mcp", headers=headers))


async def structured(c: Client[Any], tool: str, **args: Any) -> dict[str, Any]:
    result = await c.call_tool(tool, args, raise_on_error=False)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def test_fastmcp_default_mode_first_memory_call_uses_the_default_session(
    http_server: RunningServer,
) -> None:
    async with fastmcp(http_server, **bearer(ALICE)) as c:
        await structured(c, "memory_set", key="draft", value="v1")
        assert (await structured(c, "memory_get", key="draft"))["value"] == "v1"
        handle = (await structured(c, "session_open"))["session"]
        assert (await structured(c, "memory_get", key="draft", session=handle))["found"] is False
    async with fastmcp(http_server, **bearer(ALICE)) as again:  # a new client, same principal
        assert (await structured(again, "memory_get", key="draft"))["value"] == "v1"
    async with fastmcp(http_server, **bearer(BOB)) as bob:
        assert (await structured(bob, "memory_get", key="draft"))["found"] is False


async def test_fastmcp_with_the_header_uses_the_named_session(http_server: RunningServer) -> None:
    async with fastmcp(http_server, **bearer(ALICE), **{NAME: "plan-b"}) as c:
        await structured(c, "memory_set", key="draft", value="named")
    async with fastmcp(http_server, **bearer(ALICE), **{NAME: "plan-b"}) as c:
        assert (await structured(c, "memory_get", key="draft"))["value"] == "named"
    async with fastmcp(http_server, **bearer(ALICE)) as c:  # the default session is another
        assert (await structured(c, "memory_get", key="draft"))["value"] != "named"


@pytest.fixture
def no_default_session() -> Iterator[RunningServer]:
    settings = Settings(transport="http", auth_tokens=TOKENS, default_session="off")
    with serve_in_thread(create_app(settings)) as running:
        yield running


async def test_fastmcp_without_the_default_session_is_told_to_open_one(
    no_default_session: RunningServer,
) -> None:
    async with fastmcp(no_default_session, **bearer(ALICE)) as c:
        result = await c.call_tool("memory_get", {"key": "draft"}, raise_on_error=False)
        assert result.is_error
        assert "SESSION_REQUIRED" in str(result.content[0])
