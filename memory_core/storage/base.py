"""The backend contract.

A backend stores sessions. Every method is one atomic step: on Redis one script
(one round trip), in memory one synchronous block with no await inside. Units:

* times and TTLs are integer **milliseconds**; a TTL of ``None`` means "lives as long
  as the session"; a returned remaining TTL is always > 0;
* values arrive already serialized (JSON text, see ``memory_core.codec``) and sizes
  are UTF-8 bytes of that text; keys arrive already validated;
* a session is addressed by a ``SessionRef``: its id and the principal using it. A
  session that does not exist, has expired, or belongs to another principal raises
  ``SessionNotFoundError`` -- the three are indistinguishable on purpose;
* every successful call refreshes the session's idle lease;
* a limit that would be exceeded raises ``LimitExceededError``/``ValueTooLargeError``
  and changes nothing;
* a backend that cannot reach its storage raises ``StorageUnavailableError``; one
  that reaches it but is refused raises ``StorageMisconfiguredError`` (credentials,
  permissions, database, protocol: retrying does not help) or ``StorageFullError``
  (out of memory; nothing changed). Driver errors are wrapped, never leaked;
* every backend has a ``clock``: the time this process reads (``TaskState.updated_at``,
  the leases a ``SessionStore`` tracks). A store that keeps its own time (Redis
  ``TIME``) still decides expiry by that time.

Checkpoint snapshots have one JSON shape on every backend (see ``Snapshot``), so a
checkpoint can move between backends (the fallback mirror relies on this).

Two optional capabilities extend the contract; the circuit breaker and the fallback
(``storage.fallback``) need them and nothing else about the backends they compose:

* ``PrimaryBackend``: a store outside this process that can be probed (ping, the
  identity of the server process to detect restarts, dropping pooled connections);
* ``MirrorBackend``: a store held in this process that can list, hold and forget
  sessions without awaiting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from memory_core.clock import Clock, SystemClock
from memory_core.config import StoreConfig
from memory_core.errors import ValueTooLargeError
from memory_core.models import CheckpointInfo, Health, Usage

UNKNOWN_SERVER = "?"
"""``PrimaryBackend.server_id`` of a store that answers but does not tell its identity. A
breaker then cannot see restarts: after an outage it assumes one (puts back every held
session the store lacks), between two calls it assumes none (the store is the truth)."""


@dataclass(frozen=True, slots=True)
class SessionRef:
    session_id: str
    principal: str


@dataclass(slots=True)
class StoredCheckpoint:
    checkpoint_id: str
    created_ms: int
    expires_in_ms: int
    blob: str  # JSON: see Snapshot


@dataclass(slots=True)
class SessionCopy:
    """Everything a backend holds for one session: used to copy sessions between
    backends (fallback mirror load and write-back)."""

    session_id: str
    principal: str
    lease_ms: int
    expires_in_ms: int
    variables: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    task: str | None = None
    scratchpad: list[str] = field(default_factory=list)
    checkpoints: list[StoredCheckpoint] = field(default_factory=list)


class Backend(ABC):
    """Storage for sessions. Implementations: memory, redis, the circuit breaker and
    its fallback variant."""

    def __init__(self, config: StoreConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.limits = config.limits
        self.clock: Clock = clock or SystemClock()

    def check_size(self, limit: str, text: str) -> None:
        """Raise ``ValueTooLargeError`` when ``text`` is over the byte limit ``limit``
        (a field of ``Limits``); these limits need no state, so backends check them
        before any storage call."""
        maximum: int = getattr(self.limits, limit)
        if len(text) * 4 > maximum:  # only then can the UTF-8 form be too large
            size = len(text.encode("utf-8"))
            if size > maximum:
                raise ValueTooLargeError(limit, maximum, size)

    # lifecycle ---------------------------------------------------------------
    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect / start background work. Never raises for an unreachable store
        in fallback mode."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and stop background work."""

    @abstractmethod
    async def health(self) -> Health: ...

    # sessions ----------------------------------------------------------------
    @abstractmethod
    async def open_session(self, ref: SessionRef, lease_ms: int, *, keep: bool = False) -> bool:
        """Create an empty session owned by ``ref.principal``; return True.

        With ``keep`` (named sessions, whose id is derived from their name), a live
        session with this id is kept as it is (its lease refreshed) and False is
        returned: one atomic create-if-absent, so processes racing to open one name
        get one session. A live session of another principal raises
        ``SessionNotFoundError``.
        """

    @abstractmethod
    async def touch(self, ref: SessionRef) -> int:
        """Refresh the lease; return ms until the session expires."""

    @abstractmethod
    async def close_session(self, ref: SessionRef) -> bool:
        """Remove the session's live state (variables, task state, scratchpad)
        atomically. Checkpoints stay for the retention period. False if it was
        already gone."""

    @abstractmethod
    async def usage(self, ref: SessionRef) -> Usage: ...

    # variables ---------------------------------------------------------------
    @abstractmethod
    async def set(self, ref: SessionRef, key: str, value: str, ttl_ms: int | None) -> None: ...

    @abstractmethod
    async def get(self, ref: SessionRef, key: str) -> tuple[str, int | None] | None:
        """(value, remaining ttl ms or None), or None when absent or expired."""

    @abstractmethod
    async def delete(self, ref: SessionRef, key: str) -> bool: ...

    @abstractmethod
    async def exists(self, ref: SessionRef, key: str) -> bool: ...

    @abstractmethod
    async def keys(self, ref: SessionRef) -> list[str]:
        """Every live key, sorted."""

    @abstractmethod
    async def items(self, ref: SessionRef) -> dict[str, tuple[str, int | None]]: ...

    @abstractmethod
    async def values_of(
        self, ref: SessionRef, keys: list[str], max_bytes: int
    ) -> list[tuple[str, str, int | None]]:
        """One page of variables: ``(key, value, remaining ttl ms or None)`` for the live
        ones among ``keys``, in the order given (absent or expired keys are skipped).
        Stops after the first entry that takes the running total of key and value bytes
        past ``max_bytes``, so a page costs what it returns, not the whole session."""

    @abstractmethod
    async def clear(self, ref: SessionRef) -> int:
        """Delete every variable; return how many live ones there were."""

    # task state and scratchpad -------------------------------------------------
    @abstractmethod
    async def set_task(self, ref: SessionRef, task: str) -> None: ...

    @abstractmethod
    async def get_task(self, ref: SessionRef) -> str | None: ...

    @abstractmethod
    async def append_scratchpad(self, ref: SessionRef, entry: str) -> int:
        """Append; return the number of entries after the append."""

    @abstractmethod
    async def get_scratchpad(
        self, ref: SessionRef, start: int = 0, count: int | None = None
    ) -> tuple[list[str], int]:
        """Entries ``start .. start+count`` (oldest first) and the total count."""

    # checkpoints ---------------------------------------------------------------
    @abstractmethod
    async def create_checkpoint(
        self, ref: SessionRef, checkpoint_id: str, label: str | None
    ) -> tuple[CheckpointInfo, list[str]]:
        """Snapshot the session; return its info and the ids of checkpoints
        evicted to stay within ``max_checkpoints`` (oldest first)."""

    @abstractmethod
    async def restore_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> None:
        """Replace the session's live state with the snapshot, atomically.

        The checkpoint must belong to this session, or to an ended session of the
        same principal. Anything else raises ``NotFoundError``."""

    @abstractmethod
    async def list_checkpoints(self, ref: SessionRef) -> list[CheckpointInfo]:
        """This session's checkpoints, oldest first."""

    @abstractmethod
    async def list_earlier_checkpoints(self, ref: SessionRef, limit: int) -> list[CheckpointInfo]:
        """Retained checkpoints of ``ref.principal``'s sessions that have ended (what a
        fresh session can restore after a restart), newest first, at most ``limit``.
        ``ref`` must be a live session (``SessionNotFoundError`` otherwise)."""

    @abstractmethod
    async def delete_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> bool: ...

    # copying whole sessions (fallback mirror) -----------------------------------
    @abstractmethod
    async def export_session(self, session_id: str) -> SessionCopy | None: ...

    @abstractmethod
    async def import_session(self, state: SessionCopy, *, only_if_missing: bool) -> bool:
        """Write ``state`` as the whole session, replacing what is there (or only
        when the session does not exist). True if written."""


