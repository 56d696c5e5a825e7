"""Tool argument types: JSON schema and description shared by every tool.

Arguments whose name says it all (key, content, label, limit, task_id, ...) carry no
description: every word here is read by a model on every request. Numbers are strict
(``"5"`` or ``true`` is not a TTL). Rules that ``memory_core`` enforces itself (key
length and characters, TTL range, value size) are not repeated here, so the error
carries memory_core's precise code (``INVALID_KEY``, ``VALUE_TOO_LARGE``, ...);
``tools.factory`` writes the configured bounds into the schema.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from mcp_server.tools.schemas import ANY_JSON_TYPES
from memory_core import TaskStatus

SessionArg = Annotated[
    str | None,
    Field(description="Handle from session_open; omit for this connection's session."),
]
Key = str


def any_json_type(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of an any-JSON-value field: a ``type`` listing every JSON
    type ("number" covers integers), since schema checkers (the MCP Inspector's
    ``--strict``) flag a property without one."""
    schema["type"] = sorted(ANY_JSON_TYPES)


Value = Annotated[
    Any,
    Field(description="Any JSON value.", json_schema_extra=any_json_type),
]
Default = Annotated[
    Any,
    Field(
        description="Returned as value when the key is missing.", json_schema_extra=any_json_type
    ),
]
Ttl = Annotated[
    float | None,
    Field(
        strict=True,
        description="Seconds until it expires; omit to keep it for the session.",
    ),
]
Pattern = Annotated[
    str,
    Field(description="Glob over keys: * any run, ? one character, [abc] a set, \\ escapes."),
]
Cursor = Annotated[
    str | None,
    Field(description="next_cursor of the previous page."),
]
Limit = Annotated[
    int | None,
    Field(strict=True),
]
TaskId = str
Status = TaskStatus
Description = Annotated[str | None, Field(description="The task in a sentence.")]
Step = Annotated[int | None, Field(strict=True, ge=0, description="Default 0.")]
TotalSteps = Annotated[int | None, Field(strict=True, ge=0)]
Progress = Annotated[
    float | None,
    Field(strict=True, ge=0, le=1, description="Fraction done, default 0."),
]
Metadata = Annotated[
    dict[str, Any] | None,
    Field(description="Extra facts, as a JSON object."),
]
Content = str
Label = str | None
CheckpointId = Annotated[str, Field(description="From checkpoint_create or checkpoint_list.")]
SessionName = Annotated[
    str | None,
    Field(description="Open or resume the session with this name (any text, 128 characters)."),
]
LeaseSeconds = Annotated[
    float | None,
    Field(
        strict=True,
        description="Idle seconds before it expires (default: the server's lease).",
    ),
]
