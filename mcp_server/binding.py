"""Which session a request works on.

In order:

1. an explicit ``session`` handle (from ``session_open`` or ``session_info``), checked
   against the caller's principal by the store;
2. on HTTP, the session named by the request's ``X-Memory-Session`` header (on SSE and
   handshake streamable HTTP the first name a connection sends binds the connection);
3. on stdio, the process session: the named one with ``WM_SESSION_NAME`` (resumed at
   start, kept at the end), else one per server process, opened at start and closed by
   the runner at end of input or on SIGTERM/SIGINT;
4. on SSE and handshake streamable HTTP, the connection's session: opened on the
   connection's first use and closed through the connection's exit stack when the
   stream closes, on ``DELETE``, on the idle timeout and at shutdown;
5. otherwise (a stateless 2026-07-28 request) the principal's default session (a named
   session with a reserved name), or ``SESSION_REQUIRED`` with ``WM_DEFAULT_SESSION=off``.

Named and default sessions are never torn down here: they live on their idle lease, so
the next connection or process with the name resumes them. Sessions opened for a
connection or the unnamed process are remembered so that shutdown can close whatever
the transports did not.
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
from mcp_server.sdk import connection_of, is_stateless, on_close, request_header
from memory_core import SessionStore, WorkingMemory, WorkingMemoryError
from memory_core.errors import InvalidArgumentError
from memory_core.keys import (
    DEFAULT_SESSION_NAME,
    named_session_id,
    session_tag,
    validate_session_name,
)

log = logging.getLogger("mcp_server.sessions")

Binding = Literal["handle", "named", "default", "connection", "process"]

SESSION_HEADER = "X-Memory-Session"
"""The request header that names the session (UTF-8 text, ``keys.validate_session_name``)."""

_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_SESSION_KEY = "mcp_working_memory.session"
_NAME_KEY = "mcp_working_memory.session_name"
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
    """A session for logs: the first 8 characters of its tag (``keys.session_tag``),
    never of the id itself (a log line must not hand out a handle) nor raw client text."""
    if not session_id:
        return "-"
    if not _ID_CHARS.fullmatch(session_id):
        return "invalid"
    return session_tag(session_id)[:8]


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
    process_name: str | None = None
    """stdio: the name of the process session (``WM_SESSION_NAME``), kept at exit."""
    default_session: bool = True
    """Stateless requests without handle or name use the principal's default session."""
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
            SessionRequiredError: a stateless request without ``handle`` or name, with
                the default session off.
            InvalidArgumentError: the ``X-Memory-Session`` header is not a usable name.
            SessionNotFoundError: ``handle`` is malformed, unknown, expired or not
                the caller's (raised by the store on first use, not here).
        """
        principal = self.principal()
        binding: Binding
        name = None if handle is not None else self.requested_name(request)
        if handle is not None:
            memory, binding = self.store.memory(handle, principal), "handle"  # validates it
        elif name is not None:
            memory, binding = await self.store.named(principal, name), "named"
        elif self.process_bound:
            memory, binding = await self._process(principal), "process"
        elif is_stateless(request):
            if not self.default_session:
                raise SessionRequiredError()
            memory = await self.store.named(principal, DEFAULT_SESSION_NAME)
            binding = "default"
        else:
            session_id = await self._connection(request, principal)
            memory, binding = self.store.memory(session_id, principal), "connection"
        record = current_call.get()
        if record is not None:
            record.session = memory.session_id
        return Resolved(memory, principal, binding)

    def own_session(self, request: ServerRequestContext[Any, Any]) -> str | None:
        """The request's own session (named, process, connection or default) if one is
        open, without opening one (a named one's id, which may not exist).

        Raises:
            SessionRequiredError: a stateless request without a name, with the default
                session off.
            InvalidArgumentError: the ``X-Memory-Session`` header is not a usable name.
        """
        principal = self.principal()
        name = self.requested_name(request)
        if name is not None:
            return named_session_id(principal, name)
        if self.process_bound:
            if self.process_name is not None:
                return named_session_id(principal, self.process_name)
            return self._process_session
        if is_stateless(request):
            if not self.default_session:
                raise SessionRequiredError()
            return named_session_id(principal, DEFAULT_SESSION_NAME)
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

    # names ---------------------------------------------------------------------------
    def requested_name(self, request: ServerRequestContext[Any, Any]) -> str | None:
        """The session name the request asks for with ``X-Memory-Session``; on SSE and
        handshake streamable HTTP the first name a connection sent stays its name.

        Raises:
            InvalidArgumentError: the header is not a usable session name.
        """
        raw = request_header(request, SESSION_HEADER)
        stateful = not self.process_bound and not is_stateless(request)
        if raw is None:
            if not stateful:
                return None
            remembered = connection_of(request).state.get(_NAME_KEY)
            return remembered if isinstance(remembered, str) else None
        try:
            # Starlette decodes header bytes as Latin-1; clients send UTF-8
            name = raw.encode("latin-1").decode("utf-8")
        except UnicodeError:
            raise InvalidArgumentError(f"the {SESSION_HEADER} header must be UTF-8 text") from None
        try:
            validate_session_name(name)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{SESSION_HEADER} header: {exc.message}") from None
        if stateful:
            connection_of(request).state.setdefault(_NAME_KEY, name)
        return name

    # process (stdio) -----------------------------------------------------------------
    async def open_process_session(self) -> str:
        return (await self._process(self.anonymous_principal)).session_id

    async def _process(self, principal: str) -> WorkingMemory:
        if self.process_name is not None:
            # a named session, never torn down here: one closed by a tool or expired
            # comes back empty on the next call (SessionStore.named)
            return await self.store.named(principal, self.process_name)
        if self._process_session is None:
            async with self._process_lock:
                if self._process_session is None:
                    self._process_session = await self._open(principal, "process")
        return self.store.memory(self._process_session, principal)

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
            # Only first calls need the lock (later ones find the session above): a
            # connection should not carry it (~0.8 KiB) for its whole life.
            del state[_LOCK_KEY]

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
