"""session_* tools: explicit handles, closing, and what a session uses."""

from __future__ import annotations

import logging

from mcp.server.mcpserver import Context

from mcp_server.binding import current_call, short
from mcp_server.runtime import runtime_of
from mcp_server.tools.arguments import LeaseSeconds, SessionArg, SessionName
from mcp_server.tools.factory import ToolSpec
from mcp_server.tools.results import (
    EchoResult,
    SessionClosed,
    SessionInfo,
    SessionOpened,
    SessionUsage,
)

log = logging.getLogger("mcp_server.sessions")


async def session_open(
    ctx: Context, name: SessionName = None, ttl_seconds: LeaseSeconds = None
) -> SessionOpened:
    rt = runtime_of(ctx)
    principal = rt.binder.principal()
    resumed = False
    if name is None:
        session_id = await rt.store.open(principal, lease_seconds=ttl_seconds)
    else:
        session_id, created = await rt.store.open_named(principal, name, ttl_seconds)
        resumed = not created
    record = current_call.get()
    if record is not None:
        record.session = session_id
    log.info("session opened by handle session=%s", short(session_id))
    expires_in = (await rt.store.touch(session_id, principal)) // 1000 if resumed else None
    return SessionOpened(
        session=session_id,
        expires_in=expires_in or rt.store.lease_ms(ttl_seconds) // 1000,
        resumed=resumed,
    )


async def session_close(ctx: Context, session: SessionArg = None) -> SessionClosed:
    rt = runtime_of(ctx)
    if session is None:
        session = rt.binder.own_session(ctx.request_context)
        if session is None:
            return SessionClosed(closed=False)  # nothing opened on this connection yet
    closed = await rt.store.close_session(session, rt.binder.principal())  # validates it
    record = current_call.get()
    if record is not None:
        record.session = session
    rt.binder.forget(ctx.request_context, session)
    if closed:
        log.info("session closed by tool session=%s", short(session))
        await rt.events.session_ended(session)
    return SessionClosed(closed=closed)


async def session_info(ctx: Context, session: SessionArg = None) -> SessionInfo:
    rt = runtime_of(ctx)
    s = await rt.session(ctx, session)
    usage = await s.memory.usage()
    health = await rt.store.health()
    return SessionInfo(
        session=s.memory.session_id,
        mode=health.mode,
        failure=health.failure,
        cause=health.cause,
        binding=s.binding,
        usage=SessionUsage.against(usage, rt.store.config.limits),
        lease_seconds=usage.lease_seconds,
        expires_in=usage.expires_in_ms / 1000,
    )


SESSION_TOOLS = (
    ToolSpec(
        session_open,
        title="Open a session",
        description=(
            "Get a handle to pass as session: a new empty session, or with name the named "
            "one (opened or resumed; it outlives connections). Sub-agents can share one."
        ),
        bounds=lambda st: {"ttl_seconds": {"minimum": 1, "maximum": st.max_lease_seconds}},
    ),
    ToolSpec(
        session_close,
        title="Close a session",
        description=(
            "End a session when done and delete its data (checkpoints are kept a while). "
            "Without session, ends this connection's own."
        ),
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        session_info,
        title="Describe the session",
        description="See the storage mode, the lease and how much of each limit the session uses.",
        read_only=True,
        idempotent=True,
    ),
)


async def echo(text: str = "") -> EchoResult:
    return EchoResult(text=text)


ECHO_TOOL = ToolSpec(
    echo,
    title="Echo",
    description="Return the text unchanged (a protocol baseline for benchmarks).",
    read_only=True,
    idempotent=True,
)
