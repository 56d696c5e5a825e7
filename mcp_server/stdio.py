"""Serving one client over stdin/stdout: the process is the connection.

One session per process: opened before the first message is read and closed with the
runtime at end of input, or on SIGTERM/SIGINT, well within the ~2 s a client waits
before killing the server (``Runtime.teardown_seconds``). On a signal the SDK's stdin
reader may sit in a blocking read in a worker thread that nothing can interrupt, so
after the teardown the process exits directly instead of waiting for that thread.

Every line gets an answer: the SDK drops a line it cannot parse silently, so lines are
read here as bytes and checked (``mcp_server.wire``) before the SDK parses them; a
refused line is answered with a JSON-RPC error and logged once. A line over
``WM_MAX_BODY_BYTES`` is skipped as it is read (never held whole) and refused the same
way. Batches are split into their messages for a 2025-03-26 connection (the one version
that requires them, each answer on its own line) and refused on every other.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import PROTOCOL_VERSION_META_KEY
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS

from mcp_server import wire
from mcp_server.binding import short
from mcp_server.heap import freeze_startup_heap
from mcp_server.runtime import Runtime
from mcp_server.sdk import claimed_stdin, lowlevel_server
from mcp_server.server import create_server
from mcp_server.settings import Settings

log = logging.getLogger("mcp_server.stdio")


async def serve_stdio(settings: Settings) -> None:
    server = create_server(settings)
    async with server.runtime as runtime:
        session_id = await runtime.binder.open_process_session()
        mode = (await runtime.store.health()).mode
        log.info("serving stdio session=%s store=%s", short(session_id), mode)
        freeze_startup_heap()
        if settings.session_name is not None and mode == "memory":
            log.warning(
                "WM_SESSION_NAME is set but the store is in memory: the named session "
                "cannot outlive this process (set WM_REDIS_URL to keep it across restarts)"
            )
        async with anyio.create_task_group() as tg:
            tg.start_soon(_exit_on_signal, runtime)
            await run_lines(server, settings.max_body_bytes)
            tg.cancel_scope.cancel()
        await runtime.close("end of input")


async def _exit_on_signal(runtime: Runtime) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            log.info("stopping on %s", name)
            await runtime.close(name)
            logging.shutdown()
            os._exit(0)


async def run_lines(server: MCPServer[Any], max_line_bytes: int) -> None:
    """``MCPServer.run_stdio_async``, with every line checked before the SDK parses it
    and no line over ``max_line_bytes`` held in memory."""
    low = lowlevel_server(server)
    with claimed_stdin() as stdin:
        lines = CheckedLines(bounded_lines(anyio.wrap_file(stdin), max_line_bytes), max_line_bytes)
        # stdio_server only iterates its stdin and hands each line to pydantic's
        # validate_json, which takes bytes as well as text.
        async with stdio_server(stdin=cast("anyio.AsyncFile[str]", lines)) as (read, write):
            lines.answer_on(write)
            await low.run(read, write, low.create_initialization_options())


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line over the bound, skipped as it was read: only its size is kept."""

    size: int


async def bounded_lines(
    source: anyio.AsyncFile[bytes], max_bytes: int, chunk: int = 64 * 1024
) -> AsyncIterator[bytes | LongLine]:
    """The lines of ``source`` (with their newline), holding at most ``max_bytes`` of
    one line in memory: a longer line is read to its end and dropped (``LongLine``)."""
    line = bytearray()
    skipped = 0  # > 0 while skipping a line over the bound
    while True:
        data = await source.read1(chunk)
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            stop = len(data) if end < 0 else end + 1
            if skipped:
                skipped += stop - start
            else:
                line += data[start:stop]
                if len(line) > max_bytes + 1:  # + 1: the newline is not the message
                    skipped, line = len(line), bytearray()
            start = stop
            if end >= 0:
                yield LongLine(skipped - 1) if skipped else bytes(line)
                skipped, line = 0, bytearray()
        if not data:
            if skipped or line:
                yield LongLine(skipped) if skipped else bytes(line)
            return


class CheckedLines:
    """The lines of the wire that the SDK may parse; the others are answered here."""

    def __init__(
        self,
        source: AsyncIterator[bytes | LongLine] | AsyncIterator[bytes] | anyio.AsyncFile[bytes],
        max_bytes: int | None = None,
    ) -> None:
        self._source = source
        self._max_bytes = max_bytes
        self._write: Any = None
        self._ready = anyio.Event()
        self.version: str | None = None

    def answer_on(self, write: Any) -> None:
        """Where refusals go: the write stream of ``stdio_server``."""
        self._write = write
        self._ready.set()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for line in self._source:
            if isinstance(line, LongLine):
                await self._refuse(wire.too_long(line.size, self._max_bytes or 0), line.size)
                continue
            outcome = wire.check(line)
            if isinstance(outcome, wire.Message):
                self._note_version(outcome.value)
                yield line
            elif isinstance(outcome, wire.Refusal):
                await self._refuse(outcome, len(line))
            elif not wire.accepts_batches(self.version):
                await self._refuse(wire.refuse_batch(self.version), len(line))
            elif not outcome.items:
                await self._refuse(wire.empty_batch(), len(line))
            else:
                for item in outcome.items:
                    checked = wire.check_value(item)
                    if isinstance(checked, wire.Refusal):
                        await self._refuse(checked, len(line))
                    else:
                        yield json.dumps(item, ensure_ascii=False).encode("utf-8")

    def _note_version(self, message: Any) -> None:
        params = message.get("params") if isinstance(message, dict) else None
        if not isinstance(params, dict):
            return
        version = params.get("protocolVersion") if message.get("method") == "initialize" else None
        meta = params.get("_meta")
        if version is None and isinstance(meta, dict):
            version = meta.get(PROTOCOL_VERSION_META_KEY)
        if isinstance(version, str) and version in SUPPORTED_PROTOCOL_VERSIONS:
            self.version = version

    async def _refuse(self, refusal: wire.Refusal, size: int) -> None:
        log.warning(
            "refused a line: %s (%d bytes), answered %d id=%s",
            refusal.reason,
            size,
            refusal.code,
            refusal.id,
        )
        await self._ready.wait()
        await self._write.send(SessionMessage(refusal.error()))
