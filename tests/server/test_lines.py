"""Every line gets an answer: what a client sends that the SDK cannot take gets a
JSON-RPC error (and one log line), the same on stdio, SSE and both HTTP eras; batches
as the negotiated version says; no parser or validator text on the wire.

Includes a raw-bytes fuzz tier: arbitrary bytes and broken variants of real messages,
as stdio lines and as HTTP bodies."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_server import wire
from mcp_server.http import create_app
from mcp_server.settings import Settings
from tests.server.e2e import HANDSHAKE, RawStreamable, RunningServer, StdioProcess, serve_in_thread

pytestmark = pytest.mark.timeout(120)

PING = {"jsonrpc": "2.0", "method": "ping"}
SURROGATE_CALL = (
    b'{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"memory_set",'
    b'"arguments":{"key":"k","value":"cut \\ud83d"}}}'
)
# (line, JSON-RPC code, id echoed)
BAD_LINES: list[tuple[bytes, int, int | str | None]] = [
    (b"", -32700, None),
    (b"   ", -32700, None),
    (b'{"jsonrpc":"2.0","id":1,"method":"pi', -32700, None),
    (b'{"jsonrpc":"2.0","id":1,"method":"ping"}}', -32700, None),
    (b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}', -32700, None),
    (b"\xc3\x28", -32700, None),
    (b"[" * 5000 + b"]" * 5000, -32700, None),
    (b'{"a":' * 300 + b"1" + b"}" * 300, -32700, None),
    (b'"\\ud83d"', -32600, None),
    (SURROGATE_CALL, -32600, 41),
    (b'{"jsonrpc":"2.0","id":"\\udc00","method":"ping"}', -32600, None),
    (b"42", -32600, None),
    (b'{"id":9}', -32600, 9),
    (b'{"jsonrpc":"1.0","id":"x","method":"ping"}', -32600, "x"),
]
VALIDATOR_TEXT = re.compile(
    r"validation error|pydantic|input_value|input_type|type=|errors\.pydantic|"
    r"line \d+ column|Traceback",
    re.IGNORECASE,
)


def _wire_ok(message: dict[str, Any]) -> None:
    text = json.dumps(message)
    assert not VALIDATOR_TEXT.search(text), text


# ---- stdio -------------------------------------------------------------------------


class Lines(StdioProcess):
    """The stdio server, fed raw lines; each followed by a ping to collect its answers."""

    def raw(self, line: bytes) -> list[dict[str, Any]]:
        """The messages answered to ``line``, read up to the reply to a ping sent after it."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._next_id += 1
        ping = self._next_id
        self.proc.stdin.write(line + b"\n" + json.dumps({**PING, "id": ping}).encode() + b"\n")
        self.proc.stdin.flush()
        answers: list[dict[str, Any]] = []
        for _ in range(10_000):
            got = self.proc.stdout.readline()
            assert got, self.stderr()
            message: dict[str, Any] = json.loads(got)
            if message.get("id") == ping and "result" in message:
                return answers
            answers.append(message)
        raise AssertionError("no reply to the ping")


@pytest.fixture
def lines() -> Iterator[Lines]:
    process = Lines()
    process.initialize()
    try:
        yield process
    finally:
        process.close()


def _init(version: str) -> dict[str, Any]:
    return {**HANDSHAKE, "protocolVersion": version}


def test_stdio_answers_every_line_it_cannot_take(lines: Lines) -> None:
    for line, code, request_id in BAD_LINES:
        answers = lines.raw(line)
        assert len(answers) == 1, (line[:60], answers)
        (answer,) = answers
        assert answer["error"]["code"] == code, (line[:60], answer)
        assert answer["id"] == request_id, (line[:60], answer)
        _wire_ok(answer)
    # the connection still works, and nothing of the refused call was stored
    assert lines.tool("memory_get", key="k")["found"] is False
    lines.proc.stdin.close()  # type: ignore[union-attr]
    assert lines.wait(10) == 0
    log = lines.stderr()
    assert log.count("refused a line") == len(BAD_LINES), log
    assert "Traceback" not in log


def test_stdio_a_line_over_the_bound_is_refused_and_serving_goes_on() -> None:
    """A line over WM_MAX_BODY_BYTES is skipped as it is read (a few chunks past the
    bound, never held whole) and answered; the next lines are served as usual."""
    process = Lines(env={"WM_MAX_BODY_BYTES": "4096"})
    try:
        process.initialize()
        value = "x" * 200_000  # 50 times the bound, in one line
        call = {"name": "memory_set", "arguments": {"key": "k", "value": value}}
        long_line = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": call})
        (answer,) = process.raw(long_line.encode())
        assert answer["error"]["code"] == -32600 and answer["id"] is None, answer
        assert "over the limit of 4096" in answer["error"]["message"]
        _wire_ok(answer)
        assert process.tool("memory_get", key="k")["found"] is False  # nothing stored
        assert process.tool("memory_set", key="k", value="small")["key"] == "k"
    finally:
        process.close()


