"""Limits and store settings shared by every backend."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """Per-session and per-process limits, all enforced atomically with the write."""

    model_config = ConfigDict(frozen=True)

    max_keys: int = Field(1000, ge=1, description="variables per session")
    max_value_bytes: int = Field(64 * 1024, ge=16, description="serialized bytes of one value")
    max_session_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="variables + task state + scratchpad bytes"
    )
    max_scratchpad_entries: int = Field(1000, ge=1)
    max_scratchpad_entry_bytes: int = Field(16 * 1024, ge=16)
    max_checkpoints: int = Field(32, ge=1, description="the oldest is dropped past this")
    max_sessions: int = Field(10_000, ge=1, description="open sessions per process")
    max_sessions_per_principal: int = Field(
        1000, ge=1, description="open sessions per principal (identity) in one process"
    )
    max_retained_bytes_per_principal: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="checkpoint bytes one principal may hold (open and closed sessions "
        "alike, until they expire)",
    )
    max_retained_bytes: int = Field(
        1024 * 1024 * 1024, ge=1024, description="checkpoint bytes held per process"
    )
    max_key_length: int = Field(256, ge=1, le=4096)
    max_ttl_seconds: int = Field(366 * 24 * 3600, ge=1, description="largest per-key TTL")
    max_task_state_bytes: int = Field(64 * 1024, ge=256)


class StoreConfig(BaseModel):
    """How sessions live: idle lease, checkpoint retention and key prefix."""

    model_config = ConfigDict(frozen=True)

    lease_seconds: int = Field(3600, ge=1, description="idle lease of a session")
    max_lease_seconds: int = Field(7 * 24 * 3600, ge=1)
    checkpoint_retention_seconds: int = Field(
        24 * 3600, ge=1, description="how long checkpoints outlive their session"
    )
    key_prefix: str = Field("wm", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    require_noeviction: bool = Field(
        False,
        description="refuse to start on a Redis whose maxmemory-policy evicts keys "
        "(default: start and warn)",
    )
    limits: Limits = Field(default_factory=Limits)
