"""No subscription crosses principals: ``subscriptions/listen`` (2026-07-28) delivers
updates only for the caller's own sessions, and ``resources/subscribe`` (2025) refuses
another principal's handle exactly as it refuses an unknown one. Over real HTTP with
bearer tokens, so the principals are the tokens'."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp.client.subscriptions import Subscription
from mcp.shared.exceptions import MCPError

from mcp_server.events.requests import MAX_LISTEN_URIS
from mcp_server.http import create_app
from mcp_server.settings import Settings
from tests.server.e2e import RunningServer, call, serve_in_thread, streamable_client
from tests.server.helpers import agent
from tests.support.results import updated_uri

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"
UNKNOWN = "memory://session/" + "Q" * 32

pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


@pytest.fixture(scope="module")
def http_auth() -> Iterator[RunningServer]:
    settings = Settings(transport="http", auth_tokens=f"{ALICE}=alice,{BOB}=bob")
    with serve_in_thread(create_app(settings)) as running:
        yield running


async def next_uri(sub: Subscription) -> str:
    with anyio.fail_after(3):
        async for event in sub:
            return updated_uri(event)
    raise AssertionError("the listen stream ended")


@asynccontextmanager
async def sessions(url: str) -> AsyncIterator[tuple[Any, str, Any, str]]:
    async with (
        streamable_client(url, token=ALICE, mode="auto") as alice,
        streamable_client(url, token=BOB, mode="auto") as bob,
    ):
        alice_handle = (await call(alice, "session_open"))["session"]
        bob_handle = (await call(bob, "session_open"))["session"]
        yield alice, alice_handle, bob, bob_handle


async def test_listen_never_delivers_another_principals_session(
    http_auth: RunningServer,
) -> None:
    async with sessions(http_auth.url) as (alice, alice_handle, bob, bob_handle):
        alice_uri = f"memory://session/{alice_handle}"
        bob_uri = f"memory://session/{bob_handle}"
        async with bob.listen(resource_subscriptions=[alice_uri, UNKNOWN, bob_uri]) as sub:
            # honored like an unknown URI: the ack does not tell whose the session is
            assert sub.honored.resource_subscriptions is not None
            assert set(sub.honored.resource_subscriptions) == {alice_uri, UNKNOWN, bob_uri}
            for round_ in range(2):
                # alice's write is published first: were it delivered, it would come first
                await call(alice, "memory_set", key="k", value=round_, session=alice_handle)
                await call(bob, "memory_set", key="k", value=round_, session=bob_handle)
                assert await next_uri(sub) == bob_uri
        # alice herself hears her session
        async with alice.listen(resource_subscriptions=[alice_uri]) as sub:
            await call(alice, "scratchpad_append", content="x", session=alice_handle)
            assert await next_uri(sub) == alice_uri


async def test_resources_subscribe_refuses_another_principals_session(
    http_auth: RunningServer,
) -> None:
    async with (
        streamable_client(http_auth.url, token=ALICE) as alice,
        streamable_client(http_auth.url, token=BOB) as bob,
    ):
        handle = (await call(alice, "session_open"))["session"]
        own = (await call(alice, "session_info"))["session"]
        for uri in (f"memory://session/{handle}", f"memory://session/{own}", UNKNOWN):
            with pytest.raises(MCPError, match=r"^SESSION_NOT_FOUND: ") as refused:
                await bob.subscribe_resource(uri)
            assert handle not in str(refused.value) and own not in str(refused.value)
        await alice.subscribe_resource(f"memory://session/{handle}")  # the owner may


async def test_listen_bounds_the_uris_of_one_stream(server: Any) -> None:
    async with agent(server, "stateless") as a:
        uris = [f"memory://session/{i:032d}" for i in range(MAX_LISTEN_URIS + 1)]
        with pytest.raises(MCPError, match=r"^INVALID_ARGUMENT: "):
            async with a.client.listen(resource_subscriptions=uris):
                pass


async def test_listen_checks_each_uri_but_fires_only_for_sessions(server: Any) -> None:
    """Non-session URIs and ``current`` are honored and never fire; a session of the
    same principal (here: anonymous) does."""
    async with agent(server, "stateless") as a, agent(server, "stateless") as other:
        own = f"memory://session/{a.handle}"
        theirs = f"memory://session/{other.handle}"
        odd = ["memory://health", "memory://session/current", "memory://session/bad handle"]
        async with a.client.listen(resource_subscriptions=[*odd, theirs, own]) as sub:
            await other.call("memory_set", key="k", value=1)
            assert await next_uri(sub) == theirs
            await a.call("memory_set", key="k", value=1)
            assert await next_uri(sub) == own
