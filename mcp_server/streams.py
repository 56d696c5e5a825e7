"""Output the server holds for event-stream readers: bounded, and let go when a reader stalls.

Two bounds, both at the ASGI level (the SDK has no hook for either):

* **A stalled stream is closed** (``StalledStreams``). A response that is an event
  stream (``text/event-stream``: the SSE transport's ``GET /sse``, the handshake era's
  ``GET /mcp``, a 2026-07-28 ``subscriptions/listen``) whose reader stops reading makes
  each write wait once the socket buffers are full. A write that waits longer than
  ``stall_seconds`` aborts the connection: uvicorn then sees a client disconnect, the
  SDK ends the stream as for a reader that went away, and the memory session bound to
  the connection is torn down. Aborting needs the transport, which ASGI does not give
  an app: ``connections.Guarded`` (the server's uvicorn protocol) puts a callable under
  ``scope["extensions"][ABORT]``. Without it (an ASGI server other than ours) the stream
  stops being written to, and it ends when the client leaves.

* **Answers a reader has not read are bounded per SSE connection** (``PendingAnswers``).
  Over SSE the SDK answers each POST 202 at once and writes the JSON-RPC answer on the
  stream later, from a task per request that waits while the stream is blocked; a
  client that posts and never reads would make the server hold every answer. The ids of
  requests accepted for a stream and not yet answered on it are counted; past
  ``max_pending`` a POST is refused with 429 and changes nothing. The stream's session
  id is read from its first event (the SDK's ``endpoint`` event), answers from the
  events written. Streamable HTTP answers a POST on its own response, so the connection
  bound (``WM_MAX_CONNECTIONS``) covers it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server import metrics

log = logging.getLogger("mcp_server.streams")

ABORT = "wm.abort"
"""The scope extension under which ``connections.Guarded`` offers to abort the connection."""

EVENT_STREAM = b"text/event-stream"
MAX_ID_CHARS = 256
"""A longer request id is kept as its digest: a client's ids cannot grow our memory."""

_SESSION_ID = re.compile(rb"session_id=([0-9a-fA-F]{1,64})")
_ANSWER_PREFIX = re.compile(
    r'^\{"jsonrpc":"2\.0","id":("(?:[^"\\]|\\.)*"|-?\d+),"(?:result|error)"'
)


def abort_connection(scope: Scope) -> bool:
    """Abort the connection ``scope`` arrived on, if the server offers it (True)."""
    abort = scope.get("extensions", {}).get(ABORT)
    if abort is None:
        return False
    abort()
    return True


def _is_event_stream(message: Message) -> bool:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type" and value.startswith(EVENT_STREAM):
            return True
    return False


class StalledStreams:
    """Closes an event-stream response whose writes stall for ``stall_seconds``."""

    def __init__(self, app: ASGIApp, stall_seconds: float) -> None:
        self.app = app
        self.stall_seconds = stall_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        streaming = False
        stalled = False

        async def watched(message: Message) -> None:
            nonlocal streaming, stalled
            if stalled:
                return  # the connection is being aborted: nothing more is written
            if message["type"] == "http.response.start":
                streaming = _is_event_stream(message)
            if not streaming:
                await send(message)
                return
            with anyio.move_on_after(self.stall_seconds) as late:
                await send(message)
            if late.cancelled_caught:
                stalled = True
                closed = abort_connection(scope)
                metrics.limit_refused("stream_stall")
                log.warning(
                    "closed an event stream: its reader read nothing for %g s "
                    "(WM_STREAM_STALL_SECONDS)%s",
                    self.stall_seconds,
                    "" if closed else "; the server offers no abort, output stopped",
                )

        await self.app(scope, receive, watched)


def _id_key(value: object) -> str | None:
    """A request id as a bounded key ("s:" text or "n:" number), None for no id."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        key = f"n:{value}"
    elif isinstance(value, str):
        key = f"s:{value}"
    else:
        return None
    if len(key) > MAX_ID_CHARS:
        key = "h:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key


def _answered_id(data: str) -> str | None:
    """The id of a JSON-RPC answer (result or error) in one event's data, else None."""
    if data.startswith('{"jsonrpc":"2.0","method"'):
        return None  # a notification or a server request: the common non-answer
    match = _ANSWER_PREFIX.match(data)
    if match is not None:
        return _id_key(json.loads(match.group(1)))
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if isinstance(value, dict) and ("result" in value or "error" in value):
        return _id_key(value.get("id"))
    return None


def _event_data(chunk: bytes) -> list[str]:
    """The data of each event in an SSE body chunk (sse_starlette writes whole events)."""
    found = []
    for event in chunk.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
        if lines:
            found.append(b"\n".join(lines).decode("utf-8", "replace"))
    return found


class PendingAnswers:
    """Requests accepted per SSE stream whose answers its reader has not read yet."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self._streams: dict[str, set[str]] = {}

    def pending(self, session_id: str) -> int:
        return len(self._streams.get(session_id, ()))

    def streams(self) -> int:
        return len(self._streams)

    def stream(self, app: ASGIApp) -> ASGIApp:
        """``app`` (the SDK's ``GET /sse``), with its answers counted as written."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            session: str | None = None

            async def watched(message: Message) -> None:
                nonlocal session
                await send(message)
                if message["type"] != "http.response.body":
                    return
                chunk = message.get("body", b"")
                if session is None:
                    found = _SESSION_ID.search(chunk)
                    if found is not None:
                        session = found.group(1).decode("ascii")
                        self._streams[session] = set()
                    return
                waiting = self._streams.get(session)
                if waiting:
                    for data in _event_data(chunk):
                        key = _answered_id(data)
                        if key is not None:
                            waiting.discard(key)

            try:
                await app(scope, receive, watched)
            finally:
                if session is not None:
                    self._streams.pop(session, None)

        return counted

    def admit(self, scope: Scope, value: Any) -> str | tuple[str, list[str]] | None:
        """For a parsed POST body: the (session, request keys) to count, None when there
        is nothing to count, or a refusal text when the stream is at its bound."""
        session = _query_session(scope)
        waiting = self._streams.get(session) if session is not None else None
        if session is None or waiting is None or not isinstance(value, dict):
            return None
        if value.get("method") == "notifications/cancelled":
            params = value.get("params")
            key = _id_key(params.get("requestId")) if isinstance(params, dict) else None
            if key is not None:
                waiting.discard(key)  # a cancelled request may get no answer
            return None
        key = _id_key(value.get("id")) if "method" in value else None
        if key is None:
            return None
        if len(waiting) >= self.max_pending:
            metrics.limit_refused("pending_answers")
            log.warning(
                "refused a post: its SSE stream has %d answers its reader has not read "
                "(WM_MAX_PENDING_ANSWERS), answered 429",
                len(waiting),
            )
            return (
                f"this SSE connection already has {len(waiting)} answers its client has "
                f"not read (limit {self.max_pending}, WM_MAX_PENDING_ANSWERS, per "
                "connection); read the event stream, then send the request again"
            )
        waiting.add(key)
        return session, [key]

    def release(self, session: str, keys: list[str]) -> None:
        """The SDK did not accept the post (no answer will come): stop counting it."""
        waiting = self._streams.get(session)
        if waiting is not None:
            waiting.difference_update(keys)


def _query_session(scope: Scope) -> str | None:
    found = _SESSION_ID.search(scope.get("query_string", b""))
    return found.group(1).decode("ascii") if found is not None else None
