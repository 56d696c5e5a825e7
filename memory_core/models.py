"""Data shapes of the public API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskState(BaseModel):
    """What the agent is doing: one per session, replaced as a whole on each set."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, max_length=256)
    description: str | None = Field(None, max_length=8192)
    status: TaskStatus = TaskStatus.PENDING
    current_step: int = Field(0, ge=0, le=1_000_000_000)
    total_steps: int | None = Field(None, ge=0, le=1_000_000_000)
    progress: float = Field(0.0, ge=0.0, le=1.0)
    metadata: dict[str, Any] = Field(default_factory=dict)
    updated_at: datetime | None = Field(None, description="set by the store on every write")


class CheckpointInfo(BaseModel):
    checkpoint_id: str
    label: str | None
    created_at: datetime
    size: int = Field(description="bytes of the stored snapshot")


class CreatedCheckpoint(CheckpointInfo):
    evicted: list[str] = Field(
        default_factory=list, description="older checkpoints dropped to stay within the limit"
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One variable with its remaining TTL in ms (None: lives as long as the session)."""

    value: Any
    ttl_ms: int | None


class Usage(BaseModel):
    keys: int
    bytes: int
    scratchpad_entries: int
    checkpoints: int
    lease_seconds: int
    expires_in_ms: int


Failure = Literal["outage", "configuration", "store_full"]
"""The classes of storage failure a health report names (see ``storage.redis.backend``)."""


class Health(BaseModel):
    mode: str = Field(description="redis | fallback | memory")
    healthy: bool
    last_switch_at: datetime | None = None
    fallbacks: int = 0
    write_backs: int = 0
    write_back_sessions: int = 0
    detail: str | None = None
    failure: Failure | None = Field(
        default=None,
        description="what is wrong, if anything: outage (Redis unreachable), "
        "configuration (Redis refuses this server), store_full (Redis out of memory)",
    )
    cause: str | None = Field(default=None, description="why, in an operator's words")


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
