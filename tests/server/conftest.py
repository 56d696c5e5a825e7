"""Fixtures for the server tests: a fresh in-memory store per test, servers for both
binding kinds, and in-process agents in both protocol eras."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from mcp_server.runtime import build_store
from mcp_server.server import WorkingMemoryServer, create_server
from mcp_server.settings import Settings
from memory_core import SessionStore
from tests.server.helpers import MODES


@pytest.fixture(scope="session", autouse=True)
def _clean_wm_environment() -> Iterator[None]:
    """A developer's WM_* variables must not leak into the settings under test."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            known = name.startswith("WM_") and name[3:].lower() in Settings.model_fields
            if known and name != "WM_TOOLS":  # set for the whole run (tests/conftest.py)
                mp.delenv(name)
        yield


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings(**{"transport": "http", **overrides})

    return make


@pytest.fixture
async def store() -> AsyncIterator[SessionStore]:
    s = build_store(Settings(transport="http"))
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(scope="session")
def server() -> WorkingMemoryServer:
    """An HTTP-flavoured server (sessions bound to connections or handles), shared by
    the tests: each agent works in its own session, so they cannot see each other.
    Its in-memory store runs without the sweeper (expiry is also checked on access)."""
    return create_server(Settings(transport="http"))


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_backend(redis_url: str) -> Iterator[str]:
    """A real Redis URL, once memory_core's Redis backend exists (skipped before)."""
    pytest.importorskip("memory_core.storage.redis", reason="memory_core Redis backend not landed")
    yield redis_url
