"""One Starlette app: streamable HTTP at ``/mcp``, SSE at ``/sse`` + ``/messages/``.

Security is not optional here:

* bearer tokens (``WM_AUTH_TOKENS`` / ``WM_AUTH_TOKENS_FILE``) through the SDK's token
  verifier; without tokens the app refuses to serve a non-loopback address unless
  ``allow_insecure_remote`` says so;
* DNS-rebinding protection always on, with an explicit Host/Origin allow-list (the
  SDK would silently turn it off for a wildcard bind);
* a request body limit on both transports;
* ``/healthz`` (liveness) and ``/readyz`` (readiness) are unauthenticated and say only
  ok/degraded, ready/not ready and the failure class;
* ``/metrics`` (Prometheus) needs its own scrape token (``WM_METRICS_TOKEN``) on a
  server with auth, so a scraper holds no memory credential and a memory token reads
  no process-wide figures; it is open only where everything is (no auth configured);
* every request refused for want of a valid token is logged (reason, path, client;
  never the token) and counted; ``WM_ACCESS_LOG`` adds one line per request;
* every posted body is checked (``mcp_server.wire``) before the SDK parses it, so a body
  it cannot take gets the same JSON-RPC error as on stdio, never parser or validator
  text (``CheckedBodies``).

The runtime (store, subscription bus, sessions) is built once per process and entered
in this app's lifespan: the SDK's own lifespan runs once per SSE connection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import (
    AuthenticatedUser,
    BearerAuthBackend,
    RequireAuthMiddleware,
)
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import INVALID_REQUEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server import metrics, wire
from mcp_server.auth import StaticTokenVerifier
from mcp_server.errors import ConfigurationError
from mcp_server.http_batches import answer_batch, takes_batches
from mcp_server.runtime import Runtime
from mcp_server.sdk import lowlevel_server
from mcp_server.server import WorkingMemoryServer, create_server
from mcp_server.settings import WILDCARD_HOSTS, Settings, is_loopback
from mcp_server.streams import PendingAnswers, StalledStreams
from memory_core import SessionStore

log = logging.getLogger("mcp_server.http")

MCP_PATH = "/mcp"
SSE_PATH = "/sse"
MESSAGES_PATH = "/messages/"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
# A POST's answer is one JSON body in both eras (see ``create_app``).
JSON_ANSWERS = True
access_log = logging.getLogger("mcp_server.access")


class UnsafeConfigError(ConfigurationError):
    """The HTTP configuration would expose memory without protection."""


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The Host/Origin allow-list: configured, else loopback names plus the bind host.

    Raises:
        UnsafeConfigError: a wildcard bind (0.0.0.0, ::) without ``allowed_hosts``.
    """
    hosts = list(settings.allowed_hosts)
    origins = list(settings.allowed_origins)
    if not hosts:
        if settings.host in WILDCARD_HOSTS:
            raise UnsafeConfigError(
                f"binding {settings.host or 'all addresses'} needs WM_ALLOWED_HOSTS "
                "(--allowed-hosts): the host names clients use to reach this server"
            )
        hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
        if not is_loopback(settings.host):
            bracketed = f"[{settings.host}]" if ":" in settings.host else settings.host
            hosts.append(f"{bracketed}:*")
    if not origins:
        origins = [f"http://{host}" for host in hosts] + [f"https://{host}" for host in hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def check_exposure(settings: Settings, has_tokens: bool) -> None:
    """Raises UnsafeConfigError for a non-loopback bind without tokens (unless allowed)."""
    if has_tokens or is_loopback(settings.host):
        return
    if not settings.allow_insecure_remote:
        raise UnsafeConfigError(
            f"refusing to serve {settings.host} without bearer tokens: set WM_AUTH_TOKENS or "
            "WM_AUTH_TOKENS_FILE, or WM_ALLOW_INSECURE_REMOTE=1 if something else guards it"
        )
    log.warning("serving %s without authentication (allow_insecure_remote)", settings.host)


def create_app(
    settings: Settings,
    store: SessionStore | None = None,
    *,
    ready: Callable[[], None] | None = None,
) -> Starlette:
    """The HTTP app. Its lifespan enters the server's runtime, which starts and closes
    the store, given or built from ``settings``, and calls ``ready`` once it serves.

    POSTs are answered with one JSON body (``JSON_ANSWERS``), not an SSE stream: our
    tools send nothing tied to a request (no progress, logs or server requests), and
    notifications travel on the GET stream (handshake era) or a ``subscriptions/listen``
    stream (2026-07-28), which stay SSE. The JSON answer halves the SDK's work per call.

    Raises:
        UnsafeConfigError: see ``check_exposure`` and ``transport_security``.
        ConfigurationError: unusable auth tokens or store URL (``create_server``).
    """
    server = create_server(settings, store)
    runtime = server.runtime
    tokens = runtime.tokens
    check_exposure(settings, bool(tokens))
    security = transport_security(settings)

    streamable = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        max_request_body_size=settings.max_body_bytes,
        session_idle_timeout=settings.http_idle_timeout,
        max_sessions=settings.max_sessions,
        json_response=JSON_ANSWERS,
        transport_security=security,
        host=settings.host,
    )
    routes: list[BaseRoute] = [
        Route(HEALTH_PATH, _healthz(runtime.store), methods=["GET"]),
        Route(READY_PATH, _readyz(runtime), methods=["GET"]),
        Route(METRICS_PATH, _metrics(runtime, settings, auth=bool(tokens)), methods=["GET"]),
    ]
    routes += [
        Route(
            MCP_PATH,
            endpoint=CheckedBodies(
                r.endpoint,
                settings.max_body_bytes,
                auth=bool(tokens),
                timeout=settings.http_request_timeout,
                batches=True,
            ),
        )
        for r in streamable.routes
        if isinstance(r, Route) and r.path == MCP_PATH
    ]
    pending = PendingAnswers(settings.max_pending_answers)
    routes += _sse_routes(
        server, security, settings, messages_path(settings), auth=bool(tokens), pending=pending
    )

    middleware: list[Middleware] = []
    if tokens:
        middleware = [
            Middleware(
                AuthenticationMiddleware, backend=BearerAuthBackend(StaticTokenVerifier(tokens))
            ),
            Middleware(AuthContextMiddleware),
            Middleware(AuthFailures),
        ]
    if settings.access_log:
        middleware.insert(0, Middleware(AccessLog))
    middleware.insert(0, Middleware(StalledStreams, stall_seconds=settings.stream_stall_seconds))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with runtime, server.session_manager.run():
            log.info(
                "serving http host=%s port=%s auth=%s store=%s",
                settings.host,
                settings.port,
                "bearer" if tokens else "off",
                (await runtime.store.health()).mode,
            )
            if ready is not None:
                ready()
            yield

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.pending_answers = pending
    return app


