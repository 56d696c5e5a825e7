"""memory_core: the working-memory engine (sessions, variables with TTL, task state,
scratchpad, checkpoints) over Redis or in-process storage."""

from __future__ import annotations

from memory_core.clock import Clock, ManualClock, SystemClock
from memory_core.config import Limits, StoreConfig
from memory_core.errors import (
    CheckpointNotFoundError,
    InvalidArgumentError,
    InvalidKeyError,
    InvalidValueError,
    LimitExceededError,
    NotFoundError,
    SessionNotFoundError,
    StorageFullError,
    StorageInternalError,
    StorageMisconfiguredError,
    StorageUnavailableError,
    ValueTooLargeError,
    WorkingMemoryError,
)
from memory_core.models import CheckpointInfo, Entry, Health, TaskState, TaskStatus, Usage
from memory_core.sessions import LOCAL_PRINCIPAL, SessionStore
from memory_core.storage.factory import backend_from_url
from memory_core.working_memory import WorkingMemory

__version__ = "0.1.0"

__all__ = [
    "LOCAL_PRINCIPAL",
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "Clock",
    "Entry",
    "Health",
    "InvalidArgumentError",
    "InvalidKeyError",
    "InvalidValueError",
    "LimitExceededError",
    "Limits",
    "ManualClock",
    "NotFoundError",
    "SessionNotFoundError",
    "SessionStore",
    "StorageFullError",
    "StorageInternalError",
    "StorageMisconfiguredError",
    "StorageUnavailableError",
    "StoreConfig",
    "SystemClock",
    "TaskState",
    "TaskStatus",
    "Usage",
    "ValueTooLargeError",
    "WorkingMemory",
    "WorkingMemoryError",
    "__version__",
    "backend_from_url",
]
