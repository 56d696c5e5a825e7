"""Redis behind a circuit breaker, failing closed or serving an honest, lossless
in-process fallback.

Two backends, composed by ``storage.factory`` and typed only against the contract and
its capabilities (``storage.base``): ``CircuitBreakerBackend`` guards a
``PrimaryBackend`` and fails closed; ``FallbackBackend`` is the same breaker with a
``MirrorBackend`` it serves from instead.

How it works:

* **Mirror.** Every write that Redis acknowledges is applied to the in-process mirror
  too (same operation, same arguments; both backends pass one contract suite), so the
  mirror holds the sessions this process uses. A session first touched here but opened
  elsewhere is copied into the mirror on first use. Operations on one session are
  serialized by a per-session lock, so Redis and the mirror apply them in the same
  order.
* **Outage.** The first operation that fails to reach Redis (refused, reset,
  timeout) trips the breaker: that operation and all later ones are served from the
  mirror, without an error to the caller, and the sessions they change are marked
  dirty. No Redis call is made on the request path while the breaker is open.
* **Recovery.** A background probe PINGs Redis with backoff. When it answers, every
  dirty session is written back as a whole (``PrimaryBackend.restore_session``: in
  bounded pieces, swapped in at once, never a session closed on purpose), every
  other mirrored session is written only if Redis lost it (restarted empty), sessions
  torn down during the outage are torn down in Redis, and only then the breaker
  closes. If two processes wrote the same session during an outage, the last one to
  write back wins for that session as a whole.
* **Lost keys.** Redis answering "no such session" for a session the mirror holds live
  is told apart from a deliberate close by the tombstone a close leaves for one lease
  (``PrimaryBackend.closed_recently``): lost (FLUSHDB, eviction), it is put back at once
  and the call runs again; closed, the mirror forgets it (``_put_back_lost``).
* **Not an outage.** Only an outage trips the breaker. A store that refuses this server
  (``StorageMisconfiguredError``: credentials, permissions, database, protocol) fails
  the call with that error and marks health unhealthy until a call, the probe or a
  health check succeeds again; at startup it is raised from ``start`` (the server
  refuses to start). A full store (``StorageFullError``) fails the write and changes
  nothing; an unexpected script error (``StorageInternalError``) fails the call and
  drops the session's mirrored copy (Redis may have applied part of it: Redis is the
  truth, reloaded on next use). Neither trips the breaker, so one caller's bad call
  never fails everyone else's.
* **Fail closed.** Without a mirror (``CircuitBreakerBackend``, ``fallback=False``)
  calls fail at once with ``StorageUnavailableError`` while the breaker is open,
  instead of waiting for a timeout each.

Every operation takes one path (``_route``): it declares what it is (an ``Op``) and
hands over a callable that runs it on a backend. The ``Op`` decides the rest: the lock,
copying the session into the mirror, following Redis in the mirror, and what an
outage records (dirty sessions, sessions closed meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, TypeVar

from memory_core.clock import Clock
from memory_core.config import StoreConfig
from memory_core.errors import (
    SessionNotFoundError,
    StorageFullError,
    StorageInternalError,
    StorageMisconfiguredError,
    StorageUnavailableError,
    WorkingMemoryError,
)
from memory_core.models import CheckpointInfo, Failure, Health, Usage, ms_to_datetime
from memory_core.storage.base import (
    UNKNOWN_SERVER,
    Backend,
    MirrorBackend,
    PrimaryBackend,
    SessionCopy,
    SessionRef,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Call = Callable[[Backend], Awaitable[T]]

OUTAGE_UNKNOWN_SESSION = (
    "the memory store is temporarily unavailable and this session is not held by this "
    "server; retry in a few seconds"
)


STORE_FULL_CAUSE = "Redis is out of memory (maxmemory reached) and refuses writes"


FINISH_WAIT_SECONDS = 1.0
"""How long a change waits for the write-back's last passes (they write only what changed
meanwhile, in milliseconds): long enough for them, short enough that no call stalls on a
write-back that is slow (huge sessions) or fails; after it the call goes to the mirror."""

EXPIRY_MARGIN_MS = 2000
"""A session the mirror holds for less than this may simply have expired in Redis: the
scripts refresh a lease at most once a second (``refresh_read``), the mirror on every
call, so Redis can end a lease up to a second earlier."""


class _RestartedAndLost(Exception):
    """Redis lost a held session because it restarted or failed over (new ``run_id``)."""


class Op(Enum):
    """What an operation does to its session."""

    READ = "read"  # reads a live session (and refreshes its lease)
    WRITE = "write"  # changes a live session
    OPEN = "open"  # creates a session
    RESUME = "resume"  # creates a named session unless it exists (open_session(keep=True))
    CLOSE = "close"  # removes a session's live state
    COPY_OUT = "copy_out"  # exports a whole session
    COPY_IN = "copy_in"  # imports a whole session

    @property
    def on_live_session(self) -> bool:
        """Needs the session to exist: it is copied into the mirror on first use, a
        "not found" from Redis is checked against a restart, and in an outage a
        session the mirror does not hold is refused."""
        return self in (Op.READ, Op.WRITE)

    @property
    def grows(self) -> bool:
        """May need more memory in the store (refused when it is full)."""
        return self in (Op.WRITE, Op.OPEN, Op.RESUME, Op.COPY_IN)


def _failed(exc: StorageUnavailableError) -> str:
    """Why a Redis call failed, for the log line of the switch (refused, reset, timeout)."""
    cause = exc.__cause__
    return "a Redis call failed" + (f" ({type(cause).__name__})" if cause else "")


class CircuitBreakerBackend(Backend):
    """A primary behind a circuit breaker that fails closed (see the module docstring).

    ``mode`` is ``redis`` while the breaker is closed and ``fallback`` while it is open.
    """

    fallback_enabled = False
    mirror: MirrorBackend | None = None
    _while_open = "failing closed"  # for the log line of the switch
    _open_detail = "Redis is unreachable; requests fail until it is back"  # for health

    def __init__(
        self,
        config: StoreConfig,
        primary: PrimaryBackend,
        *,
        clock: Clock | None = None,
        probe_min_seconds: float = 0.1,
        probe_max_seconds: float = 1.0,
    ) -> None:
        super().__init__(config, clock)
        self.primary = primary
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_floor = 1024
        self._redis_up = True
        self._server_id: str | None = None
        self._probe_min = probe_min_seconds
        self._probe_max = probe_max_seconds
        self._prober: asyncio.Task[None] | None = None
        self.fallbacks = 0
        self.write_backs = 0
        self.write_back_sessions = 0
        self.last_switch_ms: int | None = None
        self._outage_cause: str | None = None
        self._misconfigured: StorageMisconfiguredError | None = None
        self._full = False
        # Set while write-back makes its last passes (FallbackBackend._restore): changes
        # wait for it (at most FINISH_WAIT_SECONDS) instead of dirtying the mirror again.
        self._finishing: asyncio.Event | None = None

    @property
    def mode(self) -> str:
        return "redis" if self._redis_up else "fallback"

    # lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Learn the server's identity and check that it accepts this server.

        Raises:
            StorageMisconfiguredError: Redis answers but refuses this server; starting
                would only fail every call (or silently serve from memory forever).
        """
        self._server_id = await self.primary.server_id()
        if self._server_id is None or not await self.primary.verify():
            self._trip("Redis is unreachable at startup")
            return
        await self.primary.check_eviction()

    async def close(self) -> None:
        await self._stop_probing()
        await self.primary.close()

    async def _stop_probing(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
            self._prober = None

    async def health(self) -> Health:
        if self._misconfigured is not None and self._redis_up:
            await self._recheck()  # no call may come to clear it (readiness took us out)
        failure: Failure | None = None
        cause = detail = None
        if self._misconfigured is not None:
            failure, cause, detail = (
                "configuration", self._misconfigured.cause, self._misconfigured.message
            )  # fmt: skip
        elif not self._redis_up:
            failure, cause, detail = "outage", self._outage_cause, self._open_detail
        elif self._full:
            failure, cause = "store_full", STORE_FULL_CAUSE
        return Health(
            mode=self.mode,
            healthy=self._misconfigured is None and (self._redis_up or self.fallback_enabled),
            last_switch_at=None
            if self.last_switch_ms is None
            else ms_to_datetime(self.last_switch_ms),
            fallbacks=self.fallbacks,
            write_backs=self.write_backs,
            write_back_sessions=self.write_back_sessions,
            detail=detail,
            failure=failure,
            cause=cause,
        )

    # what is not an outage ---------------------------------------------------------
    def _refused(self, exc: StorageMisconfiguredError) -> None:
        """Redis refuses this server: health says so until a call succeeds again."""
        if self._misconfigured is None or self._misconfigured.cause != exc.cause:
            log.error("Redis refuses this server: %s", exc.operator_line())
        self._misconfigured = exc

    def _accepted(self, op: Op) -> None:
        """A Redis call succeeded: what it proves is no longer wrong."""
        if self._misconfigured is not None:
            log.warning("Redis accepts this server again")
            self._misconfigured = None
        if self._full and op.grows:
            log.warning("Redis accepts writes again (no longer full)")
            self._full = False

    async def _recheck(self) -> None:
        try:
            if await self.primary.verify():
                self._accepted(Op.READ)
        except StorageMisconfiguredError as exc:
            self._refused(exc)

    def _still_refused(self) -> StorageMisconfiguredError | None:
        m = self._misconfigured
        return None if m is None else StorageMisconfiguredError(m.cause, m.target)

    # breaker -----------------------------------------------------------------------
    def _trip(self, why: str) -> None:
        if not self._redis_up:
            return
        self._redis_up = False
        self._outage_cause = why
        self.fallbacks += 1
        self.last_switch_ms = self.clock.now_ms()
        log.warning("store mode redis -> fallback: %s (%s)", why, self._while_open)
        if self._prober is None or self._prober.done():
            self._prober = asyncio.create_task(self._probe_loop(), name="wm-redis-probe")

    async def _probe_loop(self) -> None:
        delay = self._probe_min
        while not self._redis_up:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._probe_max)
            # Connections pooled before the outage may lead to the old, dead server:
            # probe and write back on fresh ones.
            await self.primary.drop_idle_connections()
            try:
                if not await self.primary.ping():
                    continue
                await self._write_back()
            except StorageMisconfiguredError as exc:
                self._refused(exc)  # calls now fail with it instead of serving memory
                continue
            except StorageFullError:
                log.warning("write-back refused: %s; still serving from memory", STORE_FULL_CAUSE)
                continue
            except StorageUnavailableError:
                log.warning("write-back interrupted (Redis went away again); retrying")
                continue
            except Exception:  # pragma: no cover - keep probing whatever happens
                log.exception("write-back failed")
                continue
            self._accepted(Op.WRITE)
            self._redis_up = True
            self.last_switch_ms = self.clock.now_ms()
            log.warning("store mode fallback -> redis: Redis is back, write-back complete")

    async def _write_back(self) -> None:
        """Copy the outage's changes to Redis. Returns with nothing dirty left; the
        caller flips the breaker without awaiting in between, so no write can slip
        into the mirror unseen."""
        server_id = await self.primary.server_id()
        if server_id is None:
            raise StorageUnavailableError()
        # Same Redis process as before the outage: it lost nothing, so only the
        # sessions changed meanwhile need writing. Restarted or failed over: also put
        # back every held session it no longer has (never overwriting one it has,
        # and never resurrecting one another process closed while Redis kept running).
        restarted = server_id != self._server_id or server_id == UNKNOWN_SERVER
        written = await self._restore(restarted=restarted)
        self._server_id = server_id
        self.write_backs += 1
        self.write_back_sessions += written
        log.info("write-back: %d session(s) written to Redis", written)

    async def _restore(self, *, restarted: bool) -> int:
        """Write what the outage changed to Redis; return the sessions written. Without
        a mirror nothing changed."""
        return 0

    # the one dispatch path -----------------------------------------------------------
    async def _route(
        self,
        op: Op,
        ref: SessionRef,
        call: Call[T],
        *,
        follow: Call[Any] | None = None,
    ) -> T:
        """Run ``call`` on Redis while the breaker is closed, else as the breaker decides
        (fail closed, or serve the mirror).

        Args:
            op: what the operation is; decides everything else.
            ref: the session it is about (``principal`` matters only for ``CLOSE``).
            call: runs the operation on a backend (Redis, or the mirror).
            follow: what the mirror applies after Redis acknowledged (default ``call``).
        """
        finishing = self._finishing
        if finishing is not None and op not in (Op.READ, Op.COPY_OUT):
            # Busy clients would otherwise keep re-dirtying sessions faster than the
            # write-back's passes drain them, and the breaker would not close (seen: 12-17 s
            # under the chaos workload). The wait ends with the write-back, which answers
            # this call from Redis, or after FINISH_WAIT_SECONDS, from the mirror.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FINISH_WAIT_SECONDS):
                    await finishing.wait()
        if op is Op.COPY_OUT or (op is Op.READ and self._reads_unlocked(ref.session_id)):
            # Reads change nothing in the mirror but its lease, so they need no ordering
            # with writes: skip the lock on the hot path.
            return await self._dispatch(op, ref, call, follow or call)
        async with self._lock(ref.session_id):
            return await self._dispatch(op, ref, call, follow or call)

    async def _dispatch(self, op: Op, ref: SessionRef, call: Call[T], follow: Call[Any]) -> T:
        if self._redis_up:
            try:
                result = await self._on_redis(op, ref, call)
            except StorageUnavailableError as exc:
                self._trip(_failed(exc))
            except StorageMisconfiguredError as exc:
                self._refused(exc)
                raise
            except StorageFullError:
                self._full = True
                raise
            except StorageInternalError:
                self._diverged(ref.session_id)
                raise
            except _RestartedAndLost:
                self._trip("Redis restarted and lost sessions held here")
            else:
                self._accepted(op)
                await self._follow(op, ref, follow, result)
                return result
        refused = self._still_refused()
        if refused is not None:
            raise refused  # Redis answers but refuses us: no silent fallback
        return await self._serve_open(op, ref, call)

    async def _on_redis(self, op: Op, ref: SessionRef, call: Call[T]) -> T:
        """Run ``call`` on Redis; a live session Redis lost but the mirror holds is put
        back first (``_put_back_lost``) and the call run once more."""
        if op.on_live_session:
            await self._ensure_mirrored(ref.session_id)
        try:
            return await call(self.primary)
        except SessionNotFoundError:
            if not (op.on_live_session and await self._put_back_lost(ref.session_id)):
                raise
        return await call(self.primary)

    # what the mirror adds (FallbackBackend); without one these do nothing ----------------
    def _reads_unlocked(self, session_id: str) -> bool:
        """May a read skip the session's lock?"""
        return True

    def _holds(self, session_id: str) -> bool:
        """Does the mirror hold the session (so its lock must stay)?"""
        return False

    async def _ensure_mirrored(self, session_id: str) -> None:
        """Copy a session opened elsewhere into the mirror before its first use here."""

    async def _put_back_lost(self, session_id: str) -> bool:
        """Redis does not know a live session: if it lost it while the mirror holds it,
        put it back and return True (raise ``_RestartedAndLost`` when Redis restarted:
        the outage path then puts back every held session). Without a mirror nothing
        can be put back: the call answers "session not found"."""
        return False

    async def _follow(self, op: Op, ref: SessionRef, follow: Call[Any], result: object) -> None:
        """Apply an operation Redis acknowledged to the mirror."""

    def _diverged(self, session_id: str) -> None:
        """Redis failed a call unexpectedly, perhaps halfway: drop the mirror's copy."""

    async def _serve_open(self, op: Op, ref: SessionRef, call: Call[T]) -> T:
        """Serve an operation while the breaker is open: fail closed."""
        raise StorageUnavailableError()

    # locks ---------------------------------------------------------------------------
    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            if len(self._locks) > 2 * self._lock_floor:
                self._prune_locks()
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    def _prune_locks(self) -> None:
        """Drop locks of sessions no longer held and not in use, so the table stays
        proportional to the sessions this process serves."""
        for sid in [
            sid for sid, lock in self._locks.items() if not lock.locked() and not self._holds(sid)
        ]:
            del self._locks[sid]
        self._lock_floor = max(1024, len(self._locks))

    # sessions ------------------------------------------------------------------------
    async def open_session(self, ref: SessionRef, lease_ms: int, *, keep: bool = False) -> bool:
        created = True

        async def call(backend: Backend) -> bool:
            nonlocal created
            created = await backend.open_session(ref, lease_ms, keep=keep)
            return created

        async def follow(backend: Backend) -> bool:
            # the mirror copies what Redis did: a kept session is copied on its next use
            if created:
                await backend.open_session(ref, lease_ms)
            return created

        return await self._route(Op.RESUME if keep else Op.OPEN, ref, call, follow=follow)

    async def touch(self, ref: SessionRef) -> int:
        return await self._route(Op.READ, ref, lambda b: b.touch(ref))

    async def close_session(self, ref: SessionRef) -> bool:
        return await self._route(Op.CLOSE, ref, lambda b: b.close_session(ref))

    async def usage(self, ref: SessionRef) -> Usage:
        return await self._route(Op.READ, ref, lambda b: b.usage(ref))

    # variables -----------------------------------------------------------------------
    async def set(self, ref: SessionRef, key: str, value: str, ttl_ms: int | None) -> None:
        await self._route(Op.WRITE, ref, lambda b: b.set(ref, key, value, ttl_ms))

    async def get(self, ref: SessionRef, key: str) -> tuple[str, int | None] | None:
        return await self._route(Op.READ, ref, lambda b: b.get(ref, key))

    async def delete(self, ref: SessionRef, key: str) -> bool:
        return await self._route(Op.WRITE, ref, lambda b: b.delete(ref, key))

    async def exists(self, ref: SessionRef, key: str) -> bool:
        return await self._route(Op.READ, ref, lambda b: b.exists(ref, key))

    async def keys(self, ref: SessionRef) -> list[str]:
        return await self._route(Op.READ, ref, lambda b: b.keys(ref))

    async def items(self, ref: SessionRef) -> dict[str, tuple[str, int | None]]:
        return await self._route(Op.READ, ref, lambda b: b.items(ref))

    async def values_of(
        self, ref: SessionRef, keys: list[str], max_bytes: int
    ) -> list[tuple[str, str, int | None]]:
        return await self._route(Op.READ, ref, lambda b: b.values_of(ref, keys, max_bytes))

    async def clear(self, ref: SessionRef) -> int:
        return await self._route(Op.WRITE, ref, lambda b: b.clear(ref))

    # task state and scratchpad -------------------------------------------------------
    async def set_task(self, ref: SessionRef, task: str) -> None:
        await self._route(Op.WRITE, ref, lambda b: b.set_task(ref, task))

    async def get_task(self, ref: SessionRef) -> str | None:
        return await self._route(Op.READ, ref, lambda b: b.get_task(ref))

    async def append_scratchpad(self, ref: SessionRef, entry: str) -> int:
        return await self._route(Op.WRITE, ref, lambda b: b.append_scratchpad(ref, entry))

    async def get_scratchpad(
        self, ref: SessionRef, start: int = 0, count: int | None = None
    ) -> tuple[list[str], int]:
        return await self._route(Op.READ, ref, lambda b: b.get_scratchpad(ref, start, count))

    # checkpoints ---------------------------------------------------------------------
    async def create_checkpoint(
        self, ref: SessionRef, checkpoint_id: str, label: str | None
    ) -> tuple[CheckpointInfo, list[str]]:
        return await self._route(
            Op.WRITE, ref, lambda b: b.create_checkpoint(ref, checkpoint_id, label)
        )

    async def restore_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> None:
        await self._route(Op.WRITE, ref, lambda b: b.restore_checkpoint(ref, checkpoint_id))

    async def list_checkpoints(self, ref: SessionRef) -> list[CheckpointInfo]:
        return await self._route(Op.READ, ref, lambda b: b.list_checkpoints(ref))

    async def list_earlier_checkpoints(self, ref: SessionRef, limit: int) -> list[CheckpointInfo]:
        return await self._route(Op.READ, ref, lambda b: b.list_earlier_checkpoints(ref, limit))

    async def delete_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> bool:
        return await self._route(Op.WRITE, ref, lambda b: b.delete_checkpoint(ref, checkpoint_id))

    # copying whole sessions ------------------------------------------------------------
    async def export_session(self, session_id: str) -> SessionCopy | None:
        # A copy is addressed by its id alone: no principal to check.
        ref = SessionRef(session_id, principal="")
        return await self._route(Op.COPY_OUT, ref, lambda b: b.export_session(session_id))

    async def import_session(self, state: SessionCopy, *, only_if_missing: bool) -> bool:
        return await self._route(
            Op.COPY_IN,
            SessionRef(state.session_id, state.principal),
            lambda b: b.import_session(state, only_if_missing=only_if_missing),
            # Once Redis holds exactly ``state``, so must the mirror.
            follow=lambda b: b.import_session(state, only_if_missing=False),
        )


