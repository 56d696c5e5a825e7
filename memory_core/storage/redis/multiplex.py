"""One Redis connection that carries every script call of a backend, pipelined.

redis-py takes a connection from its pool for each command, writes the command, waits
for the reply and returns the connection: about 90 µs of CPU per call on this class of
machine, most of it Python (the pool, retries, observability hooks), and two system
calls per call. Here every call writes its command to one shared connection and waits
for its own reply: Redis answers the commands of one connection in the order it got
them, so replies are matched to callers first in, first out. Commands issued in one
turn of the event loop leave in one write; replies that arrive together are parsed in
one read (hiredis). Measured with ``make bench`` (section ``http``) and
``benchmarks.core``.

Failure is per connection, never per call: a reply that has not arrived within the
command timeout, a connection Redis closes or resets, a failed connect, or bytes that
are not the Redis protocol fail every call waiting on that connection (with redis-py's
own exceptions: ``TimeoutError``, ``ConnectionError``, ``InvalidResponse``) and close it,
because the replies still owed could never be matched again. The next call connects
afresh. Error replies become redis-py's exception classes (its parser's
``parse_error``: ``NoScriptError``, ``OutOfMemoryError``, ``NoPermissionError``, ...), so
``backend.classify`` treats both clients alike.

Only for ``redis://`` and ``unix://`` stores (one server, plain text). TLS, Cluster and
Sentinel keep redis-py's client, as do commands other than scripts (PING, INFO, ...).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, cast

import hiredis
from redis._parsers.base import BaseParser as _Parser
from redis.asyncio import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError


class _Link(asyncio.Protocol):
    """One open connection: commands out, replies matched to their callers in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, command_timeout: float) -> None:
        self.loop = loop
        self.command_timeout = command_timeout
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._reader = hiredis.Reader(
            protocolError=InvalidResponse, replyError=_Parser.parse_error, encoding="utf-8"
        )
        # (deadline, future) of every command sent or queued, oldest first
        self._waiting: collections.deque[tuple[float, asyncio.Future[Any]]] = collections.deque()
        self._out: list[bytes] = []
        self._watchdog: asyncio.TimerHandle | None = None

    # asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self._waiting
        while True:
            try:
                reply = self._reader.gets()
            except InvalidResponse as exc:
                self.fail(exc)
                return
            except ValueError:  # not UTF-8: nothing this server writes
                self.fail(DataError("Redis sent a reply that is not UTF-8 text"))
                return
            if reply is False:
                return
            if not waiting:
                self.fail(InvalidResponse("Redis sent a reply nobody asked for"))
                return
            _, future = waiting.popleft()
            if future.done():  # its caller was cancelled: the reply is only consumed
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError("Connection closed by server."))

    # commands ------------------------------------------------------------------------
    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command; the future gets its reply (or the connection's failure)."""
        future: asyncio.Future[Any] = self.loop.create_future()
        if self.closed:
            future.set_exception(RedisConnectionError("Connection closed."))
            return future
        if not self._out:
            self.loop.call_soon(self._flush)
        self._out.append(hiredis.pack_command(args))
        self._waiting.append((self.loop.time() + self.command_timeout, future))
        if self._watchdog is None:
            self._arm()
        return future

    def _flush(self) -> None:
        out, self._out = self._out, []
        transport = self.transport
        if self.closed or not out or transport is None:
            return
        if transport.is_closing():
            self.fail(RedisConnectionError("Connection closed."))
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))

    # the command timeout: one timer for the oldest command ---------------------------
    def _arm(self) -> None:
        deadline = self._waiting[0][0]
        self._watchdog = self.loop.call_at(deadline, self._check)

    def _check(self) -> None:
        self._watchdog = None
        if self.closed or not self._waiting:
            return
        if self._waiting[0][0] <= self.loop.time():
            self.fail(RedisTimeoutError("Timeout reading from Redis"))
            return
        self._arm()

    # failure -----------------------------------------------------------------------
    def fail(self, exc: Exception) -> None:
        """Close the connection and fail every command still owed a reply."""
        if self.closed:
            return
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self.transport is not None:
            self.transport.abort()
        waiting, self._waiting = self._waiting, collections.deque()
        self._out = []
        for _, future in waiting:
            if not future.done():
                future.set_exception(exc)

    @property
    def idle(self) -> bool:
        return not self._waiting


class ScriptConnection:
    """The shared connection of one backend; connects on first use and after a failure.

    Args:
        host, port, path: where Redis listens (``path``: a Unix socket).
        username, password, db: sent as ``AUTH`` and ``SELECT`` on every connect.
        connect_timeout, command_timeout: seconds.
    """

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 6379,
        path: str | None = None,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        connect_timeout: float,
        command_timeout: float,
    ) -> None:
        self._address = (host, port, path)
        self._auth = (username, password)
        self._db = db
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._link: _Link | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def for_pool(
        cls, pool: ConnectionPool, *, connect_timeout: float, command_timeout: float
    ) -> ScriptConnection:
        """The same server, credentials and database as ``pool`` (parsed from its URL)."""
        kw = pool.connection_kwargs
        return cls(
            host=str(kw.get("host") or "localhost"),
            port=int(kw.get("port") or 6379),
            path=kw.get("path"),
            username=kw.get("username"),
            password=kw.get("password"),
            db=int(kw.get("db") or 0),
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
        )

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply; raise its error reply (redis-py's
        class for it) or the connection's failure."""
        link = self._link
        if link is None or link.closed or link.loop is not asyncio.get_running_loop():
            link = await self._connect()
        return await link.send(args)

    async def _connect(self) -> _Link:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            # A connection and a lock belong to one event loop (tests run several).
            self._lock, self._loop, self._link = asyncio.Lock(), loop, None
        async with self._lock:
            link = self._link
            if link is None or link.closed:
                link = self._link = await self._open(loop)
            return link

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Link:
        host, port, path = self._address
        link = _Link(loop, self._command_timeout)
        opened = False
        try:
            async with asyncio.timeout(self._connect_timeout):
                if path is not None:
                    await loop.create_unix_connection(lambda: link, path)
                else:
                    await loop.create_connection(lambda: link, host, port)
                await self._handshake(link)
            opened = True
        except TimeoutError:
            raise RedisTimeoutError("Timeout connecting to Redis") from None
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to Redis: {exc}") from exc
        finally:
            if not opened:  # refused, timed out, AUTH/SELECT refused, cancelled
                link.fail(RedisConnectionError("Connection closed."))
        return link

    async def _handshake(self, link: _Link) -> None:
        username, password = self._auth
        replies = []
        if password is not None:
            auth = ("AUTH", password) if username is None else ("AUTH", username, password)
            replies.append(link.send(auth))
        if self._db:
            replies.append(link.send(("SELECT", self._db)))
        for reply in await asyncio.gather(*replies, return_exceptions=True):
            if isinstance(reply, BaseException):
                raise reply  # the first refusal (AUTH before SELECT)

    async def drop_if_idle(self) -> None:
        """Close the connection unless a call waits on it (the next call reconnects)."""
        link = self._link
        if link is not None and link.idle:
            link.fail(RedisConnectionError("Connection closed."))
            self._link = None

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.fail(RedisConnectionError("Connection closed."))
