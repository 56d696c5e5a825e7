"""Listings come in bounded pages; next_cursor walks them and is null at the end."""

from __future__ import annotations

from itertools import chain
from typing import Any

import pytest

from mcp_server.paging import PageSize, decode_cursor, encode_cursor, take
from mcp_server.server import WorkingMemoryServer, create_server
from memory_core import InvalidArgumentError
from tests.server.helpers import Agent, agent


async def _walk(a: Agent, tool: str, field: str, **args: Any) -> list[Any]:
    pages: list[Any] = []
    cursor = None
    for _ in range(50):  # bounded: a cursor that never ends fails the test
        page = await a.call(tool, **args, **({"cursor": cursor} if cursor else {}))
        pages.append(page[field])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("listing did not end")


async def test_keys_and_values_page_in_key_order(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        for i in range(25):
            await a.call("memory_set", key=f"k{i:02d}", value=i)
        await a.call("memory_set", key="other", value=0)
        keys = await _walk(a, "memory_list_keys", "keys", pattern="k*", limit=10)
        assert [len(p) for p in keys] == [10, 10, 5]
        assert list(chain.from_iterable(keys)) == [f"k{i:02d}" for i in range(25)]
        values = await _walk(a, "memory_get_all", "values", pattern="k*", limit=7)
        merged = {k: v for page in values for k, v in page.items()}
        assert merged == {f"k{i:02d}": i for i in range(25)}
        assert (await a.call("memory_list_keys"))["next_cursor"] is None  # 26 < default 100


async def test_cursor_survives_writes_between_pages(server: WorkingMemoryServer) -> None:
    async with agent(server, "legacy") as a:
        for key in "aceg":
            await a.call("memory_set", key=key, value=key)
        first = await a.call("memory_list_keys", limit=2)
        assert first["keys"] == ["a", "c"]
        await a.call("memory_set", key="b", value="b")  # before the cursor: not repeated
        await a.call("memory_delete", key="e")  # after it: simply gone
        rest = await a.call("memory_list_keys", cursor=first["next_cursor"], limit=2)
        assert rest == {"keys": ["g"], "next_cursor": None}


async def test_cursor_is_tied_to_its_listing(server: WorkingMemoryServer) -> None:
    async with agent(server, "legacy") as a:
        for i in range(3):
            await a.call("memory_set", key=f"k{i}", value=i)
        cursor = (await a.call("memory_list_keys", limit=1))["next_cursor"]
        for tool, args in (
            ("memory_list_keys", {"cursor": cursor, "pattern": "x*"}),
            ("memory_get_all", {"cursor": cursor}),
            ("scratchpad_get", {"cursor": cursor}),
        ):
            assert (await a.fail(tool, args)).startswith("INVALID_ARGUMENT: ")


async def test_scratchpad_pages_oldest_first(server: WorkingMemoryServer, mode: str) -> None:
    async with agent(server, mode) as a:
        for i in range(12):
            await a.call("scratchpad_append", content=f"note {i}")
        pages = await _walk(a, "scratchpad_get", "entries", limit=5)
        assert [len(p) for p in pages] == [5, 5, 2]
        assert list(chain.from_iterable(pages)) == [f"note {i}" for i in range(12)]


async def test_pages_stop_at_the_byte_budget(make_settings: Any) -> None:
    server = create_server(make_settings(max_page_bytes=4096))
    async with agent(server, "legacy") as a:
        for i in range(6):
            await a.call("memory_set", key=f"k{i}", value="v" * 1500)
            await a.call("scratchpad_append", content="n" * 1500)
        values = await _walk(a, "memory_get_all", "values")
        assert [len(p) for p in values] == [2, 2, 2]
        notes = await _walk(a, "scratchpad_get", "entries")
        assert [len(p) for p in notes] == [2, 2, 2]
        # one entry bigger than the budget still comes through, alone
        await a.call("memory_set", key="a-big", value="x" * 6000)
        assert list((await a.call("memory_get_all", limit=3))["values"]) == ["a-big"]


def test_cursor_round_trip_and_rejects() -> None:
    cursor = encode_cursor("keys", p="*", a="ünï")
    assert decode_cursor(cursor, "keys") == {"k": "keys", "p": "*", "a": "ünï"}
    for bad in ("", "!!!", "bm90IGpzb24", encode_cursor("scratchpad", o=1)):
        with pytest.raises(InvalidArgumentError):
            decode_cursor(bad, "keys")


def test_take_and_limits() -> None:
    assert take([], 5, 10, len) == []
    assert take(["aaaa", "bb", "c"], 5, 5, len) == ["aaaa"]
    assert take(["aaaaaaaa", "b"], 5, 5, len) == ["aaaaaaaa"]
    sizes = PageSize(default=100, maximum=500, max_bytes=1000)
    assert sizes.limit(None) == 100 and sizes.limit(500) == 500
    for bad in (0, -1, 501):
        with pytest.raises(InvalidArgumentError):
            sizes.limit(bad)
