"""Hostile input: property-based fuzzing of every tool's arguments through the real
MCP path, in-process in both protocol eras (memory and Redis stores) and over real
streamable HTTP with bearer tokens; hand-made hostile request bodies over HTTP.

Every answer must be a well-formed result (success, or ``isError`` with a stable
``CODE: sentence``), never a protocol error or a crash (no ``INTERNAL_ERROR``, no
traceback in the server log), never a change to another session (a sentinel
session, and another principal's over HTTP, compared after every case), and never
an internal detail on the wire (tracebacks, source paths, Redis key names).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import encode_header_value
from mcp_types import PARSE_ERROR, CallToolResult
from pydantic_core import PydanticSerializationError

from mcp_server import wire
from mcp_server.runtime import build_store
from mcp_server.server import create_server
from mcp_server.settings import Settings
from mcp_server.tools import TOOL_NAMES
from memory_core.keys import session_tag
from tests.reliability.conftest import FULL, scale
from tests.reliability.fuzz_support import (
    CODE_RE,
    FORBIDDEN_CODES,
    KNOWN_CODES,
    Outcomes,
    leaks,
    substitute,
    texts,
    tool_arguments,
)
from tests.reliability.load_support import ServerProcess, write_results
from tests.server.e2e import streamable_client
from tests.support.redis_keys import delete_prefix, delete_prefix_at
from tests.support.results import resource_text, tool_text

pytestmark = [
    pytest.mark.timeout(900 if FULL else 120),
    # resources/subscribe is what 2025-era clients speak; the SDK marks it deprecated
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]

INPROC_EXAMPLES = scale(12, 60)
HTTP_EXAMPLES = scale(4, 25)
RESOURCE_EXAMPLES = scale(20, 100)
ALICE = "alice-token-" + "a" * 16
BOB = "bob-token-" + "b" * 16
MAX_BODY = 1024 * 1024
OUTCOMES = Outcomes()
KEY_RE_TEMPLATE = (
    r"^{prefix}:(\{{[A-Za-z0-9_-]{{22}}\}}:"
    r"(meta|meta:closed|vars|exp|pad|cpm|cp:ck_[A-Za-z0-9_.-]+)"
    r"|\{{p[A-Za-z0-9_-]{{22}}\}}:(rcp|rcpm))$"
)


def _settings(**overrides: Any) -> settings:
    return settings(
        max_examples=overrides.pop("max_examples"),
        deadline=None,
        database=None,
        derandomize=not FULL,  # make test: the same cases every run; full: new ones
        suppress_health_check=list(HealthCheck),
        **overrides,
    )


# --- one fuzzing target: a client to fuzz with, sessions that must not change ---------


@dataclass
class Target:
    suite: str
    fuzz: Client
    stateless: bool
    ids: dict[str, str]
    watchers: list[tuple[Client, str]]  # (client, session uri) that must stay unchanged
    secrets: list[str]
    max_body: int | None = None  # over HTTP: bodies past the limit must be refused
    before: list[dict[str, Any]] = field(default_factory=list)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def own(self) -> str:
        return self.ids["<<OWN>>"]

    async def state(self, client: Client, uri: str) -> dict[str, Any]:
        result = await client.read_resource(uri, cache_mode="bypass")
        state: dict[str, Any] = json.loads(resource_text(result))
        del state["expires_in"]
        return state

    async def watched(self) -> list[dict[str, Any]]:
        return [await self.state(client, uri) for client, uri in self.watchers]

    async def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        if self.stateless and tool != "session_open":
            args = {"session": self.ids["<<OWN>>"], **args}
        result = await self.fuzz.call_tool(tool, args)
        assert not result.is_error, result.content
        assert result.structured_content is not None
        return dict(result.structured_content)

    async def refresh_own(self) -> None:
        """(Re)open the session the fuzzer works in, with a checkpoint of its own."""
        if self.stateless:
            opened = await self.fuzz.call_tool("session_open", {})
            assert opened.structured_content is not None
            self.ids["<<OWN>>"] = opened.structured_content["session"]
        else:
            self.ids["<<OWN>>"] = (await self.call("session_info", {}))["session"]
        self.ids["<<OWN_CP>>"] = (await self.call("checkpoint_create", {"label": "own"}))[
            "checkpoint_id"
        ]

    async def case(self, tool: str, raw: dict[str, Any]) -> str:
        """One fuzz case: the call, its checks, and the watched sessions after it."""
        args = substitute(raw, self.ids)
        sent = repr(args)
        body = _json_size(args)
        try:
            result = await self.fuzz.call_tool(tool, args)
        except CLIENT_SIDE as exc:
            # the SDK client could not serialize the request (a lone surrogate in a
            # dict key, nesting past its depth limit): nothing reached the server
            assert _client_side(exc), exc
            return "unsendable (client)"
        except MCPError as exc:
            if self.max_body is not None and body > self.max_body:
                outcome = "refused (body over limit)"
            elif exc.error.code == PARSE_ERROR and _depth(args) + 4 > wire.MAX_DEPTH - 10:
                # every transport refuses a message nested past pydantic's parser limit
                assert "nested deeper than" in exc.error.message, exc
                outcome = "refused (nested too deeply)"
            else:
                raise AssertionError(f"protocol error for {tool} {sent[:300]}: {exc!r}") from exc
        else:
            if self.max_body is not None and body > self.max_body + 4096:
                raise AssertionError(f"a {body}-byte body was not refused")
            outcome = self.check(tool, result, sent)
            closed = outcome == "ok" and (result.structured_content or {}).get("closed")
            if tool == "session_close" and closed and args.get("session") in (None, self.own):
                await self.refresh_own()
        after = await self.watched()
        assert after == self.before, f"{tool} {sent[:300]} changed another session"
        return outcome

    def check(self, tool: str, result: CallToolResult, sent: str) -> str:
        texts_out = [getattr(c, "text", "") for c in result.content]
        if not result.is_error:
            assert result.structured_content is not None, f"{tool}: success without content"
            return "ok"
        assert len(texts_out) == 1, texts_out
        text = texts_out[0]
        match = CODE_RE.match(text)
        assert match, f"{tool}: malformed error {text[:200]!r} for {sent[:300]}"
        code = match.group(1)
        assert code in KNOWN_CODES, f"{tool}: unknown code {code} for {sent[:300]}: {text[:200]}"
        assert code not in FORBIDDEN_CODES, f"{tool}: {text[:200]} for {sent[:300]}"
        found = leaks(text, sent, self.secrets)
        assert not found, f"{tool}: {found} on the wire: {text[:300]}"
        return code


CLIENT_SIDE = (UnicodeEncodeError, PydanticSerializationError, ValueError)


def _client_side(exc: BaseException) -> bool:
    """True when ``exc`` was raised while the client serialized the request."""
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    return not any("/mcp_server/" in f or "/memory_core/" in f for f in frames) and any(
        "pydantic" in f or "mcp/shared" in f or "mcp/client" in f for f in frames[-3:]
    )


def _json_size(args: dict[str, Any]) -> int:
    try:
        return len(json.dumps(args, ensure_ascii=False, default=str).encode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return 0


async def _prepare(
    target: Target, sentinel: Client, sentinel_handle: str, closed: str, others: dict[str, str]
) -> None:
    """Fill the sentinel, note the ids the fuzzer aims at, snapshot the watched state."""
    s = {"session": sentinel_handle}
    for key, value in (("plan", {"steps": [1, 2, 3]}), ("a" * 256, "long"), ("*", "star")):
        await sentinel.call_tool("memory_set", {"key": key, "value": value, **s})
    await sentinel.call_tool("task_state_set", {"task_id": "t", "status": "in_progress", **s})
    await sentinel.call_tool("scratchpad_append", {"content": "sentinel note", **s})
    cp = await sentinel.call_tool("checkpoint_create", {"label": "sentinel", **s})
    assert cp.structured_content is not None
    target.ids |= {
        "<<SENTINEL>>": sentinel_handle,
        "<<SENTINEL_CP>>": cp.structured_content["checkpoint_id"],
        "<<CLOSED>>": closed,
        **others,
    }
    await target.refresh_own()
    target.schemas = {t.name: t.input_schema for t in (await target.fuzz.list_tools()).tools}
    target.before = await target.watched()


@asynccontextmanager
async def inproc_target(kind: str, redis_url: str | None) -> AsyncIterator[Target]:
    """In-process SDK clients (``legacy``: handshake; ``stateless``: 2026-07-28)."""
    era, store_kind = kind.split("-")
    prefix = f"wmf{uuid.uuid4().hex[:10]}"
    config = Settings(
        transport="http",
        log_level="WARNING",
        redis_url=redis_url if store_kind == "redis" else None,
        key_prefix=prefix,
    )
    store = build_store(config)
    await store.start()
    try:
        server = create_server(config, store)
        async with (
            Client(server, mode="legacy" if era == "legacy" else "auto") as fuzz,
            Client(server) as sentinel,
        ):
            opened = await sentinel.call_tool("session_open", {})
            closing = await sentinel.call_tool("session_open", {})
            assert opened.structured_content and closing.structured_content
            handle = opened.structured_content["session"]
            closed = closing.structured_content["session"]
            await sentinel.call_tool("session_close", {"session": closed})
            target = Target(
                suite=kind,
                fuzz=fuzz,
                stateless=era == "stateless",
                ids={"<<PREFIX>>": prefix},
                watchers=[(sentinel, f"memory://session/{handle}")],
                secrets=[f"{prefix}:{{", "{" + handle + "}", "{" + session_tag(handle) + "}"],
            )
            unknown = secrets.token_urlsafe(24)  # same principal here: "other" is unknown
            others = {"<<OTHER>>": unknown, "<<OTHER_CP>>": f"ck_{session_tag(unknown)}.{'A' * 22}"}
            await _prepare(target, sentinel, handle, closed, others)
            target.secrets.append("{" + target.ids["<<OWN>>"] + "}")
            yield target
            # the fuzzed session still renders whatever hostile data it now holds
            await target.state(fuzz, f"memory://session/{target.ids['<<OWN>>']}")
        if store_kind == "redis":
            await _check_redis_keys(redis_url, prefix)
    finally:
        await store.close()


async def _check_redis_keys(redis_url: str | None, prefix: str) -> None:
    """Every key the fuzzing left is one of the layout's names, and none is immortal."""
    import redis.asyncio as aioredis

    assert redis_url is not None
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        pattern = re.compile(KEY_RE_TEMPLATE.format(prefix=re.escape(prefix)))
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        assert keys, "the fuzzed sessions left no keys at all: wrong prefix?"
        strays = [k for k in keys if not pattern.match(k)]
        assert strays == [], strays[:10]
        for key in keys:
            assert await client.pttl(key) > 0, f"{key} has no TTL"
        await delete_prefix(client, prefix)
    finally:
        await client.aclose()


