"""Every tool the server offers: the specs per family, built into SDK ``Tool`` objects."""

from __future__ import annotations

from mcp.server.mcpserver.tools import Tool

from mcp_server.settings import Settings
from mcp_server.tools.checkpoints import CHECKPOINT_TOOLS
from mcp_server.tools.factory import make_tool
from mcp_server.tools.sessions import ECHO_TOOL, SESSION_TOOLS
from mcp_server.tools.task import TASK_TOOLS
from mcp_server.tools.variables import VARIABLE_TOOLS

TOOL_NAMES = (
    "memory_set",
    "memory_get",
    "memory_delete",
    "memory_exists",
    "memory_list_keys",
    "memory_get_all",
    "memory_clear",
    "task_state_set",
    "task_state_get",
    "scratchpad_append",
    "scratchpad_get",
    "checkpoint_create",
    "checkpoint_restore",
    "checkpoint_list",
    "checkpoint_delete",
    "session_open",
    "session_close",
    "session_info",
)


def build_tools(settings: Settings) -> list[Tool]:
    specs = [*VARIABLE_TOOLS, *TASK_TOOLS, *CHECKPOINT_TOOLS, *SESSION_TOOLS]
    if settings.enable_echo_tool:
        specs.append(ECHO_TOOL)
    return [make_tool(spec, settings) for spec in specs]
