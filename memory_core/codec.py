"""JSON serialization of values: done once, sizes counted in UTF-8 bytes."""

from __future__ import annotations

import json
from typing import Any

from memory_core.errors import InvalidValueError

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
MAX_DEPTH = 64


def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                raise InvalidValueError(
                    f"value is nested deeper than {MAX_DEPTH} levels; flatten it"
                )
            for k, v in item.items():
                if not isinstance(k, str):
                    raise InvalidValueError("object keys in a value must be strings")
                if isinstance(v, (dict, list)):
                    stack.append((v, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                raise InvalidValueError(
                    f"value is nested deeper than {MAX_DEPTH} levels; flatten it"
                )
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))


def encode(value: Any) -> str:
    """Serialize a JSON value.

    Raises:
        InvalidValueError: the value is not JSON (object, array, string, number,
            bool or null), contains NaN/Infinity, lone surrogates or is nested too deep.
    """
    if isinstance(value, (dict, list)):
        _check_depth(value)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise InvalidValueError(
            f"value must be JSON (object, array, string, number, bool or null), "
            f"got {type(value).__name__}"
        )
    try:
        text = _encoder.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidValueError(
            "value must be JSON (object, array, string, number, bool or null) "
            "without NaN or Infinity"
        ) from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError("value contains invalid unicode (lone surrogates)") from exc
    return text


def decode(text: str | bytes) -> Any:
    return json.loads(text)