# --- fixtures ------------------------------------------------------------------------


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as p:
        yield p


@pytest.fixture(scope="module")
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture(scope="module", autouse=True)
def _print_counts() -> Iterator[None]:
    yield
    if OUTCOMES.counts:
        print("\nfuzz cases run per tool and suite:\n" + OUTCOMES.table())
        write_results(
            f"fuzz-{'full' if FULL else 'short'}",
            {
                "total": OUTCOMES.total(),
                "counts": {f"{s}/{t}": dict(c) for (s, t), c in OUTCOMES.counts.items()},
                "table": OUTCOMES.table(),
            },
        )


def _optional_redis(request: pytest.FixtureRequest) -> str | None:
    try:
        return str(request.getfixturevalue("redis_url"))
    except pytest.skip.Exception:
        return None


INPROC_TARGETS = ("legacy-memory", "stateless-memory", "stateless-redis") + (
    ("legacy-redis",) if FULL else ()
)


@pytest.fixture(scope="module", params=INPROC_TARGETS)
def inproc(
    request: pytest.FixtureRequest, portal: BlockingPortal, error_log: ErrorLog
) -> Iterator[Target]:
    redis_url = None
    if request.param.endswith("redis"):
        redis_url = request.getfixturevalue("redis_url")
    with portal.wrap_async_context_manager(inproc_target(request.param, redis_url)) as target:
        yield target
    assert error_log.records == []


