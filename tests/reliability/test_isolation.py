"""Isolation and auth over real HTTP: the server as a subprocess with two principals'
bearer tokens (alice, bob), many sessions each (explicit handles opened statelessly,
and sessions bound to streamable HTTP and SSE connections).

No read, write, listing, resource read, subscription (2025 ``resources/subscribe``
and 2026 ``subscriptions/listen``), checkpoint restore/delete or handle reuse crosses
principals; a stolen handle gets exactly the answer an unknown one gets; handles of
closed and expired sessions stop working; requests without a valid token get 401.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import pytest
import pytest_asyncio
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ResourceUpdatedNotification

from mcp_server.tools import TOOL_NAMES
from memory_core.keys import session_tag
from tests.reliability.conftest import FULL, scale
from tests.reliability.load_support import ServerProcess, write_results
from tests.support.redis_keys import delete_prefix_at
from tests.support.results import resource_text, tool_text

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),  # the population's clients live across tests
    pytest.mark.timeout(600 if FULL else 120),
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

TOKENS = {"alice": "tokA-" + "a" * 20, "bob": "tokB-" + "b" * 20}
HANDLES = scale(3, 8)  # explicit handles per principal
CONNECTIONS = scale(1, 3)  # connection-bound sessions per principal and transport
QUIET_SECONDS = 0.5  # how long a subscriber that must hear nothing is watched
CHECKS: Counter[str] = Counter()


# --- clients -------------------------------------------------------------------------


class Inbox:
    """Collects ``notifications/resources/updated`` URIs."""

    def __init__(self) -> None:
        self.uris: list[str] = []

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.uris.append(message.params.uri)


@asynccontextmanager
async def connect(
    url: str, principal: str, transport: str, inbox: Inbox | None = None
) -> AsyncIterator[Client]:
    """``transport``: ``stateless`` (2026-07-28), ``streamable`` (handshake) or ``sse``."""
    headers = {"Authorization": f"Bearer {TOKENS[principal]}"}
    kwargs: dict[str, Any] = {"message_handler": inbox} if inbox else {}
    if transport == "sse":
        async with Client(
            sse_client(url + "/sse", headers=headers), mode="legacy", **kwargs
        ) as client:
            yield client
        return
    async with create_mcp_http_client(headers=headers) as http:
        mode = "auto" if transport == "stateless" else "legacy"
        async with Client(
            streamable_http_client(url + "/mcp", http_client=http), mode=mode, **kwargs
        ) as client:
            yield client


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def answer(result: CallToolResult) -> tuple[bool, str]:
    """What a caller learns from a result: error or not, and its text."""
    return bool(result.is_error), tool_text(result) if result.content else ""


async def read_state(client: Client, handle: str) -> dict[str, Any]:
    result = await client.read_resource(f"memory://session/{handle}", cache_mode="bypass")
    state: dict[str, Any] = json.loads(resource_text(result))
    del state["expires_in"]
    return state


async def resource_error(client: Client, uri: str) -> str:
    with pytest.raises(MCPError) as caught:
        await client.read_resource(uri, cache_mode="bypass")
    return caught.value.error.message


# --- the population: many sessions per principal ---------------------------------------


@dataclass
class Owned:
    principal: str
    session: str
    binding: str  # handle | streamable | sse
    checkpoint: str
    client: Client  # a client of the owner that can use this session


@dataclass
class Population:
    url: str
    sessions: list[Owned] = field(default_factory=list)
    stateless: dict[str, Client] = field(default_factory=dict)

    def of(self, principal: str) -> list[Owned]:
        return [s for s in self.sessions if s.principal == principal]


async def _fill(owned: Owned, n: int) -> None:
    args = {"session": owned.session} if owned.binding == "handle" else {}
    await call(owned.client, "memory_set", key="owner", value=f"{owned.principal}-{n}", **args)
    await call(owned.client, "memory_set", key=f"{owned.principal}-only-{n}", value=n, **args)
    await call(
        owned.client, "task_state_set", task_id=f"{owned.principal}-{n}", status="pending", **args
    )
    await call(owned.client, "scratchpad_append", content=f"{owned.principal} note {n}", **args)
    owned.checkpoint = (await call(owned.client, "checkpoint_create", label="mine", **args))[
        "checkpoint_id"
    ]


@asynccontextmanager
async def population(url: str) -> AsyncIterator[Population]:
    pop = Population(url)
    async with AsyncExitStack() as stack:
        for principal in TOKENS:
            client = await stack.enter_async_context(connect(url, principal, "stateless"))
            pop.stateless[principal] = client
            for _ in range(HANDLES):
                handle = (await call(client, "session_open"))["session"]
                pop.sessions.append(Owned(principal, handle, "handle", "", client))
            for transport in ("streamable", "sse"):
                for _ in range(CONNECTIONS):
                    conn = await stack.enter_async_context(connect(url, principal, transport))
                    session = (await call(conn, "session_info"))["session"]
                    pop.sessions.append(Owned(principal, session, transport, "", conn))
        for n, owned in enumerate(pop.sessions):
            await _fill(owned, n)
        yield pop


# --- fixtures ------------------------------------------------------------------------


@dataclass
class Server:
    process: ServerProcess
    store: str


@pytest.fixture(scope="module", params=("memory", "redis"))
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    env = {
        "WM_AUTH_TOKENS": ",".join(f"{t}={p}" for p, t in TOKENS.items()),
        "WM_CHECKPOINT_RETENTION_SECONDS": "120",
    }
    redis_url = prefix = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        prefix = f"wmi{uuid.uuid4().hex[:10]}"
        env |= {"WM_REDIS_URL": redis_url, "WM_KEY_PREFIX": prefix}
    process = ServerProcess(env).start()
    try:
        yield Server(process, request.param)
        assert process.crashes() == [], process.log()[-4000:]
    finally:
        process.cleanup()
        if redis_url and prefix:
            anyio.run(delete_prefix_at, redis_url, prefix)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pop(server: Server) -> AsyncIterator[Population]:
    """Many sessions per principal, shared by the tests of one server. The clients
    are entered and exited in one task of their own (pytest-asyncio sets a fixture
    up and tears it down in different tasks, which anyio's cancel scopes refuse)."""
    ready: asyncio.Future[Population] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def hold() -> None:
        try:
            async with population(server.process.url) as built:
                ready.set_result(built)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    holder = asyncio.create_task(hold())
    try:
        yield await asyncio.wait_for(ready, 120)
    finally:
        stop.set()
        await asyncio.wait_for(holder, 60)


@pytest.fixture(scope="module", autouse=True)
def _print_checks() -> Iterator[None]:
    yield
    if CHECKS:
        lines = ["| isolation check | count |", "|---|---:|"]
        lines += [f"| {name} | {n} |" for name, n in sorted(CHECKS.items())]
        lines.append(f"| **total** | {sum(CHECKS.values())} |")
        print("\nisolation checks performed:\n" + "\n".join(lines))
        write_results(f"isolation-{'full' if FULL else 'short'}", dict(CHECKS))


# --- auth ----------------------------------------------------------------------------


async def test_requests_without_a_valid_token_get_401(server: Server) -> None:
    url = server.process.url
    good = TOKENS["alice"]
    bad_headers = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {good}x"},
        {"Authorization": f"Bearer {good[:-1]}"},
        {"Authorization": f"Bearer {good.upper()}"},
        {"Authorization": f"Basic {good}"},
        {"Authorization": good},
        {"Authorization": f"Bearer {good} {TOKENS['bob']}"},
    ]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=10) as http:
        for headers in bad_headers:
            for method, path in (("POST", "/mcp"), ("GET", "/sse"), ("POST", "/messages/")):
                response = await http.request(
                    method,
                    url + path + ("?session_id=" + uuid.uuid4().hex if "messages" in path else ""),
                    json=body if method == "POST" else None,
                    headers={**accept, **headers},
                )
                assert response.status_code == 401, (path, headers, response.status_code)
                assert good not in response.text and TOKENS["bob"] not in response.text
                CHECKS["401 without a valid token"] += 1
        health = await http.get(url + "/healthz")
        assert health.status_code == 200 and health.json() in ({"status": "ok"},)


