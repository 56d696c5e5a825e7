"""Every tool the server offers: the specs per family, built into SDK ``Tool`` objects."""

from __future__ import annotations

from mcp.server.mcpserver.tools import Tool

from mcp_server.settings import Settings
from mcp_server.tool_groups import TOOL_NAMES
from mcp_server.tools.checkpoints import CHECKPOINT_TOOLS
from mcp_server.tools.factory import make_tool
from mcp_server.tools.sessions import ECHO_TOOL, SESSION_TOOLS
from mcp_server.tools.task import TASK_TOOLS
from mcp_server.tools.variables import VARIABLE_TOOLS

__all__ = ["TOOL_NAMES", "build_tools"]


def build_tools(settings: Settings) -> list[Tool]:
    """The tools ``settings.tools`` (``WM_TOOLS``) selects, plus ``echo`` if enabled;
    a tool not built is neither listed nor callable."""
    enabled = set(settings.enabled_tools)
    every = [*VARIABLE_TOOLS, *TASK_TOOLS, *CHECKPOINT_TOOLS, *SESSION_TOOLS]
    specs = [spec for spec in every if spec.fn.__name__ in enabled]
    if settings.enable_echo_tool:
        specs.append(ECHO_TOOL)
    return [make_tool(spec, settings) for spec in specs]
