"""Options of a run and resources shared by its sections (the Redis server).

Redis: ``--redis-url`` (or ``WM_BENCH_REDIS_URL``) if given, else 127.0.0.1:6379 if
it answers, else a throwaway ``redis-server`` on a free port (no persistence) that
this run starts and kills at the end, else the Redis parts are skipped with a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

# The Redis process helper lives with the tests (one implementation).
from tests.support.redis_proc import RedisProcess

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True, slots=True)
class Options:
    quick: bool = False
    rounds: int = 10
    iterations: int = 500  # per variant per round, for Redis-backed variants
    memory_iterations: int = 4000  # per variant per round, for in-process variants
    warmup: int = 200
    block: int = 25  # calls per turn when variants alternate (x10 for in-process ones)
    big_session_keys: int = 10_000
    mcp_rounds: int = 5  # section mcp: full tool calls to a server subprocess
    mcp_iterations: int = 150  # per variant per round over HTTP (stdio: 3x as many)
    mcp_warmup: int = 30
    mcp_block: int = 10
    redis_url: str | None = None  # explicit URL; None: discover
    use_redis: bool = True
    spawn_redis: bool = True

    @classmethod
    def make(
        cls,
        *,
        quick: bool,
        rounds: int | None = None,
        iterations: int | None = None,
        redis_url: str | None = None,
        use_redis: bool = True,
        spawn_redis: bool = True,
    ) -> Options:
        base = (
            cls(
                rounds=3,
                iterations=60,
                memory_iterations=300,
                warmup=30,
                mcp_rounds=2,
                mcp_iterations=15,
                mcp_warmup=5,
                mcp_block=5,
            )
            if quick
            else cls()
        )
        return cls(
            quick=quick,
            rounds=rounds or base.rounds,
            iterations=iterations or base.iterations,
            memory_iterations=(iterations * 8 if iterations else base.memory_iterations),
            warmup=base.warmup,
            big_session_keys=base.big_session_keys,
            mcp_rounds=rounds or base.mcp_rounds,
            mcp_iterations=iterations or base.mcp_iterations,
            mcp_warmup=base.mcp_warmup,
            mcp_block=base.mcp_block,
            redis_url=redis_url or os.environ.get("WM_BENCH_REDIS_URL") or None,
            use_redis=use_redis,
            spawn_redis=spawn_redis,
        )


def _answers(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class BenchContext:
    """Handed to every section: the options and lazily acquired shared resources."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._redis_resolved = False
        self._redis_url: str | None = None
        self._redis_reason = ""
        self._redis_origin = ""
        self._spawned: RedisProcess | None = None

    async def redis(self) -> tuple[str | None, str]:
        """``(url, description)`` of the Redis to use, or ``(None, reason to skip)``."""
        if not self._redis_resolved:
            self._redis_resolved = True
            await asyncio.to_thread(self._resolve_redis)
        if self._redis_url is None:
            return None, self._redis_reason
        return self._redis_url, self._redis_origin

    def _resolve_redis(self) -> None:
        opts = self.options
        if not opts.use_redis:
            self._redis_reason = "Redis disabled (--no-redis)"
            return
        if opts.redis_url:
            self._redis_url, self._redis_origin = opts.redis_url, "given URL"
            return
        parts = urlsplit(DEFAULT_REDIS_URL)
        if _answers(parts.hostname or "127.0.0.1", parts.port or 6379):
            self._redis_url, self._redis_origin = DEFAULT_REDIS_URL, "running server"
            return
        binary = shutil.which("redis-server")
        if not opts.spawn_redis or binary is None:
            why = "--no-spawn" if binary else "no redis-server binary"
            self._redis_reason = f"no Redis on 127.0.0.1:6379 and {why}"
            return
        server = RedisProcess()
        try:
            server.start()
        except RuntimeError:
            server.cleanup()
            self._redis_reason = "a throwaway redis-server did not start"
            return
        self._spawned = server
        self._redis_url, self._redis_origin = server.url, "throwaway redis-server"

    def close(self) -> None:
        if self._spawned is not None:
            with contextlib.suppress(OSError):
                self._spawned.stop()
                self._spawned.cleanup()
            self._spawned = None
