"""Lean JSON schemas: what pydantic generates, without what costs a model tokens and
tells it nothing.

Every tool's input and output schema goes through ``lean_schema`` once, when the tool
is built (``tools.factory``). It keeps every rule (types, bounds, enums, required,
``additionalProperties: false``) and drops:

* generated ``title`` keywords (``"title": "Ttl Seconds"``, ``"memory_setArguments"``);
* ``$defs``/``$ref`` indirection where a definition is used once: it is written in
  place (our models are not recursive); one used several times stays a reference;
* ``additionalProperties: true`` (the JSON Schema default);
* the ``anyOf: [X, {"type": "null"}]`` of ``X | None``: an optional argument whose
  absence means null is published as plain ``X`` without ``"default": null`` (sending
  null is still accepted); a field that can be null in a result becomes a type list,
  ``"type": ["number", "null"]``.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SUBSCHEMA_VALUES = ("items", "not", "additionalProperties")
NULL = {"type": "null"}
ANY_JSON_TYPES = {"object", "array", "string", "number", "boolean", "null"}
DEFS = "#/$defs/"


def lean_schema(schema: dict[str, Any], *, arguments: bool) -> dict[str, Any]:
    """A copy of ``schema`` without generated noise (see the module docstring).

    Args:
        schema: an object schema as pydantic generates it.
        arguments: True for a tool's input schema: optional ``X | None`` arguments are
            published as ``X``; False for a result: nullable fields keep null in a type
            list.
    """
    defs = schema.get("$defs", {})
    uses = Counter(_refs(schema))
    inline = {name: d for name, d in defs.items() if uses[name] <= 1}
    lean = _walk(schema, inline)
    kept = {name: _walk(d, inline) for name, d in defs.items() if name not in inline}
    if kept:
        lean["$defs"] = kept
    if arguments:
        required = set(lean.get("required", ()))
        for name, prop in lean.get("properties", {}).items():
            if name not in required and prop.get("default", ...) is None:
                del prop["default"]
                prop.update(_drop_null(prop))
    return lean


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS):
            yield ref.removeprefix(DEFS)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _walk(node: dict[str, Any], inline: dict[str, Any]) -> dict[str, Any]:
    """``node`` leaned, with the references to ``inline`` definitions written in place."""
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.removeprefix(DEFS) in inline:
        target = copy.deepcopy(inline[ref.removeprefix(DEFS)])
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs") or (key == "additionalProperties" and value is True):
            continue
        if key == "properties":
            out[key] = {name: _walk(sub, inline) for name, sub in value.items()}
        elif key in SUBSCHEMA_LISTS:
            out[key] = [_walk(sub, inline) for sub in value]
        elif key in SUBSCHEMA_VALUES and isinstance(value, dict):
            out[key] = _walk(value, inline)
        else:
            out[key] = value
    return _nullable_as_type_list(out)


def _nullable_as_type_list(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` -> ``X`` with ``"null"`` added to its type."""
    options = node.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or NULL not in options:
        return node
    (other,) = [o for o in options if o != NULL]
    kind = other.get("type")
    if not isinstance(kind, str) or "anyOf" in other:
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return {**other, **rest, "type": [kind, "null"]}


def _drop_null(prop: dict[str, Any]) -> dict[str, Any]:
    """The same property without null among its types (absent already means null).

    A property that takes any JSON value keeps null: there null is a value a caller may
    send (``memory_get``'s ``default``), and clients validate arguments before sending.
    """
    kind = prop.get("type")
    if isinstance(kind, list) and "null" in kind and not set(kind) >= ANY_JSON_TYPES:
        rest = [k for k in kind if k != "null"]
        prop["type"] = rest[0] if len(rest) == 1 else rest
    return prop