# --- nothing crosses principals --------------------------------------------------------

CROSS_ARGS: dict[str, dict[str, Any]] = {
    "memory_set": {"key": "stolen", "value": 1},
    "memory_get": {"key": "owner"},
    "memory_delete": {"key": "owner"},
    "memory_exists": {"key": "owner"},
    "memory_list_keys": {},
    "memory_get_all": {},
    "memory_clear": {},
    "task_state_set": {"task_id": "stolen", "status": "failed"},
    "task_state_get": {},
    "scratchpad_append": {"content": "stolen"},
    "scratchpad_get": {},
    "checkpoint_create": {"label": "stolen"},
    "checkpoint_restore": {"checkpoint_id": "<victim checkpoint>"},
    "checkpoint_list": {},
    "checkpoint_delete": {"checkpoint_id": "<victim checkpoint>"},
    "session_info": {},
    "session_close": {},  # last: on success it would end the session
}


async def test_cross_args_cover_every_tool() -> None:
    assert set(CROSS_ARGS) == set(TOOL_NAMES) - {"session_open"}


async def test_stolen_handles_act_like_unknown_ones(server: Server, pop: Population) -> None:
    """Every tool with another principal's session id (handle or connection-bound),
    from the thief's stateless, streamable and SSE clients: the same answer as for
    a handle that never existed, and the victim's state unchanged."""
    url = server.process.url
    before = {s.session: await read_state(s.client, s.session) for s in pop.sessions}
    ids = {s.session for s in pop.sessions}
    assert len(ids) == len(pop.sessions)  # no handle is shared or reused
    CHECKS["distinct session ids across principals"] += len(ids)
    for thief in TOKENS:
        victims = [s for s in pop.sessions if s.principal != thief]
        async with (
            connect(url, thief, "streamable") as thief_streamable,
            connect(url, thief, "sse") as thief_sse,
        ):
            clients = [pop.stateless[thief], thief_streamable, thief_sse]
            for n, victim in enumerate(victims):
                # every victim from the stateless client; a share from the others
                used = clients if n % 3 == 0 else clients[:1]
                for client in used:
                    await _steal(client, victim)
            # listings of the thief's own sessions never show the victims' keys
            own = (await call(thief_streamable, "session_info"))["session"]
            for client, args in (
                (thief_streamable, {}),
                (thief_sse, {}),
                (pop.stateless[thief], {"session": own}),
            ):
                keys = (await call(client, "memory_list_keys", pattern="*", **args))["keys"]
                assert not [k for k in keys if "-only-" in k or k == "owner"], keys
                values = (await call(client, "memory_get_all", **args))["values"]
                assert values == {} or "owner" not in values
                assert (await call(client, "checkpoint_list", **args))["checkpoints"] == []
                CHECKS["own listings show no other principal's data"] += 3
    after = {s.session: await read_state(s.client, s.session) for s in pop.sessions}
    assert after == before
    CHECKS["victim sessions unchanged afterwards"] += len(after)


