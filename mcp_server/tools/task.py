"""task_state_* and scratchpad_* tools: what the agent is doing, and its notes."""

from __future__ import annotations

from mcp.server.mcpserver import Context
from pydantic import ValidationError

from mcp_server.errors import describe_validation
from mcp_server.paging import cursor_offset, encode_cursor, take
from mcp_server.runtime import runtime_of
from mcp_server.tools.arguments import (
    Content,
    Cursor,
    Description,
    Limit,
    Metadata,
    Progress,
    SessionArg,
    Status,
    Step,
    TaskId,
    TotalSteps,
)
from mcp_server.tools.factory import ToolSpec
from mcp_server.tools.results import (
    AppendResult,
    ScratchpadPage,
    TaskStateGetResult,
    TaskStateResult,
)
from memory_core import InvalidArgumentError, TaskState


async def task_state_set(
    *,
    task_id: TaskId,
    status: Status,
    ctx: Context,
    description: Description = None,
    current_step: Step = None,
    total_steps: TotalSteps = None,
    progress: Progress = None,
    metadata: Metadata = None,
    session: SessionArg = None,
) -> TaskStateResult:
    rt = runtime_of(ctx)
    fields = {
        "task_id": task_id,
        "status": status,
        "description": description,
        "current_step": current_step,
        "total_steps": total_steps,
        "progress": progress,
        "metadata": metadata,
    }
    try:
        state = TaskState(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise InvalidArgumentError(describe_validation(exc)) from exc
    s = await rt.session(ctx, session)
    stored = await s.memory.set_task_state(state)
    await rt.changed(s)
    return TaskStateResult(state=stored)


async def task_state_get(ctx: Context, session: SessionArg = None) -> TaskStateGetResult:
    rt = runtime_of(ctx)
    s = await rt.session(ctx, session)
    return TaskStateGetResult(state=await s.memory.get_task_state())


async def scratchpad_append(
    content: Content, ctx: Context, session: SessionArg = None
) -> AppendResult:
    rt = runtime_of(ctx)
    s = await rt.session(ctx, session)
    length = await s.memory.append_scratchpad(content)
    await rt.changed(s)
    return AppendResult(length=length)


async def scratchpad_get(
    ctx: Context, cursor: Cursor = None, limit: Limit = None, session: SessionArg = None
) -> ScratchpadPage:
    rt = runtime_of(ctx)
    count = rt.pages.limit(limit)
    start = cursor_offset(cursor, "scratchpad")
    s = await rt.session(ctx, session)
    entries, total = await s.memory.get_scratchpad_page(start, count)
    page = take(entries, count, rt.pages.max_bytes, lambda e: len(e.encode("utf-8")))
    end = start + len(page)
    next_cursor = encode_cursor("scratchpad", o=end) if end < total else None
    return ScratchpadPage(entries=page, next_cursor=next_cursor)


TASK_TOOLS = (
    ToolSpec(
        task_state_set,
        title="Record task state",
        description=(
            "Record the task you are working on and how far along it is, replacing the "
            "previous task state."
        ),
        idempotent=True,
    ),
    ToolSpec(
        task_state_get,
        title="Read task state",
        description="Read back the task state last recorded with task_state_set (null if none).",
        read_only=True,
        idempotent=True,
    ),
    ToolSpec(
        scratchpad_append,
        title="Add a note",
        description=(
            "Write down a note or intermediate thought; notes are kept in order for this session."
        ),
    ),
    ToolSpec(
        scratchpad_get,
        title="Read notes",
        description=(
            "Read your notes back, oldest first. Paged: while next_cursor is not null, call "
            "again with it."
        ),
        read_only=True,
        idempotent=True,
    ),
)