# --- in-process, both eras -----------------------------------------------------------


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_inprocess_tool_arguments(
    inproc: Target, portal: BlockingPortal, error_log: ErrorLog, tool: str
) -> None:
    schema = inproc.schemas[tool]

    @_settings(max_examples=INPROC_EXAMPLES)
    @given(tool_arguments(schema, allow_surrogates=True, own_session=inproc.stateless))
    def run(args: dict[str, Any]) -> None:
        OUTCOMES.add(inproc.suite, tool, portal.call(inproc.case, tool, args))

    run()
    assert error_log.records == [], error_log.records[:3]


def test_every_tool_is_fuzzed(inproc: Target) -> None:
    assert set(inproc.schemas) == set(TOOL_NAMES)


def test_unknown_tools_and_non_object_arguments(inproc: Target, portal: BlockingPortal) -> None:
    # the SDK's stateless client puts the tool name in an HTTP header and cannot
    # encode a lone surrogate there (a client-side error, before any request)
    @_settings(max_examples=scale(10, 60))
    @given(texts(allow_surrogates=not inproc.stateless))
    def run(name: str) -> None:
        if name in TOOL_NAMES:
            return
        OUTCOMES.add(inproc.suite, "(unknown tool)", portal.call(inproc.case, name, {}))

    run()


