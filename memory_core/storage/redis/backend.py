"""Redis backend: every operation is one Lua script (EVALSHA), one round trip.

Scripts live in ``lua/`` beside this file (see ``scripts``). Calls send EVALSHA and
load the script on NOSCRIPT (first use, a Redis restart, SCRIPT FLUSH). Time comes
from Redis (``TIME``), so every process sharing one Redis agrees on expiry.

Every driver error is classified here and nowhere else (``classify``), into one of:

* **outage** (refused, reset, timeout, a failover in progress): ``StorageUnavailableError``,
  which trips the breaker;
* **configuration** (authentication, a missing permission, an unknown database, a
  protocol or TLS mismatch, a disabled command): ``StorageMisconfiguredError``;
* **store full** (out of memory under ``noeviction``): ``StorageFullError``;
* **a script's error reply**: the exception its code names (``scripts.SCRIPT_ERRORS``),
  any other reply ``StorageInternalError`` (a bug, logged with the reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    ClusterError,
    DataError,
    ExternalAuthProviderError,
    InvalidResponse,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from memory_core.clock import Clock
from memory_core.config import StoreConfig
from memory_core.errors import (
    CheckpointNotFoundError,
    NotFoundError,
    SessionNotFoundError,
    StorageFullError,
    StorageInternalError,
    StorageMisconfiguredError,
    StorageUnavailableError,
    WorkingMemoryError,
)
from memory_core.keys import checkpoint_tag, session_tag
from memory_core.models import CheckpointInfo, Health, Usage, ms_to_datetime
from memory_core.storage.base import (
    UNKNOWN_SERVER,
    PrimaryBackend,
    SessionCopy,
    SessionRef,
    StoredCheckpoint,
)
from memory_core.storage.redis import scripts, topology
from memory_core.storage.redis.layout import KeyLayout
from memory_core.storage.redis.multiplex import ScriptConnection
from memory_core.storage.snapshot import Snapshot

log = logging.getLogger(__name__)

VERIFY_SESSION = "verify"
EARLIER_INDEX_SIZE = 64
"""Checkpoints a principal's recovery index keeps (the newest; older ones still restore
by id for their retention time, they are just not listed)."""
"""A session id no session ever has (real ids are long and random): ``verify`` runs a
script on it to learn whether Redis lets this server run scripts at all."""


MULTIPLEX_SCHEMES = ("redis", "unix")
"""Stores whose scripts run over one pipelined connection (``multiplex``): one plain-text
server. TLS, Cluster and Sentinel go through redis-py's clients."""

WRITE_BACK_PIECE_BYTES = 256 * 1024
"""The most payload one write-back call carries. A session within the limits can hold
hundreds of MiB (8 MiB of variables, 32 checkpoints as large): sent as one call it
outlasts any command timeout. 256 KiB takes Redis about a millisecond to apply (far
under the 0.5 s command timeout even on a loaded host) and holds the largest variable
(``max_value_bytes`` 64 KiB plus its key) or scratchpad entry whole; checkpoint blobs
are split (APPEND)."""

STAGING_TTL_MS = 5 * 60 * 1000
"""How long one write-back attempt's staged keys live: an attempt abandoned halfway (Redis
went away, the process died) leaves nothing without a TTL, and its commit finds the
staging incomplete rather than writing half a session."""

_DRIVER_ERRORS = (RedisError, RedisClusterException, OSError, RuntimeError)
"""What the driver raises. RedisClusterException is not a RedisError: the cluster client
raises it when no node at all answers ("Redis Cluster cannot be connected"). On uvloop a
write to a connection Redis (or the network) has closed raises RuntimeError, which
redis-py passes on after dropping the connection (``_dead_transport``)."""

_AUTH_ERRORS = (
    AuthenticationError,  # WRONGPASS, NOAUTH (a ConnectionError: check before outages)
    AuthorizationError,
    AuthenticationWrongNumberOfArgsError,
    ExternalAuthProviderError,
)
_TRANSIENT_REPLIES = (ReadOnlyError, ClusterError, TryAgainError)
"""Error replies of a failover in progress: outages, like a refused connection."""

