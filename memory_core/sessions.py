"""SessionStore: opens, touches and tears down sessions over one backend."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
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
from memory_core.models import CreatedCheckpoint, Health, Usage, ms_to_datetime
from memory_core.retained import RetainedBytes
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
        self.retained = RetainedBytes(self.config.checkpoint_retention_seconds * 1000)

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

    def open_count_of(self, principal: str) -> int:
        """Sessions ``principal`` holds in this process whose lease has not run out."""
        self.open_count()
        return sum(1 for owner, _, _ in self._owned.values() if owner == principal)

    def _check_room(self, principal: str) -> None:
        """Refuse a new session past the principal's share or the process limit.

        The principal's share comes first, so one identity that fills its share gets
        its own error and leaves room for every other identity. Every session in
        ``_owned`` counts, however it was opened (handle, connection, process).
        """
        limits = self.config.limits
        if len(self._owned) >= limits.max_sessions_per_principal:
            held = self.open_count_of(principal)
            if held >= limits.max_sessions_per_principal:
                raise LimitExceededError(
                    "max_sessions_per_principal",
                    limits.max_sessions_per_principal,
                    held,
                    scope="principal",
                )
        if len(self._owned) >= limits.max_sessions and self.open_count() >= limits.max_sessions:
            raise LimitExceededError(
                "max_sessions", limits.max_sessions, len(self._owned), scope="process"
            )

    # checkpoints ---------------------------------------------------------------------
    def check_checkpoint_room(self, principal: str) -> None:
        """Refuse a new checkpoint while ``principal``'s checkpoint bytes or the
        process's are at their limit (see ``memory_core.retained``).

        Raises:
            LimitExceededError: scope ``principal`` or ``process``.
        """
        limits = self.config.limits
        held, total = self.retained.usage(principal, self.clock.now_ms())
        if held >= limits.max_retained_bytes_per_principal:
            raise LimitExceededError(
                "max_retained_bytes_per_principal",
                limits.max_retained_bytes_per_principal,
                held,
                scope="principal",
            )
        if total >= limits.max_retained_bytes:
            raise LimitExceededError(
                "max_retained_bytes", limits.max_retained_bytes, total, scope="process"
            )

    def checkpoint_created(self, principal: str, created: CreatedCheckpoint) -> None:
        for checkpoint_id in created.evicted:
            self.retained.forget(checkpoint_id)
        self.retained.add(principal, created.checkpoint_id, created.size, self.clock.now_ms())

    def checkpoint_deleted(self, checkpoint_id: str) -> None:
        self.retained.forget(checkpoint_id)

    async def open(
        self,
        principal: str = LOCAL_PRINCIPAL,
        lease_seconds: float | None = None,
        session_id: str | None = None,
    ) -> str:
        """Open a new empty session and return its id.

        Raises:
            LimitExceededError: ``principal`` already holds ``max_sessions_per_principal``
                sessions in this process (scope ``principal``), or the process holds
                ``max_sessions`` (scope ``process``).
        """
        lease = self.lease_ms(lease_seconds)
        self._check_room(principal)
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
            LimitExceededError: a new session past the principal's share or the
                process's limit (as ``open``); resuming one it holds is not new.
        """
        if name != DEFAULT_SESSION_NAME:
            validate_session_name(name)
        lease = self.lease_ms(lease_seconds)
        sid = named_session_id(principal, name)
        owned = self._owned.get(sid)
        if owned is None or owned[0] != principal:
            self._check_room(principal)
        created = await self.backend.open_session(SessionRef(sid, principal), lease, keep=True)
        self._owned[sid] = (principal, lease, self.clock.now_ms())
        log.info(
            "named session %s session=%s", "opened" if created else "resumed", session_tag(sid)[:8]
        )
        return sid, created

    async def named(self, principal: str, name: str) -> WorkingMemory:
        """The WorkingMemory of ``principal``'s session ``name``, opened or resumed as
        ``open_named`` does; the way to serve a call on a named (or the default) session.

        While this process holds the session (opened or used here within its lease) this
        makes no store call: an operation that finds it gone (closed elsewhere, expired,
        lost) resumes it, empty, and runs once more (``WorkingMemory``'s ``resume``). So a
        call on a named session costs one store round trip, not two.

        Raises:
            as ``open_named``.
        """
        if name != DEFAULT_SESSION_NAME:
            validate_session_name(name)
        sid = named_session_id(principal, name)
        owned = self._owned.get(sid)
        if owned is None or owned[0] != principal or owned[2] + owned[1] <= self.clock.now_ms():
            await self.open_named(principal, name)
            return self.memory(sid, principal)

        async def resume() -> None:
            await self.open_named(principal, name)

        return self.memory(sid, principal, resume=resume)

    def memory(
        self,
        session_id: str,
        principal: str = LOCAL_PRINCIPAL,
        *,
        resume: Callable[[], Awaitable[object]] | None = None,
    ) -> WorkingMemory:
        """The WorkingMemory of an existing session (validated on first use); ``resume``
        as in ``WorkingMemory``."""
        validate_session_id(session_id)
        owned = self._owned.get(session_id)
        if owned is not None and owned[0] == principal:
            self._owned[session_id] = (owned[0], owned[1], self.clock.now_ms())
        return WorkingMemory(self, session_id, principal, resume)

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
