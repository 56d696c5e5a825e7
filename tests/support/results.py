"""Typed access to what an MCP client hands back: the text of a tool result or of a
resource, the URI of an update. A result of another shape fails the test at the assert,
with the result shown."""

from __future__ import annotations

from mcp.shared.subscriptions import ResourceUpdated, ServerEvent
from mcp_types import CallToolResult, ReadResourceResult, TextContent, TextResourceContents


def tool_text(result: CallToolResult) -> str:
    """The text of a tool result's first content block (a failed call's error text)."""
    block = result.content[0]
    assert isinstance(block, TextContent), block
    return block.text


def resource_text(result: ReadResourceResult) -> str:
    """The text of a resource read's first contents (JSON for every resource here)."""
    contents = result.contents[0]
    assert isinstance(contents, TextResourceContents), contents
    return contents.text


def updated_uri(event: ServerEvent) -> str:
    """The URI of a ``subscriptions/listen`` event, which must be a resource update."""
    assert isinstance(event, ResourceUpdated), event
    return str(event.uri)
