"""In-process backend: dicts and heaps, with an injectable clock.

Async-safe, not thread-safe: every method runs to completion without awaiting, so
each one is atomic with respect to other coroutines on the same event loop.
Expired keys, sessions and checkpoints are reclaimed lazily on access and by a
periodic sweep (``sweep()``; started by ``start()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from dataclasses import dataclass, field

from memory_core.clock import Clock
from memory_core.config import StoreConfig
from memory_core.errors import (
    CheckpointNotFoundError,
    LimitExceededError,
    NotFoundError,
    SessionNotFoundError,
)
from memory_core.keys import checkpoint_tag, session_tag
from memory_core.models import CheckpointInfo, Health, Usage, ms_to_datetime
from memory_core.storage.base import (
    MirrorBackend,
    SessionCopy,
    SessionRef,
    StoredCheckpoint,
)
from memory_core.storage.snapshot import Snapshot

log = logging.getLogger(__name__)


CHECKPOINT_OVERHEAD = 128
ENTRY_OVERHEAD = 16
"""Bytes a checkpoint counts beyond its content (ids, times; per variable or scratchpad
entry its TTL and framing): about what its JSON encoding adds, so both stores count
about the same ``size`` (``_Checkpoint``)."""


def _size(text: str) -> int:
    """UTF-8 bytes of ``text``; O(1) for ASCII text (CPython knows it is ASCII)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


@dataclass(slots=True)
class _Session:
    principal: str
    lease_ms: int
    expires_at: int
    variables: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    expiries: list[tuple[int, str]] = field(default_factory=list)  # heap, lazily pruned
    bytes: int = 0
    task: str | None = None
    scratchpad: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Checkpoint:
    """A checkpoint made here is kept as its ``Snapshot``: a list of the session's own
    (immutable) strings, built in a fraction of a millisecond for a session at its
    limits, where encoding 8 MiB of JSON would hold the event loop for ~20 ms, and
    parsing it back as long on restore. One imported (from Redis, on copy-in) or written
    to Redis (write-back after an outage) is held as its JSON, parsed when restored.
    ``size``: the bytes it holds (keys, values, task state, scratchpad and label) plus
    ``ENTRY_OVERHEAD`` per entry and ``CHECKPOINT_OVERHEAD``; the Redis store counts
    its JSON encoding."""

    session_id: str
    principal: str
    label: str | None
    created_ms: int
    expires_at: int
    size: int
    snapshot: Snapshot | None = None
    blob: str | None = None

    def state(self) -> Snapshot:
        if self.snapshot is not None:
            return self.snapshot
        assert self.blob is not None
        return Snapshot.from_json(self.blob)

    def json(self) -> str:
        """The JSON, made once: write-back exports a dirty session again after every
        change during an outage, checkpoints and all. From then on the checkpoint is
        held as this JSON only (parsed if it is restored)."""
        if self.blob is None:
            assert self.snapshot is not None
            self.blob, self.snapshot = self.snapshot.to_json(), None
        return self.blob