def _resource_uris() -> st.SearchStrategy[str]:
    hostile = texts(allow_surrogates=False)
    return st.one_of(
        hostile.map(lambda t: "memory://session/" + t),
        hostile,
        st.sampled_from(
            [
                "memory://session/current",
                "memory://session/<<SENTINEL>>x",
                "memory://session/{<<SENTINEL>>}",
                "memory://session/<<PREFIX>>:{<<SENTINEL>>}:vars",
                "memory://session/../health",
                "memory://session/<<CLOSED>>",
                "memory://session/<<OTHER>>",
                "memory://session/",
                "memory://health/../session/<<SENTINEL>>",
                "file:///etc/passwd",
                "memory://",
                "",
            ]
        ),
    )


@pytest.mark.parametrize("method", ["read", "subscribe"])
def test_resource_uris(inproc: Target, portal: BlockingPortal, method: str) -> None:
    """Resource reads and (2025-era) subscriptions with hostile URIs: a result or a
    JSON-RPC error whose message carries a code for session URIs, and no leak."""
    if method == "subscribe" and inproc.stateless:
        pytest.skip("resources/subscribe is a 2025-era method")

    async def one(raw: str) -> str:
        uri = substitute(raw, inproc.ids)
        try:
            if method == "read":
                await inproc.fuzz.read_resource(uri, cache_mode="bypass")
            else:
                await inproc.fuzz.subscribe_resource(uri)
                await inproc.fuzz.unsubscribe_resource(uri)
            outcome = "ok"
        except MCPError as exc:
            message = exc.error.message
            found = leaks(message, uri, inproc.secrets)
            assert not found, f"{found} in {message[:300]}"
            code = CODE_RE.match(message)
            if uri.startswith("memory://session/") and code is None:
                assert "Unknown resource" in message or "not found" in message.lower(), message
            outcome = code.group(1) if code else f"rpc {exc.error.code}"
        assert await inproc.watched() == inproc.before
        return outcome

    @_settings(max_examples=RESOURCE_EXAMPLES)
    @given(_resource_uris())
    def run(uri: str) -> None:
        OUTCOMES.add(inproc.suite, f"(resource {method})", portal.call(one, uri))

    run()


