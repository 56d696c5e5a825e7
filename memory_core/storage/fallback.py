"""Redis primary with an honest, lossless in-memory fallback and a circuit breaker.

How it works:

* **Mirror.** Every write that Redis acknowledges is applied to an in-process
  ``MemoryBackend`` too (same operation, same arguments; both backends pass one
  contract suite), so the mirror holds the sessions this process uses. A session
  first touched here but opened elsewhere is copied into the mirror on first use.
  Operations on one session are serialized by a per-session lock, so Redis and the
  mirror apply them in the same order.
* **Outage.** The first operation that fails to reach Redis (refused, reset,
  timeout) trips the breaker: that operation and all later ones are served from the
  mirror, without an error to the caller, and the sessions they change are marked
  dirty. No Redis call is made on the request path while the breaker is open.
* **Recovery.** A background probe PINGs Redis with backoff. When it answers, every
  dirty session is written back as a whole (one atomic script per session), every
  other mirrored session is written only if Redis lost it (restarted empty), sessions
  torn down during the outage are torn down in Redis, and only then the breaker
  closes. If two processes wrote the same session during an outage, the last one to
  write back wins for that session as a whole.
* **Fail closed.** With ``fallback=False`` there is no mirror: while the breaker is
  open calls fail at once with ``StorageUnavailableError`` instead of waiting for a
  timeout each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from memory_core.clock import Clock, SystemClock
from memory_core.config import StoreConfig
from memory_core.errors import SessionNotFoundError, StorageUnavailableError, WorkingMemoryError
from memory_core.models import CheckpointInfo, Health, Usage, ms_to_datetime
from memory_core.storage.base import Backend, SessionCopy, SessionRef
from memory_core.storage.memory import MemoryBackend
from memory_core.storage.redis import RedisBackend

log = logging.getLogger(__name__)
T = TypeVar("T")

OUTAGE_UNKNOWN_SESSION = (
    "the memory store is temporarily unavailable and this session is not held by this "
    "server; retry in a few seconds"
)


def _failed(exc: StorageUnavailableError) -> str:
    """Why a Redis call failed, for the log line of the switch (refused, reset, timeout)."""
    cause = exc.__cause__
    return "a Redis call failed" + (f" ({type(cause).__name__})" if cause else "")


class FallbackBackend(Backend):
    """See the module docstring. ``mode`` is ``redis`` or ``fallback``."""

    def __init__(
        self,
        config: StoreConfig,
        primary: RedisBackend,
        *,
        fallback: bool = True,
        clock: Clock | None = None,
        probe_min_seconds: float = 0.1,
        probe_max_seconds: float = 1.0,
    ) -> None:
        super().__init__(config)
        self.primary = primary
        self.clock = clock or SystemClock()
        self.fallback_enabled = fallback
        self.mirror: MemoryBackend | None = (
            MemoryBackend(config, clock=self.clock) if fallback else None
        )
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_floor = 1024
        self._dirty: set[str] = set()
        self._closed_in_outage: dict[str, str] = {}
        self._redis_up = True
        self._server_id: str | None = None
        self._probe_min = probe_min_seconds
        self._probe_max = probe_max_seconds
        self._prober: asyncio.Task[None] | None = None
        self.fallbacks = 0
        self.write_backs = 0
        self.write_back_sessions = 0
        self.last_switch_ms: int | None = None

    @property
    def mode(self) -> str:
        return "redis" if self._redis_up else "fallback"

    # lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self.mirror is not None:
            await self.mirror.start()
        self._server_id = await self.primary.server_id()
        if self._server_id is None:
            self._trip("Redis is unreachable at startup")

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
            self._prober = None
        if self.mirror is not None:
            await self.mirror.close()
        await self.primary.close()

    async def health(self) -> Health:
        if self._redis_up:
            detail = None
        elif self.fallback_enabled:
            detail = "Redis is unreachable; serving from the in-process fallback"
        else:
            detail = "Redis is unreachable; requests fail until it is back"
        return Health(
            mode=self.mode,
            healthy=self._redis_up or self.fallback_enabled,
            last_switch_at=None
            if self.last_switch_ms is None
            else ms_to_datetime(self.last_switch_ms),
            fallbacks=self.fallbacks,
            write_backs=self.write_backs,
            write_back_sessions=self.write_back_sessions,
            detail=detail,
        )

    # breaker -----------------------------------------------------------------------
    def _trip(self, why: str) -> None:
        if not self._redis_up:
            return
        self._redis_up = False
        self.fallbacks += 1
        self.last_switch_ms = self.clock.now_ms()
        log.warning(
            "store mode redis -> fallback: %s (%s)",
            why,
            "serving from memory" if self.fallback_enabled else "failing closed",
        )
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
            if not await self.primary.ping():
                continue
            try:
                await self._write_back()
            except StorageUnavailableError:
                log.info("write-back interrupted; Redis went away again")
                continue
            except Exception:  # pragma: no cover - keep probing whatever happens
                log.exception("write-back failed")
                continue
            self._redis_up = True
            self.last_switch_ms = self.clock.now_ms()
            log.warning("store mode fallback -> redis: Redis is back, write-back complete")

    async def _write_back(self) -> None:
        """Copy the outage's changes to Redis. Returns with nothing dirty left; the
        caller flips the breaker without awaiting in between, so no write can slip
        into the mirror unseen."""
        mirror = self.mirror
        written = 0
        server_id = await self.primary.server_id()
        if server_id is None:
            raise StorageUnavailableError()
        # Same Redis process as before the outage: it lost nothing, so only the
        # sessions changed meanwhile need writing. Restarted or failed over: also put
        # back every held session it no longer has (never overwriting one it has,
        # and never resurrecting one another process closed while Redis kept running).
        restarted = server_id != self._server_id
        # Until nothing is left: every await below lets calls change the mirror (the
        # breaker is still open), and those changes must be written too.
        first = True
        while first or self._dirty or self._closed_in_outage:
            if mirror is None:
                targets = []
            elif first and restarted:
                targets = mirror.session_ids()
            else:
                targets = list(self._dirty)
            first = False
            for sid in targets:
                assert mirror is not None
                async with self._lock(sid):
                    dirty = sid in self._dirty
                    state = await mirror.export_session(sid)
                    if state is not None and await self.primary.import_session(
                        state, only_if_missing=not dirty
                    ):
                        written += 1
                    self._dirty.discard(sid)
            for sid, principal in list(self._closed_in_outage.items()):
                await self.primary.close_session(SessionRef(sid, principal))
                self._closed_in_outage.pop(sid, None)
        self._server_id = server_id
        self.write_backs += 1
        self.write_back_sessions += written
        log.info("write-back: %d session(s) written to Redis", written)

    # plumbing ------------------------------------------------------------------------
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
        mirror = self.mirror
        for sid in [
            sid
            for sid, lock in self._locks.items()
            if not lock.locked() and (mirror is None or not mirror.knows_session(sid))
        ]:
            del self._locks[sid]
        self._lock_floor = max(1024, len(self._locks))

    def _unavailable(self) -> StorageUnavailableError:
        return StorageUnavailableError()

    async def _ensure_mirrored(self, session_id: str) -> None:
        mirror = self.mirror
        if mirror is None or mirror.has_session(session_id):
            return
        state = await self.primary.export_session(session_id)
        if state is not None:
            await mirror.import_session(state, only_if_missing=False)

    async def _call(
        self,
        ref: SessionRef,
        op: Callable[[Backend], Awaitable[T]],
        *,
        write: bool,
    ) -> T:
        mirror = self.mirror
        if not write and (mirror is None or mirror.has_session(ref.session_id)):
            # Reads change nothing in the mirror but its lease, so they need no ordering
            # with writes: skip the lock on the hot path.
            return await self._dispatch(ref, op, write=False)
        async with self._lock(ref.session_id):
            return await self._dispatch(ref, op, write=write)

    async def _dispatch(
        self,
        ref: SessionRef,
        op: Callable[[Backend], Awaitable[T]],
        *,
        write: bool,
    ) -> T:
        mirror = self.mirror
        if self._redis_up:
            try:
                await self._ensure_mirrored(ref.session_id)
                result = await op(self.primary)
            except StorageUnavailableError as exc:
                self._trip(_failed(exc))
            except SessionNotFoundError:
                if not await self._lost_by_restart(ref.session_id):
                    raise
                self._trip("Redis restarted and lost sessions held here")
            else:
                if mirror is not None:
                    await self._follow(ref, op, write)
                return result
        if mirror is None:
            raise self._unavailable()
        if not mirror.knows_session(ref.session_id):
            if ref.session_id in self._closed_in_outage:
                raise SessionNotFoundError()
            raise StorageUnavailableError(OUTAGE_UNKNOWN_SESSION)
        result = await op(mirror)
        if write:
            self._dirty.add(ref.session_id)
        return result

    async def _lost_by_restart(self, session_id: str) -> bool:
        """Redis does not know a session the mirror holds live: was it lost because Redis
        restarted (or failed over) between two calls, so quickly that no call saw it
        down? Then the outage path puts it back (serve from the mirror, write back).
        Otherwise (same Redis process) it was closed or expired elsewhere: Redis is the
        truth."""
        mirror = self.mirror
        if mirror is None or not mirror.has_session(session_id):
            return False
        server_id = await self.primary.server_id()
        return server_id != self._server_id

    async def _follow(
        self, ref: SessionRef, op: Callable[[Backend], Awaitable[T]], write: bool
    ) -> None:
        """Apply an operation Redis acknowledged to the mirror (or just refresh its lease)."""
        mirror = self.mirror
        assert mirror is not None
        try:
            if write:
                await op(mirror)
            elif not mirror.refresh_lease(ref.session_id):
                return
        except WorkingMemoryError:
            # The mirror disagrees with Redis (for instance the session was changed by
            # another process). Redis is the truth: drop the copy, reload on next use.
            mirror.forget_session(ref.session_id)

    # sessions ------------------------------------------------------------------------
    async def open_session(self, ref: SessionRef, lease_ms: int) -> None:
        async with self._lock(ref.session_id):
            if self._redis_up:
                try:
                    await self.primary.open_session(ref, lease_ms)
                except StorageUnavailableError as exc:
                    self._trip(_failed(exc))
                else:
                    if self.mirror is not None:
                        await self.mirror.open_session(ref, lease_ms)
                    return
            if self.mirror is None:
                raise self._unavailable()
            await self.mirror.open_session(ref, lease_ms)
            self._dirty.add(ref.session_id)

    async def touch(self, ref: SessionRef) -> int:
        return await self._call(ref, lambda b: b.touch(ref), write=False)

    async def close_session(self, ref: SessionRef) -> bool:
        async with self._lock(ref.session_id):
            if self._redis_up:
                try:
                    closed = await self.primary.close_session(ref)
                except StorageUnavailableError as exc:
                    self._trip(_failed(exc))
                else:
                    if self.mirror is not None:
                        await self.mirror.close_session(ref)
                    return closed
            if self.mirror is None:
                raise self._unavailable()
            closed = await self.mirror.close_session(ref)
            if closed:
                self._dirty.discard(ref.session_id)
                self._closed_in_outage[ref.session_id] = ref.principal
            return closed

    async def usage(self, ref: SessionRef) -> Usage:
        return await self._call(ref, lambda b: b.usage(ref), write=False)

    # variables -----------------------------------------------------------------------
    async def set(self, ref: SessionRef, key: str, value: str, ttl_ms: int | None) -> None:
        await self._call(ref, lambda b: b.set(ref, key, value, ttl_ms), write=True)

    async def get(self, ref: SessionRef, key: str) -> tuple[str, int | None] | None:
        return await self._call(ref, lambda b: b.get(ref, key), write=False)

    async def delete(self, ref: SessionRef, key: str) -> bool:
        return await self._call(ref, lambda b: b.delete(ref, key), write=True)

    async def exists(self, ref: SessionRef, key: str) -> bool:
        return await self._call(ref, lambda b: b.exists(ref, key), write=False)

    async def keys(self, ref: SessionRef) -> list[str]:
        return await self._call(ref, lambda b: b.keys(ref), write=False)

    async def items(self, ref: SessionRef) -> dict[str, tuple[str, int | None]]:
        return await self._call(ref, lambda b: b.items(ref), write=False)

    async def clear(self, ref: SessionRef) -> int:
        return await self._call(ref, lambda b: b.clear(ref), write=True)

    # task state and scratchpad -------------------------------------------------------
    async def set_task(self, ref: SessionRef, task: str) -> None:
        await self._call(ref, lambda b: b.set_task(ref, task), write=True)

    async def get_task(self, ref: SessionRef) -> str | None:
        return await self._call(ref, lambda b: b.get_task(ref), write=False)

    async def append_scratchpad(self, ref: SessionRef, entry: str) -> int:
        return await self._call(ref, lambda b: b.append_scratchpad(ref, entry), write=True)

    async def get_scratchpad(
        self, ref: SessionRef, start: int = 0, count: int | None = None
    ) -> tuple[list[str], int]:
        return await self._call(ref, lambda b: b.get_scratchpad(ref, start, count), write=False)

    # checkpoints ---------------------------------------------------------------------
    async def create_checkpoint(
        self, ref: SessionRef, checkpoint_id: str, label: str | None
    ) -> tuple[CheckpointInfo, list[str]]:
        return await self._call(
            ref, lambda b: b.create_checkpoint(ref, checkpoint_id, label), write=True
        )

    async def restore_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> None:
        await self._call(ref, lambda b: b.restore_checkpoint(ref, checkpoint_id), write=True)

    async def list_checkpoints(self, ref: SessionRef) -> list[CheckpointInfo]:
        return await self._call(ref, lambda b: b.list_checkpoints(ref), write=False)

    async def delete_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> bool:
        return await self._call(ref, lambda b: b.delete_checkpoint(ref, checkpoint_id), write=True)

    # copying whole sessions ------------------------------------------------------------
    async def export_session(self, session_id: str) -> SessionCopy | None:
        if self._redis_up:
            try:
                return await self.primary.export_session(session_id)
            except StorageUnavailableError as exc:
                self._trip(_failed(exc))
        if self.mirror is None:
            raise self._unavailable()
        return await self.mirror.export_session(session_id)

    async def import_session(self, state: SessionCopy, *, only_if_missing: bool) -> bool:
        async with self._lock(state.session_id):
            if self._redis_up:
                try:
                    written = await self.primary.import_session(
                        state, only_if_missing=only_if_missing
                    )
                except StorageUnavailableError as exc:
                    self._trip(_failed(exc))
                else:
                    if written and self.mirror is not None:
                        await self.mirror.import_session(state, only_if_missing=False)
                    return written
            if self.mirror is None:
                raise self._unavailable()
            written = await self.mirror.import_session(state, only_if_missing=only_if_missing)
            if written:
                self._dirty.add(state.session_id)
            return written
