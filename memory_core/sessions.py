"""SessionStore: opens, touches and tears down sessions over one backend."""

from __future__ import annotations

import logging
from datetime import datetime

from memory_core.clock import Clock
from memory_core.config import StoreConfig
from memory_core.errors import InvalidArgumentError, LimitExceededError
from memory_core.keys import (
    DEFAULT_SESSION_NAME,
    named_session_id,
    new_session_id,
    session_tag,
    validate_session_id,
    validate_session_name,
)
from memory_core.models import Health, Usage, ms_to_datetime
from memory_core.storage.base import Backend, SessionRef
from memory_core.working_memory import WorkingMemory

log = logging.getLogger(__name__)

LOCAL_PRINCIPAL = "local"


class SessionStore:
    """The entry point of memory_core: one per process, shared by all connections.

    Sessions are owned by a principal (the identity behind a connection); every
    operation names the principal and a session of another principal is reported
    as not found.
    """

    def __init__(
        self, backend: Backend, config: StoreConfig | None = None, clock: Clock | None = None
    ) -> None:
        self.backend = backend
        self.config = config or backend.config
        self.clock = clock or backend.clock
        # sessions this process opened -> (principal, lease ms, last use ms)
        self._owned: dict[str, tuple[str, int, int]] = {}

    async def start(self) -> None:
        await self.backend.start()

    async def close(self) -> None:
        await self.backend.close()

    def now(self) -> datetime:
        return ms_to_datetime(self.clock.now_ms())

    # sessions ------------------------------------------------------------------------
    def lease_ms(self, lease_seconds: float | None) -> int:
        if lease_seconds is None:
            return self.config.lease_seconds * 1000
        if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, (int, float)):
            raise InvalidArgumentError("ttl_seconds must be a number of seconds")
        if not 1 <= lease_seconds <= self.config.max_lease_seconds:
            raise InvalidArgumentError(
                f"ttl_seconds must be between 1 and {self.config.max_lease_seconds}"
            )
        return round(lease_seconds * 1000)

    def open_count(self) -> int:
        """Sessions opened by this process whose lease has not run out."""
        now = self.clock.now_ms()
        stale = [sid for sid, (_, lease, last) in self._owned.items() if last + lease <= now]
        for sid in stale:
            del self._owned[sid]
        return len(self._owned)

    async def open(
        self,
        principal: str = LOCAL_PRINCIPAL,
        lease_seconds: float | None = None,
        session_id: str | None = None,
    ) -> str:
        """Open a new empty session and return its id.

        Raises:
            LimitExceededError: this process already holds ``max_sessions`` sessions.
        """
        lease = self.lease_ms(lease_seconds)
        self._admit()
        sid = session_id or new_session_id()
        await self.backend.open_session(SessionRef(sid, principal), lease)
        self._owned[sid] = (principal, lease, self.clock.now_ms())
        log.info("session opened session=%s", session_tag(sid)[:8])
        return sid

    async def open_named(
        self, principal: str, name: str, lease_seconds: float | None = None
    ) -> tuple[str, bool]:
        """Open or resume ``principal``'s session called ``name``: (its id, whether it
        was created now).

        The id is derived from (principal, name) (``keys.named_session_id``) and the
        backend creates it only if absent, so every process of every replica on one
        store resumes the same session; on the in-memory store a name lives as long as
        the process. A resumed session keeps its data and its own lease.
        ``DEFAULT_SESSION_NAME`` is the principal's default session.

        Raises:
            InvalidArgumentError: ``name`` is not a usable session name.
            LimitExceededError: this process already holds ``max_sessions`` sessions.
        """
        if name != DEFAULT_SESSION_NAME:
            validate_session_name(name)
        lease = self.lease_ms(lease_seconds)
        sid = named_session_id(principal, name)
        owned = self._owned.get(sid)
        if owned is None or owned[0] != principal:
            self._admit()
        created = await self.backend.open_session(SessionRef(sid, principal), lease, keep=True)
        self._owned[sid] = (principal, lease, self.clock.now_ms())
        log.info(
            "named session %s session=%s", "opened" if created else "resumed", session_tag(sid)[:8]
        )
        return sid, created

    def _admit(self) -> None:
        """Raise ``LimitExceededError`` when this process holds ``max_sessions`` sessions."""
        limit = self.config.limits.max_sessions
        if len(self._owned) >= limit and self.open_count() >= limit:
            raise LimitExceededError("max_sessions", limit, len(self._owned))

    def memory(self, session_id: str, principal: str = LOCAL_PRINCIPAL) -> WorkingMemory:
        """The WorkingMemory of an existing session (validated on first use)."""
        validate_session_id(session_id)
        owned = self._owned.get(session_id)
        if owned is not None and owned[0] == principal:
            self._owned[session_id] = (owned[0], owned[1], self.clock.now_ms())
        return WorkingMemory(self, session_id, principal)

    async def touch(self, session_id: str, principal: str = LOCAL_PRINCIPAL) -> int:
        return await self.memory(session_id, principal).touch()

    async def close_session(self, session_id: str, principal: str = LOCAL_PRINCIPAL) -> bool:
        """Tear down a session's live state; its checkpoints stay for the retention time."""
        validate_session_id(session_id)
        closed = await self.backend.close_session(SessionRef(session_id, principal))
        owned = self._owned.get(session_id)
        # another principal's failed attempt must not drop the owner's live session
        # from this process's count (max_sessions, health)
        if closed or (owned is not None and owned[0] == principal):
            self._owned.pop(session_id, None)
        if closed:
            log.info("session closed session=%s", session_tag(session_id)[:8])
        return closed

    async def usage(self, session_id: str, principal: str = LOCAL_PRINCIPAL) -> Usage:
        return await self.memory(session_id, principal).usage()

    async def health(self) -> Health:
        return await self.backend.health()