class PrimaryBackend(Backend):
    """Capability: a backend over a store outside this process that can be probed.

    What a circuit breaker guards (``fallback.CircuitBreakerBackend``). None of these
    methods raises for a store that does not answer (each says so in its answer); a
    store that answers but refuses this server (credentials, permissions, database,
    protocol) raises ``StorageMisconfiguredError``.
    """

    async def verify(self) -> bool:
        """Check that the store accepts what every call needs (beyond ``ping``): raise
        ``StorageMisconfiguredError`` if not; False when it does not answer."""
        return await self.ping()

    @abstractmethod
    async def ping(self) -> bool:
        """True when the store answers now."""

    @abstractmethod
    async def server_id(self) -> str | None:
        """Identity of the store's server process(es): it changes when the store
        restarts or fails over, which is when data may have been lost. None when the
        store does not answer; ``UNKNOWN_SERVER`` when it answers but does not say who
        it is (for instance an ACL that denies Redis ``INFO``)."""

    async def check_eviction(self) -> None:
        """At startup: warn when the store may evict session keys under memory pressure,
        or raise ``StorageMisconfiguredError`` when ``config.require_noeviction`` is set.
        Quiet when the store does not say (for instance a denied ``CONFIG``)."""

    async def closed_recently(self, session_id: str) -> bool:
        """Was the session closed on purpose within its last lease (so a mirror must not
        put it back)? False when the store keeps no record of closes."""
        return False

    async def restore_session(self, state: SessionCopy, *, only_if_missing: bool) -> bool:
        """Write a mirror's copy back (``import_session``), unless the session was closed
        on purpose meanwhile (``closed_recently``), however large the session: a store
        that bounds its calls writes it in bounded pieces. True if written."""
        if await self.closed_recently(state.session_id):
            return False
        return await self.import_session(state, only_if_missing=only_if_missing)

    @abstractmethod
    async def drop_idle_connections(self) -> None:
        """Close the pooled connections not in use. After an outage they may lead to a
        server that is gone (killed, restarted, failed over); new ones are opened on
        demand."""


class MirrorBackend(Backend):
    """Capability: a backend held in this process that can list, hold and forget
    sessions, each in one synchronous step (no await, so atomic on the event loop).

    What ``fallback.FallbackBackend`` serves from while its primary is unreachable.
    """

    @abstractmethod
    def session_ids(self) -> list[str]:
        """Every session held, live or expired but not yet reclaimed."""

    @abstractmethod
    def knows_session(self, session_id: str) -> bool:
        """Held here, live or expired but not yet reclaimed."""

    @abstractmethod
    def has_session(self, session_id: str) -> bool:
        """Held here and live."""

    @abstractmethod
    def refresh_lease(self, session_id: str) -> bool:
        """Extend a held session's lease without any other check (the mirror follows
        a primary that already decided). False when the session is not held."""

    @abstractmethod
    def forget_session(self, session_id: str) -> None:
        """Drop the live state held for a session (its checkpoints stay)."""