# --- regressions found by this suite -------------------------------------------------


async def test_regression_default_with_lone_surrogate_is_invalid_value() -> None:
    """memory_get echoed an unencodable ``default`` and crashed with INTERNAL_ERROR."""
    server = create_server(Settings(transport="http", log_level="WARNING"))
    async with Client(server, mode="legacy") as client:
        for default in ("\ud800", {"a": ["x\udfff"]}, [[[[0]]]] * 2):
            result = await client.call_tool("memory_get", {"key": "k", "default": default})
            text = tool_text(result)
            if default == [[[[0]]]] * 2:
                assert not result.is_error, text
            else:
                assert result.is_error and text.startswith("INVALID_VALUE: default: "), text


async def test_regression_star_heavy_glob_does_not_stall_the_server() -> None:
    """``*a*a*...*b`` against long keys backtracked exponentially in one regex,
    blocking the event loop for minutes; matching is now linear per segment."""
    server = create_server(Settings(transport="http", log_level="WARNING"))
    async with Client(server, mode="legacy") as client:
        for n in range(50):
            await client.call_tool("memory_set", {"key": "a" * 200 + str(n), "value": n})
        with anyio.fail_after(30):  # a liveness bound, not a performance target
            for pattern in ("*a" * 40 + "*b", "*a" * 255 + "*", "*?" * 256):
                for tool in ("memory_list_keys", "memory_get_all"):
                    result = await client.call_tool(tool, {"pattern": pattern[:512]})
                    assert not result.is_error, result.content


# --- over real streamable HTTP, two principals -----------------------------------------


@dataclass
class HttpServer:
    server: ServerProcess
    prefix: str
    redis_url: str | None


@pytest.fixture(scope="module")
def http_server(request: pytest.FixtureRequest) -> Iterator[HttpServer]:
    redis_url = _optional_redis(request)
    prefix = f"wmh{uuid.uuid4().hex[:10]}"
    env = {
        "WM_AUTH_TOKENS": f"{ALICE}=alice,{BOB}=bob",
        "WM_MAX_BODY_BYTES": str(MAX_BODY),
        "WM_KEY_PREFIX": prefix,
        "WM_CHECKPOINT_RETENTION_SECONDS": "120",
    }
    if redis_url:
        env["WM_REDIS_URL"] = redis_url
    server = ServerProcess(env).start()
    try:
        yield HttpServer(server, prefix, redis_url)
        assert server.crashes() == [], server.log()[-4000:]
    finally:
        server.cleanup()
        if redis_url:
            anyio.run(delete_prefix_at, redis_url, prefix)


@asynccontextmanager
async def http_target(http: HttpServer) -> AsyncIterator[Target]:
    url = http.server.url
    async with (
        streamable_client(url, token=ALICE, mode="auto") as fuzz,
        streamable_client(url, token=ALICE, mode="auto") as sentinel,
        streamable_client(url, token=BOB, mode="auto") as bob,
    ):

        async def open_session(client: Client) -> str:
            opened = await client.call_tool("session_open", {})
            assert opened.structured_content is not None
            return str(opened.structured_content["session"])

        handle, closed, other = (
            await open_session(sentinel),
            await open_session(sentinel),
            await open_session(bob),
        )
        await sentinel.call_tool("session_close", {"session": closed})
        await bob.call_tool("memory_set", {"key": "bob", "value": 1, "session": other})
        other_cp = await bob.call_tool("checkpoint_create", {"session": other})
        assert other_cp.structured_content is not None
        target = Target(
            suite="http",
            fuzz=fuzz,
            stateless=True,
            ids={"<<PREFIX>>": http.prefix},
            watchers=[
                (sentinel, f"memory://session/{handle}"),
                (bob, f"memory://session/{other}"),
            ],
            secrets=[f"{http.prefix}:{{", "{" + handle + "}", "{" + other + "}", ALICE, BOB],
            max_body=MAX_BODY,
        )
        others = {"<<OTHER>>": other, "<<OTHER_CP>>": other_cp.structured_content["checkpoint_id"]}
        await _prepare(target, sentinel, handle, closed, others)
        yield target