async def _steal(client: Client, victim: Owned) -> None:
    unknown = secrets.token_urlsafe(24)
    for tool, template in CROSS_ARGS.items():
        args = {
            k: victim.checkpoint if v == "<victim checkpoint>" else v for k, v in template.items()
        }
        stolen = answer(await client.call_tool(tool, {**args, "session": victim.session}))
        baseline = answer(await client.call_tool(tool, {**args, "session": unknown}))
        assert stolen == baseline, (tool, victim.binding, stolen, baseline)
        if tool != "session_close":
            assert stolen[0] and stolen[1].startswith("SESSION_NOT_FOUND: "), (tool, stolen)
        CHECKS[f"stolen session id: {tool}"] += 1
    # the victim's checkpoint, into the thief's own session
    own = None
    if client.protocol_version == "2026-07-28":
        own = (await call(client, "session_open", ttl_seconds=60))["session"]
    mine = {"session": own} if own else {}
    forged = f"ck_{secrets.token_urlsafe(16)}.{secrets.token_urlsafe(16)}"  # a well-formed id
    for tool in ("checkpoint_restore", "checkpoint_delete"):
        stolen = answer(await client.call_tool(tool, {"checkpoint_id": victim.checkpoint, **mine}))
        baseline = answer(await client.call_tool(tool, {"checkpoint_id": forged, **mine}))
        assert stolen == baseline, (tool, stolen, baseline)
        CHECKS[f"victim checkpoint into own session: {tool}"] += 1
    if own:
        await call(client, "session_close", session=own)
    # the resource
    uri = f"memory://session/{victim.session}"
    assert await resource_error(client, uri) == await resource_error(
        client, f"memory://session/{unknown}"
    )
    CHECKS["stolen session id: resources/read"] += 1


