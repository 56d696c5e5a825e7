"""Resources: a session's state as JSON, and server health.

``memory://session/current`` is the caller's own session (connection or process);
``memory://session/{session}`` any session of the caller's by handle. Both are served
by one template, because only templates receive the request context. The state is
bounded like the tools' pages; ``*_next_cursor`` continues with memory_get_all or
scratchpad_get.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import Resource as MCPResource
from pydantic import BaseModel, Field

from mcp_server.errors import resource_error
from mcp_server.paging import encode_cursor, take
from mcp_server.runtime import Runtime
from mcp_server.tools.results import CheckpointSummary, SessionUsage
from mcp_server.uris import CURRENT, CURRENT_SESSION_URI, HEALTH_URI, SESSION_TEMPLATE
from memory_core import TaskState, WorkingMemoryError, __version__

JSON = "application/json"

CURRENT_RESOURCE = MCPResource(
    uri=CURRENT_SESSION_URI,
    name="current_session",
    title="This connection's working memory",
    description=(
        "The state of this connection's own session: variables with remaining TTLs, task "
        "state, scratchpad, checkpoints and usage against limits. Subscribe to be told "
        "when it changes."
    ),
    mime_type=JSON,
)


class Variable(BaseModel):
    value: Any
    ttl_seconds_remaining: float | None


class SessionState(BaseModel):
    session: str | None
    """The handle the URI named; None for ``current`` (only session_open and
    session_info hand out a handle)."""
    binding: str
    variables: dict[str, Variable]
    variables_total: int
    variables_next_cursor: str | None
    task_state: TaskState | None
    scratchpad: list[str]
    scratchpad_total: int
    scratchpad_next_cursor: str | None
    checkpoints: list[CheckpointSummary]
    usage: SessionUsage
    lease_seconds: int
    expires_in: float


class BusHealth(BaseModel):
    kind: str
    connected: bool
    published: int
    received: int
    dropped: int


class HealthState(BaseModel):
    mode: str
    healthy: bool
    failure: str | None = Field(
        description="outage, configuration (the store refuses this server), store_full, or null"
    )
    cause: str | None = Field(description="why, in an operator's words")
    last_switch_at: datetime | None
    fallbacks: int
    write_backs: int
    write_back_sessions: int
    sessions_open: int
    subscription_bus: BusHealth
    version: str


def register_resources(server: MCPServer[Any], rt: Runtime) -> None:
    @server.resource(
        SESSION_TEMPLATE,
        name="session",
        title="A session's working memory",
        description=(
            "The state of one of your sessions by handle (or `current` for this "
            "connection's own): variables, task state, scratchpad, checkpoints, usage."
        ),
        mime_type=JSON,
    )
    async def session_state(session: str, ctx: Context) -> str:
        try:
            return (
                await _state(rt, ctx, None if session == CURRENT else session)
            ).model_dump_json()
        except WorkingMemoryError as exc:
            raise resource_error(exc) from exc

    @server.resource(
        HEALTH_URI,
        name="health",
        title="Server health",
        description=(
            "Storage mode (redis, fallback or memory), what is wrong with the store and why "
            "(failure, cause), fallback counters, open sessions, and whether subscription "
            "events reach other replicas."
        ),
        mime_type=JSON,
    )
    async def health() -> str:
        h = await rt.store.health()
        bus = rt.events.stats()
        return HealthState(
            mode=h.mode,
            healthy=h.healthy,
            failure=h.failure,
            cause=h.cause,
            last_switch_at=h.last_switch_at,
            fallbacks=h.fallbacks,
            write_backs=h.write_backs,
            write_back_sessions=h.write_back_sessions,
            sessions_open=rt.store.open_count(),
            subscription_bus=BusHealth(
                kind=bus.kind,
                connected=bus.connected,
                published=bus.published,
                received=bus.received,
                dropped=bus.dropped,
            ),
            version=__version__,
        ).model_dump_json()


async def _state(rt: Runtime, ctx: Context, handle: str | None) -> SessionState:
    s = await rt.session(ctx, handle)
    wm, pages = s.memory, rt.pages
    variables, more_vars = await wm.get_page("*", None, pages.default, pages.max_bytes)
    scratchpad, scratchpad_total = await wm.get_scratchpad_page(0, pages.default)
    scratchpad = take(scratchpad, pages.default, pages.max_bytes, lambda e: len(e.encode()))
    usage = await wm.usage()
    return SessionState(
        session=handle,
        binding=s.binding,
        variables={
            k: Variable(
                value=e.value,
                ttl_seconds_remaining=None if e.ttl_ms is None else e.ttl_ms / 1000,
            )
            for k, e in variables.items()
        },
        variables_total=usage.keys,
        variables_next_cursor=(
            encode_cursor("values", p="*", a=list(variables)[-1]) if more_vars else None
        ),
        task_state=await wm.get_task_state(),
        scratchpad=scratchpad,
        scratchpad_total=scratchpad_total,
        scratchpad_next_cursor=(
            encode_cursor("scratchpad", o=len(scratchpad))
            if len(scratchpad) < scratchpad_total
            else None
        ),
        checkpoints=[CheckpointSummary.of(c) for c in await wm.list_checkpoints()],
        usage=SessionUsage.against(usage, rt.store.config.limits),
        lease_seconds=usage.lease_seconds,
        expires_in=usage.expires_in_ms / 1000,
    )