def messages_path(settings: Settings) -> str:
    """Where SSE clients POST: ``/messages/``, or ``/messages/<replica_id>/`` so that a load
    balancer can send each post to the replica holding its stream by path alone."""
    return f"{MESSAGES_PATH}{settings.replica_id}/" if settings.replica_id else MESSAGES_PATH


def _sse_routes(
    server: WorkingMemoryServer,
    security: TransportSecuritySettings,
    settings: Settings,
    path: str,
    *,
    auth: bool,
    pending: PendingAnswers,
) -> list[BaseRoute]:
    """``GET /sse`` and ``POST /messages/``, as ``MCPServer.sse_app`` builds them but
    as plain ASGI apps: the SDK's unauthenticated SSE endpoint sends a second response
    when a stream is cut at shutdown, which uvicorn logs as an application error."""
    max_body_bytes = settings.max_body_bytes
    transport = SseServerTransport(
        path, security_settings=security, max_request_body_size=max_body_bytes
    )
    low = lowlevel_server(server)

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        serving = False
        try:
            async with transport.connect_sse(scope, receive, send) as (read, write):
                serving = True
                await low.run(read, write, low.create_initialization_options())
        except ValueError:
            if serving:
                raise
            # The SDK refused the request (bad Host or Origin) and has answered it; it
            # raises after that, which httptools answers by closing a kept-alive
            # connection other requests may still use.

    def guard(app: ASGIApp) -> ASGIApp:
        return RequireAuthMiddleware(app, []) if auth else _Asgi(app)

    return [
        Route(SSE_PATH, endpoint=guard(pending.stream(stream)), methods=["GET"]),
        Mount(
            path,
            app=CheckedBodies(
                guard(transport.handle_post_message),
                max_body_bytes,
                auth=auth,
                timeout=settings.http_request_timeout,
                pending=pending,
            ),
        ),
    ]


