"""Fixtures shared by the third-party client tests: the legacy-clients virtualenv and
one HTTP server per module (clients are isolated by their connections and principals,
which is what these tests check, so they can share it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_server.http import create_app
from mcp_server.settings import Settings
from tests.clients.legacy_venv import legacy_python
from tests.server.e2e import RunningServer, serve_in_thread

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"
TOKENS = f"{ALICE}=alice,{BOB}=bob"


@pytest.fixture(scope="session")
def legacy() -> Path:
    """The interpreter of the virtualenv holding ``mcp`` 1.x and langchain-mcp-adapters."""
    return legacy_python()


@pytest.fixture(scope="module")
def http_server() -> Iterator[RunningServer]:
    """Streamable HTTP with bearer tokens for two principals, in-memory store."""
    with serve_in_thread(create_app(Settings(transport="http", auth_tokens=TOKENS))) as running:
        yield running


def set_then_get(key: str = "plan", value: object = None) -> list[dict[str, object]]:
    """The steps of the question every test asks: is what was set still there?"""
    value = {"step": 2, "notes": ["emoji \U0001f600", "ünïcode"]} if value is None else value
    return [
        {"tool": "memory_set", "args": {"key": key, "value": value}},
        {"tool": "memory_get", "args": {"key": key}},
    ]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