def test_stdio_batches_follow_the_negotiated_version() -> None:
    batch = json.dumps(
        [{**PING, "id": "a"}, {"jsonrpc": "2.0", "method": "notifications/progress"}, 7]
    ).encode()
    for version, accepted in [("2025-03-26", True), ("2025-06-18", False), ("2025-11-25", False)]:
        process = Lines()
        try:
            process.request("initialize", _init(version))
            process.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            answers = process.raw(batch)
            for answer in answers:
                _wire_ok(answer)
            if accepted:
                by_id = {str(a.get("id")): a for a in answers}
                assert by_id["a"]["result"] == {}, answers
                assert by_id["None"]["error"]["code"] == -32600, answers
                assert len(answers) == 2, answers
                assert process.raw(b"[]")[0]["error"]["code"] == -32600
            else:
                (answer,) = answers
                assert answer["error"]["code"] == -32600
                assert answer["id"] is None
                assert "batches are not supported in protocol version" in answer["error"]["message"]
        finally:
            process.close()


# ---- HTTP: handshake and stateless streamable HTTP, SSE ---------------------------


@pytest.fixture
def http() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(Settings(transport="http"))) as running:
        yield running


ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MODERN = {**ACCEPT, "Mcp-Protocol-Version": "2026-07-28"}


@asynccontextmanager
async def _handshake(base: str) -> AsyncIterator[tuple[httpx2.AsyncClient, dict[str, str]]]:
    async with httpx2.AsyncClient(timeout=30) as client:
        raw = RawStreamable(client, base + "/mcp")
        await raw.initialize()
        assert raw.session_id is not None
        headers = {
            **ACCEPT,
            "Mcp-Session-Id": raw.session_id,
            "Mcp-Protocol-Version": "2025-11-25",
        }
        yield client, headers


@asynccontextmanager
async def _sse(base: str) -> AsyncIterator[tuple[httpx2.AsyncClient, str]]:
    async with (
        httpx2.AsyncClient(timeout=30) as client,
        client.stream("GET", base + "/sse") as stream,
    ):
        events = stream.aiter_lines()  # held open: closing it would close the stream
        endpoint = ""
        for _ in range(10):
            line = await anext(events)
            if line.startswith("data:"):
                endpoint = line[5:].strip()
                break
        assert endpoint
        yield client, base + endpoint


def _refusal(response: httpx2.Response, code: int, request_id: Any) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["id"] == request_id, body
    _wire_ok(body)


async def test_http_bodies_are_refused_alike_on_every_transport(
    http: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    batch = json.dumps([{**PING, "id": 1}]).encode()
    cases = [*BAD_LINES, (batch, -32600, None)]
    async with _handshake(http.url) as (client, headers), _sse(http.url) as (sse, post_url):
        for body, code, request_id in cases:
            _refusal(
                await client.post(http.url + "/mcp", content=body, headers=headers),
                code,
                request_id,
            )
            _refusal(
                await client.post(http.url + "/mcp", content=body, headers=MODERN), code, request_id
            )
            _refusal(await sse.post(post_url, content=body, headers=ACCEPT), code, request_id)
        # a well-formed post still goes through on each
        ok = await sse.post(post_url, json={**PING, "id": 5}, headers=ACCEPT)
        assert ok.status_code == 202
    assert caplog.text.count("refused a body") == 3 * len(cases)
    assert "Traceback" not in caplog.text


async def test_an_unauthenticated_body_is_not_read(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(transport="http", auth_tokens="alice-token-0123456789=alice"))
    with serve_in_thread(app) as running:
        async with httpx2.AsyncClient(timeout=30) as client:
            response = await client.post(running.url + "/mcp", content=b"{", headers=ACCEPT)
    assert response.status_code == 401
    assert "refused a body" not in caplog.text


# ---- raw-bytes fuzz tier -----------------------------------------------------------

VALID = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "memory_get", "arguments": {"key": "k"}},
    }
).encode()


