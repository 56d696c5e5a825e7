"""Tool results: each model is a tool's output schema and structured content.

Field names are a contract with clients and docs; add fields, never rename them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from mcp_server.tools.arguments import any_json_type
from memory_core import CheckpointInfo, Limits, TaskState, Usage

NEXT_CURSOR = Field(description="pass as `cursor` to get the next page; null when done")


class SetResult(BaseModel):
    key: str
    ttl_seconds: float | None = Field(description="the TTL set, or null: lives with the session")


class GetResult(BaseModel):
    key: str
    found: bool
    value: Any = Field(
        description="the stored value, or `default` when not found", json_schema_extra=any_json_type
    )
    ttl_seconds_remaining: float | None = Field(description="null when the key has no TTL")


class DeleteResult(BaseModel):
    deleted: bool = Field(description="false when the key did not exist")


class ExistsResult(BaseModel):
    exists: bool


class KeysPage(BaseModel):
    keys: list[str] = Field(description="matching keys in sorted order")
    next_cursor: str | None = NEXT_CURSOR


class ValuesPage(BaseModel):
    values: dict[str, Any] = Field(description="matching keys and their values, sorted by key")
    next_cursor: str | None = NEXT_CURSOR


class ClearResult(BaseModel):
    cleared: int = Field(description="how many variables were deleted")


class TaskStateResult(BaseModel):
    state: TaskState


class TaskStateGetResult(BaseModel):
    state: TaskState | None = Field(description="null when no task state was set")


class AppendResult(BaseModel):
    length: int = Field(description="number of scratchpad entries after the append")


class ScratchpadPage(BaseModel):
    entries: list[str] = Field(description="scratchpad entries, oldest first")
    next_cursor: str | None = NEXT_CURSOR


class CheckpointCreated(BaseModel):
    checkpoint_id: str
    created_at: datetime
    evicted: list[str] = Field(
        default_factory=list, description="older checkpoints dropped to stay within the limit"
    )


class CheckpointRestored(BaseModel):
    restored: bool
    checkpoint_id: str


class CheckpointSummary(BaseModel):
    id: str = Field(description="the checkpoint_id to restore or delete")
    label: str | None
    created_at: datetime
    size: int = Field(description="bytes of the stored snapshot")

    @classmethod
    def of(cls, info: CheckpointInfo) -> CheckpointSummary:
        return cls(
            id=info.checkpoint_id, label=info.label, created_at=info.created_at, size=info.size
        )


class CheckpointList(BaseModel):
    checkpoints: list[CheckpointSummary] = Field(description="oldest first")
    from_earlier_sessions: list[CheckpointSummary] = Field(
        default_factory=list,
        description="kept checkpoints of your sessions that ended, newest first; "
        "checkpoint_restore puts one into this session",
    )


class CheckpointDeleted(BaseModel):
    deleted: bool = Field(description="false when no such checkpoint exists in this session")


class SessionOpened(BaseModel):
    session: str = Field(description="pass as `session` to every call that should use it")
    expires_in: int = Field(description="seconds of inactivity after which it expires")
    resumed: bool = Field(False, description="true when the named session already existed")


class SessionClosed(BaseModel):
    closed: bool = Field(description="false when it had already ended")


class LimitUsage(BaseModel):
    used: int
    limit: int


class SessionUsage(BaseModel):
    keys: LimitUsage
    bytes: LimitUsage
    scratchpad_entries: LimitUsage
    checkpoints: LimitUsage

    @classmethod
    def against(cls, usage: Usage, limits: Limits) -> SessionUsage:
        """What a session uses, next to each configured limit."""
        return cls(
            keys=LimitUsage(used=usage.keys, limit=limits.max_keys),
            bytes=LimitUsage(used=usage.bytes, limit=limits.max_session_bytes),
            scratchpad_entries=LimitUsage(
                used=usage.scratchpad_entries, limit=limits.max_scratchpad_entries
            ),
            checkpoints=LimitUsage(used=usage.checkpoints, limit=limits.max_checkpoints),
        )


class SessionInfo(BaseModel):
    session: str = Field(description="handle of this session")
    mode: str = Field(description="backend mode: redis, fallback (Redis unreachable) or memory")
    failure: str | None = Field(
        default=None,
        description="what is wrong with the store, if anything: outage, configuration, store_full",
    )
    cause: str | None = Field(default=None, description="why, in an operator's words")
    binding: str = Field(description="handle, named, default, connection or process")
    usage: SessionUsage
    lease_seconds: int = Field(description="idle time after which the session expires")
    expires_in: float = Field(description="seconds until it expires unless used again")


class EchoResult(BaseModel):
    text: str
