"""mcp_server: working memory for LLM agents as MCP tools and resources.

``create_server(settings, store)`` builds the server; ``mcp_server.cli`` runs it over
stdio or HTTP (streamable HTTP at ``/mcp``, SSE at ``/sse``).
"""

from __future__ import annotations

from mcp_server.server import WorkingMemoryServer, create_server
from mcp_server.settings import Settings
from memory_core import __version__

__all__ = ["Settings", "WorkingMemoryServer", "__version__", "create_server"]