class CheckedBodies:
    """Answers a POST body the SDK cannot take with ``wire``'s JSON-RPC error (400).

    Runs after authentication: a request without a valid token reaches the SDK's own
    401 unread. A body over ``max_bytes`` is passed on for the SDK's 413. With
    ``batches`` (streamable HTTP), a batch on a 2025-03-26 session is answered by
    ``http_batches``; every other batch is refused. A body that does not arrive within
    ``timeout`` seconds is answered 408 (``read_body``).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        *,
        auth: bool,
        timeout: float = 10.0,
        batches: bool = False,
        pending: PendingAnswers | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.auth = auth
        self.timeout = timeout
        self.batches = batches
        self.pending = pending

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or (self.auth and not isinstance(scope.get("user"), AuthenticatedUser))
        ):
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        complete = False
        with anyio.move_on_after(self.timeout) as late:
            complete = await self.read_body(receive, read)
        if late.cancelled_caught:
            log.warning("refused a body: not complete within %.0f s, answered 408", self.timeout)
            await send_refusal(scope, receive, send, 408, SLOW_BODY)
            return
        if complete:
            body = b"".join(m.get("body", b"") for m in read)
            outcome = wire.check(body)
            if isinstance(outcome, wire.Batch) and self.batches and takes_batches(scope):
                await answer_batch(self.app, scope, send, outcome)
                return
            if not isinstance(outcome, wire.Message):
                refusal = (
                    outcome
                    if isinstance(outcome, wire.Refusal)
                    else wire.refuse_batch(_version_header(scope))
                )
                log.warning(
                    "refused a body: %s (%d bytes), answered %d id=%s",
                    refusal.reason,
                    len(body),
                    refusal.code,
                    refusal.id,
                )
                response = Response(refusal.body(), 400, media_type="application/json")
                await response(scope, receive, send)
                return

        async def replay() -> Message:
            return read.pop(0) if read else await receive()

        if complete and self.pending is not None and isinstance(outcome, wire.Message):
            await self.counted(scope, replay, send, outcome.value)
            return
        await self.app(scope, replay, send)

    async def counted(self, scope: Scope, receive: Receive, send: Send, value: Any) -> None:
        """An SSE post, counted against its stream's unread answers (``streams``)."""
        pending = self.pending
        assert pending is not None
        admitted = pending.admit(scope, value)
        if isinstance(admitted, str):
            request_id = value.get("id") if isinstance(value, dict) else None
            await send_refusal(
                scope,
                receive,
                send,
                429,
                admitted,
                request_id=request_id if isinstance(request_id, (str, int)) else None,
                headers={"Retry-After": "1"},
            )
            return
        if admitted is None:
            await self.app(scope, receive, send)
            return
        session, keys = admitted

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] != 202:
                pending.release(session, keys)
            await send(message)

        await self.app(scope, receive, watched)

    async def read_body(self, receive: Receive, read: list[Message]) -> bool:
        """Read the body into ``read`` up to ``max_bytes``; True when it is complete
        within the limit (False: the client left, or the body is too large)."""
        size = 0
        while size <= self.max_bytes:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                return False
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return size <= self.max_bytes
        return False


SLOW_BODY = "the request body did not arrive in time; send it whole and retry"


