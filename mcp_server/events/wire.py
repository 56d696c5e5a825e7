"""The event wire format on Redis pub/sub: one message per batch of events.

A message is the publishing process's origin on the first line, then one line per event:
``r <uri>`` for a resource update, ``t``/``p``/``l`` for the list-changed kinds. Limits
here bound what one message may carry; anything malformed decodes to nothing.
"""

from __future__ import annotations

from mcp.server.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

MAX_BATCH_EVENTS = 256
MAX_BATCH_BYTES = 32 * 1024
MAX_EVENT_BYTES = 2048
MAX_MESSAGE_BYTES = 256 * 1024

_CODES: dict[str, ServerEvent] = {
    "t": ToolsListChanged(),
    "p": PromptsListChanged(),
    "l": ResourcesListChanged(),
}


def encode_event(event: ServerEvent) -> str:
    """One line per event: ``r <uri>``, or ``t``/``p``/``l`` for the list-changed kinds."""
    if isinstance(event, ResourceUpdated):
        return "r " + event.uri
    if isinstance(event, ToolsListChanged):
        return "t"
    if isinstance(event, PromptsListChanged):
        return "p"
    return "l"


def decode_event(line: str) -> ServerEvent | None:
    """The event of one line, or None for anything malformed."""
    if line.startswith("r "):
        uri = line[2:]
        return ResourceUpdated(uri=uri) if uri and "\n" not in uri else None
    return _CODES.get(line)


def encode_message(origin: str, lines: list[str]) -> str:
    return "\n".join([origin, *lines])


def decode_message(payload: str) -> tuple[str, list[ServerEvent]]:
    """``(origin, events)`` of one pub/sub message (malformed lines skipped)."""
    origin, _, body = payload.partition("\n")
    events = []
    for line in body.split("\n")[:MAX_BATCH_EVENTS]:
        event = decode_event(line)
        if event is not None:
            events.append(event)
    return origin, events
