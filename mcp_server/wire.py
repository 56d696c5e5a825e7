"""What a transport does with one raw JSON-RPC message before the SDK sees it.

The SDK drops a stdio line it cannot parse without a reply or a log line (its stdin
reader hands the parse exception to a dispatcher that only logs it at debug level),
and over HTTP it answers with its parser's or pydantic's own text. Every transport
runs ``check`` on what a client sent instead, so that each refused message gets the
same JSON-RPC error everywhere, with a sentence a model can act on:

* -32700 (parse error, id null) for what is not one JSON text in UTF-8: an empty or
  truncated line, invalid UTF-8, nesting deeper than ``MAX_DEPTH`` levels;
* -32600 (invalid request) for JSON that is not a JSON-RPC message, or that holds a
  lone surrogate escape such as ``"\\ud83d"`` (valid JSON, not valid text: what a
  client sends after cutting a string inside an emoji); the request's id is echoed
  whenever it can be read, so the client fails that request at once;
* batches (a JSON array) are the caller's choice, by protocol version: see ``Batch``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pydantic_core
from mcp_types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    jsonrpc_message_adapter,
)
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS
from pydantic import ValidationError

# pydantic's JSON parser, which the SDK uses on every transport, refuses deeper nesting.
MAX_DEPTH = 200

# The one version that requires servers to accept batches; later versions removed them.
BATCH_VERSION = "2025-03-26"

RequestId = str | int | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message no handler will see: the error to answer and why, for the log."""

    code: int
    message: str
    id: RequestId
    reason: str

    def error(self) -> JSONRPCError:
        return JSONRPCError(
            jsonrpc="2.0", id=self.id, error=ErrorData(code=self.code, message=self.message)
        )

    def body(self) -> bytes:
        return self.error().model_dump_json(by_alias=True, exclude_unset=True).encode()


@dataclass(frozen=True, slots=True)
class Batch:
    """A JSON array of messages, each element still to be checked with ``check_value``."""

    items: list[Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One JSON-RPC message the SDK will accept, parsed."""

    value: Any


def check(raw: bytes) -> Message | Batch | Refusal:
    """Classify one raw message (a stdio line, an HTTP body)."""
    try:
        value = pydantic_core.from_json(raw)
    except ValueError:
        return _why_unparsable(raw)
    if isinstance(value, list):
        return Batch(value)
    return check_value(value)


def check_value(value: Any) -> Message | Refusal:
    """A parsed JSON value that must be one JSON-RPC message."""
    try:
        jsonrpc_message_adapter.validate_python(value, by_name=False)
    except ValidationError:
        return Refusal(
            INVALID_REQUEST,
            "Invalid request: not a JSON-RPC 2.0 message; send an object with "
            '"jsonrpc": "2.0", a "method" string and, for a request, an "id" string or integer',
            _id_of(value),
            "not a JSON-RPC message",
        )
    return Message(value)


def refuse_batch(version: str | None) -> Refusal:
    said = f"protocol version {version}" if version in SUPPORTED_PROTOCOL_VERSIONS else "here"
    return Refusal(
        INVALID_REQUEST,
        f"Invalid request: JSON-RPC batches are not supported in {said}; "
        "send each message on its own",
        None,
        "batch",
    )


def empty_batch() -> Refusal:
    return Refusal(
        INVALID_REQUEST,
        "Invalid request: the batch is empty; send at least one message",
        None,
        "empty batch",
    )


def too_long(size: int, maximum: int) -> Refusal:
    """A stdio line longer than ``maximum`` bytes: skipped unread, never parsed."""
    return Refusal(
        INVALID_REQUEST,
        f"Invalid request: the message is {size} bytes, over the limit of {maximum}; "
        "send a smaller message (split large values across several keys)",
        None,
        "too long",
    )


def accepts_batches(version: str | None) -> bool:
    return version == BATCH_VERSION


def _why_unparsable(raw: bytes) -> Refusal:
    if not raw.strip():
        return _parse_error("empty", "empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _parse_error("not valid UTF-8", "invalid UTF-8")
    try:
        value = json.loads(text)
    except RecursionError:
        return _too_deep()
    except ValueError:
        return _parse_error("not one complete JSON text", "not JSON")
    # The standard library accepted what pydantic refused: a lone surrogate or depth.
    if _has_lone_surrogate(value):
        return Refusal(
            INVALID_REQUEST,
            "Invalid request: the message holds a lone surrogate escape (half of a "
            "character, such as a string cut inside an emoji); send whole characters",
            _id_of(value),
            "lone surrogate",
        )
    return _too_deep()


def _parse_error(what: str, reason: str) -> Refusal:
    return Refusal(
        PARSE_ERROR,
        f"Parse error: the message is {what}; send one JSON-RPC message as JSON text in UTF-8",
        None,
        reason,
    )


def _too_deep() -> Refusal:
    return Refusal(
        PARSE_ERROR,
        f"Parse error: the message is nested deeper than {MAX_DEPTH} levels; flatten it",
        None,
        "nested too deeply",
    )


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _is_broken(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _is_broken(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _id_of(value: Any) -> RequestId:
    """The request id, when it is one a client can match (never a broken string)."""
    if not isinstance(value, dict):
        return None
    found = value.get("id")
    if isinstance(found, bool):
        return None
    if isinstance(found, int) or (isinstance(found, str) and not _is_broken(found)):
        return found
    return None
