"""WorkingMemory: one session's view of the store. Cheap to construct."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from memory_core import codec
from memory_core.errors import InvalidArgumentError, SessionNotFoundError
from memory_core.keys import (
    checkpoint_tag,
    glob_match,
    has_control_char,
    new_checkpoint_id,
    validate_key,
    validate_pattern,
)
from memory_core.models import CheckpointInfo, CreatedCheckpoint, Entry, TaskState, Usage
from memory_core.storage.base import SessionRef

if TYPE_CHECKING:
    from memory_core.sessions import SessionStore

P = ParamSpec("P")
T = TypeVar("T")

MAX_LABEL_LENGTH = 256
MAX_POSITION = 2**31 - 1
"""Largest scratchpad offset or count: far past any scratchpad, and an integer every
store takes exactly (a forged cursor with a huge offset is refused here, not by Redis)."""


class WorkingMemory:
    """Variables with TTL, task state, scratchpad and checkpoints of one session.

    Every method validates its arguments first (raising a ``WorkingMemoryError``
    subclass and changing nothing), then performs one atomic backend operation
    that also refreshes the session's idle lease.
    """

    def __init__(
        self,
        store: SessionStore,
        session_id: str,
        principal: str,
        resume: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Args:
        resume: for a named session this process served without asking the store
            whether it still exists (``SessionStore.named``): called when an operation
            finds it gone (closed elsewhere, expired, lost), to open it again before
            the operation runs once more. An operation that finds no session has
            changed nothing.
        """
        self._store = store
        self._backend = store.backend
        self._limits = store.config.limits
        self._resume = resume
        self.ref = SessionRef(session_id, principal)

    async def _on(
        self, op: Callable[Concatenate[SessionRef, P], Awaitable[T]], *args: P.args, **kw: P.kwargs
    ) -> T:
        """Run one backend operation on this session (see ``resume``)."""
        try:
            return await op(self.ref, *args, **kw)
        except SessionNotFoundError:
            resume, self._resume = self._resume, None
            if resume is None:
                raise
        await resume()
        return await op(self.ref, *args, **kw)

    @property
    def session_id(self) -> str:
        return self.ref.session_id

    # variables -------------------------------------------------------------------
    def _ttl_ms(self, ttl_seconds: object) -> int | None:
        if ttl_seconds is None:
            return None
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float)):
            raise InvalidArgumentError("ttl_seconds must be a positive number of seconds or null")
        if not ttl_seconds > 0:
            raise InvalidArgumentError(
                "ttl_seconds must be greater than 0; omit it to keep the key for the session"
            )
        if ttl_seconds > self._limits.max_ttl_seconds:
            raise InvalidArgumentError(
                f"ttl_seconds must be at most {self._limits.max_ttl_seconds}; "
                "omit it to keep the key as long as the session lives"
            )
        return max(1, round(ttl_seconds * 1000))

    async def set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        """Store ``value`` (any JSON value) under ``key``, replacing any previous one."""
        validate_key(key, self._limits.max_key_length)
        ttl_ms = self._ttl_ms(ttl_seconds)
        text = codec.encode(value)
        await self._on(self._backend.set, key, text, ttl_ms)

    async def get(self, key: str, default: Any = None) -> Any:
        validate_key(key, self._limits.max_key_length)
        found = await self._on(self._backend.get, key)
        return default if found is None else codec.decode(found[0])

    async def get_entry(self, key: str) -> Entry | None:
        """The value and remaining TTL of ``key``, or None if absent or expired."""
        validate_key(key, self._limits.max_key_length)
        found = await self._on(self._backend.get, key)
        if found is None:
            return None
        return Entry(value=codec.decode(found[0]), ttl_ms=found[1])

    async def delete(self, key: str) -> bool:
        validate_key(key, self._limits.max_key_length)
        return await self._on(self._backend.delete, key)

    async def exists(self, key: str) -> bool:
        validate_key(key, self._limits.max_key_length)
        return await self._on(self._backend.exists, key)

    async def list_keys(self, pattern: str = "*") -> list[str]:
        """Live keys of this session matching the glob ``pattern``, sorted."""
        validate_pattern(pattern)
        return [k for k in await self._on(self._backend.keys) if glob_match(pattern, k)]

    async def get_all(self, pattern: str = "*") -> dict[str, Any]:
        return {k: e.value for k, e in (await self.get_entries(pattern)).items()}

    async def get_entries(self, pattern: str = "*") -> dict[str, Entry]:
        """Live variables matching ``pattern`` with their remaining TTLs, sorted by key."""
        validate_pattern(pattern)
        return {
            k: Entry(value=codec.decode(v), ttl_ms=ttl)
            for k, (v, ttl) in (await self._on(self._backend.items)).items()
            if glob_match(pattern, k)
        }

    async def get_page(
        self, pattern: str, after: str | None, limit: int, max_bytes: int
    ) -> tuple[dict[str, Entry], bool]:
        """One page of live variables matching ``pattern``, sorted by key, starting after
        ``after``; and whether more follow.

        A page holds at most ``limit`` entries and stops before the entry that would take
        its stored size (key and value bytes) past ``max_bytes`` (it always holds one).
        Cost: the session's key names (bounded by ``max_keys``) plus the values of this page
        only; values are read and decoded for the page alone, never for the whole session.
        A key deleted or expired between the two reads is skipped; a key written meanwhile
        appears on a later page if it sorts after ``after``.
        """
        validate_pattern(pattern)
        keys = [
            k
            for k in await self._on(self._backend.keys)
            if (after is None or k > after) and glob_match(pattern, k)
        ]
        page: dict[str, Entry] = {}
        total = 0
        start = 0
        # every round reads at least one key further, so this ends within len(keys) rounds
        while start < len(keys) and len(page) < limit:
            chunk = keys[start : start + limit - len(page)]
            got = await self._on(self._backend.values_of, chunk, max(max_bytes - total, 0))
            for key, raw, ttl in got:
                total += len(key.encode("utf-8")) + len(raw.encode("utf-8"))
                if page and total > max_bytes:
                    return page, True
                page[key] = Entry(value=codec.decode(raw), ttl_ms=ttl)
            if total > max_bytes:
                break  # one entry larger than the whole budget: it comes alone
            start += len(chunk)
        last = next(reversed(page), None)
        return page, last is not None and keys[-1] > last

    async def clear(self) -> int:
        """Delete every variable (task state and scratchpad stay); return how many."""
        return await self._on(self._backend.clear)

    # task state --------------------------------------------------------------------
    async def set_task_state(self, state: TaskState) -> TaskState:
        """Replace the task state; ``updated_at`` is set here. Returns what was stored."""
        if not isinstance(state, TaskState):
            raise InvalidArgumentError("state must be a TaskState")
        stored = state.model_copy(update={"updated_at": self._store.now()})
        codec.encode(stored.metadata)  # rejects non-JSON metadata with a clear error
        await self._on(self._backend.set_task, stored.model_dump_json())
        return stored

    async def get_task_state(self) -> TaskState | None:
        text = await self._on(self._backend.get_task)
        return None if text is None else TaskState.model_validate_json(text)

    # scratchpad --------------------------------------------------------------------
    async def append_scratchpad(self, content: str) -> int:
        """Append one entry; return the number of entries after the append."""
        if not isinstance(content, str):
            raise InvalidArgumentError("content must be a string")
        if not content:
            raise InvalidArgumentError("content must not be empty")
        try:
            content.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgumentError("content contains invalid unicode") from exc
        return await self._on(self._backend.append_scratchpad, content)

    async def get_scratchpad(self) -> list[str]:
        entries, _ = await self._on(self._backend.get_scratchpad)
        return entries

    async def get_scratchpad_page(self, start: int, count: int) -> tuple[list[str], int]:
        """Entries ``start .. start+count`` (oldest first) and the total number."""
        if not (0 <= start <= MAX_POSITION and 1 <= count <= MAX_POSITION):
            raise InvalidArgumentError(
                f"start must be 0 to {MAX_POSITION} and count 1 to {MAX_POSITION}"
            )
        return await self._on(self._backend.get_scratchpad, start, count)

    # checkpoints -------------------------------------------------------------------
    async def create_checkpoint(self, label: str | None = None) -> str:
        return (await self.create_checkpoint_info(label)).checkpoint_id

    async def create_checkpoint_info(self, label: str | None = None) -> CreatedCheckpoint:
        """Snapshot variables (with remaining TTLs), task state and scratchpad."""
        if label is not None:
            if not isinstance(label, str):
                raise InvalidArgumentError("label must be a string")
            if len(label) > MAX_LABEL_LENGTH or has_control_char(label):
                raise InvalidArgumentError(
                    f"label must be at most {MAX_LABEL_LENGTH} printable characters"
                )
            label = label or None
        self._store.check_checkpoint_room(self.ref.principal)
        info, evicted = await self._on(
            self._backend.create_checkpoint, new_checkpoint_id(self.session_id), label
        )
        created = CreatedCheckpoint(**info.model_dump(), evicted=evicted)
        self._store.checkpoint_created(self.ref.principal, created)
        return created

    async def restore_checkpoint(self, checkpoint_id: str) -> None:
        """Atomically replace this session's live state with the checkpoint."""
        checkpoint_tag(checkpoint_id)  # raises NotFoundError when malformed
        await self._on(self._backend.restore_checkpoint, checkpoint_id)

    async def list_checkpoints(self) -> list[CheckpointInfo]:
        return await self._on(self._backend.list_checkpoints)

    async def list_earlier_checkpoints(self, limit: int) -> list[CheckpointInfo]:
        """Retained checkpoints of this principal's ended sessions, newest first."""
        return await self._on(self._backend.list_earlier_checkpoints, limit)

    async def delete_checkpoint(self, checkpoint_id: str) -> bool:
        deleted = await self._on(self._backend.delete_checkpoint, checkpoint_id)
        if deleted:
            self._store.checkpoint_deleted(checkpoint_id)
        return deleted

    # session -----------------------------------------------------------------------
    async def usage(self) -> Usage:
        return await self._on(self._backend.usage)

    async def touch(self) -> int:
        return await self._on(self._backend.touch)
