"""Helpers shared by the load, fuzz and isolation suites: the server as an HTTP
subprocess on a loopback port, Redis key hygiene, and latency percentiles."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.support.child_env import ALL_TOOLS, unmeasured
from tests.support.redis_proc import free_port

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(__file__).resolve().parent / "results"  # gitignored

# Lines a server must never log while serving hostile or concurrent traffic.
CRASH_MARKERS = ("Traceback", "tool crashed", "Exception in ASGI application")


class ServerProcess:
    """``python -m mcp_server --transport http`` on a free loopback port.

    Only the ``WM_*`` variables given here reach it (a developer's own ``WM_*``
    environment does not). Its stderr goes to a temporary file, for ``log()``.
    """

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = {"WM_LOG_LEVEL": "WARNING", **ALL_TOOLS, **(env or {})}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.mkstemp(prefix="wm-server-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith("WM_") and not k.startswith("COV_")
            }
            env = unmeasured(env | self.env)
            with self._log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "mcp_server",
                        "--transport",
                        "http",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(self.port),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    cwd=ROOT,
                    env=env,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _healthy(self.url):
                    return self
                time.sleep(0.05)
            self.stop()
            if "address already in use" not in self.log().lower():
                break
        raise RuntimeError(f"the server did not start:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (graceful: tears sessions down), then SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def log(self) -> str:
        return self._log.read_text(errors="replace")

    def crashes(self) -> list[str]:
        """Log lines that show an unhandled exception in the server."""
        return [line for line in self.log().splitlines() if any(m in line for m in CRASH_MARKERS)]

    def cleanup(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            self._log.unlink()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_server(env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    server = ServerProcess(env).start()
    try:
        yield server
    finally:
        server.cleanup()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (0 < q <= 100); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write ``figures`` to ``tests/reliability/results/<name>.json`` (for the docs)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return path
