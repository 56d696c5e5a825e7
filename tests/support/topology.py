"""Local Redis Cluster and Redis Sentinel topologies on free loopback ports, for tests.

Each topology is a context manager. Entering starts every process in its own temp dir and
waits (bounded) until the topology is usable: for Cluster every node reports
``cluster_state:ok`` and every master has an online replica; for Sentinel the replica is
in sync and every sentinel knows the replica and the other sentinels (without that a
failover cannot be authorized). Leaving kills every process (SIGKILL) and removes every
dir -- also when starting failed half way.

Waits use synchronous redis-py clients with short timeouts: this runs in fixtures, before
and after the event loop of a test.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from tests.support.redis_proc import RedisProcess, free_port

HOST = "127.0.0.1"
# A replica syncs as soon as it connects (not after Redis 7.0's 5 s default delay), and
# masters ping replicas every second: until a replica's replication offset moves past 0,
# CLUSTER SLOTS does not list it.
FAST_SYNC = [
    "--repl-diskless-sync", "yes",
    "--repl-diskless-sync-delay", "0",
    "--repl-ping-replica-period", "1",
]  # fmt: skip


class TopologyError(RuntimeError):
    """A local topology did not come up (or back) within its time bound."""


def missing_binaries() -> str | None:
    """Why local topologies cannot run here, or None when they can."""
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if missing:
        return f"needs the {' and '.join(missing)} binar{'ies' if len(missing) > 1 else 'y'}"
    return None


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until true; return the seconds it took or raise TopologyError."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if predicate():
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TopologyError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def client(port: int) -> redis.Redis:
    """A short-lived sync client for one node (the caller closes it)."""
    return redis.Redis(
        host=HOST, port=port, decode_responses=True, socket_timeout=1, socket_connect_timeout=1
    )


def cached_scripts(node: redis.Redis) -> int:
    """How many Lua scripts ``node`` holds (SCRIPT LOAD / EVAL add, SCRIPT FLUSH empties)."""
    return int(node.info("memory")["number_of_cached_scripts"])


def _call(port: int, *args: str | int) -> Any:
    with client(port) as c:
        return c.execute_command(*args)


def _info(port: int, section: str) -> dict[str, Any]:
    with client(port) as c:
        return dict(c.info(section))


class _Topology:
    processes: list[RedisProcess]

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def cleanup(self) -> None:
        """Kill every process and remove every dir; safe to call twice."""
        for proc in self.processes:
            proc.cleanup()

    def process_on(self, port: int) -> RedisProcess:
        return next(p for p in self.processes if p.port == port)

    def _spawn(self, extra_args: list[str]) -> RedisProcess:
        proc = RedisProcess(extra_args=extra_args)
        self.processes.append(proc)  # before start(): cleanup must find it if start fails
        proc.start()
        return proc


class ClusterTopology(_Topology):
    """``masters`` masters with one replica each, built by ``redis-cli --cluster create``."""

    def __init__(self, masters: int = 3, node_timeout_ms: int = 1000) -> None:
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms
        self.processes = []

    def start(self, timeout: float = 30.0) -> None:
        args = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            *FAST_SYNC,
        ]  # fmt: skip
        for _ in range(self.masters * 2):
            # The bus port defaults to port + 10000, which may be taken or above 65535.
            self._spawn([*args, "--cluster-port", str(free_port())])
        cli = shutil.which("redis-cli")
        assert cli is not None
        create = [cli, "--cluster", "create"]
        create += [f"{HOST}:{p.port}" for p in self.processes]
        create += ["--cluster-replicas", "1", "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise TopologyError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        self.wait_healthy(timeout)

    @property
    def url(self) -> str:
        """A store URL naming three of the nodes (any reachable node would do)."""
        return "redis+cluster://" + ",".join(f"{HOST}:{p.port}" for p in self.processes[:3])

    def live(self) -> list[RedisProcess]:
        return [p for p in self.processes if p.proc is not None]

    def wait_healthy(self, timeout: float = 20.0) -> float:
        """Wait until every live node says ``cluster_state:ok`` and agrees on the masters,
        and every master has an online replica. Returns the seconds waited."""

        def healthy() -> bool:
            live = self.live()
            for node in live:
                if "cluster_state:ok" not in str(_call(node.port, "CLUSTER", "INFO")):
                    return False
            masters = {p.port for p in live if _info(p.port, "replication")["role"] == "master"}
            slots = self._slots()
            if len(masters) != self.masters or {int(r[2][1]) for r in slots} != masters:
                return False
            return all(len(r) > 3 for r in slots) and all(
                _info(port, "replication").get("slave0", {}).get("state") == "online"
                for port in masters
            )

        return wait_until(healthy, timeout, "a healthy cluster")

    def _slots(self) -> list[Any]:
        """CLUSTER SLOTS from the first live node that answers: [start, end, master,
        replica...] with each node as [host, port, id, ...]."""
        last: Exception | None = None
        for port in [p.port for p in self.live()]:
            try:
                return list(_call(port, "CLUSTER", "SLOTS"))
            except (redis.RedisError, OSError) as exc:
                last = exc
        raise TopologyError(f"no node answers CLUSTER SLOTS: {last}")

    def keyslot(self, key: str) -> int:
        """The slot of ``key``, as the cluster itself computes it (CLUSTER KEYSLOT)."""
        return int(_call(self.live()[0].port, "CLUSTER", "KEYSLOT", key))

    def master_of(self, slot: int) -> RedisProcess:
        """The process currently serving ``slot`` as master (per the live nodes)."""
        for start, end, master, *_ in self._slots():
            if int(start) <= slot <= int(end):
                return self.process_on(int(master[1]))
        raise TopologyError(f"slot {slot} is not served")

    def replica_of(self, master: RedisProcess) -> RedisProcess:
        for _start, _end, owner, *replicas in self._slots():
            if int(owner[1]) == master.port and replicas:
                return self.process_on(int(replicas[0][1]))
        raise TopologyError(f"master on port {master.port} has no replica")


class SentinelProcess(RedisProcess):
    """``redis-server <conf> --sentinel`` (or ``redis-sentinel`` when installed)."""

    def __init__(self, config_lines: list[str]) -> None:
        super().__init__()
        self.config_lines = config_lines

    def start(self, timeout: float = 10.0) -> SentinelProcess:
        conf = self.dir / "sentinel.conf"  # sentinel rewrites its config: must be writable
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    f"bind {HOST}",
                    f"dir {self.dir}",
                    f"logfile {self.dir / 'sentinel.log'}",
                    *self.config_lines,
                ]
            )
            + "\n"
        )
        sentinel = shutil.which("redis-sentinel")
        args = [sentinel, str(conf)] if sentinel else [self.binary, str(conf), "--sentinel"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: bool(_call(self.port, "PING")), timeout, "a sentinel")
        except TopologyError:
            raise TopologyError(f"redis sentinel did not start on port {self.port}") from None
        return self


class SentinelTopology(_Topology):
    """One master, one replica and ``sentinels`` sentinels monitoring ``service``."""

    def __init__(
        self,
        service: str = "wm",
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.service = service
        self.sentinel_count = sentinels
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.processes = []
        self.sentinels: list[SentinelProcess] = []

    def start(self, timeout: float = 20.0) -> None:
        master = self._spawn(FAST_SYNC)
        self._spawn([*FAST_SYNC, "--replicaof", HOST, str(master.port)])
        lines = [
            f"sentinel monitor {self.service} {HOST} {master.port} {self.sentinel_count // 2 + 1}",
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}",
            f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {self.service} 1",
        ]
        for _ in range(self.sentinel_count):
            sentinel = SentinelProcess(lines)
            self.processes.append(sentinel)
            self.sentinels.append(sentinel)
            sentinel.start()
        self.wait_healthy(timeout)

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def master_port(self) -> int:
        """The master port the sentinels agree on (raises when they do not, yet)."""
        seen = set()
        for s in self.sentinels:
            if s.proc is None:
                continue
            addr = _call(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            seen.add(int(addr[1]))
        if len(seen) != 1:
            raise TopologyError(f"sentinels disagree on the master: {sorted(seen)}")
        return seen.pop()

    def master(self) -> RedisProcess:
        return self.process_on(self.master_port())

    def wait_healthy(self, timeout: float = 20.0) -> float:
        """Wait until a master has an online replica and every sentinel sees the master up,
        its replica, and all other sentinels. Returns the seconds waited."""
        others = self.sentinel_count - 1

        def healthy() -> bool:
            port = self.master_port()
            repl = _info(port, "replication")
            if repl["role"] != "master" or repl.get("slave0", {}).get("state") != "online":
                return False
            for s in self.sentinels:
                if s.proc is None:
                    continue
                # redis-py parses SENTINEL MASTER/REPLICAS replies into dicts of strings
                state = _call(s.port, "SENTINEL", "MASTER", self.service)
                if state["flags"] != "master" or int(state["num-other-sentinels"]) < others:
                    return False
                replicas = _call(s.port, "SENTINEL", "REPLICAS", self.service)
                if not any("s_down" not in r["flags"] for r in replicas):
                    return False
            return True

        return wait_until(healthy, timeout, "a healthy sentinel setup")


def raw_client(topology: ClusterTopology | SentinelTopology) -> aioredis.Redis | RedisCluster:
    """A plain redis-py client on the topology, independent of the code under test: a
    cluster client (its scan_iter walks every master), or a client of the current master."""
    if isinstance(topology, ClusterTopology):
        return RedisCluster(host=HOST, port=topology.processes[0].port, decode_responses=True)
    return aioredis.Redis(host=HOST, port=topology.master_port(), decode_responses=True)