@pytest.fixture(scope="module")
def http_fuzz(http_server: HttpServer, portal: BlockingPortal) -> Iterator[Target]:
    with portal.wrap_async_context_manager(http_target(http_server)) as target:
        yield target


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_http_tool_arguments(http_fuzz: Target, portal: BlockingPortal, tool: str) -> None:
    """The same over real streamable HTTP as principal alice, watching a session of
    alice's and one of bob's (whose ids the fuzzer uses)."""

    @_settings(max_examples=HTTP_EXAMPLES)
    @given(tool_arguments(http_fuzz.schemas[tool], allow_surrogates=False, own_session=True))
    def run(args: dict[str, Any]) -> None:
        OUTCOMES.add("http", tool, portal.call(http_fuzz.case, tool, args))

    run()


# --- hand-made hostile bodies over HTTP ------------------------------------------------

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
ESCAPED_SURROGATES = ('"\\ud800"', '"a\\udfffb"', '"\\ud83d"', '"\\udc00\\ud800"')
NUMBERS = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "1" + "0" * 400)


def _headers(token: str | None = ALICE, tool: str | None = None) -> dict[str, str]:
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Mcp-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
    }
    if tool is not None:
        headers["Mcp-Name"] = tool
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _call_body(tool: str, arguments_json: str, request_id: str = "1") -> bytes:
    meta = json.dumps(META)
    return (
        f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call","params":'
        f'{{"name":{json.dumps(tool)},"arguments":{arguments_json},"_meta":{meta}}}}}'
    ).encode()


