"""Serving one client over stdin/stdout: the process is the connection.

One session per process: opened before the first message is read and closed with the
runtime at end of input, or on SIGTERM/SIGINT, well within the ~2 s a client waits
before killing the server (``Runtime.teardown_seconds``). On a signal the SDK's stdin
reader may sit in a blocking read in a worker thread that nothing can interrupt, so
after the teardown the process exits directly instead of waiting for that thread.
"""

from __future__ import annotations

import logging
import os
import signal

import anyio

from mcp_server.binding import short
from mcp_server.runtime import Runtime
from mcp_server.server import create_server
from mcp_server.settings import Settings

log = logging.getLogger("mcp_server.stdio")


async def serve_stdio(settings: Settings) -> None:
    server = create_server(settings)
    async with server.runtime as runtime:
        session_id = await runtime.binder.open_process_session()
        log.info(
            "serving stdio session=%s store=%s",
            short(session_id),
            (await runtime.store.health()).mode,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(_exit_on_signal, runtime)
            await server.run_stdio_async()
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
