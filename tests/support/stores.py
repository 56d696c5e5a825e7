"""The store table: every contract test (tests/core/test_contract.py) runs once per entry.

Each entry names a store URL, or the fixture that provides one (a Redis server, a local
Cluster or Sentinel topology), with its pytest marks. Every store is built the way a
server builds it: ``backend_from_url``. The fixtures that use the table live in
tests/core/conftest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any, Protocol, cast

import fakeredis
import pytest
import redis.asyncio as aioredis
from _pytest.mark.structures import ParameterSet

from memory_core import Limits, ManualClock, SessionStore, StoreConfig, backend_from_url
from tests.support.redis_keys import RawRedis, discard
from tests.support.topology import ClusterTopology, SentinelTopology, raw_client

SMALL_LIMITS = Limits(
    max_keys=5,
    max_value_bytes=100,
    max_session_bytes=2048,
    max_scratchpad_entries=4,
    max_scratchpad_entry_bytes=64,
    max_checkpoints=3,
    max_sessions=50,
    max_key_length=32,
    max_ttl_seconds=3600,
    max_task_state_bytes=1024,
)


@dataclass(frozen=True)
class Target:
    """Where a store lives: its URL, and how to open a plain client on the same data."""

    url: str
    raw: Callable[[], RawRedis] | None = None


def _memory(request: pytest.FixtureRequest) -> Target:
    return Target("memory://")


class FakeRedis(fakeredis.FakeAsyncRedis):
    """fakeredis, whose INFO answers an error: here it answers as one Redis server that
    never restarts (the store reads ``run_id`` to notice restarts)."""

    async def info(self, section: str | None = None, *args: str, **kwargs: Any) -> dict[str, Any]:
        return {"run_id": "fakeredis"}


def _fakeredis(request: pytest.FixtureRequest) -> Target:
    # One fake server per test; many connections, as the concurrency tests open many.
    client = FakeRedis(decode_responses=True, max_connections=1000)
    return Target("redis://fake", lambda: client)


def _redis(request: pytest.FixtureRequest) -> Target:
    url = cast(str, request.getfixturevalue("redis_url"))
    return Target(url, lambda: aioredis.Redis.from_url(url, decode_responses=True))


def _topology(fixture: str) -> Callable[[pytest.FixtureRequest], Target]:
    def target(request: pytest.FixtureRequest) -> Target:
        topology = cast(ClusterTopology | SentinelTopology, request.getfixturevalue(fixture))
        return Target(topology.url, lambda: raw_client(topology))

    return target


@dataclass(frozen=True)
class StoreKind:
    """One entry of the table.

    Attributes:
        id: the test id suffix (``test_x[redis]``).
        target: resolves the store's URL (and a raw client) for a test; may request
            fixtures (and so skip or fail the test when the server cannot run).
        fallback: ``backend_from_url``'s ``fallback`` (None: the URL's default).
        shared_client: the raw client *is* the store's client (fakeredis: one in-process
            server per test); its keys are not cleaned up, the test's server just ends.
        manual_clock: time is a ``ManualClock`` the test advances (in-process stores).
        marks: pytest marks of every test over this store.
    """

    id: str
    target: Callable[[pytest.FixtureRequest], Target]
    fallback: bool | None = None
    shared_client: bool = False
    manual_clock: bool = False
    marks: tuple[pytest.MarkDecorator, ...] = ()

    def param(self) -> ParameterSet:
        return pytest.param(self, id=self.id, marks=self.marks)


NEEDS_LUPA = pytest.mark.skipif(find_spec("lupa") is None, reason="fakeredis needs lupa (Lua)")

STORES: tuple[StoreKind, ...] = (
    StoreKind("memory", _memory, manual_clock=True),
    StoreKind("fakeredis", _fakeredis, fallback=False, shared_client=True, marks=(NEEDS_LUPA,)),
    StoreKind("redis", _redis, fallback=False, marks=(pytest.mark.redis,)),
    StoreKind("fallback", _redis, fallback=True, marks=(pytest.mark.redis,)),
    StoreKind("cluster", _topology("redis_cluster"), marks=(pytest.mark.redis,)),
    StoreKind("sentinel", _topology("redis_sentinel"), marks=(pytest.mark.redis,)),
)


@dataclass
class Harness:
    """A started store of one kind, with what a test needs to look under it."""

    kind: StoreKind
    store: SessionStore
    raw: RawRedis | None  # a plain client on the same data, or None (in-process store)
    prefix: str
    clock: ManualClock | None
    owns_raw: bool = True  # close() deletes the prefix and closes ``raw``
    owns_store: bool = True  # close() closes ``store``

    async def advance(self, seconds: float) -> None:
        """Let time pass: instantly with the manual clock, really on Redis."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    async def close(self) -> None:
        if self.owns_store:
            await self.store.close()
        if self.raw is not None and self.owns_raw:
            await discard(self.raw, self.prefix)


class HarnessFactory(Protocol):
    """More stores of the current kind, with other limits.

    ``share=h`` builds a second store over the same storage as ``h`` (same Redis, or for
    the in-process store the same backend object) as a second process would see it.
    """

    async def __call__(self, limits: Limits, share: Harness | None = None) -> Harness: ...


def make_config(prefix: str, limits: Limits | None = None) -> StoreConfig:
    return StoreConfig(key_prefix=prefix, limits=limits or Limits())


async def open_harness(
    kind: StoreKind, target: Target, prefix: str, limits: Limits | None = None
) -> Harness:
    """A started store of ``kind`` over ``target``, under ``prefix``."""
    clock = ManualClock() if kind.manual_clock else None
    raw = target.raw() if target.raw is not None else None
    extra: dict[str, Any] = {}
    if raw is not None:
        # Generous timeouts: the contract is about behaviour, and a loaded 2-core CI
        # machine opening 64 connections at once can exceed the production 0.25 s.
        extra = {"connect_timeout": 5, "command_timeout": 5}
    backend = backend_from_url(
        target.url,
        make_config(prefix, limits),
        fallback=kind.fallback,
        clock=clock,
        client=raw if kind.shared_client else None,
        **extra,
    )
    store = SessionStore(backend)
    await store.start()
    return Harness(kind, store, raw, prefix, clock, owns_raw=not kind.shared_client)


async def share_harness(kind: StoreKind, share: Harness, limits: Limits) -> Harness:
    """A second store over ``share``'s data, as a second process would see it."""
    if kind.manual_clock:  # in-process: the same backend object, closed with ``share``
        store = SessionStore(share.store.backend)
        return Harness(kind, store, None, share.prefix, share.clock, owns_store=False)
    if kind.shared_client:  # a second store over the same fake server
        backend = backend_from_url(
            "redis://fake",
            make_config(share.prefix, limits),
            fallback=kind.fallback,
            client=share.raw,
        )
        store = SessionStore(backend)
        await store.start()
        return Harness(kind, store, None, share.prefix, None)
    raise AssertionError("a Redis server is shared by opening a harness on its URL")
