"""Tool specs, and turning them into SDK ``Tool`` objects with our conventions.

Each tool is a module-level async function (it finds the runtime through its
``Context``) plus a ``ToolSpec`` row: title, description, hints, schema bounds.

* annotations are always explicit (MCP's default for a tool without hints is
  "destructive, open world");
* string arguments are taken exactly as sent wherever a string is a valid value
  (``value``, ``default``, keys, labels, handles): the SDK re-parses strings that
  look like JSON (a workaround for clients that stringify objects), which would store
  the string ``"[1, 2]"`` as a list and turn a ``"null"`` label into null. Arguments
  that cannot be strings (``metadata``, numbers) keep that leniency;
* schemas are lean (``tools.schemas``): no generated titles or null noise;
* limits that depend on configuration (key length, TTL, page size) are written
  into the input schema so a model sees them.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import ToolAnnotations

from mcp_server.settings import Settings
from mcp_server.tools.schemas import lean_schema

VERBATIM_ARGUMENTS = frozenset({"value", "default"})


class _VerbatimStrings(FuncMetadata):
    # The names whose string values the SDK may re-parse as JSON. A plain field, not a
    # PrivateAttr: pydantic serves private attributes through ``__getattr__`` (a few µs
    # per read, paid on every tool call); a field is an ordinary instance attribute.
    lenient: frozenset[str] = frozenset()

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self.lenient = frozenset(
            name
            for name, field in self.arg_model.model_fields.items()
            if name not in VERBATIM_ARGUMENTS and not _accepts_str(field.annotation)
        )

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        names = self.lenient
        lenient = {k: v for k, v in data.items() if k in names and isinstance(v, str)}
        if not lenient:
            return data
        return {**data, **super().pre_parse_json(lenient)}


def _accepts_str(annotation: Any) -> bool:
    return annotation is str or (
        typing.get_origin(annotation) in (types.UnionType, typing.Union)
        and str in typing.get_args(annotation)
    )


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: its function (named as the tool) and how it is described to clients."""

    fn: Callable[..., Any]
    title: str
    description: str
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    bounds: Callable[[Settings], dict[str, dict[str, Any]]] | None = None
    """Schema bounds beyond the defaults, from the configuration."""


def make_tool(spec: ToolSpec, settings: Settings) -> Tool:
    fn, title = spec.fn, spec.title
    tool = Tool.from_function(
        fn,
        name=fn.__name__,
        title=title,
        description=spec.description,
        annotations=ToolAnnotations(
            title=title,
            read_only_hint=spec.read_only,
            destructive_hint=spec.destructive,
            idempotent_hint=spec.idempotent,
            open_world_hint=False,
        ),
        structured_output=True,
    )
    meta = tool.fn_metadata
    output = meta.output_schema
    tool.fn_metadata = _VerbatimStrings(
        arg_model=meta.arg_model,
        output_schema=None if output is None else lean_schema(output, arguments=False),
        output_model=meta.output_model,
        wrap_output=meta.wrap_output,
    )
    tool.parameters = lean_schema(tool.parameters, arguments=True)
    _document_limits(tool.parameters, settings, spec.bounds(settings) if spec.bounds else {})
    return tool


def argument_names(tool: Tool) -> frozenset[str]:
    properties = tool.parameters.get("properties", {})
    return frozenset(properties) if isinstance(properties, dict) else frozenset()


def _document_limits(
    schema: dict[str, Any], settings: Settings, overrides: dict[str, dict[str, Any]]
) -> None:
    properties = schema.get("properties", {})
    bounds: dict[str, dict[str, Any]] = {
        "key": {"minLength": 1, "maxLength": settings.max_key_length},
        "ttl_seconds": {"exclusiveMinimum": 0, "maximum": settings.max_ttl_seconds},
        "limit": {"minimum": 1, "maximum": settings.max_page_size},
        "content": {"minLength": 1},
        "task_id": {"minLength": 1, "maxLength": 256},
    } | overrides
    for name, extra in bounds.items():
        if name in properties:
            properties[name].update(extra)
