"""Tool argument types: JSON schema and description shared by every tool.

Numbers are strict (``"5"`` or ``true`` is not a TTL). Rules that ``memory_core``
enforces itself (key length and characters, TTL range, value size) are not repeated
here, so the error carries memory_core's precise code (``INVALID_KEY``,
``VALUE_TOO_LARGE``, ...); ``tools.factory`` writes the configured bounds into the schema.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from memory_core import TaskStatus

SessionArg = Annotated[
    str | None,
    Field(
        description=(
            "Session handle from session_open. Omit it to use this connection's own "
            "session (stdio, SSE and streamable HTTP with a session id); stateless "
            "clients must pass it."
        )
    ),
]
Key = Annotated[
    str,
    Field(description="Name of the variable: any printable text, no control characters."),
]
Value = Annotated[
    Any,
    Field(description="Any JSON value: object, array, string, number, boolean or null."),
]
Default = Annotated[Any, Field(description="Returned as `value` when the key does not exist.")]
Ttl = Annotated[
    float | None,
    Field(
        strict=True,
        description="Seconds until the key expires. Omit to keep it as long as the session.",
    ),
]
Pattern = Annotated[
    str,
    Field(
        description=(
            "Glob over key names: * matches any run, ? one character, [abc] a set, "
            "\\ escapes. Default * (every key)."
        )
    ),
]
Cursor = Annotated[
    str | None,
    Field(description="next_cursor of the previous page; omit it for the first page."),
]
Limit = Annotated[
    int | None,
    Field(strict=True, description="Most entries to return in this page (default 100)."),
]
TaskId = Annotated[str, Field(description="Your identifier for the task.")]
Status = Annotated[TaskStatus, Field(description="Where the task stands.")]
Description = Annotated[str | None, Field(description="What the task is, in a sentence.")]
Step = Annotated[int | None, Field(strict=True, ge=0, description="Steps done so far (default 0).")]
TotalSteps = Annotated[
    int | None, Field(strict=True, ge=0, description="Steps in total, if known.")
]
Progress = Annotated[
    float | None,
    Field(strict=True, ge=0, le=1, description="Fraction done, 0.0 to 1.0 (default 0)."),
]
Metadata = Annotated[
    dict[str, Any] | None,
    Field(description="Any JSON object of extra facts about the task."),
]
Content = Annotated[str, Field(description="One note to append, as text.")]
Label = Annotated[
    str | None,
    Field(description="A short name to recognise the checkpoint by (up to 256 characters)."),
]
CheckpointId = Annotated[str, Field(description="checkpoint_id from checkpoint_create/list.")]
LeaseSeconds = Annotated[
    float | None,
    Field(
        strict=True,
        description="Idle seconds after which the session expires (default: server lease).",
    ),
]