@st.composite
def broken_lines(draw: st.DrawFn) -> bytes:
    """Arbitrary bytes, and real messages cut, spliced, nested or half-escaped."""
    kind = draw(st.sampled_from(["bytes", "cut", "splice", "surrogate", "nest"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "cut":
        return VALID[: draw(st.integers(0, len(VALID) - 1))]
    if kind == "splice":
        at = draw(st.integers(0, len(VALID)))
        return VALID[:at] + draw(st.binary(min_size=1, max_size=8)) + VALID[at:]
    if kind == "surrogate":
        half = draw(st.integers(0xD800, 0xDFFF))
        return VALID.replace(b'"k"}', b'"k\\u%04x"}' % half)
    depth = draw(st.integers(201, 3000))
    return b'{"jsonrpc":"2.0","id":3,"method":"ping","params":' + b"[" * depth + b"]" * depth + b"}"


def _fuzz_line(line: bytes) -> bytes:
    return line.replace(b"\n", b" ").replace(b"\r", b" ")


FUZZ = settings(
    max_examples=int(os.environ.get("WM_LINES_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(line=broken_lines())
def test_fuzz_stdio_every_raw_line_is_answered(lines: Lines, line: bytes) -> None:
    line = _fuzz_line(line)
    answers = lines.raw(line)
    expected = wire.check(line)
    if isinstance(expected, wire.Message):
        return  # a real message (e.g. a splice of spaces): the SDK answers it
    assert answers, line
    for answer in answers:
        _wire_ok(answer)
        assert "error" in answer or answer.get("id") == 3, answer
        if "error" in answer:
            assert answer["error"]["code"] in (-32700, -32600), answer


@FUZZ
@given(body=broken_lines())
def test_fuzz_http_every_raw_body_is_answered(http: RunningServer, body: bytes) -> None:
    async def post() -> None:
        async with httpx2.AsyncClient(timeout=30) as client:
            for headers in (MODERN, ACCEPT):
                response = await client.post(http.url + "/mcp", content=body, headers=headers)
                assert response.status_code < 500, response.text
                refused = not isinstance(wire.check(body), wire.Message)
                if response.status_code == 400:
                    message = response.json()
                    _wire_ok(message)
                    if refused:  # a real message may get the SDK's own -32602 (no _meta)
                        assert message["error"]["code"] in (-32700, -32600), message
                elif refused:
                    raise AssertionError((body, response.status_code, response.text))

    anyio.run(post)


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
async def test_bounded_lines_split_at_any_chunk_boundary(chunk: int) -> None:
    from mcp_server.stdio import LongLine, bounded_lines

    wire_bytes = b'{"a":1}\n' + b"y" * 40 + b"\n\n" + b"z" * 12 + b"\n" + b"tail"
    source = anyio.wrap_file(io.BytesIO(wire_bytes))
    got = [line async for line in bounded_lines(source, 16, chunk)]
    assert got == [b'{"a":1}\n', LongLine(40), b"\n", b"z" * 12 + b"\n", b"tail"]


async def test_http_batches_are_accepted_from_2025_03_26_clients(http: RunningServer) -> None:
    """2025-03-26 requires servers to accept batches; its clients send no
    MCP-Protocol-Version header. Each message is dispatched on the session and the
    answers come back as one JSON array; later versions are still refused."""
    async with httpx2.AsyncClient(timeout=30) as client:
        raw = RawStreamable(client, http.url + "/mcp")
        await raw.request("initialize", _init("2025-03-26"))
        assert raw.session_id is not None
        notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        headers = {**ACCEPT, "Mcp-Session-Id": raw.session_id}
        assert (await client.post(raw.url, json=notice, headers=headers)).status_code == 202
        set_k = {"name": "memory_set", "arguments": {"key": "k", "value": 7}}
        get_k = {"name": "memory_get", "arguments": {"key": "k"}}
        batch = [
            {**PING, "id": "a"},
            {"jsonrpc": "2.0", "id": "b", "method": "tools/call", "params": set_k},
            {"jsonrpc": "2.0", "method": "notifications/progress"},
            7,
            {"jsonrpc": "2.0", "id": "c", "method": "tools/call", "params": get_k},
        ]
        response = await client.post(raw.url, json=batch, headers=headers)
        assert response.status_code == 200, response.text
        answers = response.json()
        for answer in answers:
            _wire_ok(answer)
        by_id = {str(a.get("id")): a for a in answers}
        assert set(by_id) == {"a", "b", "None", "c"}, answers
        assert by_id["a"]["result"] == {}
        assert by_id["None"]["error"]["code"] == -32600
        assert by_id["c"]["result"]["structuredContent"]["value"] == 7
        # notifications only: 202, no body; an empty batch is refused
        only = await client.post(raw.url, json=[notice], headers=headers)
        assert only.status_code == 202 and not only.content
        _refusal(await client.post(raw.url, json=[], headers=headers), -32600, None)
        # the same session claiming a later version gets the refusal
        later = {**headers, "Mcp-Protocol-Version": "2025-11-25"}
        _refusal(await client.post(raw.url, json=batch, headers=later), -32600, None)
