"""Bounded pages for listings that can grow, with opaque cursors.

A page holds at most ``limit`` entries and stops early once its serialized size
passes ``max_page_bytes`` (always at least one entry), so a listing never floods
a client's tool-output budget. ``next_cursor`` is None when nothing remains.

Cursors are base64url JSON naming the listing they belong to. Variable listings
continue after the last key returned (stable under concurrent writes); the
scratchpad, which only grows at the end, continues at an offset.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from memory_core import InvalidArgumentError

T = TypeVar("T")

BAD_CURSOR = "cursor is not valid for this listing; omit it to start from the beginning"


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
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidArgumentError(BAD_CURSOR) from exc
    if not isinstance(data, dict) or data.get("k") != kind:
        raise InvalidArgumentError(BAD_CURSOR)
    return data


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
