"""memory_* tools: variables with optional TTL."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from mcp_server.paging import cursor_after, encode_cursor, take
from mcp_server.runtime import Runtime, runtime_of
from mcp_server.tools.arguments import Cursor, Default, Key, Limit, Pattern, SessionArg, Ttl, Value
from mcp_server.tools.factory import ToolSpec
from mcp_server.tools.results import (
    ClearResult,
    DeleteResult,
    ExistsResult,
    GetResult,
    KeysPage,
    SetResult,
    ValuesPage,
)
from memory_core import InvalidValueError
from memory_core.codec import encode
from memory_core.keys import validate_pattern


async def memory_set(
    key: Key, value: Value, ctx: Context, ttl_seconds: Ttl = None, session: SessionArg = None
) -> SetResult:
    rt = runtime_of(ctx)
    s = await rt.session(ctx, session)
    await s.memory.set(key, value, ttl_seconds)
    await rt.changed(s)
    return SetResult(key=key, ttl_seconds=ttl_seconds)


async def memory_get(
    key: Key, ctx: Context, default: Default = None, session: SessionArg = None
) -> GetResult:
    rt = runtime_of(ctx)
    if default is not None:
        _check_default(default)
    s = await rt.session(ctx, session)
    entry = await s.memory.get_entry(key)
    if entry is None:
        return GetResult(key=key, found=False, value=default, ttl_seconds_remaining=None)
    ttl = None if entry.ttl_ms is None else entry.ttl_ms / 1000
    return GetResult(key=key, found=True, value=entry.value, ttl_seconds_remaining=ttl)


async def memory_delete(key: Key, ctx: Context, session: SessionArg = None) -> DeleteResult:
    rt = runtime_of(ctx)
    s = await rt.session(ctx, session)
    deleted = await s.memory.delete(key)
    if deleted:
        await rt.changed(s)
    return DeleteResult(deleted=deleted)


async def memory_exists(key: Key, ctx: Context, session: SessionArg = None) -> ExistsResult:
    rt = runtime_of(ctx)
    s = await rt.session(ctx, session)
    return ExistsResult(exists=await s.memory.exists(key))


async def memory_list_keys(
    ctx: Context,
    pattern: Pattern = "*",
    cursor: Cursor = None,
    limit: Limit = None,
    session: SessionArg = None,
) -> KeysPage:
    rt = runtime_of(ctx)
    count = rt.pages.limit(limit)
    after = _after(rt, cursor, "keys", pattern)
    s = await rt.session(ctx, session)
    keys = [k for k in await s.memory.list_keys(pattern) if after is None or k > after]
    page = take(keys, count, rt.pages.max_bytes, len)
    more = len(page) < len(keys)
    return KeysPage(keys=page, next_cursor=_next("keys", pattern, page) if more else None)


async def memory_get_all(
    ctx: Context,
    pattern: Pattern = "*",
    cursor: Cursor = None,
    limit: Limit = None,
    session: SessionArg = None,
) -> ValuesPage:
    rt = runtime_of(ctx)
    count = rt.pages.limit(limit)
    after = _after(rt, cursor, "values", pattern)
    s = await rt.session(ctx, session)
    entries, more = await s.memory.get_page(pattern, after, count, rt.pages.max_bytes)
    values = {k: e.value for k, e in entries.items()}
    return ValuesPage(
        values=values, next_cursor=_next("values", pattern, list(values)) if more else None
    )


async def memory_clear(ctx: Context, session: SessionArg = None) -> ClearResult:
    rt = runtime_of(ctx)
    s = await rt.session(ctx, session)
    cleared = await s.memory.clear()
    if cleared:
        await rt.changed(s)
    return ClearResult(cleared=cleared)


VARIABLE_TOOLS = (
    ToolSpec(
        memory_set,
        title="Remember a value",
        description=(
            "Remember a JSON value under a key for later in this session, replacing any old "
            "value. Give ttl_seconds to have it forgotten automatically."
        ),
        idempotent=True,
    ),
    ToolSpec(
        memory_get,
        title="Recall a value",
        description=(
            "Recall the value stored under a key. Returns found=false and default when it "
            "is missing or expired."
        ),
        read_only=True,
        idempotent=True,
    ),
    ToolSpec(
        memory_delete,
        title="Forget a value",
        description="Forget one key you no longer need. Returns deleted=false if it did not exist.",
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        memory_exists,
        title="Check a key",
        description="Check whether a key holds a value, without reading the value.",
        read_only=True,
        idempotent=True,
    ),
    ToolSpec(
        memory_list_keys,
        title="List keys",
        description=(
            "See which keys you have stored, sorted, filtered by a glob pattern. Paged: "
            "while next_cursor is not null, call again with it."
        ),
        read_only=True,
        idempotent=True,
    ),
    ToolSpec(
        memory_get_all,
        title="Read many values",
        description=(
            "Read many keys with their values at once, filtered by a glob pattern. Paged "
            "like memory_list_keys."
        ),
        read_only=True,
        idempotent=True,
    ),
    ToolSpec(
        memory_clear,
        title="Forget all values",
        description=(
            "Forget every variable in this session; task state, notes and checkpoints stay. "
            "Checkpoint first if you may want them back."
        ),
        destructive=True,
        idempotent=True,
    ),
)


def _check_default(default: object) -> None:
    """``default`` goes back out in the result: it must be JSON a client can read (no
    lone surrogates, NaN or Infinity, nesting within the value limit), like a value."""
    try:
        encode(default)
    except InvalidValueError as exc:
        raise InvalidValueError(f"default: {exc.message}") from exc


def _after(rt: Runtime, cursor: str | None, kind: str, pattern: str) -> str | None:
    """Checks the pattern and the cursor before the session is looked up."""
    validate_pattern(pattern)
    return cursor_after(cursor, kind, pattern, rt.store.config.limits.max_key_length)


def _next(kind: str, pattern: str, page: list[str]) -> str:
    return encode_cursor(kind, p=pattern, a=page[-1])
