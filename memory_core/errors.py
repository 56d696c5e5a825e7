"""Errors raised by memory_core.

Every error carries a stable ``code`` (the server puts it first in the tool error
message) and a sentence a model can act on. Nothing here ever contains a storage
key name, a path or a traceback, nor the name of an MCP tool: the server words the
advice for its own tools (``mcp_server.errors.TOOL_WORDING``).
"""

from __future__ import annotations

from typing import Literal


class WorkingMemoryError(Exception):
    """Root of every error memory_core raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidKeyError(WorkingMemoryError):
    """A key is empty, too long, not a string or contains control characters."""

    code = "INVALID_KEY"


class InvalidValueError(WorkingMemoryError):
    """A value is not a JSON value (object, array, string, number, bool, null)."""

    code = "INVALID_VALUE"


class InvalidArgumentError(WorkingMemoryError):
    """Any other argument is out of range or of the wrong type."""

    code = "INVALID_ARGUMENT"


LimitScope = Literal["session", "principal", "process"]
SCOPE_HOLDER: dict[str, str] = {
    "session": "this session",
    "principal": "your identity",
    "process": "this server (all clients together)",
}
"""Who a limit's usage is counted for, in the words of the error message."""

# What a model can do about each limit, in one place for every backend.
LIMIT_HINTS = {
    "max_keys": "delete keys you no longer need or clear the memory",
    "max_session_bytes": "delete keys or scratchpad content you no longer need",
    "max_scratchpad_entries": "summarize what you need into a variable; the scratchpad is full",
    "max_sessions": "close sessions you no longer need and retry",
    "max_sessions_per_principal": "close sessions you no longer need and retry",
    "max_retained_bytes_per_principal": (
        "delete checkpoints you no longer need, or wait until older ones expire"
    ),
    "max_retained_bytes": "delete checkpoints you no longer need, or retry later",
    "max_value_bytes": "store a smaller value or split it across several keys",
    "max_scratchpad_entry_bytes": "write a shorter entry or split it into several",
    "max_task_state_bytes": "keep the description and metadata shorter",
}


class LimitExceededError(WorkingMemoryError):
    """A configured limit would be exceeded; nothing was changed.

    The message names the limit, its scope (``session``: this session's data;
    ``principal``: everything the caller's identity holds in this process; ``process``:
    the whole server process, every caller), the value and the usage.
    """

    code = "LIMIT_EXCEEDED"

    def __init__(
        self,
        limit: str,
        maximum: int,
        current: int,
        hint: str | None = None,
        *,
        scope: LimitScope = "session",
    ) -> None:
        hint = hint if hint is not None else LIMIT_HINTS.get(limit, "")
        holder = SCOPE_HOLDER[scope]
        super().__init__(
            f"limit {limit} is {maximum} per {scope} and {holder} is at {current}; {hint}"
        )
        self.limit = limit
        self.maximum = maximum
        self.current = current
        self.scope = scope


class ValueTooLargeError(LimitExceededError):
    """A single value or scratchpad entry is larger than allowed."""

    code = "VALUE_TOO_LARGE"

    def __init__(self, limit: str, maximum: int, size: int, hint: str | None = None) -> None:
        hint = hint if hint is not None else LIMIT_HINTS.get(limit, "")
        WorkingMemoryError.__init__(
            self, f"{limit} is {maximum} bytes but this one is {size} bytes; {hint}"
        )
        self.limit = limit
        self.maximum = maximum
        self.current = size


class NotFoundError(WorkingMemoryError):
    """A checkpoint (or other named thing) does not exist or is not yours."""

    code = "NOT_FOUND"


class CheckpointNotFoundError(NotFoundError):
    """No checkpoint with this id belongs to the session (or the id is malformed: the
    two are indistinguishable on purpose)."""

    def __init__(self) -> None:
        super().__init__(
            "no such checkpoint in this session; list its checkpoints to see the ids you can use"
        )


class SessionNotFoundError(WorkingMemoryError):
    """The session does not exist, has expired, or belongs to another principal."""

    code = "SESSION_NOT_FOUND"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "this session does not exist or has expired; open a new one (or reconnect) "
            "and restore a checkpoint if you have one"
        )


class StorageUnavailableError(WorkingMemoryError):
    """The storage backend cannot serve the request right now."""

    code = "STORAGE_UNAVAILABLE"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "the memory store is temporarily unavailable; nothing was changed, "
            "retry in a few seconds"
        )


class StorageMisconfiguredError(WorkingMemoryError):
    """The store answers but refuses this server: wrong or missing credentials, a missing
    permission, an unknown database, a TLS or protocol mismatch. Retrying does not help;
    the operator has to fix the configuration.

    ``cause`` says what is wrong in an operator's words (never a password); ``target``
    is the store URL with its password redacted, for the startup message and the log.
    Neither reaches a client beyond the ``cause`` in the message.
    """

    code = "STORAGE_MISCONFIGURED"

    def __init__(self, cause: str, target: str = "the memory store") -> None:
        super().__init__(
            f"the memory store refuses this server ({cause}); nothing was changed and "
            "retrying will not help: stop and tell the operator"
        )
        self.cause = cause
        self.target = target

    def operator_line(self) -> str:
        """One line naming the target and the cause (the startup message)."""
        return f"{self.target}: {self.cause}"


class StorageFullError(WorkingMemoryError):
    """The store is out of memory (Redis ``maxmemory`` with ``noeviction``) and refused a
    write; nothing was changed."""

    code = "STORAGE_FULL"

    def __init__(self) -> None:
        super().__init__(
            "the memory store is full (it reached its memory limit) and refused this write; "
            "nothing was changed. Reads and deletes still work: delete what you no longer "
            "need or retry later"
        )


class StorageInternalError(WorkingMemoryError):
    """The store failed a call for a reason that is neither an outage nor the caller's
    input (an unexpected error reply from a script): a bug, logged with its cause."""

    def __init__(self) -> None:
        super().__init__(
            "the server hit an unexpected problem with this call; retry once, and if it "
            "happens again stop and report it"
        )
