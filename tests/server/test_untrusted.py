"""Client data is untrusted everywhere: cursors, limits, patterns, labels, keys,
checkpoint ids and handles of any forged shape or size are refused with a caller's
code (``INVALID_ARGUMENT`` for cursors and limits) before anything reaches the store:
never ``INTERNAL_ERROR``, never a traceback, never a storage call."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_server.runtime import build_store
from mcp_server.server import create_server
from mcp_server.settings import Settings
from memory_core.storage.base import Backend
from tests.server.helpers import Agent, agent

CALLER_CODES = ("INVALID_ARGUMENT", "INVALID_KEY", "INVALID_VALUE", "SESSION_NOT_FOUND")


def _cursor(fields: Any) -> str:
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _nested(depth: int) -> str:
    return _cursor_raw(b'{"k":"scratchpad","o":' + b"[" * depth + b"]" * depth + b"}")


def _cursor_raw(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# (tool, arguments, the code it must answer)
HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("scratchpad_get", {"cursor": _cursor({"k": "scratchpad", "o": 10**30})}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": _cursor({"k": "scratchpad", "o": 2**63})}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": _cursor({"k": "scratchpad", "o": -1})}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": _cursor({"k": "scratchpad", "o": 1.5})}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": _cursor({"k": "scratchpad", "o": "1"})}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": _cursor({"k": "scratchpad", "o": True})}, "INVALID_ARGUMENT"),
    (
        "scratchpad_get",
        {"cursor": _cursor_raw(b'{"k":"scratchpad","o":1' + b"0" * 5000 + b"}")},
        "INVALID_ARGUMENT",
    ),
    ("scratchpad_get", {"cursor": _nested(5000)}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": _nested(100)}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": "A" * 200_000}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": "!!!!"}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": "é\udc00"}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": ""}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": _cursor([1, 2])}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"cursor": _cursor({"k": "keys", "p": "*", "a": "x"})}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"limit": 0}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"limit": -1}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"limit": 10**30}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"limit": "5"}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"limit": 2.5}, "INVALID_ARGUMENT"),
    ("scratchpad_get", {"limit": [1]}, "INVALID_ARGUMENT"),
    (
        "memory_list_keys",
        {"cursor": _cursor({"k": "keys", "p": "*", "a": "x" * 100_000})},
        "INVALID_ARGUMENT",
    ),
    (
        "memory_list_keys",
        {"cursor": _cursor({"k": "keys", "p": "*", "a": "\udc00"})},
        "INVALID_ARGUMENT",
    ),
    (
        "memory_list_keys",
        {"cursor": _cursor({"k": "keys", "p": "*", "a": {"x": 1}})},
        "INVALID_ARGUMENT",
    ),
    (
        "memory_list_keys",
        {"cursor": _cursor({"k": "keys", "p": "a*", "a": "x"})},
        "INVALID_ARGUMENT",
    ),
    ("memory_list_keys", {"pattern": "x" * 100_000}, "INVALID_ARGUMENT"),
    ("memory_list_keys", {"pattern": "[" * 600}, "INVALID_ARGUMENT"),
    ("memory_list_keys", {"pattern": 5}, "INVALID_ARGUMENT"),
    ("memory_get_all", {"pattern": {"a": [1]}}, "INVALID_ARGUMENT"),
    (
        "memory_get_all",
        {"cursor": _cursor({"k": "values", "p": "*", "a": 10**30})},
        "INVALID_ARGUMENT",
    ),
    ("memory_get_all", {"limit": 10**6}, "INVALID_ARGUMENT"),
    ("checkpoint_create", {"label": "x" * 100_000}, "INVALID_ARGUMENT"),
    ("checkpoint_create", {"label": ["x"]}, "INVALID_ARGUMENT"),
    # malformed checkpoint ids and handles answer as unknown ones do (nothing to probe)
    ("checkpoint_restore", {"checkpoint_id": "x" * 100_000}, "NOT_FOUND"),
    ("checkpoint_restore", {"checkpoint_id": {"a": 1}}, "INVALID_ARGUMENT"),
    ("checkpoint_delete", {"checkpoint_id": "../../etc"}, "NOT_FOUND"),
    ("memory_get", {"key": "x" * 100_000}, "INVALID_KEY"),
    ("memory_get", {"key": ["x"]}, "INVALID_KEY"),
    ("memory_get", {"key": "k", "session": "x" * 100_000}, "SESSION_NOT_FOUND"),
    ("memory_get", {"key": "k", "session": 5}, "INVALID_ARGUMENT"),
    ("memory_get", {"key": "k", "session": {"a": [[[[]]]]}}, "INVALID_ARGUMENT"),
]


class Calls:
    """Every backend call the server makes, recorded by method name."""

    def __init__(self, backend: Backend) -> None:
        self.names: list[str] = []
        for name in (
            "touch",
            "get",
            "set",
            "delete",
            "exists",
            "keys",
            "items",
            "values_of",
            "usage",
            "get_scratchpad",
            "create_checkpoint",
            "restore_checkpoint",
            "list_checkpoints",
            "delete_checkpoint",
            "open_session",
            "close_session",
        ):
            setattr(backend, name, self._recorded(name, getattr(backend, name)))

    def _recorded(
        self, name: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            self.names.append(name)
            return await method(*args, **kwargs)

        return call


@asynccontextmanager
async def recorded(mode: str) -> AsyncIterator[tuple[Agent, Calls]]:
    settings_ = Settings(transport="http")
    store = build_store(settings_)
    calls = Calls(store.backend)
    server = create_server(settings_, store)
    async with server.runtime, agent(server, mode) as a:
        await a.call("memory_set", key="k", value=1)
        await a.call("scratchpad_append", content="note")
        yield a, calls


async def _refused(a: Agent, calls: Calls, tool: str, args: dict[str, Any]) -> str:
    calls.names.clear()
    text = await a.fail(tool, args)
    assert calls.names == [], (tool, str(args)[:80], calls.names)
    return text


@pytest.mark.parametrize(("tool", "args", "code"), HOSTILE, ids=lambda v: str(v)[:40])
async def test_hostile_arguments_are_refused_before_the_store(
    mode: str,
    tool: str,
    args: dict[str, Any],
    code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        async with recorded(mode) as (a, calls):
            text = await _refused(a, calls, tool, args)
    assert text.startswith(code + ":"), text
    assert "Traceback" not in caplog.text and "INTERNAL_ERROR" not in caplog.text


def _forged_cursors() -> st.SearchStrategy[str]:
    field = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=20,
    )
    fields = st.fixed_dictionaries(
        {"k": st.sampled_from(["keys", "values", "scratchpad"])},
        optional={"p": st.one_of(st.just("*"), field), "a": field, "o": field},
    )
    huge = st.integers(min_value=2**31).map(lambda n: {"k": "scratchpad", "o": n})
    return st.one_of(
        fields.map(_cursor),
        huge.map(_cursor),
        st.binary(max_size=300).map(_cursor_raw),
        st.text(max_size=300),
    )


@settings(max_examples=60, deadline=None)
@given(
    cursors=st.lists(_forged_cursors(), min_size=1, max_size=8),
    tool=st.sampled_from(["scratchpad_get", "memory_list_keys", "memory_get_all"]),
    mode=st.sampled_from(["legacy", "stateless"]),
)
def test_fuzz_forged_cursors_never_reach_the_store(
    cursors: list[str], tool: str, mode: str
) -> None:
    async def run() -> None:
        async with recorded(mode) as (a, calls):
            for cursor in cursors:
                calls.names.clear()
                result = await a.raw(tool, {"cursor": cursor})
                if not result.is_error:
                    continue  # a forged cursor that happens to be a real one for this listing
                text = await _refused(a, calls, tool, {"cursor": cursor})
                assert text.startswith("INVALID_ARGUMENT:"), text

    anyio.run(run)