class FallbackBackend(CircuitBreakerBackend):
    """The circuit breaker with a mirror: while the breaker is open, calls are served
    from the mirror and written back when Redis answers again (see the module
    docstring)."""

    fallback_enabled = True
    _while_open = "serving from memory"
    _open_detail = "Redis is unreachable; serving from the in-process fallback"

    def __init__(
        self,
        config: StoreConfig,
        primary: PrimaryBackend,
        mirror: MirrorBackend,
        *,
        clock: Clock | None = None,
        probe_min_seconds: float = 0.1,
        probe_max_seconds: float = 1.0,
    ) -> None:
        super().__init__(
            config,
            primary,
            clock=clock,
            probe_min_seconds=probe_min_seconds,
            probe_max_seconds=probe_max_seconds,
        )
        self.mirror: MirrorBackend = mirror
        self.lost_sessions_restored = 0
        self._dirty: set[str] = set()
        self._closed_in_outage: dict[str, str] = {}

    async def start(self) -> None:
        await self.mirror.start()
        await super().start()

    async def close(self) -> None:
        await self._stop_probing()
        await self.mirror.close()
        await super().close()

    async def _restore(self, *, restarted: bool) -> int:
        try:
            return await self._restore_passes(restarted=restarted)
        finally:
            # The caller closes the breaker without awaiting: the calls that waited run
            # after it, on Redis (or, if write-back failed, on the mirror again).
            if self._finishing is not None:
                self._finishing.set()
                self._finishing = None

    async def _restore_passes(self, *, restarted: bool) -> int:
        mirror = self.mirror
        written = 0
        # Until nothing is left: every await below lets calls change the mirror (the
        # breaker is still open), and those changes must be written too. From the second
        # pass on, changes wait for the write-back to end (``_finishing``).
        first = True
        while first or self._dirty or self._closed_in_outage:
            if not first and self._finishing is None:
                self._finishing = asyncio.Event()
            targets = mirror.session_ids() if first and restarted else list(self._dirty)
            first = False
            if targets:
                log.warning("write-back: %d session(s) to check or write", len(targets))
            for done, sid in enumerate(targets, 1):
                async with self._lock(sid):
                    dirty = sid in self._dirty
                    copy = await mirror.export_session(sid)
                    # In bounded pieces, never a session closed on purpose meanwhile.
                    if copy is not None and await self.primary.restore_session(
                        copy, only_if_missing=not dirty
                    ):
                        written += 1
                    self._dirty.discard(sid)
                if done % 100 == 0 or done == len(targets):
                    log.warning(
                        "write-back: %d/%d session(s) done, %d written", done, len(targets),
                        written,
                    )  # fmt: skip
            for sid, principal in list(self._closed_in_outage.items()):
                await self.primary.close_session(SessionRef(sid, principal))
                self._closed_in_outage.pop(sid, None)
        return written

    def _reads_unlocked(self, session_id: str) -> bool:
        return self.mirror.has_session(session_id)

    def _holds(self, session_id: str) -> bool:
        return self.mirror.knows_session(session_id)

    async def _ensure_mirrored(self, session_id: str) -> None:
        if self.mirror.has_session(session_id):
            return
        copy = await self.primary.export_session(session_id)
        if copy is not None:
            await self.mirror.import_session(copy, only_if_missing=False)

    async def _put_back_lost(self, session_id: str) -> bool:
        """Redis does not know a session the mirror holds live. Lost (a restart, a
        failover to a lagging replica, FLUSHDB/FLUSHALL, eviction), or ended on purpose?

        * closed on purpose, by any process, within its last lease (Redis keeps a
          tombstone for a lease): Redis is the truth, the mirror forgets it;
        * within a second or two of the end of its lease here: it expired (Redis may
          refresh a lease up to a second less often than the mirror), not lost;
        * Redis restarted or failed over: ``_RestartedAndLost``, so the outage path
          serves it and writes back every held session Redis lacks;
        * otherwise (same Redis process): put this session back now, in pieces, and
          let the call run again. Other lost sessions come back on their next call.
        """
        mirror = self.mirror
        if not mirror.has_session(session_id):
            return False
        if await self.primary.closed_recently(session_id):
            mirror.forget_session(session_id)
            return False
        copy = await mirror.export_session(session_id)
        if copy is None or copy.expires_in_ms <= EXPIRY_MARGIN_MS:
            return False
        server_id = await self.primary.server_id()
        if server_id is None:
            raise StorageUnavailableError()
        if server_id != self._server_id:
            raise _RestartedAndLost()
        if not await self.primary.restore_session(copy, only_if_missing=True):
            # Closed meanwhile (or put back by a concurrent call): ask Redis again.
            return True
        log.warning(
            "Redis lost the keys of a session held here (same Redis process: FLUSHDB, "
            "eviction or a deleted key); restored it from the in-process copy"
        )
        self.lost_sessions_restored += 1
        return True

    async def _follow(self, op: Op, ref: SessionRef, follow: Call[Any], result: object) -> None:
        """Apply an operation Redis acknowledged to the mirror (or just refresh its lease)."""
        mirror = self.mirror
        if op is Op.COPY_OUT or (op is Op.COPY_IN and not result):
            return
        try:
            if op is Op.READ:
                mirror.refresh_lease(ref.session_id)
            else:
                await follow(mirror)
        except WorkingMemoryError:
            # The mirror disagrees with Redis (for instance the session was changed by
            # another process). Redis is the truth: drop the copy, reload on next use.
            mirror.forget_session(ref.session_id)

    def _diverged(self, session_id: str) -> None:
        self.mirror.forget_session(session_id)

    async def _serve_open(self, op: Op, ref: SessionRef, call: Call[T]) -> T:
        """Serve from the mirror and record what Redis must learn on recovery."""
        mirror = self.mirror
        sid = ref.session_id
        if op.on_live_session and not mirror.knows_session(sid):
            if sid in self._closed_in_outage:
                raise SessionNotFoundError()
            raise StorageUnavailableError(OUTAGE_UNKNOWN_SESSION)
        if op is Op.RESUME and not mirror.has_session(sid) and sid not in self._closed_in_outage:
            # Redis may hold this named session: an empty one opened here would
            # overwrite it on write-back
            raise StorageUnavailableError(OUTAGE_UNKNOWN_SESSION)
        result = await call(mirror)
        if op is Op.CLOSE:
            if result:
                self._dirty.discard(sid)
                self._closed_in_outage[sid] = ref.principal
        elif op in (Op.WRITE, Op.OPEN, Op.RESUME) or (op is Op.COPY_IN and result):
            self._dirty.add(sid)
        return result