def _hostile_bodies(session: str, schemas: dict[str, dict[str, Any]]) -> list[tuple[str, bytes]]:
    """(label, body): every string argument of every tool as an escaped lone surrogate
    or NUL, every numeric one as NaN/Infinity/huge, plus broken JSON-RPC."""
    s = json.dumps(session)
    bodies: list[tuple[str, bytes]] = []
    for tool, schema in sorted(schemas.items()):
        properties = schema.get("properties", {})
        base = {"session": session} if "session" in properties else {}
        required = {
            "key": '"k"',
            "value": "1",
            "checkpoint_id": '"ck_x"',
            "content": '"c"',
            "task_id": '"t"',
            "status": '"pending"',
        }
        for name in properties:
            if name == "session":
                continue
            others = {n: v for n, v in required.items() if n in properties and n != name}
            prefix = "".join(f'"{n}":{v},' for n, v in others.items())
            for bad in (*ESCAPED_SURROGATES, '"\\u0000"', '"k\\u0000\\u202e"', *NUMBERS):
                body = "{" + prefix + f'"{name}":{bad}' + (f',"session":{s}' if base else "") + "}"
                bodies.append((f"{tool}.{name}={bad}", _call_body(tool, body)))
    for label, args in (
        ("arguments=list", "[1,2]"),
        ("arguments=string", '"x"'),
        ("arguments=null", "null"),
        ("arguments=number", "NaN"),
        ("duplicate keys", '{"key":"a","key":"b","value":1,"session":' + s + "}"),
        ("surrogate arg name", '{"\\ud800":1,"session":' + s + "}"),
        ("deep 1000", '{"key":"k","value":' + "[" * 1000 + "]" * 1000 + ',"session":' + s + "}"),
        ("deep 20000", '{"key":"k","value":' + "[" * 20000 + "]" * 20000 + "}"),
        ("deep dict 300", '{"key":"k","value":' + '{"a":' * 300 + "1" + "}" * 300 + "}"),
    ):
        bodies.append((label, _call_body("memory_set", args)))
    for label, name in (("tool=surrogate", '"\\ud800"'), ("tool=NUL", '"\\u0000"')):
        bodies.append((label, _call_body("x", "{}").replace(b'"x"', name.encode())))
    raw = [
        ("empty", b""),
        ("garbage", b"\x00\xff\xfe not json"),
        (
            "invalid utf-8",
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\xff"}}',
        ),
        ("truncated", _call_body("memory_get", '{"key":"k"}')[:-7]),
        ("bom", b"\xef\xbb\xbf" + _call_body("memory_get", '{"key":"k"}')),
        ("batch", b"[" + _call_body("memory_get", '{"key":"k"}') + b"]"),
        ("empty batch", b"[]"),
        ("no method", b'{"jsonrpc":"2.0","id":1}'),
        ("params list", b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}'),
        ("id object", _call_body("memory_get", '{"key":"k"}', request_id='{"a":1}')),
        ("id float", _call_body("memory_get", '{"key":"k"}', request_id="1.5")),
        ("id huge", _call_body("memory_get", '{"key":"k"}', request_id="1" + "0" * 400)),
        ("id surrogate", _call_body("memory_get", '{"key":"k"}', request_id='"\\ud800"')),
        ("unknown method", b'{"jsonrpc":"2.0","id":1,"method":"x/\\ud800","params":{}}'),
        ("jsonrpc 1.0", b'{"jsonrpc":"1.0","id":1,"method":"tools/list","params":{}}'),
        ("notification", b'{"jsonrpc":"2.0","method":"tools/call","params":{}}'),
        ("resource surrogate", _resource_body('"memory://session/\\ud800"')),
        ("resource key", _resource_body(json.dumps("memory://session/wm:{" + session + "}:vars"))),
    ]
    return bodies + raw


def _resource_body(uri_json: str) -> bytes:
    meta = json.dumps(META)
    return (
        '{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":'
        + uri_json
        + ',"_meta":'
        + meta
        + "}}"
    ).encode()


def _messages(response: httpx2.Response) -> list[dict[str, Any]]:
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return [
            json.loads(line[5:])
            for line in text.splitlines()
            if line.startswith("data:") and line[5:].strip()
        ]
    if not text.strip():
        return []
    parsed = json.loads(text)
    return parsed if isinstance(parsed, list) else [parsed]


def _check_message(message: dict[str, Any], label: str) -> str:
    assert message.get("jsonrpc") == "2.0", (label, message)
    if "error" in message:
        error = message["error"]
        assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str)
        return f"rpc {error['code']}"
    result = message["result"]
    if result.get("isError"):
        text = result["content"][0]["text"]
        match = CODE_RE.match(text)
        assert match and match.group(1) in KNOWN_CODES, (label, text)
        assert match.group(1) not in FORBIDDEN_CODES, (label, text)
        return match.group(1)
    return "ok"


def _request_headers(body: bytes) -> dict[str, str]:
    """The routing headers a 2026-07-28 client sends (``Mcp-Method``, ``Mcp-Name``),
    as far as the body can be parsed and its name encoded into a header."""
    try:
        message = json.loads(body)
        method, params = message["method"], message["params"]
        name = params["uri"] if method == "resources/read" else params["name"]
        headers = {**_headers(), "Mcp-Method": method, "Mcp-Name": encode_header_value(name)}
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, RecursionError):
        return _headers()
    return headers


