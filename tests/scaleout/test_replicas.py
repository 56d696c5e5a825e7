"""Several replicas, one store: two server processes (``--transport http``) share one
Redis -- a Redis Cluster (3 masters + 3 replicas) and, faster, a single Redis.

* stateless (2026-07-28) requests carrying a handle may land on either replica and see
  the same session;
* subscriptions fan out: a client listening (2026) or subscribed (2025) on replica A
  hears about a write made through replica B (the Redis subscription bus);
* connection-bound sessions stay with their replica (the other one does not know their
  ``Mcp-Session-Id``), and the owning replica tears them down on ``DELETE`` and on SSE
  stream close: no live-state key is left in Redis;
* fallback with several replicas: against a cluster the default fails closed
  (``STORAGE_UNAVAILABLE`` at once, never a private copy that could split the session's
  history between replicas); ``WM_FALLBACK=true`` opts in to serving from memory.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import pytest
import redis.asyncio as aioredis
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.subscriptions import Subscription
from mcp_types import ResourceUpdatedNotification

from tests.server.e2e import (
    RawStreamable,
    call,
    error,
    eventually,
    live_keys,
    session_keys,
    streamable_client,
)
from tests.support.replicas import ServerProcess, start_replicas
from tests.support.results import resource_text, updated_uri
from tests.support.topology import ClusterTopology, raw_client

# resources/subscribe is what 2025-era clients speak; the SDK marks it deprecated
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


@dataclass
class Replicas:
    kind: str
    a: ServerProcess
    b: ServerProcess
    prefix: str
    topology: ClusterTopology | None
    redis_url: str

    def raw(self) -> Any:
        """A plain client over the whole store (cluster-aware for a cluster)."""
        if self.topology is not None:
            return raw_client(self.topology)
        return aioredis.Redis.from_url(self.redis_url, decode_responses=True)


@pytest.fixture(scope="module", params=["redis", "cluster"])
def replicas(request: pytest.FixtureRequest) -> Iterator[Replicas]:
    topology: ClusterTopology | None = None
    if request.param == "cluster":
        topology = request.getfixturevalue("redis_cluster")
        url = topology.url
    else:
        url = request.getfixturevalue("redis_url")
    prefix = f"wmr{uuid.uuid4().hex[:8]}"
    env = {"WM_REDIS_URL": url, "WM_KEY_PREFIX": prefix}
    a, b = start_replicas([{**env, "WM_REPLICA_ID": "a"}, {**env, "WM_REPLICA_ID": "b"}])
    try:
        yield Replicas(request.param, a, b, prefix, topology, url)
    finally:
        a.cleanup()
        b.cleanup()


@asynccontextmanager
async def stateless(replica: ServerProcess) -> AsyncIterator[Client]:
    async with streamable_client(replica.url, mode="auto") as client:
        yield client


async def health(client: Client) -> dict[str, Any]:
    result = await client.read_resource("memory://health")
    return dict(json.loads(resource_text(result)))


async def wait_bus_connected(*clients: Client) -> None:
    async def connected() -> bool:
        return all([(await health(c))["subscription_bus"]["connected"] for c in clients])

    await eventually(connected, 10)


class Inbox:
    """``notifications/resources/updated`` received by a 2025-era client."""

    def __init__(self) -> None:
        self.uris: list[str] = []

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.uris.append(message.params.uri)

    async def next(self) -> str:
        with anyio.fail_after(5):
            while not self.uris:  # noqa: ASYNC110 - filled by the client's receive task
                await anyio.sleep(0.01)
        return self.uris.pop(0)


async def next_uri(sub: Subscription) -> str:
    with anyio.fail_after(5):
        async for event in sub:
            return updated_uri(event)
    raise AssertionError("the listen stream ended")


async def test_stateless_requests_see_one_session_on_any_replica(replicas: Replicas) -> None:
    async with stateless(replicas.a) as a, stateless(replicas.b) as b:
        handle = (await call(a, "session_open"))["session"]
        await call(b, "memory_set", key="k", value={"v": 1}, session=handle)
        got = await call(a, "memory_get", key="k", session=handle)
        assert got["found"] and got["value"] == {"v": 1}
        await call(a, "scratchpad_append", content="from A", session=handle)
        await call(b, "scratchpad_append", content="from B", session=handle)
        entries = (await call(a, "scratchpad_get", session=handle))["entries"]
        assert entries == ["from A", "from B"]

        checkpoint = (await call(b, "checkpoint_create", label="before", session=handle))[
            "checkpoint_id"
        ]
        await call(a, "memory_set", key="k", value=2, session=handle)
        restored = await call(a, "checkpoint_restore", checkpoint_id=checkpoint, session=handle)
        assert restored["restored"] is True
        assert (await call(b, "memory_get", key="k", session=handle))["value"] == {"v": 1}
        assert [c["id"] for c in (await call(a, "checkpoint_list", session=handle))["checkpoints"]]

        assert (await call(a, "session_close", session=handle))["closed"] is True
        text = await error(b, "memory_get", key="k", session=handle)
        assert text.startswith("SESSION_NOT_FOUND: ")


async def test_subscriptions_fan_out_across_replicas(replicas: Replicas) -> None:
    """A write through B reaches a listen stream (2026) and a resources/subscribe
    connection (2025, over SSE) on A."""
    inbox = Inbox()
    async with (
        stateless(replicas.a) as listener,
        stateless(replicas.b) as writer,
        Client(sse_client(replicas.a.url + "/sse"), mode="legacy", message_handler=inbox) as sse,
    ):
        await wait_bus_connected(listener, writer)
        handle = (await call(writer, "session_open"))["session"]
        uri = f"memory://session/{handle}"
        await sse.subscribe_resource(uri)
        async with listener.listen(resource_subscriptions=[uri]) as sub:
            await call(writer, "memory_set", key="k", value=1, session=handle)
            assert await next_uri(sub) == uri
            assert await inbox.next() == uri
            # a write on A itself reaches A's subscribers too (without the round trip)
            task = {"task_id": "t", "status": "in_progress"}
            await call(listener, "task_state_set", **task, session=handle)
            assert await next_uri(sub) == uri
            assert await inbox.next() == uri
            await call(writer, "session_close", session=handle)  # the end is an update too
            assert await next_uri(sub) == uri
            assert await inbox.next() == uri


async def test_connection_sessions_stay_with_their_replica(replicas: Replicas) -> None:
    raw = replicas.raw()
    try:
        async with httpx2.AsyncClient(timeout=10) as http:
            # handshake streamable HTTP on A
            conn = RawStreamable(http, replicas.a.url + "/mcp")
            await conn.initialize()
            await conn.tool("memory_set", key="k", value=1)
            session = (await conn.tool("session_info"))["session"]
            assert await live_keys(raw, replicas.prefix, session)
            # B does not know A's Mcp-Session-Id: such requests need sticky routing
            assert conn.session_id is not None
            body = {"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}}
            elsewhere = await http.post(
                replicas.b.url + "/mcp",
                json=body,
                headers={**conn._headers(), "Content-Type": "application/json"},
            )
            assert elsewhere.status_code == 404
            # but the session itself is in the shared store: its handle works on B
            async with stateless(replicas.b) as b:
                got = await call(b, "memory_get", key="k", session=session)
                assert got["value"] == 1
            deleted = await http.delete(replicas.a.url + "/mcp", headers=conn._headers())
            assert deleted.status_code == 200

            async def torn_down() -> bool:
                return not await live_keys(raw, replicas.prefix, session)

            await eventually(torn_down)

            # SSE: each replica names itself in the URL its stream's posts go to, so a
            # load balancer can route them by path
            async with http.stream("GET", replicas.b.url + "/sse") as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        assert line[5:].strip().startswith("/messages/b/?session_id=")
                        break

        # SSE on B: torn down by B when the stream closes
        async with Client(sse_client(replicas.b.url + "/sse"), mode="legacy") as sse:
            await call(sse, "memory_set", key="k", value=1)
            sse_session = (await call(sse, "session_info"))["session"]
            assert await live_keys(raw, replicas.prefix, sse_session)

        async def sse_torn_down() -> bool:
            return not await live_keys(raw, replicas.prefix, sse_session)

        await eventually(sse_torn_down)
        # checkpoints are kept on purpose (retention); nothing else of either session
        for sid in (session, sse_session):
            keys = await session_keys(raw, replicas.prefix, sid)
            assert all(":cp" in k or k.endswith(":meta:closed") for k in keys), keys
    finally:
        await raw.aclose()


async def test_cluster_fails_closed_by_default_and_fallback_is_opt_in(
    cluster_to_kill: ClusterTopology,
) -> None:
    """Redis Cluster down: a replica with the default policy answers
    STORAGE_UNAVAILABLE at once; one started with WM_FALLBACK=true keeps serving from
    its in-process mirror (and so may diverge from other replicas: the opt-in's price)."""
    env = {
        "WM_REDIS_URL": cluster_to_kill.url,
        "WM_KEY_PREFIX": f"wmf{uuid.uuid4().hex[:8]}",
        "WM_CONNECT_TIMEOUT": "0.1",
        "WM_COMMAND_TIMEOUT": "0.3",
    }
    closed, opted = start_replicas([env, {**env, "WM_FALLBACK": "true"}])
    try:
        async with stateless(closed) as strict, stateless(opted) as lenient:
            strict_handle = (await call(strict, "session_open"))["session"]
            lenient_handle = (await call(lenient, "session_open"))["session"]
            await call(strict, "memory_set", key="k", value=1, session=strict_handle)
            await call(lenient, "memory_set", key="k", value=1, session=lenient_handle)
            for node in cluster_to_kill.processes:
                node.kill()

            for _ in range(3):  # the first call finds out, the next ones fail fast
                started = time.monotonic()
                text = await error(strict, "memory_get", key="k", session=strict_handle)
                assert text.startswith("STORAGE_UNAVAILABLE: "), closed.log()
                assert time.monotonic() - started < 2.0
            assert (await health(strict))["healthy"] is False  # breaker open, failing closed

            got = await call(lenient, "memory_get", key="k", session=lenient_handle)
            assert got["value"] == 1
            await call(lenient, "memory_set", key="k", value=2, session=lenient_handle)
            lenient_health = await health(lenient)
            assert lenient_health["mode"] == "fallback" and lenient_health["healthy"] is True
    finally:
        closed.cleanup()
        opted.cleanup()
