"""One translation point: every MCP surface maps the same failure to the same code.

A client fault (INVALID_*, NOT_FOUND, SESSION_*) is invalid params (-32602) wherever the
protocol answers with an error; a store that cannot answer (STORAGE_UNAVAILABLE) and a
bug (INTERNAL_ERROR) are internal errors (-32603): on ``resources/read``,
``resources/subscribe`` and ``subscriptions/listen`` alike, with the same text a tool
result carries.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from mcp_server.errors import CODES, error_text, protocol_error, resource_error
from mcp_server.server import WorkingMemoryServer
from memory_core import (
    CheckpointNotFoundError,
    InvalidArgumentError,
    InvalidKeyError,
    LimitExceededError,
    NotFoundError,
    SessionNotFoundError,
    StorageFullError,
    StorageMisconfiguredError,
    StorageUnavailableError,
    WorkingMemoryError,
)
from tests.server.helpers import agent

pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")

CLIENT_FAULTS: list[WorkingMemoryError] = [
    InvalidKeyError("bad key"),
    InvalidArgumentError("bad argument"),
    NotFoundError("no such thing"),
    SessionNotFoundError(),
    LimitExceededError("max_keys", 1, 1),
]
SERVER_FAULTS: list[WorkingMemoryError] = [
    StorageUnavailableError(),
    StorageFullError(),
    StorageMisconfiguredError("authentication failed", "redis://:***@h:1/0"),
    WorkingMemoryError("something broke"),
]


@pytest.mark.parametrize("exc", CLIENT_FAULTS + SERVER_FAULTS, ids=lambda e: e.code)
def test_protocol_and_resource_errors_agree(exc: WorkingMemoryError) -> None:
    rpc = protocol_error(exc)
    assert rpc.error.message == error_text(exc) == str(resource_error(exc))
    # the SDK answers ResourceNotFoundError with invalid params, any other ResourceError
    # with internal error: the same split as the code table
    expected = INVALID_PARAMS if exc in CLIENT_FAULTS else INTERNAL_ERROR
    assert rpc.error.code == CODES[exc.code].rpc == expected
    assert isinstance(resource_error(exc), ResourceError)
    assert isinstance(resource_error(exc), ResourceNotFoundError) == (expected == INVALID_PARAMS)


def test_every_code_memory_core_raises_is_in_the_table() -> None:
    import memory_core

    codes = {
        cls.code
        for cls in vars(memory_core).values()
        if isinstance(cls, type) and issubclass(cls, WorkingMemoryError)
    }
    assert codes <= set(CODES)


def test_tool_names_are_added_by_the_server() -> None:
    """memory_core's advice is tool-neutral; the client reads it with the tool named."""
    assert "session_open" not in SessionNotFoundError().message
    assert error_text(SessionNotFoundError()) == (
        "SESSION_NOT_FOUND: this session does not exist or has expired; open a new one "
        "with session_open (or reconnect) and restore a checkpoint if you have one"
    )
    full = LimitExceededError("max_sessions", 5, 5)
    assert "session_close" not in full.message
    assert error_text(full).endswith("close sessions you no longer need (session_close) and retry")


async def _every_surface(server: WorkingMemoryServer) -> dict[str, tuple[int, str]]:
    """The error each protocol surface answers while touching a session fails."""
    seen: dict[str, tuple[int, str]] = {}
    async with agent(server, "legacy") as legacy, agent(server, "stateless") as modern:
        uri = f"memory://session/{modern.handle}"
        for surface, attempt in (
            ("resources/read", lambda: legacy.client.read_resource(uri)),
            ("resources/subscribe", lambda: legacy.client.subscribe_resource(uri)),
        ):
            with pytest.raises(MCPError) as caught:
                await attempt()
            seen[surface] = (caught.value.error.code, caught.value.error.message)
        with pytest.raises(MCPError) as caught:
            async with modern.client.listen(resource_subscriptions=[uri]):
                pass
        seen["subscriptions/listen"] = (caught.value.error.code, caught.value.error.message)
        seen["tools/call"] = (0, await modern.fail("memory_get", {"key": "k"}))
    return seen


@pytest.mark.parametrize("exc", SERVER_FAULTS, ids=lambda e: e.code)
async def test_a_failing_store_is_an_internal_error_everywhere(
    server: WorkingMemoryServer, monkeypatch: pytest.MonkeyPatch, exc: WorkingMemoryError
) -> None:
    async def fail(*args: Any) -> Any:
        raise exc

    backend = server.runtime.store.backend
    for name in ("touch", "get", "items", "keys", "values_of"):
        monkeypatch.setattr(backend, name, fail)
    seen = await _every_surface(server)
    text = error_text(exc)
    assert seen == {
        "resources/read": (INTERNAL_ERROR, text),
        "resources/subscribe": (INTERNAL_ERROR, text),
        "subscriptions/listen": (INTERNAL_ERROR, text),
        "tools/call": (0, text),
    }


async def test_an_unknown_session_is_invalid_params_where_it_is_an_error(
    server: WorkingMemoryServer,
) -> None:
    """Listen honors an unknown session (indistinguishable from another principal's);
    read and subscribe refuse it, with one code."""
    async with agent(server, "legacy") as a:
        uri = "memory://session/" + "x" * 32
        codes = set()
        for attempt in (
            lambda: a.client.read_resource(uri),
            lambda: a.client.subscribe_resource(uri),
        ):
            with pytest.raises(MCPError, match=r"^SESSION_NOT_FOUND: ") as caught:
                await attempt()
            codes.add(caught.value.error.code)
        assert codes == {INVALID_PARAMS}


@pytest.mark.parametrize(
    ("exc", "tool"),
    [
        (SessionNotFoundError(), "session_open"),
        (CheckpointNotFoundError(), "checkpoint_list"),
        (LimitExceededError("max_sessions", 2, 2), "session_close"),
    ],
)
def test_memory_core_advice_reaches_clients_naming_the_tool(
    exc: WorkingMemoryError, tool: str
) -> None:
    """memory_core's sentences are tool-neutral; the server's wording names the tool."""
    assert tool not in exc.message
    assert tool in error_text(exc)


def test_every_tool_wording_entry_is_used() -> None:
    from mcp_server.errors import TOOL_WORDING

    neutral_texts = [
        SessionNotFoundError().message,
        CheckpointNotFoundError().message,
        LimitExceededError("max_sessions", 2, 2).message,
    ]
    for neutral in TOOL_WORDING:
        assert any(neutral in text for text in neutral_texts), neutral