def test_http_hostile_bodies(
    http_server: HttpServer, http_fuzz: Target, portal: BlockingPortal
) -> None:
    """Escaped lone surrogates, NUL, NaN/Infinity, deep nesting, broken JSON-RPC:
    a 2xx with a well-formed JSON-RPC answer or a 4xx refusal, never a 5xx, never
    a traceback, a path or a Redis key name in the response."""
    url = http_server.server.url + "/mcp"
    bodies = _hostile_bodies(http_fuzz.ids["<<OWN>>"], http_fuzz.schemas)
    secret = [f"{http_server.prefix}:{{", ALICE, BOB]

    async def run() -> None:  # in the portal's loop, where http_fuzz's clients live
        async with httpx2.AsyncClient(timeout=30) as client:
            for label, body in bodies:
                response = await client.post(url, content=body, headers=_request_headers(body))
                status = response.status_code
                assert status < 500, (label, status, response.text[:300])
                found = leaks(response.text, body.decode("utf-8", "replace"), secret)
                assert not found, (label, found, response.text[:300])
                outcomes = [f"http {status}"]
                if status < 300:
                    outcomes = [_check_message(m, label) for m in _messages(response)]
                for outcome in outcomes or [f"http {status}"]:
                    OUTCOMES.add("http-raw", "(hostile body)", outcome)
                if FULL:  # short mode: once, after the last body
                    assert await http_fuzz.watched() == http_fuzz.before, label
            assert await http_fuzz.watched() == http_fuzz.before

    portal.call(run)
    assert http_server.server.crashes() == [], http_server.server.log()[-3000:]


async def _sse_endpoint(client: httpx2.AsyncClient, base: str) -> tuple[Any, str]:
    """Open ``GET /sse`` and read the ``endpoint`` event (the POST URL)."""
    stream = client.stream("GET", base + "/sse", headers={"Authorization": f"Bearer {ALICE}"})
    response = await stream.__aenter__()
    assert response.status_code == 200
    with anyio.fail_after(10):
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                return stream, base + line[5:].strip()
    raise AssertionError("no endpoint event")


async def test_http_bodies_over_the_limit_are_refused(http_server: HttpServer) -> None:
    """``WM_MAX_BODY_BYTES``: 413 on /mcp (with and without Content-Length) and on
    SSE's /messages/; a body just under the limit is served."""
    base = http_server.server.url

    def body_of(size: int) -> bytes:
        head = _call_body("memory_set", '{"key":"k","value":"')
        filler = size - len(head) - len(b'"}}}') - 200
        return _call_body("memory_set", '{"key":"k","value":"' + "x" * filler + '"}')

    over, under = body_of(MAX_BODY + 1024), body_of(MAX_BODY - 4096)
    assert len(over) > MAX_BODY >= len(under)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(over), 65536):
            yield over[start : start + 65536]

    async with httpx2.AsyncClient(timeout=30) as client:
        response = await client.post(
            base + "/mcp", content=over, headers=_headers(tool="memory_set")
        )
        assert response.status_code == 413, response.text[:200]
        chunked = await client.post(
            base + "/mcp", content=chunks(), headers=_headers(tool="memory_set")
        )
        assert chunked.status_code == 413, chunked.text[:200]
        served = await client.post(
            base + "/mcp", content=under, headers=_headers(tool="memory_set")
        )
        assert served.status_code == 200, served.text[:200]
        outcome = _check_message(_messages(served)[0], "under the limit")
        assert outcome in ("VALUE_TOO_LARGE", "SESSION_REQUIRED"), outcome
        stream, endpoint = await _sse_endpoint(client, base)
        try:
            sse = await client.post(
                endpoint,
                content=over,
                headers={"Authorization": f"Bearer {ALICE}", "Content-Type": "application/json"},
            )
            assert sse.status_code == 413, sse.text[:200]
        finally:
            await stream.__aexit__(None, None, None)
    for outcome in ("http 413",) * 3:
        OUTCOMES.add("http-raw", "(body over limit)", outcome)


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (0 for a scalar)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest
