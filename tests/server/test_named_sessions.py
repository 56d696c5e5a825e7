"""Named sessions, the default session and ids that grant nothing, over real transports.

stdio subprocesses, streamable HTTP in both eras and SSE, with the repo's own ``mcp``
client and raw HTTP; Redis where memory must outlive a process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from pydantic import ValidationError

from mcp_server.binding import SESSION_HEADER
from mcp_server.http import create_app
from mcp_server.server import WorkingMemoryServer
from mcp_server.settings import Settings
from memory_core.keys import session_tag
from tests.server.e2e import (
    RawStreamable,
    RunningServer,
    StdioProcess,
    bearer,
    call,
    error,
    serve_in_thread,
)
from tests.server.helpers import agent

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"


def _headers(name: str | None, token: str | None = None) -> dict[str, str]:
    return {**bearer(token), **({SESSION_HEADER: name} if name is not None else {})}


@asynccontextmanager
async def _streamable(
    url: str, name: str | None, *, token: str | None = None, mode: str = "legacy"
) -> AsyncIterator[Client]:
    async with (
        create_mcp_http_client(headers=_headers(name, token)) as http,
        Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode) as c,
    ):
        yield c


@asynccontextmanager
async def _sse(url: str, name: str | None, *, token: str | None = None) -> AsyncIterator[Client]:
    async with Client(sse_client(url + "/sse", headers=_headers(name, token)), mode="legacy") as c:
        yield c


def _transports(url: str, name: str | None, token: str | None = None) -> list[Any]:
    return [
        _streamable(url, name, token=token),
        _streamable(url, name, token=token, mode="auto"),  # the stateless 2026-07-28 era
        _sse(url, name, token=token),
    ]


@pytest.fixture
def http_redis(redis_backend: str, key_prefix: str) -> Iterator[RunningServer]:
    settings = Settings(
        transport="http",
        redis_url=redis_backend,
        key_prefix=key_prefix,
        auth_tokens=f"{ALICE}=alice,{BOB}=bob",
    )
    with serve_in_thread(create_app(settings)) as running:
        yield running


@pytest.fixture
def http_off() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(Settings(transport="http", default_session="off"))) as s:
        yield s


# --- HTTP: one name, per-call connections ---------------------------------------------


async def test_per_call_connections_with_one_name_share_memory(http_redis: RunningServer) -> None:
    url = http_redis.url
    # a new connection per call, on every transport, as langchain-mcp-adapters does
    for n, connection in enumerate(_transports(url, "project x", ALICE)):
        async with connection as client:
            await call(client, "memory_set", key=f"k{n}", value=n)
    for connection in _transports(url, "project x", ALICE):
        async with connection as client:
            keys = (await call(client, "memory_list_keys"))["keys"]
            assert keys == ["k0", "k1", "k2"]
            assert (await call(client, "session_info"))["binding"] == "named"
    # never across principals, nor across names, nor to unnamed connections
    for name, token in (("project x", BOB), ("project y", ALICE), (None, ALICE)):
        for connection in _transports(url, name, token):
            async with connection as client:
                assert (await call(client, "memory_list_keys"))["keys"] == [], (name, token)


async def test_a_named_session_outlives_its_connection(http_redis: RunningServer) -> None:
    async with _streamable(http_redis.url, "kept", token=ALICE) as client:
        await call(client, "memory_set", key="k", value="v")
        assert (await call(client, "session_info"))["binding"] == "named"
    # the handshake connection ended (DELETE), and a named session is not torn down
    async with _sse(http_redis.url, "kept", token=ALICE) as client:
        assert (await call(client, "memory_get", key="k"))["value"] == "v"


async def test_raw_http_header_binds_the_request_and_the_connection(
    http_redis: RunningServer,
) -> None:
    async with httpx2.AsyncClient(headers=_headers("raw", ALICE)) as http:
        raw = RawStreamable(http, http_redis.url + "/mcp")
        await raw.initialize()
        await raw.tool("memory_set", key="k", value=1)
    async with httpx2.AsyncClient(headers=bearer(ALICE)) as http:
        raw = RawStreamable(http, http_redis.url + "/mcp")
        await raw.initialize()
        assert (await raw.tool("memory_get", key="k"))["found"] is False  # no header: its own
        message = await raw.request(
            "tools/call", {"name": "session_open", "arguments": {"name": "raw"}}
        )
        info = message["result"]["structuredContent"]
        assert info["resumed"] is True
        assert (await raw.tool("memory_get", key="k", session=info["session"]))["value"] == 1


async def test_bad_header_names_are_refused(http_redis: RunningServer) -> None:
    async with _streamable(http_redis.url, "x" * 129, token=ALICE, mode="auto") as client:
        text = await error(client, "memory_set", key="k", value=1)
        assert text.startswith("INVALID_ARGUMENT: ") and SESSION_HEADER in text
    for raw_name, ok in (("名前 ☃".encode(), True), (b"\xff\xfe", False)):
        headers = {b"Authorization": f"Bearer {ALICE}".encode(), SESSION_HEADER.encode(): raw_name}
        async with httpx2.AsyncClient(headers=headers) as h:
            raw = RawStreamable(h, http_redis.url + "/mcp")
            await raw.initialize()
            message = await raw.request(
                "tools/call", {"name": "memory_set", "arguments": {"key": "k", "value": 1}}
            )
            assert message["result"].get("isError", False) is not ok, message
    async with _streamable(http_redis.url, None, token=ALICE) as client:
        opened = await call(client, "session_open", name="名前 ☃")  # UTF-8 header = this name
        assert opened["resumed"] is True


# --- the default session for stateless requests ----------------------------------------


async def test_a_default_mode_client_first_call_works(http_redis: RunningServer) -> None:
    async with _streamable(http_redis.url, None, token=ALICE, mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        await call(client, "memory_set", key="k", value=1)
        info = await call(client, "session_info")
        assert info["binding"] == "default"
        handle = (await call(client, "session_open"))["session"]
        assert (await call(client, "memory_get", key="k", session=handle))["found"] is False
        await call(client, "memory_set", key="h", value=2, session=handle)
    async with _streamable(http_redis.url, None, token=ALICE, mode="auto") as client:
        assert (await call(client, "memory_list_keys"))["keys"] == ["k"]  # a later request
    async with _streamable(http_redis.url, None, token=BOB, mode="auto") as client:
        assert (await call(client, "memory_list_keys"))["keys"] == []  # another principal's


async def test_default_session_off_requires_a_session(http_off: RunningServer) -> None:
    async with _streamable(http_off.url, None, mode="auto") as client:
        text = await error(client, "memory_set", key="k", value=1)
        assert text.startswith("SESSION_REQUIRED: ")
    async with _streamable(http_off.url, "n", mode="auto") as client:  # a name still works
        await call(client, "memory_set", key="k", value=1)


# --- session_open(name=...) ----------------------------------------------------------------


async def test_session_open_by_name(server: WorkingMemoryServer) -> None:
    async with agent(server, "legacy") as a, agent(server, "legacy") as b:
        first = await a.call("session_open", name="shared ☃")
        assert first["resumed"] is False
        await a.call("memory_set", key="k", value=1, session=first["session"])
        second = await b.call("session_open", name="shared ☃")
        assert second["resumed"] is True and second["session"] == first["session"]
        assert (await b.call("memory_get", key="k", session=second["session"]))["value"] == 1
        for bad in ("", "a\nb", "x" * 129):
            text = await a.fail("session_open", {"name": bad})
            assert text.startswith("INVALID_ARGUMENT: ") and "session name" in text


def test_bad_session_name_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="control characters"):
        Settings(session_name="a\x01b")
    with pytest.raises(ValidationError):
        Settings(default_session="maybe")
    assert Settings(default_session="OFF").default_session == "off"


# --- stdio: WM_SESSION_NAME ----------------------------------------------------------------


def _stdio(redis_url: str, prefix: str, name: str | None) -> StdioProcess:
    env = {"WM_REDIS_URL": redis_url, "WM_KEY_PREFIX": prefix}
    if name is not None:
        env["WM_SESSION_NAME"] = name
    proc = StdioProcess(env)
    proc.initialize()
    return proc


def test_stdio_processes_with_one_name_share_memory(redis_backend: str, key_prefix: str) -> None:
    first = _stdio(redis_backend, key_prefix, "ide")
    try:
        first.tool("memory_set", key="k", value="kept")
        first.tool("checkpoint_create", label="before restart")
        assert first.tool("session_info")["binding"] == "process"
    finally:
        first.close()  # a restart: the named session is not torn down
    together = [_stdio(redis_backend, key_prefix, "ide") for _ in range(2)]
    others = [_stdio(redis_backend, key_prefix, n) for n in ("other", None, None)]
    try:
        for proc in together:
            assert proc.tool("memory_get", key="k")["value"] == "kept"
            assert [c["label"] for c in proc.tool("checkpoint_list")["checkpoints"]] == [
                "before restart"
            ]
        together[0].tool("memory_set", key="live", value=1)
        assert together[1].tool("memory_get", key="live")["value"] == 1
        others[1].tool("memory_set", key="mine", value=1)
        for proc in others:
            assert proc.tool("memory_get", key="k")["found"] is False
        assert others[2].tool("memory_get", key="mine")["found"] is False  # unnamed: isolated
    finally:
        for proc in together + others:
            proc.close()


def test_stdio_name_on_the_memory_store_says_it_cannot_outlive_the_process() -> None:
    proc = StdioProcess({"WM_SESSION_NAME": "ide"})
    try:
        proc.initialize()
        proc.tool("memory_set", key="k", value=1)
        assert proc.proc.stdin is not None
        proc.proc.stdin.close()
        proc.wait(10)
        log = proc.stderr()
    finally:
        proc.close()
    assert log.count("cannot outlive this process") == 1


# --- ids grant nothing ---------------------------------------------------------------------


async def test_no_part_of_a_checkpoint_id_or_a_text_works_as_a_session(
    server: WorkingMemoryServer,
) -> None:
    async with agent(server, "legacy") as a, agent(server, "legacy") as b:
        await a.call("memory_set", key="secret", value=1)
        handle = (await a.call("session_info"))["session"]
        checkpoint = (await a.call("checkpoint_create", label="x"))["checkpoint_id"]
        listed = await a.call("checkpoint_list")
        state = await a.state()
        texts = [checkpoint, str(listed), str(state)]
        assert checkpoint.startswith(f"ck_{session_tag(handle)}.")
        for text in texts:
            assert handle not in text
        # every substring long enough to be a session id, and the tag itself
        candidates = {
            checkpoint[i:j]
            for i in range(len(checkpoint))
            for j in range(i + 22, len(checkpoint) + 1)
        } | {session_tag(handle)}
        for candidate in sorted(candidates):
            result = await b.raw("memory_get", {"key": "secret", "session": candidate})
            assert result.is_error, candidate
        # the other connection sees the checkpoint id but cannot restore it: a's session lives
        text = await b.fail("checkpoint_restore", {"checkpoint_id": checkpoint})
        assert text.startswith("NOT_FOUND: ")


# --- recovery after a restart ----------------------------------------------------------


def test_a_new_unnamed_process_lists_and_restores_an_earlier_checkpoint(
    redis_backend: str, key_prefix: str
) -> None:
    first = _stdio(redis_backend, key_prefix, None)
    try:
        first.tool("memory_set", key="plan", value="step 3 of 5")
        made = first.tool("checkpoint_create", label="before restart")["checkpoint_id"]
    finally:
        first.close()  # killed, as a crash: its lease outlives it, the teardown never ran
    second = _stdio(redis_backend, key_prefix, None)
    try:
        listed = second.tool("checkpoint_list")
        assert listed["checkpoints"] == []
        # the crashed process's session still holds its lease: not offered yet
        assert made not in [c["id"] for c in listed["from_earlier_sessions"]]
    finally:
        second.close()
    third = StdioProcess({"WM_REDIS_URL": redis_backend, "WM_KEY_PREFIX": key_prefix})
    try:
        third.initialize()
        third.tool("memory_set", key="plan", value="ended cleanly")
        ended = third.tool("checkpoint_create", label="clean exit")["checkpoint_id"]
        assert third.proc.stdin is not None
        third.proc.stdin.close()  # end of input: the session is torn down, checkpoints kept
        third.wait(10)
    finally:
        third.close()
    fourth = _stdio(redis_backend, key_prefix, None)
    try:
        earlier = fourth.tool("checkpoint_list")["from_earlier_sessions"]
        assert [c["id"] for c in earlier] == [ended]
        assert earlier[0]["label"] == "clean exit"
        assert fourth.tool("memory_get", key="plan")["found"] is False
        fourth.tool("checkpoint_restore", checkpoint_id=ended)
        assert fourth.tool("memory_get", key="plan")["value"] == "ended cleanly"
        handle = fourth.tool("session_info")["session"]
        # with an explicit session only that session's own are listed
        assert fourth.tool("checkpoint_list", session=handle)["from_earlier_sessions"] == []
    finally:
        fourth.close()


async def test_earlier_checkpoints_never_cross_principals(http_redis: RunningServer) -> None:
    async with _streamable(http_redis.url, None, token=ALICE) as client:
        made = (await call(client, "checkpoint_create", label="alice's"))["checkpoint_id"]
    async with _streamable(http_redis.url, None, token=BOB) as client:
        assert (await call(client, "checkpoint_list"))["from_earlier_sessions"] == []
        text = await error(client, "checkpoint_restore", checkpoint_id=made)
        assert text.startswith("NOT_FOUND: ")
    async with _streamable(http_redis.url, None, token=ALICE) as client:
        earlier = (await call(client, "checkpoint_list"))["from_earlier_sessions"]
        assert [c["id"] for c in earlier] == [made]