async def send_refusal(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    text: str,
    *,
    request_id: object = None,
    headers: dict[str, str] | None = None,
) -> None:
    """A JSON-RPC error with HTTP ``status``, for a request refused before the SDK read it."""
    body = json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": INVALID_REQUEST, "message": text}},
        separators=(",", ":"),
    )
    response = Response(body, status, headers=headers, media_type="application/json")
    await response(scope, receive, send)


def _version_header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"mcp-protocol-version":
            text: str = value.decode("latin-1")
            return text
    return None


class _Asgi:
    """Makes Starlette's ``Route`` treat a function as an ASGI app, not an endpoint."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _healthz(store: SessionStore) -> Callable[[Request], Awaitable[Response]]:
    async def healthz(request: Request) -> Response:
        health = await store.health()
        return JSONResponse({"status": "ok" if health.healthy else "degraded"})

    return healthz


def _readyz(runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    """Readiness: 200 while this process can serve calls; 503 while it cannot (the store
    refuses this server, the breaker is open without a fallback, shutting down), so an
    orchestrator sends traffic elsewhere. Liveness stays ``/healthz``: restarting does
    not fix any of these."""

    async def readyz(request: Request) -> Response:
        if runtime.closing:
            return JSONResponse({"status": "not ready", "failure": "shutting_down"}, 503)
        health = await runtime.store.health()
        if not health.healthy:
            return JSONResponse({"status": "not ready", "failure": health.failure}, 503)
        return JSONResponse({"status": "ready", "failure": health.failure})

    return readyz


def _metrics(
    runtime: Runtime, settings: Settings, *, auth: bool
) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``: the Prometheus text format (``mcp_server.metrics``)."""
    exposition = metrics.Exposition(runtime)
    secret = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    expected = hashlib.sha256(secret.encode()).digest() if secret else None

    async def scrape(request: Request) -> Response:
        if expected is not None or auth:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            given = hashlib.sha256(token.strip().encode("utf-8", "surrogatepass")).digest()
            if expected is None:
                return JSONResponse(
                    {"error": "metrics need a scrape token: set WM_METRICS_TOKEN"}, 403
                )
            if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
                _auth_failure(request.scope, _reason(header))
                return JSONResponse(
                    {"error": "send Authorization: Bearer <WM_METRICS_TOKEN>"},
                    401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return Response(await exposition.render(), media_type=metrics.CONTENT_TYPE)

    return scrape


def _reason(header: str) -> str:
    """Why a request's credentials were refused, in words that reveal nothing of them."""
    if not header:
        return "missing"
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "malformed"
    return "invalid"


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def _auth_failure(scope: Scope, reason: str) -> None:
    metrics.auth_failed(reason)
    log.warning(
        "authentication failed: reason=%s method=%s path=%s client=%s",
        reason,
        scope.get("method", "-"),
        scope.get("path", "-"),
        _client(scope),
    )


class AuthFailures:
    """Logs and counts each request to an MCP endpoint that arrives without a valid
    bearer token (the SDK answers it 401). Runs after ``AuthenticationMiddleware``."""

    PROTECTED = (MCP_PATH, SSE_PATH, MESSAGES_PATH)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] != "OPTIONS"  # a CORS preflight carries no credentials
            and scope["path"].startswith(self.PROTECTED)
            and not isinstance(scope.get("user"), AuthenticatedUser)
        ):
            header = ""
            for name, value in scope.get("headers", []):
                if name == b"authorization":
                    header = value.decode("latin-1")
            _auth_failure(scope, _reason(header))
        await self.app(scope, receive, send)


class AccessLog:
    """One line per HTTP request when it ends (``WM_ACCESS_LOG``): method, path without
    its query (an SSE ``session_id`` stays out of the log), status, milliseconds, the
    principal and the client address. A stream (SSE, a GET on ``/mcp``) is logged when
    it closes, with its whole duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            user = scope.get("user")
            access_log.info(
                "%s %s %d ms=%.1f principal=%s client=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                user.display_name if isinstance(user, AuthenticatedUser) else "-",
                _client(scope),
            )