_CONFIG_REPLIES = {
    "DB index is out of range": "the database number in the URL does not exist on this Redis",
    "invalid DB index": "the database number in the URL does not exist on this Redis",
    "unknown command": "a command this server needs is disabled or renamed on this Redis",
    "MISCONF": "Redis refuses writes because it cannot persist to disk (MISCONF)",
    # A script calling a command the ACL denies (the error reply carries no NOPERM code).
    "can't run this command": "the Redis user lacks a permission this server needs "
    "(a command a script calls; see the README's ACL line)",
}
"""Error replies that no retry fixes (substring -> cause)."""


def classify(exc: BaseException, target: str) -> WorkingMemoryError:
    """The error a driver error stands for (see the module docstring).

    Args:
        exc: what redis-py (or the socket) raised.
        target: the store URL with its password redacted, for a configuration error.
    """
    cause = _refusal(exc)
    if cause is not None:
        return StorageMisconfiguredError(cause, target)
    if isinstance(exc, OutOfMemoryError):
        return StorageFullError()
    if isinstance(exc, DataError):  # the client refused to encode an argument: a bug here
        log.error("Redis client refused a call: %s", exc)
        return StorageInternalError()
    if isinstance(exc, RuntimeError) and not _dead_transport(exc):
        log.error("Redis call failed unexpectedly: %r", exc, exc_info=exc)
        return StorageInternalError()
    if isinstance(exc, ResponseError) and not isinstance(exc, _TRANSIENT_REPLIES):
        return scripts.error_from_reply(str(exc))
    return StorageUnavailableError()


def _dead_transport(exc: BaseException) -> bool:
    """uvloop's answer to a write on a closed socket: "unable to perform operation on
    <TCPTransport closed=True ...>; the handler is closed" (asyncio only logs it)."""
    text = str(exc)
    return "unable to perform operation on" in text and "closed" in text


def _refusal(exc: BaseException) -> str | None:
    """Why Redis refuses this server, if ``exc`` says it does (a configuration error)."""
    if isinstance(exc, _AUTH_ERRORS):
        return "authentication failed: wrong or missing user name or password"
    if isinstance(exc, NoPermissionError):
        return f"the Redis user lacks a permission this server needs: {str(exc)[:160]}"
    if isinstance(exc, InvalidResponse):
        return (
            "the server at this address does not speak the Redis protocol "
            "(wrong port, or TLS where plain text is expected)"
        )
    if isinstance(exc, ResponseError) and not isinstance(exc, _TRANSIENT_REPLIES):
        text = str(exc)
        return next((cause for marker, cause in _CONFIG_REPLIES.items() if marker in text), None)
    return None


def _ttl(raw: Any) -> int | None:
    value = int(raw)
    return None if value < 0 else value