class MemoryBackend(MirrorBackend):
    def __init__(
        self,
        config: StoreConfig,
        clock: Clock | None = None,
        sweep_interval_seconds: float = 5.0,
    ) -> None:
        super().__init__(config, clock)
        self._sessions: dict[str, _Session] = {}
        self._checkpoints: dict[str, _Checkpoint] = {}
        self._session_checkpoints: dict[str, list[str]] = {}
        self._sweep_interval = sweep_interval_seconds
        self._sweeper: asyncio.Task[None] | None = None

    # lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self._sweeper is None and self._sweep_interval > 0:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="wm-memory-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                self.sweep()
            except Exception:  # pragma: no cover - defensive: the sweeper must not die
                log.exception("memory sweep failed")

    def sweep(self) -> int:
        """Reclaim expired sessions, keys and checkpoints; return items reclaimed."""
        now = self.clock.now_ms()
        reclaimed = 0
        for sid in [s for s, sess in self._sessions.items() if sess.expires_at <= now]:
            del self._sessions[sid]
            reclaimed += 1
        for sess in self._sessions.values():
            reclaimed += self._purge(sess, now)
        for cid in [c for c, cp in self._checkpoints.items() if cp.expires_at <= now]:
            self._forget_checkpoint(cid)
            reclaimed += 1
        return reclaimed

    async def health(self) -> Health:
        return Health(mode="memory", healthy=True)

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    # the mirror capability (see MirrorBackend) -----------------------------------
    def session_ids(self) -> list[str]:
        return list(self._sessions)

    def knows_session(self, session_id: str) -> bool:
        return session_id in self._sessions

    def has_session(self, session_id: str) -> bool:
        sess = self._sessions.get(session_id)
        return sess is not None and sess.expires_at > self.clock.now_ms()

    def refresh_lease(self, session_id: str) -> bool:
        sess = self._sessions.get(session_id)
        if sess is None:
            return False
        sess.expires_at = self.clock.now_ms() + sess.lease_ms
        return True

    def forget_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    # helpers ---------------------------------------------------------------------
    def _live(self, ref: SessionRef, now: int) -> _Session:
        sess = self._sessions.get(ref.session_id)
        if sess is None:
            raise SessionNotFoundError()
        if sess.expires_at <= now:
            del self._sessions[ref.session_id]
            raise SessionNotFoundError()
        if sess.principal != ref.principal:
            raise SessionNotFoundError()
        return sess

    def _session(self, ref: SessionRef) -> tuple[_Session, int]:
        """The live session, with expired keys purged and the lease refreshed."""
        now = self.clock.now_ms()
        sess = self._live(ref, now)
        sess.expires_at = now + sess.lease_ms
        self._purge(sess, now)
        return sess, now

    @staticmethod
    def _purge(sess: _Session, now: int) -> int:
        purged = 0
        heap = sess.expiries
        while heap and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            current = sess.variables.get(key)
            if current is not None and current[1] == at:
                del sess.variables[key]
                sess.bytes -= _size(key) + _size(current[0])
                purged += 1
        return purged

    @staticmethod
    def _fill(
        sess: _Session,
        variables: list[tuple[str, str, int | None]],
        task: str | None,
        scratchpad: list[str],
        now: int,
    ) -> None:
        """Replace a session's live state (restore, import) and recount its bytes."""
        sess.variables = {}
        sess.expiries = []
        total = 0
        for key, value, ttl in variables:
            at = None if ttl is None else now + ttl
            sess.variables[key] = (value, at)
            if at is not None:
                sess.expiries.append((at, key))
            total += _size(key) + _size(value)
        heapq.heapify(sess.expiries)
        sess.task = task
        sess.scratchpad = list(scratchpad)
        total += (_size(task) if task else 0) + sum(_size(e) for e in scratchpad)
        sess.bytes = total

    @staticmethod
    def _compact(sess: _Session) -> None:
        """Rebuild the expiry heap from live keys: overwritten TTLs leave stale heap
        entries behind, and without this a key rewritten with a long TTL would grow the
        heap without bound."""
        sess.expiries = [(at, k) for k, (_, at) in sess.variables.items() if at is not None]
        heapq.heapify(sess.expiries)

    def _forget_checkpoint(self, checkpoint_id: str) -> None:
        cp = self._checkpoints.pop(checkpoint_id, None)
        if cp is None:
            return
        ids = self._session_checkpoints.get(cp.session_id)
        if ids is not None:
            with contextlib.suppress(ValueError):
                ids.remove(checkpoint_id)
            if not ids:
                del self._session_checkpoints[cp.session_id]

    def _live_checkpoints(self, session_id: str, now: int) -> list[_Checkpoint]:
        out = []
        for cid in list(self._session_checkpoints.get(session_id, ())):
            cp = self._checkpoints[cid]
            if cp.expires_at <= now:
                self._forget_checkpoint(cid)
            else:
                out.append(cp)
        return out

    @staticmethod
    def _ttl_left(expires_at: int | None, now: int) -> int | None:
        return None if expires_at is None else expires_at - now

    # sessions --------------------------------------------------------------------
    async def open_session(self, ref: SessionRef, lease_ms: int, *, keep: bool = False) -> bool:
        now = self.clock.now_ms()
        current = self._sessions.get(ref.session_id)
        if keep and current is not None and current.expires_at > now:
            self._session(ref)  # another principal's: not found; else refresh the lease
            return False
        self._sessions[ref.session_id] = _Session(
            principal=ref.principal, lease_ms=lease_ms, expires_at=now + lease_ms
        )
        return True

    async def touch(self, ref: SessionRef) -> int:
        sess, _ = self._session(ref)
        return sess.lease_ms

    async def close_session(self, ref: SessionRef) -> bool:
        now = self.clock.now_ms()
        try:
            self._live(ref, now)
        except SessionNotFoundError:
            return False
        del self._sessions[ref.session_id]
        return True

    async def usage(self, ref: SessionRef) -> Usage:
        sess, now = self._session(ref)
        return Usage(
            keys=len(sess.variables),
            bytes=sess.bytes,
            scratchpad_entries=len(sess.scratchpad),
            checkpoints=len(self._live_checkpoints(ref.session_id, now)),
            lease_seconds=sess.lease_ms // 1000,
            expires_in_ms=sess.lease_ms,
        )

    # variables -------------------------------------------------------------------
    async def set(self, ref: SessionRef, key: str, value: str, ttl_ms: int | None) -> None:
        limits = self.limits
        self.check_size("max_value_bytes", value)
        value_bytes = _size(value)
        sess, now = self._session(ref)
        old = sess.variables.get(key)
        key_bytes = _size(key)
        new_bytes = sess.bytes + key_bytes + value_bytes
        if old is None:
            if len(sess.variables) >= limits.max_keys:
                raise LimitExceededError("max_keys", limits.max_keys, len(sess.variables))
        else:
            new_bytes -= key_bytes + _size(old[0])
        if new_bytes > limits.max_session_bytes:
            raise LimitExceededError("max_session_bytes", limits.max_session_bytes, sess.bytes)
        expires_at = None if ttl_ms is None else now + ttl_ms
        sess.variables[key] = (value, expires_at)
        sess.bytes = new_bytes
        if expires_at is not None:
            heapq.heappush(sess.expiries, (expires_at, key))
            if len(sess.expiries) > 2 * len(sess.variables) + 64:
                self._compact(sess)

    async def get(self, ref: SessionRef, key: str) -> tuple[str, int | None] | None:
        sess, now = self._session(ref)
        item = sess.variables.get(key)
        if item is None:
            return None
        return item[0], self._ttl_left(item[1], now)

    async def delete(self, ref: SessionRef, key: str) -> bool:
        sess, _ = self._session(ref)
        item = sess.variables.pop(key, None)
        if item is None:
            return False
        sess.bytes -= _size(key) + _size(item[0])
        return True

    async def exists(self, ref: SessionRef, key: str) -> bool:
        sess, _ = self._session(ref)
        return key in sess.variables

    async def keys(self, ref: SessionRef) -> list[str]:
        sess, _ = self._session(ref)
        return sorted(sess.variables)

    async def items(self, ref: SessionRef) -> dict[str, tuple[str, int | None]]:
        sess, now = self._session(ref)
        return {k: (v, self._ttl_left(at, now)) for k, (v, at) in sorted(sess.variables.items())}

    async def values_of(
        self, ref: SessionRef, keys: list[str], max_bytes: int
    ) -> list[tuple[str, str, int | None]]:
        sess, now = self._session(ref)
        out: list[tuple[str, str, int | None]] = []
        total = 0
        for key in keys:
            item = sess.variables.get(key)
            if item is None:
                continue
            out.append((key, item[0], self._ttl_left(item[1], now)))
            total += _size(key) + _size(item[0])
            if total > max_bytes:
                break
        return out

    async def clear(self, ref: SessionRef) -> int:
        sess, _ = self._session(ref)
        count = len(sess.variables)
        for key, (value, _at) in sess.variables.items():
            sess.bytes -= _size(key) + _size(value)
        sess.variables.clear()
        sess.expiries.clear()
        return count

    # task state and scratchpad ---------------------------------------------------
    async def set_task(self, ref: SessionRef, task: str) -> None:
        limits = self.limits
        self.check_size("max_task_state_bytes", task)
        size = _size(task)
        sess, _ = self._session(ref)
        new_bytes = sess.bytes + size - (_size(sess.task) if sess.task else 0)
        if new_bytes > limits.max_session_bytes:
            raise LimitExceededError("max_session_bytes", limits.max_session_bytes, sess.bytes)
        sess.task = task
        sess.bytes = new_bytes

    async def get_task(self, ref: SessionRef) -> str | None:
        sess, _ = self._session(ref)
        return sess.task

    async def append_scratchpad(self, ref: SessionRef, entry: str) -> int:
        limits = self.limits
        self.check_size("max_scratchpad_entry_bytes", entry)
        size = _size(entry)
        sess, _ = self._session(ref)
        if len(sess.scratchpad) >= limits.max_scratchpad_entries:
            raise LimitExceededError(
                "max_scratchpad_entries", limits.max_scratchpad_entries, len(sess.scratchpad)
            )
        if sess.bytes + size > limits.max_session_bytes:
            raise LimitExceededError("max_session_bytes", limits.max_session_bytes, sess.bytes)
        sess.scratchpad.append(entry)
        sess.bytes += size
        return len(sess.scratchpad)

    async def get_scratchpad(
        self, ref: SessionRef, start: int = 0, count: int | None = None
    ) -> tuple[list[str], int]:
        sess, _ = self._session(ref)
        end = None if count is None else start + count
        return sess.scratchpad[start:end], len(sess.scratchpad)

    # checkpoints -----------------------------------------------------------------
    async def create_checkpoint(
        self, ref: SessionRef, checkpoint_id: str, label: str | None
    ) -> tuple[CheckpointInfo, list[str]]:
        sess, now = self._session(ref)
        snap = Snapshot(
            session_id=ref.session_id,
            principal=sess.principal,
            label=label,
            created_ms=now,
            variables=[
                (k, v, self._ttl_left(at, now)) for k, (v, at) in sorted(sess.variables.items())
            ],
            task=sess.task,
            scratchpad=list(sess.scratchpad),
        )
        size = (
            CHECKPOINT_OVERHEAD
            + sess.bytes
            + (_size(label) if label else 0)
            + ENTRY_OVERHEAD * (len(snap.variables) + len(snap.scratchpad))
        )
        live = self._live_checkpoints(ref.session_id, now)
        evicted = [cp_id for cp_id in self._session_checkpoints.get(ref.session_id, [])][
            : max(0, len(live) + 1 - self.limits.max_checkpoints)
        ]
        for cp_id in evicted:
            self._forget_checkpoint(cp_id)
        self._checkpoints[checkpoint_id] = _Checkpoint(
            session_id=ref.session_id,
            principal=sess.principal,
            label=label,
            created_ms=now,
            expires_at=now + self.config.checkpoint_retention_seconds * 1000,
            size=size,
            snapshot=snap,
        )
        self._session_checkpoints.setdefault(ref.session_id, []).append(checkpoint_id)
        info = CheckpointInfo(
            checkpoint_id=checkpoint_id,
            label=label,
            created_at=ms_to_datetime(now),
            size=size,
        )
        return info, evicted

    def _find_checkpoint(self, ref: SessionRef, checkpoint_id: str, now: int) -> _Checkpoint:
        owner = checkpoint_tag(checkpoint_id)
        cp = self._checkpoints.get(checkpoint_id)
        if cp is None or cp.expires_at <= now or session_tag(cp.session_id) != owner:
            raise CheckpointNotFoundError()
        if cp.session_id == ref.session_id:
            return cp
        # Another session's checkpoint: only once that session has ended, and only
        # for the same principal (recovery after a crash or a disconnect).
        other = self._sessions.get(cp.session_id)
        other_live = other is not None and other.expires_at > now
        if other_live or cp.principal != ref.principal:
            raise CheckpointNotFoundError()
        return cp

    async def restore_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> None:
        sess, now = self._session(ref)
        cp = self._find_checkpoint(ref, checkpoint_id, now)
        snap = cp.state()
        self._fill(sess, snap.variables, snap.task, snap.scratchpad, now)

    async def list_checkpoints(self, ref: SessionRef) -> list[CheckpointInfo]:
        _, now = self._session(ref)
        return [
            CheckpointInfo(
                checkpoint_id=cid,
                label=cp.label,
                created_at=ms_to_datetime(cp.created_ms),
                size=cp.size,
            )
            for cid, cp in (
                (c, self._checkpoints[c]) for c in self._session_checkpoints.get(ref.session_id, [])
            )
            if cp.expires_at > now
        ]

    async def list_earlier_checkpoints(self, ref: SessionRef, limit: int) -> list[CheckpointInfo]:
        _, now = self._session(ref)
        found = []
        for cid, cp in reversed(self._checkpoints.items()):  # newest first among equal times
            if cp.principal != ref.principal or cp.expires_at <= now:
                continue
            owner = self._sessions.get(cp.session_id)
            if owner is not None and owner.expires_at > now:
                continue  # a live session's (this one's or another connection's)
            found.append(
                CheckpointInfo(
                    checkpoint_id=cid,
                    label=cp.label,
                    created_at=ms_to_datetime(cp.created_ms),
                    size=cp.size,
                )
            )
        found.sort(key=lambda info: info.created_at, reverse=True)
        return found[:limit]

    async def delete_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> bool:
        _, now = self._session(ref)
        try:
            owner = checkpoint_tag(checkpoint_id)
        except NotFoundError:
            return False
        cp = self._checkpoints.get(checkpoint_id)
        if owner != session_tag(ref.session_id) or cp is None or cp.expires_at <= now:
            return False
        self._forget_checkpoint(checkpoint_id)
        return True

    # copying whole sessions --------------------------------------------------------
    async def export_session(self, session_id: str) -> SessionCopy | None:
        now = self.clock.now_ms()
        sess = self._sessions.get(session_id)
        if sess is None or sess.expires_at <= now:
            return None
        self._purge(sess, now)
        return SessionCopy(
            session_id=session_id,
            principal=sess.principal,
            lease_ms=sess.lease_ms,
            expires_in_ms=sess.expires_at - now,
            variables={k: (v, self._ttl_left(at, now)) for k, (v, at) in sess.variables.items()},
            task=sess.task,
            scratchpad=list(sess.scratchpad),
            checkpoints=[
                StoredCheckpoint(
                    checkpoint_id=cid,
                    created_ms=cp.created_ms,
                    expires_in_ms=cp.expires_at - now,
                    blob=cp.json(),
                )
                for cid, cp in (
                    (c, self._checkpoints[c]) for c in self._session_checkpoints.get(session_id, [])
                )
                if cp.expires_at > now
            ],
        )

    async def import_session(self, state: SessionCopy, *, only_if_missing: bool) -> bool:
        now = self.clock.now_ms()
        current = self._sessions.get(state.session_id)
        if only_if_missing and current is not None and current.expires_at > now:
            return False
        sess = _Session(
            principal=state.principal,
            lease_ms=state.lease_ms,
            expires_at=now + state.expires_in_ms,
        )
        variables = [(k, v, ttl) for k, (v, ttl) in state.variables.items()]
        self._fill(sess, variables, state.task, state.scratchpad, now)
        self._sessions[state.session_id] = sess
        for cid in list(self._session_checkpoints.get(state.session_id, [])):
            self._forget_checkpoint(cid)
        for cp in state.checkpoints:  # oldest first
            snap = Snapshot.from_json(cp.blob)
            self._checkpoints[cp.checkpoint_id] = _Checkpoint(
                session_id=state.session_id,
                principal=snap.principal,
                label=snap.label,
                created_ms=cp.created_ms,
                expires_at=now + cp.expires_in_ms,
                size=_size(cp.blob),
                blob=cp.blob,
            )
            self._session_checkpoints.setdefault(state.session_id, []).append(cp.checkpoint_id)
        return True