async def test_subscriptions_do_not_cross_principals(server: Server, pop: Population) -> None:
    """2025 ``resources/subscribe`` to another principal's session is refused like an
    unknown one and delivers nothing; the owner's own subscription does deliver."""
    url = server.process.url
    for thief in TOKENS:
        victims = [s for s in pop.sessions if s.principal != thief]
        owner_inbox, thief_inbox = Inbox(), Inbox()
        async with (
            connect(url, victims[0].principal, "streamable", owner_inbox) as owner,
            connect(url, thief, "streamable", thief_inbox) as watcher,
        ):
            for victim in victims:
                uri = f"memory://session/{victim.session}"
                unknown = f"memory://session/{secrets.token_urlsafe(24)}"
                with pytest.raises(MCPError) as stolen:
                    await watcher.subscribe_resource(uri)
                with pytest.raises(MCPError) as baseline:
                    await watcher.subscribe_resource(unknown)
                assert stolen.value.error.message == baseline.value.error.message
                CHECKS["resources/subscribe to another principal's session"] += 1
            watched = victims[0]
            uri = f"memory://session/{watched.session}"
            await owner.subscribe_resource(uri)
            args = {"session": watched.session} if watched.binding == "handle" else {}
            await call(watched.client, "memory_set", key="ping", value=1, **args)
            with anyio.fail_after(5):
                while uri not in owner_inbox.uris:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            await anyio.sleep(QUIET_SECONDS)
            assert thief_inbox.uris == []
            CHECKS["resources/subscribe: owner hears, thief does not"] += 1


async def _listen(client: Client, uri: str, heard: list[str], ready: anyio.Event) -> None:
    """Listen on ``uri`` until cancelled, noting each event's URI (or ``refused``)."""
    try:
        async with client.listen(resource_subscriptions=[uri]) as events:
            ready.set()
            async for event in events:
                heard.append(getattr(event, "uri", ""))
    except MCPError:
        heard.append("refused")
        ready.set()


async def test_listen_does_not_cross_principals(server: Server, pop: Population) -> None:
    """2026 ``subscriptions/listen`` on another principal's session URI delivers no
    updates (refused, or acknowledged without them); the owner's listen does."""
    url = server.process.url
    for thief in TOKENS:
        victim = pop.of("alice" if thief == "bob" else "bob")[0]
        uri = f"memory://session/{victim.session}"
        owner_heard: list[str] = []
        thief_heard: list[str] = []
        async with (
            connect(url, victim.principal, "stateless") as owner,
            connect(url, thief, "stateless") as watcher,
            anyio.create_task_group() as tg,
        ):
            owner_ready, thief_ready = anyio.Event(), anyio.Event()
            tg.start_soon(_listen, owner, uri, owner_heard, owner_ready)
            tg.start_soon(_listen, watcher, uri, thief_heard, thief_ready)
            with anyio.fail_after(10):
                await owner_ready.wait()
                await thief_ready.wait()
            args = {"session": victim.session} if victim.binding == "handle" else {}
            await call(victim.client, "memory_set", key="ping", value=2, **args)
            with anyio.fail_after(5):
                while uri not in owner_heard:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            await anyio.sleep(QUIET_SECONDS)
            tg.cancel_scope.cancel()
        assert uri not in thief_heard, thief_heard
        how = "refused" if "refused" in thief_heard else "acknowledged, nothing delivered"
        CHECKS[f"subscriptions/listen: owner hears, thief {how}"] += 1


# --- closed and expired sessions --------------------------------------------------------


