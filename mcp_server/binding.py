"""Which session a request works on.

In order:

1. an explicit ``session`` handle (from ``session_open`` or ``session_info``), checked
   against the caller's principal by the store;
2. on stdio, the process session: one per server process, opened at start and
   closed by the runner at end of input or on SIGTERM/SIGINT;
3. on SSE and handshake streamable HTTP, the connection's session: opened on the
   connection's first use and closed through the connection's exit stack when the
   stream closes, on ``DELETE``, on the idle timeout and at shutdown;
4. otherwise (a stateless 2026-07-28 request) ``SESSION_REQUIRED``.

Sessions opened for a connection or the process are remembered so that shutdown
can close whatever the transports did not.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from mcp.server.context import ServerRequestContext

from mcp_server.auth import current_principal
from mcp_server.errors import SessionRequiredError
from mcp_server.sdk import connection_of, is_stateless, on_close
from memory_core import SessionStore, WorkingMemory, WorkingMemoryError

log = logging.getLogger("mcp_server.sessions")

Binding = Literal["handle", "connection", "process"]

_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_SESSION_KEY = "mcp_working_memory.session"
_LOCK_KEY = "mcp_working_memory.lock"


@dataclass(slots=True)
class CallRecord:
    """What one tool call touched, for its log line (filled in as the call runs)."""

    tool: str
    session: str | None = None


current_call: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "mcp_working_memory_call", default=None
)


def short(session_id: str | None) -> str:
    """The first 8 characters of a session id, for logs (never raw client text)."""
    if not session_id:
        return "-"
    head = session_id[:8]
    return head if _ID_CHARS.fullmatch(head) else "invalid"


@dataclass(slots=True)
class Resolved:
    memory: WorkingMemory
    principal: str
    binding: Binding


@dataclass
class SessionBinder:
    """Resolves the session of each request; owns connection and process sessions."""

    store: SessionStore
    process_bound: bool
    """stdio: every request without a handle uses the one process session."""
    anonymous_principal: str
    """The principal of requests that carry no bearer token."""
    on_ended: Callable[[str], Awaitable[None]] | None = None
    """Called after a connection or process session is torn down (to notify subscribers)."""
    _bound: dict[str, str] = field(default_factory=dict)  # session id -> principal
    _process_session: str | None = None
    _process_lock: anyio.Lock = field(default_factory=anyio.Lock)

    def principal(self) -> str:
        return current_principal(self.anonymous_principal)

    async def resolve(
        self, request: ServerRequestContext[Any, Any], handle: str | None
    ) -> Resolved:
        """The session ``request`` works on (see the module docstring).

        Raises:
            SessionRequiredError: a stateless request without ``handle``.
            SessionNotFoundError: ``handle`` is malformed, unknown, expired or not
                the caller's (raised by the store on first use, not here).
        """
        principal = self.principal()
        binding: Binding
        if handle is not None:
            session_id, binding = handle, "handle"
        elif self.process_bound:
            session_id, binding = await self._process(principal), "process"
        elif is_stateless(request):
            raise SessionRequiredError()
        else:
            session_id, binding = await self._connection(request, principal), "connection"
        memory = self.store.memory(session_id, principal)  # validates the handle
        record = current_call.get()
        if record is not None:
            record.session = session_id
        return Resolved(memory, principal, binding)

    def own_session(self, request: ServerRequestContext[Any, Any]) -> str | None:
        """The connection's or process's session if one is open, without opening one.

        Raises:
            SessionRequiredError: a stateless request, which has no own session.
        """
        if self.process_bound:
            return self._process_session
        if is_stateless(request):
            raise SessionRequiredError()
        state = connection_of(request).state
        session_id = state.get(_SESSION_KEY)
        return session_id if isinstance(session_id, str) else None

    def forget(self, request: ServerRequestContext[Any, Any], session_id: str) -> None:
        """``session_id`` was closed by a tool; the next call opens a fresh one."""
        self._bound.pop(session_id, None)
        if self._process_session == session_id:
            self._process_session = None
        elif not self.process_bound and not is_stateless(request):
            state = connection_of(request).state
            if state.get(_SESSION_KEY) == session_id:
                del state[_SESSION_KEY]

    # process (stdio) -----------------------------------------------------------------
    async def open_process_session(self) -> str:
        return await self._process(self.anonymous_principal)

    async def _process(self, principal: str) -> str:
        if self._process_session is not None:
            return self._process_session
        async with self._process_lock:
            if self._process_session is None:
                self._process_session = await self._open(principal, "process")
            return self._process_session

    # connections (SSE, handshake streamable HTTP, in-memory) ---------------------------
    async def _connection(self, request: ServerRequestContext[Any, Any], principal: str) -> str:
        connection = connection_of(request)
        state = connection.state
        session_id = state.get(_SESSION_KEY)
        if isinstance(session_id, str):
            return session_id
        # setdefault runs without an await, so concurrent first calls share one lock
        lock: anyio.Lock = state.setdefault(_LOCK_KEY, anyio.Lock())
        async with lock:
            session_id = state.get(_SESSION_KEY)
            if isinstance(session_id, str):
                return session_id
            opened = await self._open(principal, "connection")
            state[_SESSION_KEY] = opened

            async def teardown() -> None:
                await self.close(opened, principal, "disconnect")

            on_close(connection, teardown)
            return opened

    # lifecycle ------------------------------------------------------------------------
    async def _open(self, principal: str, binding: Binding) -> str:
        session_id = await self.store.open(principal)
        self._bound[session_id] = principal
        log.info("session bound session=%s binding=%s", short(session_id), binding)
        return session_id

    async def close(self, session_id: str, principal: str, reason: str) -> bool:
        """Tear down a bound session; never raises (the idle lease is the backstop)."""
        self._bound.pop(session_id, None)
        if self._process_session == session_id:
            self._process_session = None
        try:
            closed = await self.store.close_session(session_id, principal)
        except WorkingMemoryError as exc:
            log.warning(
                "session teardown failed session=%s reason=%s error=%s; its lease will expire it",
                short(session_id),
                reason,
                exc.code,
            )
            return False
        except Exception:
            log.exception(
                "session teardown crashed session=%s reason=%s", short(session_id), reason
            )
            return False
        if closed:
            log.info("session ended session=%s reason=%s", short(session_id), reason)
            if self.on_ended is not None:
                await self.on_ended(session_id)
        return closed

    async def close_all(self, reason: str = "shutdown") -> int:
        """Close every connection and process session still open (shutdown backstop)."""
        closed = 0
        for session_id, principal in list(self._bound.items()):
            closed += await self.close(session_id, principal, reason)
        return closed

    @property
    def bound_count(self) -> int:
        return len(self._bound)
