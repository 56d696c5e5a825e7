"""Bounded pages for listings that can grow, with opaque cursors.

A page holds at most ``limit`` entries and stops early once its serialized size
passes ``max_page_bytes`` (always at least one entry), so a listing never floods
a client's tool-output budget. ``next_cursor`` is None when nothing remains.

Cursors are base64url JSON naming the listing they belong to. Variable listings
continue after the last key returned (stable under concurrent writes); the
scratchpad, which only grows at the end, continues at an offset.

A cursor is client data: any shape or size a client sends (too long, not base64, not
JSON, nested, an offset past any listing, a key no session can hold) is refused here
with ``INVALID_ARGUMENT`` before anything reaches the store.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from memory_core import InvalidArgumentError, InvalidKeyError
from memory_core.keys import validate_key
from memory_core.working_memory import MAX_POSITION

T = TypeVar("T")

BAD_CURSOR = "cursor is not valid for this listing; omit it to start from the beginning"
# Far above any cursor this server makes (a key and a pattern, base64url encoded).
MAX_CURSOR_LENGTH = 8192
# Far above any listing a session can hold, far below what a store's integers take.
MAX_OFFSET = MAX_POSITION  # the engine's bound on a position


@dataclass(frozen=True, slots=True)
class PageSize:
    default: int
    maximum: int
    max_bytes: int

    def limit(self, limit: int | None) -> int:
        if limit is None:
            return self.default
        if not 1 <= limit <= self.maximum:
            raise InvalidArgumentError(f"limit must be between 1 and {self.maximum}")
        return limit


def encode_cursor(kind: str, **fields: Any) -> str:
    raw = json.dumps({"k": kind, **fields}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, kind: str) -> dict[str, Any]:
    """The fields of a cursor made by ``encode_cursor(kind, ...)``.

    Raises:
        InvalidArgumentError: not a cursor, or a cursor of another listing.
    """
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
        raise InvalidArgumentError(BAD_CURSOR)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as exc:
        raise InvalidArgumentError(BAD_CURSOR) from exc
    if not isinstance(data, dict) or data.get("k") != kind:
        raise InvalidArgumentError(BAD_CURSOR)
    return data


def cursor_offset(cursor: str | None, kind: str) -> int:
    """The offset a cursor of ``kind`` continues at (0 without a cursor).

    Raises:
        InvalidArgumentError: see ``decode_cursor``; or an offset that is not an integer
            between 0 and ``MAX_OFFSET``.
    """
    if cursor is None:
        return 0
    offset = decode_cursor(cursor, kind).get("o")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidArgumentError(BAD_CURSOR)
    return offset


def cursor_after(cursor: str | None, kind: str, pattern: str, max_key_length: int) -> str | None:
    """The key a cursor of ``kind`` continues after (None without a cursor).

    Raises:
        InvalidArgumentError: see ``decode_cursor``; a cursor of another pattern; or one
            whose key no session could hold.
    """
    if cursor is None:
        return None
    data = decode_cursor(cursor, kind)
    if data.get("p") != pattern:
        raise InvalidArgumentError(
            "cursor belongs to a listing with another pattern; use the same pattern, "
            "or omit the cursor to start over"
        )
    after = data.get("a")
    try:
        return validate_key(after, max_key_length)
    except InvalidKeyError as exc:
        raise InvalidArgumentError(BAD_CURSOR) from exc


def take(items: Iterable[T], limit: int, max_bytes: int, size: Callable[[T], int]) -> list[T]:
    """The first ``limit`` items, cut short once their total size passes ``max_bytes``."""
    page: list[T] = []
    total = 0
    for item in items:
        if len(page) >= limit:
            break
        total += size(item)
        if page and total > max_bytes:
            break
        page.append(item)
    return page


def json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
