"""Server replicas as subprocesses: ``python -m mcp_server --transport http`` on free
loopback ports, for the multi-replica tests and the replicas benchmark."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.support.child_env import ALL_TOOLS, measured
from tests.support.redis_proc import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """One replica. ``env`` adds ``WM_*`` settings (the store URL, key prefix, ...)."""

    def __init__(self, env: dict[str, str], name: str = "replica") -> None:
        self.name = name
        self.port = free_port()
        self.log_path = Path(tempfile.mkstemp(prefix=f"wm-{name}-", suffix=".log")[1])
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "WM_TRANSPORT": "http",
            "WM_HOST": "127.0.0.1",
            "WM_PORT": str(self.port),
            "WM_LOG_LEVEL": "WARNING",
            **ALL_TOOLS,
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mcp_server"],
                cwd=ROOT,
                env=measured(self.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until ``/healthz`` answers (ok or degraded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at startup:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/healthz", timeout=0.5) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s:\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (graceful: connection sessions are torn down), SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def cleanup(self) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


def start_replicas(envs: list[dict[str, str]]) -> list[ServerProcess]:
    """Start one replica per env at once (they import in parallel) and wait for all."""
    replicas = [ServerProcess(env, f"replica{i}") for i, env in enumerate(envs)]
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
    except BaseException:
        for replica in replicas:
            replica.cleanup()
        raise
    return replicas
