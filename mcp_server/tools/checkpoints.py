"""checkpoint_* tools: snapshots of the session to return to."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from mcp_server.runtime import runtime_of
from mcp_server.tools.arguments import CheckpointId, Label, SessionArg
from mcp_server.tools.factory import ToolSpec
from mcp_server.tools.results import (
    CheckpointCreated,
    CheckpointDeleted,
    CheckpointList,
    CheckpointRestored,
    CheckpointSummary,
)
from memory_core.keys import checkpoint_tag


async def checkpoint_create(
    ctx: Context, label: Label = None, session: SessionArg = None
) -> CheckpointCreated:
    rt = runtime_of(ctx)
    s = await rt.session(ctx, session)
    created = await s.memory.create_checkpoint_info(label)
    await rt.changed(s)
    return CheckpointCreated(
        checkpoint_id=created.checkpoint_id,
        created_at=created.created_at,
        evicted=created.evicted,
    )


async def checkpoint_restore(
    checkpoint_id: CheckpointId, ctx: Context, session: SessionArg = None
) -> CheckpointRestored:
    rt = runtime_of(ctx)
    checkpoint_tag(checkpoint_id)  # a malformed id: NOT_FOUND before the store
    s = await rt.session(ctx, session)
    await s.memory.restore_checkpoint(checkpoint_id)
    await rt.changed(s)
    return CheckpointRestored(restored=True, checkpoint_id=checkpoint_id)


EARLIER_LISTED = 20
"""At most this many checkpoints of earlier sessions in one checkpoint_list."""


async def checkpoint_list(ctx: Context, session: SessionArg = None) -> CheckpointList:
    rt = runtime_of(ctx)
    s = await rt.session(ctx, session)
    own = [CheckpointSummary.of(info) for info in await s.memory.list_checkpoints()]
    earlier = []
    if session is None:  # a fresh context after a restart: what it can recover
        earlier = [
            CheckpointSummary.of(info)
            for info in await s.memory.list_earlier_checkpoints(EARLIER_LISTED)
        ]
    return CheckpointList(checkpoints=own, from_earlier_sessions=earlier)


async def checkpoint_delete(
    checkpoint_id: CheckpointId, ctx: Context, session: SessionArg = None
) -> CheckpointDeleted:
    rt = runtime_of(ctx)
    checkpoint_tag(checkpoint_id)  # a malformed id: NOT_FOUND before the store
    s = await rt.session(ctx, session)
    deleted = await s.memory.delete_checkpoint(checkpoint_id)
    if deleted:
        await rt.changed(s)
    return CheckpointDeleted(deleted=deleted)


CHECKPOINT_TOOLS = (
    ToolSpec(
        checkpoint_create,
        title="Save a checkpoint",
        description=(
            "Save a snapshot of variables, task state and notes before a risky step, to "
            "return to with checkpoint_restore."
        ),
    ),
    ToolSpec(
        checkpoint_restore,
        title="Return to a checkpoint",
        description=(
            "Go back to a checkpoint: replaces the current variables, task state and notes "
            "with its snapshot."
        ),
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        checkpoint_list,
        title="List checkpoints",
        description=(
            "See your checkpoints (oldest first); without session also those kept from "
            "your ended sessions (from_earlier_sessions, newest first) to restore here."
        ),
        read_only=True,
        idempotent=True,
    ),
    ToolSpec(
        checkpoint_delete,
        title="Delete a checkpoint",
        description=(
            "Delete a checkpoint you no longer need. Returns deleted=false if there was none."
        ),
        destructive=True,
        idempotent=True,
    ),
)
