"""Every tool the server offers, as SDK ``Tool`` objects bound to one runtime."""

from __future__ import annotations

from mcp.server.mcpserver.tools import Tool

from mcp_server.runtime import Runtime
from mcp_server.tools.checkpoints import checkpoint_tools
from mcp_server.tools.sessions import echo_tools, session_tools
from mcp_server.tools.task import task_tools
from mcp_server.tools.variables import variable_tools

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


def build_tools(rt: Runtime) -> list[Tool]:
    tools = [
        *variable_tools(rt),
        *task_tools(rt),
        *checkpoint_tools(rt),
        *session_tools(rt),
    ]
    if rt.settings.enable_echo_tool:
        tools.extend(echo_tools(rt))
    return tools
