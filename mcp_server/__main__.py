"""``python -m mcp_server``: the same as the ``mcp-working-memory`` command."""

from __future__ import annotations

from mcp_server.cli import main

if __name__ == "__main__":
    main()
