"""Serving one client over stdin/stdout: the process is the connection.

One session per process: opened before the first message is read and closed at end
of input, or on SIGTERM/SIGINT well within the ~2 s a client waits before killing
the server. On a signal the SDK's stdin reader may sit in a blocking read in a
worker thread that nothing can interrupt, so after the teardown the process exits
directly instead of waiting for that thread.
"""

from __future__ import annotations

import logging
import os
import signal

import anyio

from mcp_server.binding import SessionBinder, short
from mcp_server.events.sessions import SessionEvents
from mcp_server.server import create_server
from mcp_server.settings import Settings
from mcp_server.store import build_store

log = logging.getLogger("mcp_server.stdio")

TEARDOWN_SECONDS = 1.5


async def serve_stdio(settings: Settings) -> None:
    store = build_store(settings)
    await store.start()
    server = create_server(settings, store)
    binder = server.runtime.binder
    events = server.runtime.events
    await events.start()
    reason = "error"
    try:
        session_id = await binder.open_process_session()
        log.info(
            "serving stdio session=%s store=%s", short(session_id), (await store.health()).mode
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(_exit_on_signal, binder, events)
            await server.run_stdio_async()
            tg.cancel_scope.cancel()
        reason = "end of input"
    finally:
        with anyio.move_on_after(TEARDOWN_SECONDS, shield=True):
            await binder.close_all(reason)
            await events.close()
            await store.close()


async def _exit_on_signal(binder: SessionBinder, events: SessionEvents) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            log.info("stopping on %s", name)
            with anyio.move_on_after(TEARDOWN_SECONDS, shield=True):
                await binder.close_all(name)
                await events.close()
                await binder.store.close()
            logging.shutdown()
            os._exit(0)