async def test_closed_and_expired_sessions_stay_gone(server: Server) -> None:
    url = server.process.url
    async with (
        connect(url, "alice", "stateless") as alice,
        connect(url, "bob", "stateless") as bob,
    ):
        unknown = secrets.token_urlsafe(24)
        gone_text = answer(await alice.call_tool("memory_get", {"key": "k", "session": unknown}))

        # closed by its owner: gone for everyone, like an unknown handle
        handle = (await call(alice, "session_open"))["session"]
        await call(alice, "memory_set", key="k", value=1, session=handle)
        checkpoint = (await call(alice, "checkpoint_create", session=handle))["checkpoint_id"]
        assert await call(alice, "session_close", session=handle) == {"closed": True}
        for client in (alice, bob):
            got = answer(await client.call_tool("memory_get", {"key": "k", "session": handle}))
            assert got == gone_text
            set_again = await client.call_tool(
                "memory_set", {"key": "k", "value": 2, "session": handle}
            )
            assert answer(set_again) == answer(
                await client.call_tool("memory_set", {"key": "k", "value": 2, "session": unknown})
            )
            CHECKS["closed handle fails"] += 2
        # its retained checkpoint: restorable by alice into a new session, not by bob
        fresh = (await call(alice, "session_open"))["session"]
        await call(alice, "checkpoint_restore", checkpoint_id=checkpoint, session=fresh)
        assert (await call(alice, "memory_get", key="k", session=fresh))["value"] == 1
        bobs = (await call(bob, "session_open"))["session"]
        forged = f"ck_{session_tag(unknown)}.{secrets.token_urlsafe(16)}"
        assert answer(
            await bob.call_tool(
                "checkpoint_restore", {"checkpoint_id": checkpoint, "session": bobs}
            )
        ) == answer(
            await bob.call_tool("checkpoint_restore", {"checkpoint_id": forged, "session": bobs})
        )
        assert (await call(bob, "memory_list_keys", session=bobs))["keys"] == []
        CHECKS["retained checkpoint: owner restores, other principal cannot"] += 2

        # a connection-bound session after its connection closed
        async with connect(url, "alice", "sse") as conn:
            await call(conn, "memory_set", key="k", value=3)
            bound = (await call(conn, "session_info"))["session"]
        with anyio.fail_after(10):
            while True:
                got = answer(await alice.call_tool("memory_get", {"key": "k", "session": bound}))
                if got == gone_text:
                    break
                await anyio.sleep(0.05)
        CHECKS["connection-bound session gone after disconnect"] += 1

        # expired: a 1-second lease, left idle
        short = (await call(alice, "session_open", ttl_seconds=1))["session"]
        await call(alice, "memory_set", key="k", value=4, session=short)
        await anyio.sleep(1.3)
        for client in (alice, bob):
            got = answer(await client.call_tool("memory_get", {"key": "k", "session": short}))
            assert got == gone_text
            CHECKS["expired handle fails"] += 1
        message = await resource_error(alice, f"memory://session/{short}")
        assert message == await resource_error(alice, f"memory://session/{unknown}")
        CHECKS["expired handle: resources/read fails"] += 1


async def test_failed_close_by_another_principal_does_not_touch_accounting(
    server: Server,
) -> None:
    """bob's ``session_close`` on alice's handle (closed=false) must not drop
    alice's live session from the process's open-session count."""
    url = server.process.url
    async with (
        connect(url, "alice", "stateless") as alice,
        connect(url, "bob", "stateless") as bob,
    ):

        async def open_sessions() -> int:
            result = await alice.read_resource("memory://health", cache_mode="bypass")
            return int(json.loads(resource_text(result))["sessions_open"])

        async def settled_count() -> int:
            # the count is process-wide: earlier tests' connections may still be tearing
            # their sessions down; wait (bounded) until it stops moving
            previous = await open_sessions()
            with anyio.fail_after(10):
                while True:
                    await anyio.sleep(0.3)
                    current = await open_sessions()
                    if current == previous:
                        return current
                    previous = current

        handle = (await call(alice, "session_open"))["session"]
        count = await settled_count()
        assert await call(bob, "session_close", session=handle) == {"closed": False}
        assert await call(alice, "session_info", session=handle)
        assert await open_sessions() == count
        await call(alice, "session_close", session=handle)
        assert await open_sessions() == count - 1
        CHECKS["failed cross-principal close leaves accounting alone"] += 1