class RedisBackend(PrimaryBackend):
    def __init__(
        self,
        config: StoreConfig,
        url: str,
        *,
        connect_timeout: float = 0.25,
        command_timeout: float = 0.5,
        max_connections: int = 64,
        pool_timeout: float = 2.0,
        client: aioredis.Redis | RedisCluster | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Args:
        client: a redis-py client to send every command through (tests inject
            fakeredis). Without one, ``redis://`` and ``unix://`` URLs run scripts over
            one pipelined connection (``multiplex``), everything else through redis-py.
        """
        super().__init__(config, clock)
        self.layout = KeyLayout(config.key_prefix)
        self._scripts: ScriptConnection | None = None
        if client is None:
            client = topology.client_from_url(
                url,
                connect_timeout=connect_timeout,
                command_timeout=command_timeout,
                max_connections=max_connections,
                pool_timeout=pool_timeout,
            )
            if urlsplit(url).scheme.lower() in MULTIPLEX_SCHEMES:
                assert isinstance(client, aioredis.Redis)
                self._scripts = ScriptConnection.for_pool(
                    client.connection_pool,
                    connect_timeout=connect_timeout,
                    command_timeout=command_timeout,
                )
        self.client: aioredis.Redis | RedisCluster = client
        self.target = topology.redact_url(url)
        self._url = url
        self._connect_timeout = connect_timeout
        self._info_denied = False
        self._sources = scripts.sources()
        self._shas = {name: scripts.sha1(src) for name, src in self._sources.items()}

    async def close(self) -> None:
        if self._scripts is not None:
            await self._scripts.close()
        client = self.client
        if isinstance(client, RedisCluster):
            await client.aclose()
        else:
            # The client was handed its pool, and redis-py leaves a pool it did not
            # create open on aclose(): close it too, or its connections leak.
            await client.aclose(close_connection_pool=True)

    async def health(self) -> Health:
        try:
            ok = await self.ping()
        except StorageMisconfiguredError as exc:
            return Health(
                mode="redis", healthy=False, failure="configuration", cause=exc.cause,
                detail=exc.message,
            )  # fmt: skip
        if ok:
            return Health(mode="redis", healthy=True)
        return Health(
            mode="redis", healthy=False, failure="outage", cause="Redis does not answer",
            detail="Redis does not answer",
        )  # fmt: skip

    # the primary capability (see PrimaryBackend) -----------------------------------
    async def drop_idle_connections(self) -> None:
        if self._scripts is not None:
            await self._scripts.drop_if_idle()
        pool = getattr(self.client, "connection_pool", None)
        if pool is None:  # a cluster client keeps a pool per node and reconnects itself
            return
        with contextlib.suppress(RedisError, OSError):  # closing a dead socket
            await pool.disconnect(inuse_connections=False)

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except _DRIVER_ERRORS as exc:
            await self._raise_misconfigured(exc)
            return False

    async def server_id(self) -> str | None:
        """``run_id`` of the Redis server (of every node, for a cluster)."""
        try:
            info: dict[str, Any] = await self.client.info("server")
        except NoPermissionError:
            # INFO is in @dangerous, which common ACLs deny (+@all -@dangerous): run
            # without restart detection rather than refuse to start (see UNKNOWN_SERVER).
            if not self._info_denied:
                self._info_denied = True
                log.warning(
                    "Redis denies INFO to this server: restarts are not detected; after an "
                    "outage every held session Redis lacks is written back"
                )
            return await self._unknown_server()
        except _DRIVER_ERRORS as exc:
            await self._raise_misconfigured(exc)
            return None
        if "run_id" in info:
            return str(info["run_id"])
        # A cluster client answers per node.
        return ",".join(sorted(str(v.get("run_id")) for v in info.values() if isinstance(v, dict)))

    async def _unknown_server(self) -> str | None:
        """``UNKNOWN_SERVER`` if Redis answers (and accepts this server), else None."""
        return UNKNOWN_SERVER if await self.ping() else None

    async def verify(self) -> bool:
        """Run one script on a session that does not exist, as every call does (EVALSHA,
        EVAL on NOSCRIPT): Redis answering "no such session" proves the credentials,
        the database and the permissions to run scripts."""
        try:
            await self.touch(SessionRef(VERIFY_SESSION, ""))
        except SessionNotFoundError:
            return True
        except StorageUnavailableError:
            return False
        return True  # pragma: no cover - the session never exists

    async def check_eviction(self) -> None:
        policy = await self.eviction_policy()
        if policy is None or policy == "noeviction":
            return
        cause = (
            f"Redis may evict session keys under memory pressure (maxmemory-policy {policy}); "
            "set maxmemory-policy noeviction"
        )
        if self.config.require_noeviction:
            raise StorageMisconfiguredError(cause + " or unset WM_REQUIRE_NOEVICTION", self.target)
        log.warning(
            "%s. Evicted keys are restored from this process's memory only while it holds "
            "the session (and with fallback on); otherwise that data is lost. Set "
            "WM_REQUIRE_NOEVICTION=true to refuse to start instead.",
            cause,
        )

    async def eviction_policy(self) -> str | None:
        """Redis's ``maxmemory-policy``, or None when it does not say: ``CONFIG`` is in
        @dangerous, which the least-privilege ACL denies (nothing to warn about then:
        the operator chose not to let this server look)."""
        try:
            found: Any = await self.client.config_get("maxmemory-policy")
        except _DRIVER_ERRORS as exc:
            log.debug("cannot read maxmemory-policy: %s", type(exc).__name__)
            return None
        if isinstance(found, dict) and isinstance(found.get("maxmemory-policy"), str):
            return str(found["maxmemory-policy"])
        if isinstance(found, dict):  # a cluster client answers per node
            policies = sorted(
                {str(v.get("maxmemory-policy")) for v in found.values() if isinstance(v, dict)}
            )
            evicting = [p for p in policies if p not in {"noeviction", "None"}]
            return evicting[0] if evicting else (policies[0] if policies else None)
        return None

    async def _raise_misconfigured(self, exc: BaseException) -> None:
        """Raise the configuration error ``exc`` stands for; return for an outage."""
        error = classify(exc, self.target)
        if isinstance(error, StorageMisconfiguredError):
            raise error from exc
        if isinstance(exc, RedisTimeoutError) and await self._plaintext_answers():
            raise StorageMisconfiguredError(
                "the URL asks for TLS (rediss://) but this Redis speaks plain text; "
                "use redis:// or enable TLS on the server",
                self.target,
            ) from exc

    async def _plaintext_answers(self) -> bool:
        """For a ``rediss://`` URL that timed out: does the same port answer a plain-text
        PING? A TLS handshake sent to a plain-text Redis waits for the command timeout,
        exactly like a hung server; this tells the two apart."""
        parts = urlsplit(self._url)
        if parts.scheme.lower() != "rediss" or parts.hostname is None:
            return False
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, parts.port or 6379),
                self._connect_timeout,
            )
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(b"PING\r\n")
            reply = await asyncio.wait_for(reader.read(16), self._connect_timeout)
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        # +PONG, or -NOAUTH from a Redis with a password: plain-text Redis either way.
        return reply.startswith((b"+PONG", b"-NOAUTH", b"-WRONGPASS", b"-ERR"))

    # plumbing ------------------------------------------------------------------------
    async def _eval(
        self, name: str, keys: tuple[str, ...] | list[str], args: tuple[Any, ...]
    ) -> Any:
        """EVALSHA, falling back to EVAL (which caches the script) on NOSCRIPT: first
        use, a Redis restart, a promoted replica, SCRIPT FLUSH. Driver errors are
        classified here (``classify``)."""
        execute = self.client.execute_command if self._scripts is None else self._scripts.execute
        try:
            try:
                return await execute("EVALSHA", self._shas[name], len(keys), *keys, *args)
            except NoScriptError:
                # EVAL runs and caches the script on the key's node only: SCRIPT LOAD
                # would go to every cluster master and fail while any one is down.
                return await execute("EVAL", self._sources[name], len(keys), *keys, *args)
        except _DRIVER_ERRORS as exc:
            raise classify(exc, self.target) from exc

    async def _run(self, name: str, session_id: str, *args: Any) -> Any:
        return await self._eval(name, self.layout.session_keys(session_id), args)

    # sessions --------------------------------------------------------------------
    async def open_session(self, ref: SessionRef, lease_ms: int, *, keep: bool = False) -> bool:
        opened = await self._run("open", ref.session_id, ref.principal, lease_ms, int(keep))
        return bool(opened)

    async def touch(self, ref: SessionRef) -> int:
        return int(await self._run("touch", ref.session_id, ref.principal))

    async def close_session(self, ref: SessionRef) -> bool:
        return bool(await self._run("close", ref.session_id, ref.principal))

    async def usage(self, ref: SessionRef) -> Usage:
        keys, size, pad, cps, lease = await self._run("usage", ref.session_id, ref.principal)
        return Usage(
            keys=int(keys),
            bytes=int(size),
            scratchpad_entries=int(pad),
            checkpoints=int(cps),
            lease_seconds=int(lease) // 1000,
            expires_in_ms=int(lease),
        )

    # variables -------------------------------------------------------------------
    async def set(self, ref: SessionRef, key: str, value: str, ttl_ms: int | None) -> None:
        self.check_size("max_value_bytes", value)
        limits = self.limits
        await self._run(
            "set", ref.session_id, ref.principal, key, value,
            "" if ttl_ms is None else ttl_ms, limits.max_keys, limits.max_session_bytes,
        )  # fmt: skip

    async def get(self, ref: SessionRef, key: str) -> tuple[str, int | None] | None:
        found = await self._run("get", ref.session_id, ref.principal, key)
        if found is None:
            return None
        return found[0], _ttl(found[1])

    async def delete(self, ref: SessionRef, key: str) -> bool:
        return bool(await self._run("delete", ref.session_id, ref.principal, key))

    async def exists(self, ref: SessionRef, key: str) -> bool:
        return bool(await self._run("exists", ref.session_id, ref.principal, key))

    async def keys(self, ref: SessionRef) -> list[str]:
        return sorted(await self._run("keys", ref.session_id, ref.principal))

    async def items(self, ref: SessionRef) -> dict[str, tuple[str, int | None]]:
        flat = await self._run("items", ref.session_id, ref.principal)
        triples = sorted((flat[i], flat[i + 1], _ttl(flat[i + 2])) for i in range(0, len(flat), 3))
        return {k: (v, t) for k, v, t in triples}

    async def values_of(
        self, ref: SessionRef, keys: list[str], max_bytes: int
    ) -> list[tuple[str, str, int | None]]:
        if not keys:
            return []
        flat = await self._run("values", ref.session_id, ref.principal, max_bytes, *keys)
        return [(flat[i], flat[i + 1], _ttl(flat[i + 2])) for i in range(0, len(flat), 3)]

    async def clear(self, ref: SessionRef) -> int:
        return int(await self._run("clear", ref.session_id, ref.principal))

    # task state and scratchpad -----------------------------------------------------
    async def set_task(self, ref: SessionRef, task: str) -> None:
        self.check_size("max_task_state_bytes", task)
        await self._run(
            "set_task", ref.session_id, ref.principal, task, self.limits.max_session_bytes
        )

    async def get_task(self, ref: SessionRef) -> str | None:
        result = await self._run("get_task", ref.session_id, ref.principal)
        return None if result is None else str(result)

    async def append_scratchpad(self, ref: SessionRef, entry: str) -> int:
        self.check_size("max_scratchpad_entry_bytes", entry)
        limits = self.limits
        return int(
            await self._run(
                "append_pad",
                ref.session_id,
                ref.principal,
                entry,
                limits.max_scratchpad_entries,
                limits.max_session_bytes,
            )
        )

    async def get_scratchpad(
        self, ref: SessionRef, start: int = 0, count: int | None = None
    ) -> tuple[list[str], int]:
        stop = -1 if count is None else start + count - 1
        result = await self._run("get_pad", ref.session_id, ref.principal, start, stop)
        return list(result[1:]), int(result[0])

    # checkpoints -------------------------------------------------------------------
    async def create_checkpoint(
        self, ref: SessionRef, checkpoint_id: str, label: str | None
    ) -> tuple[CheckpointInfo, list[str]]:
        sid = ref.session_id
        result = await self._run(
            "cp_create", sid, ref.principal, checkpoint_id, label or "",
            self.layout.checkpoint_base(sid), self.limits.max_checkpoints,
            self.config.checkpoint_retention_seconds * 1000, sid,
        )  # fmt: skip
        info = CheckpointInfo(
            checkpoint_id=checkpoint_id,
            label=label or None,
            created_at=ms_to_datetime(int(result[0])),
            size=int(result[1]),
        )
        evicted = [str(x) for x in result[2:]]
        try:
            # another slot than the session's, so a second script: best effort, since
            # the checkpoint exists and restores by id whether or not it is indexed
            await self._eval(
                "cp_index", self.layout.recent_checkpoints(ref.principal),
                (checkpoint_id, int(result[0]), int(result[1]), label or "",
                 self.config.checkpoint_retention_seconds * 1000, EARLIER_INDEX_SIZE, *evicted),
            )  # fmt: skip
        except WorkingMemoryError as exc:
            log.warning(
                "checkpoint not indexed for recovery error=%s; it is not listed after restarts",
                exc.code,
            )
        return info, evicted

    async def restore_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> None:
        owner = checkpoint_tag(checkpoint_id)
        sid = ref.session_id
        blob = ""
        if owner != session_tag(sid):
            # Recovery from an ended session of the same principal: read the immutable
            # snapshot under the owner's hash tag, then apply it in this session's slot.
            found = await self._eval(
                "cp_read",
                [self.layout.tag_meta(owner), self.layout.tag_checkpoint(owner, checkpoint_id)],
                (ref.principal,),
            )
            if found is None:
                await self.touch(ref)  # a missing session wins over a missing checkpoint
                raise CheckpointNotFoundError()
            blob = str(found)
        await self._run(
            "cp_restore", sid, ref.principal, checkpoint_id, self.layout.checkpoint_base(sid), blob
        )

    async def list_checkpoints(self, ref: SessionRef) -> list[CheckpointInfo]:
        sid = ref.session_id
        flat = await self._run("cp_list", sid, ref.principal, self.layout.checkpoint_base(sid))
        ordered = []
        for i in range(0, len(flat), 2):
            order, created, size, label = str(flat[i + 1]).split("|", 3)
            info = CheckpointInfo(
                checkpoint_id=flat[i],
                label=label or None,
                created_at=ms_to_datetime(int(created)),
                size=int(size),
            )
            ordered.append((int(order), info))
        ordered.sort(key=lambda pair: pair[0])
        return [info for _, info in ordered]

    async def list_earlier_checkpoints(self, ref: SessionRef, limit: int) -> list[CheckpointInfo]:
        await self.touch(ref)
        flat = await self._eval(
            "cp_recent", self.layout.recent_checkpoints(ref.principal), (EARLIER_INDEX_SIZE,)
        )
        own = session_tag(ref.session_id)
        found: list[CheckpointInfo] = []
        for i in range(0, len(flat), 2):
            if len(found) >= limit:
                break
            checkpoint_id = str(flat[i])
            try:
                tag = checkpoint_tag(checkpoint_id)
            except NotFoundError:
                continue
            if tag == own:
                continue
            keys = [self.layout.tag_meta(tag), self.layout.tag_checkpoint(tag, checkpoint_id)]
            if not await self._eval("cp_peek", keys, ()):
                continue  # its session still lives, or the snapshot is gone
            created, size, label = str(flat[i + 1]).split("|", 2)
            found.append(
                CheckpointInfo(
                    checkpoint_id=checkpoint_id,
                    label=label or None,
                    created_at=ms_to_datetime(int(created)),
                    size=int(size),
                )
            )
        return found

    async def delete_checkpoint(self, ref: SessionRef, checkpoint_id: str) -> bool:
        sid = ref.session_id
        try:
            if checkpoint_tag(checkpoint_id) != session_tag(sid):
                await self.touch(ref)
                return False
        except NotFoundError:
            await self.touch(ref)
            return False
        return bool(
            await self._run(
                "cp_delete", sid, ref.principal, checkpoint_id, self.layout.checkpoint_base(sid)
            )
        )

    # copying whole sessions ----------------------------------------------------------
    async def export_session(self, session_id: str) -> SessionCopy | None:
        result = await self._run("export", session_id, self.layout.checkpoint_base(session_id))
        if result is None:
            return None
        (principal, lease, pttl, task), flat_vars, pad, flat_cps = result
        return SessionCopy(
            session_id=session_id,
            principal=str(principal),
            lease_ms=int(lease),
            expires_in_ms=max(1, int(pttl)),
            variables={
                flat_vars[i]: (flat_vars[i + 1], _ttl(flat_vars[i + 2]))
                for i in range(0, len(flat_vars), 3)
            },
            task=str(task) or None,
            scratchpad=[str(e) for e in pad],
            checkpoints=[
                StoredCheckpoint(
                    checkpoint_id=str(flat_cps[i]),
                    created_ms=int(flat_cps[i + 1]),
                    expires_in_ms=int(flat_cps[i + 2]),
                    blob=str(flat_cps[i + 3]),
                )
                for i in sorted(range(0, len(flat_cps), 5), key=lambda i: int(flat_cps[i + 4]))
            ],
        )

    async def closed_recently(self, session_id: str) -> bool:
        return bool(await self._run("closed", session_id))

    async def restore_session(self, state: SessionCopy, *, only_if_missing: bool) -> bool:
        """Stage the session under a fresh token in pieces of at most
        ``WRITE_BACK_PIECE_BYTES`` (``import_stage.lua``), then swap it in with one
        commit (``import_commit.lua``) that writes nothing if the session was closed on
        purpose (tombstone) or, with ``only_if_missing``, exists. Idempotent: a retry
        stages afresh, and Redis holds the whole session or none of it."""
        stage = self.layout.staging(state.session_id, uuid.uuid4().hex[:16])
        try:
            return await self._stage_and_commit(state, stage, only_if_missing=only_if_missing)
        except WorkingMemoryError:
            # Full, or gone away: free what was staged now if Redis lets us (a full store
            # would otherwise stay full with it), else its TTL does.
            ids = [cp.checkpoint_id for cp in state.checkpoints]
            names = [stage + part for part in ("meta", "vars", "exp", "pad")]
            with contextlib.suppress(*_DRIVER_ERRORS):
                await self.client.delete(*names, *(f"{stage}cp:{cid}" for cid in ids))
            raise

    async def _stage_and_commit(
        self, state: SessionCopy, stage: str, *, only_if_missing: bool
    ) -> bool:
        sid = state.session_id
        head = (stage, STAGING_TTL_MS)
        staged = 0
        variables = [
            (key, value, -1 if ttl is None else ttl)
            for key, (value, ttl) in state.variables.items()
        ]
        for piece in _pieces(variables, lambda item: _utf8(item[0]) + _utf8(item[1])):
            await self._run("import_stage", sid, *head, "v", *[x for item in piece for x in item])
            staged += len(piece)
        for entries in _pieces(state.scratchpad, _utf8):
            await self._run("import_stage", sid, *head, "p", *entries)
            staged += len(entries)
        checkpoints: list[Any] = []
        for cp in state.checkpoints:
            if cp.expires_in_ms <= 0:
                continue
            blob = cp.blob.encode("utf-8")
            for at in range(0, len(blob), WRITE_BACK_PIECE_BYTES):
                part = blob[at : at + WRITE_BACK_PIECE_BYTES]  # APPEND rejoins split UTF-8
                await self._run("import_stage", sid, *head, "c", cp.checkpoint_id, part)
            label = Snapshot.from_json(cp.blob).label or ""
            checkpoints += [cp.checkpoint_id, cp.created_ms, cp.expires_in_ms, len(blob), label]
        done = int(
            await self._run(
                "import_commit", sid, "1" if only_if_missing else "0", state.principal,
                state.lease_ms, max(1, state.expires_in_ms), state.task or "",
                self.layout.checkpoint_base(sid), stage, staged, len(checkpoints) // 5,
                *checkpoints,
            )
        )  # fmt: skip
        if done < 0:  # staged keys expired before the commit: Redis lost them meanwhile
            raise StorageUnavailableError()
        return done == 1

    async def import_session(self, state: SessionCopy, *, only_if_missing: bool) -> bool:
        sid = state.session_id
        args: list[Any] = [
            "1" if only_if_missing else "0", state.principal, state.lease_ms,
            max(1, state.expires_in_ms), state.task or "", self.layout.checkpoint_base(sid),
            len(state.variables),
        ]  # fmt: skip
        for key, (value, ttl) in state.variables.items():
            args += [key, value, -1 if ttl is None else ttl]
        args.append(len(state.scratchpad))
        args += state.scratchpad
        args.append(len(state.checkpoints))
        for cp in state.checkpoints:
            args += [cp.checkpoint_id, cp.created_ms, cp.expires_in_ms, cp.blob]
        return bool(await self._run("import", sid, *args))


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def _pieces(items: list[Any], size: Any) -> Iterator[list[Any]]:
    """``items`` in consecutive runs of at most ``WRITE_BACK_PIECE_BYTES`` (by ``size``;
    an item larger than that alone), never an empty run."""
    run: list[Any] = []
    total = 0
    for item in items:
        n = size(item)
        if run and total + n > WRITE_BACK_PIECE_BYTES:
            yield run
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        yield run
