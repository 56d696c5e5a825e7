"""What tools and resources share: settings, the store, session binding, events."""

from __future__ import annotations

from dataclasses import dataclass

from mcp.server.mcpserver import Context

from mcp_server.binding import Resolved, SessionBinder
from mcp_server.events.sessions import SessionEvents
from mcp_server.paging import PageSize
from mcp_server.settings import Settings
from mcp_server.tools.results import LimitUsage, SessionUsage
from memory_core import SessionStore, Usage


@dataclass
class Runtime:
    settings: Settings
    store: SessionStore
    binder: SessionBinder
    events: SessionEvents
    pages: PageSize

    async def session(self, ctx: Context, handle: str | None) -> Resolved:
        """The session this tool call works on (see ``mcp_server.binding``)."""
        return await self.binder.resolve(ctx.request_context, handle)

    async def changed(self, resolved: Resolved) -> None:
        await self.events.changed(resolved.memory.session_id)

    def usage_against_limits(self, usage: Usage) -> SessionUsage:
        limits = self.store.config.limits
        return SessionUsage(
            keys=LimitUsage(used=usage.keys, limit=limits.max_keys),
            bytes=LimitUsage(used=usage.bytes, limit=limits.max_session_bytes),
            scratchpad_entries=LimitUsage(
                used=usage.scratchpad_entries, limit=limits.max_scratchpad_entries
            ),
            checkpoints=LimitUsage(used=usage.checkpoints, limit=limits.max_checkpoints),
        )
