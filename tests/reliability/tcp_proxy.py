"""A steerable loopback TCP proxy, run in a process of its own.

The test puts it between the server and Redis and steers it: ``forward()`` (normal),
``hang()`` (stop forwarding: the port still accepts, nothing answers),
``set_latency(s)`` (every chunk ``s`` late in each direction), ``drop()`` (reset every
connection and every new one). ``heal()`` goes back to forwarding; connections that had
bytes stuck in a hang are reset then (their clients timed out and gave up on them), so a
request a client abandoned is never delivered late.

It runs as a subprocess (``python -m tests.reliability.tcp_proxy <port>``, commands on
stdin, one ``ok`` per command on stdout) so that its timing does not depend on how busy
the test process is: in-process, the GIL shared with a dozen MCP clients added tens of
milliseconds to "forwarding". Standard library only, so it starts in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    stalled: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), like a peer that vanished."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class ProxyCore:
    """The proxy itself: an event loop in a daemon thread of the proxy process; the
    control methods are thread-safe and take effect at once."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.mode = "forward"
        self.latency = 0.0
        self.accepted = 0
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._links: set[_Link] = set()
        self._flowing: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> ProxyCore:
        self._thread.start()
        self._run(self._start())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    # control --------------------------------------------------------------------------
    def forward(self) -> None:
        """Forward normally, without added latency."""
        self._run(self._set("forward", 0.0))

    heal = forward

    def hang(self) -> None:
        """Stop forwarding in both directions; new connections are accepted, not served."""
        self._run(self._set("hang", self.latency))

    def set_latency(self, seconds: float) -> None:
        """Forward every chunk ``seconds`` late, in each direction."""
        self._run(self._set("forward", seconds))

    def drop(self) -> None:
        """Reset every open connection and every new one (a refused/reset Redis)."""
        self._run(self._set("drop", 0.0))

    # internals ------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            self._kill(link)

    async def _set(self, mode: str, latency: float) -> None:
        assert self._flowing is not None
        previous = self.mode
        self.mode, self.latency = mode, latency
        if mode == "hang":
            self._flowing.clear()
            return
        if mode == "drop":
            for link in list(self._links):
                self._kill(link)
        if previous == "hang":
            for link in [link for link in self._links if link.stalled or link.upstream is None]:
                self._kill(link)
        self._flowing.set()

    def _kill(self, link: _Link) -> None:
        self.resets += 1
        self._links.discard(link)
        _reset(link.client)
        if link.upstream is not None:
            _reset(link.upstream)
        for task in link.tasks:
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        assert self._flowing is not None
        if self.mode == "drop":
            self.resets += 1
            _reset(writer)
            return
        link = _Link(writer)
        self._links.add(link)
        await self._flowing.wait()  # a hung proxy accepts but never connects upstream
        if link not in self._links or self.mode == "drop":
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            self._kill(link)
            return
        link.upstream = up_writer
        link.tasks = [
            asyncio.create_task(self._pump(link, reader, up_writer)),
            asyncio.create_task(self._pump(link, up_reader, writer)),
        ]

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert self._flowing is not None
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            flowing = self._flowing
            assert flowing is not None
            with contextlib.suppress(OSError):
                while True:
                    due, chunk = await queue.get()
                    if not chunk:
                        writer.close()
                        return
                    delay = due - self._loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if not flowing.is_set():
                        link.stalled = True
                        await flowing.wait()
                    if link not in self._links:
                        return
                    writer.write(chunk)
                    await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                chunk = await reader.read(65536)
                queue.put_nowait((self._loop.time() + self.latency, chunk))
                if not chunk:
                    break
            await sender
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            sender.cancel()
            if link in self._links and (reader.at_eof() or writer.is_closing()):
                self._links.discard(link)
                with contextlib.suppress(OSError):
                    link.client.close()
                    if link.upstream is not None:
                        link.upstream.close()


class TcpProxy:
    """Test-side handle of a proxy process to ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> TcpProxy:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.tcp_proxy", str(self.target_port)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.port = int(self._proc.stdout.readline())
        return self

    def _command(self, line: str) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        answer = proc.stdout.readline().strip()
        assert answer == "ok", f"proxy answered {answer!r} to {line!r}"

    def forward(self) -> None:
        """Forward normally, without added latency."""
        self._command("forward")

    heal = forward

    def hang(self) -> None:
        """Stop forwarding in both directions; new connections are accepted, not served."""
        self._command("hang")

    def set_latency(self, seconds: float) -> None:
        """Forward every chunk ``seconds`` late, in each direction."""
        self._command(f"latency {seconds}")

    def drop(self) -> None:
        """Reset every open connection and every new one (a refused/reset Redis)."""
        self._command("drop")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str]) -> None:
    core = ProxyCore(int(argv[0])).start()
    print(core.port, flush=True)
    commands = {"forward": core.forward, "hang": core.hang, "drop": core.drop}
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "latency":
            core.set_latency(float(words[1]))
        else:
            commands[words[0]]()
        print("ok", flush=True)
    core.close()


if __name__ == "__main__":
    main(sys.argv[1:])
