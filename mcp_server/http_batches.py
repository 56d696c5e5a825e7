"""JSON-RPC batches over streamable HTTP for 2025-03-26 clients.

2025-03-26 is the one protocol version that requires servers to accept a JSON array of
messages in one POST; its clients send no ``MCP-Protocol-Version`` header (servers are
told to assume 2025-03-26 then). The SDK takes one message per POST, so a batch on an
established session (``Mcp-Session-Id``) without a version header, or with
``2025-03-26``, is answered here: each message goes to the SDK as its own POST on the
same session, in order, and the answers (responses and errors, from a JSON or an SSE
reply) come back together as one JSON array; 202 with no body when the batch held only
notifications and responses. Elements that are not JSON-RPC messages get -32600 each,
in place. Every other version, and a batch before the session exists, is refused as
before (``wire.refuse_batch``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Scope, Send

from mcp_server import wire

log = logging.getLogger("mcp_server.http")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def takes_batches(scope: Scope) -> bool:
    """A POST on an established 2025-03-26 session (see the module docstring)."""
    version = _header(scope, b"mcp-protocol-version")
    established = _header(scope, b"mcp-session-id") is not None
    return established and (version is None or wire.accepts_batches(version))


async def answer_batch(app: ASGIApp, scope: Scope, send: Send, batch: wire.Batch) -> None:
    """Dispatch each message of ``batch`` to ``app`` and answer them together."""
    if not batch.items:
        await _respond(scope, send, 400, wire.empty_batch().body())
        return
    answers: list[Any] = []
    for item in batch.items:
        checked = wire.check_value(item)
        if isinstance(checked, wire.Refusal):
            answers.append(json.loads(checked.body()))
            continue
        answers.extend(await _one(app, scope, json.dumps(item, ensure_ascii=False).encode()))
    log.debug("answered a batch of %d message(s)", len(batch.items))
    if not answers:
        await _respond(scope, send, 202, b"")
        return
    await _respond(scope, send, 200, json.dumps(answers, ensure_ascii=False).encode())


async def _one(app: ASGIApp, scope: Scope, body: bytes) -> list[Any]:
    """The JSON-RPC answers the SDK gives to one POSTed message."""
    headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    single = {**scope, "headers": headers}
    done = anyio.Event()
    sent = False
    status = 0
    content_type = ""
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # the client stays connected until the answer is complete
        return {"type": "http.disconnect"}

    async def collect(message: Message) -> None:
        nonlocal status, content_type
        if message["type"] == "http.response.start":
            status = message["status"]
            content_type = dict(message.get("headers", [])).get(b"content-type", b"").decode()
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(single, receive, collect)
    finally:
        done.set()
    return _answers(status, content_type, b"".join(chunks))


def _answers(status: int, content_type: str, body: bytes) -> list[Any]:
    if status == 202 or not body.strip():
        return []
    if content_type.startswith("text/event-stream"):
        texts = [
            line[5:].strip()
            for line in body.decode("utf-8", "replace").splitlines()
            if line.startswith("data:") and line[5:].strip()
        ]
    else:
        texts = [body.decode("utf-8", "replace")]
    answers = []
    for text in texts:
        try:
            message = json.loads(text)
        except ValueError:
            continue
        if isinstance(message, dict) and ("result" in message or "error" in message):
            answers.append(message)
    return answers


async def _respond(scope: Scope, send: Send, status: int, body: bytes) -> None:
    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    media = "application/json" if body else None
    await Response(body, status, media_type=media)(scope, nothing, send)
