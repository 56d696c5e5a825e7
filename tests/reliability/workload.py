"""An MCP workload driver with a model of the acknowledged operations.

One ``Driver`` plays one agent on one session: it issues random tool calls through any
MCP ``Client`` (in-process, stdio, streamable HTTP, SSE; pass ``handle=`` for a
stateless session), keeps an exact model of every write the server acknowledged, and
checks every read against that model as it goes. Afterwards the final state can be
read back through the tools (``verify_tools``) or straight from a store
(``verify_memory``, e.g. a fallback-less store on the same Redis) and compared.

    driver = Driver(client, name="http-0", seed=0, mix=CHAOS_MIX)
    await driver.run(steps=200)                  # or stop=event / deadline=monotonic
    assert driver.stats.errors == [] and driver.stats.mismatches == []
    assert await driver.verify_tools() == []

API (kept stable for other suites to import):

* ``Mix(weights)`` -- relative weights of the operations in ``OPERATIONS``;
  ``CHAOS_MIX`` (every kind of write, reads checked) and ``LOAD_MIX`` (70 % get,
  20 % set, 5 % scratchpad append, 5 % checkpoint create).
* ``Driver(client, *, name, seed, mix, handle=None, keys=16, pad_cap=400,
  ttl_share=0.2, call_timeout=60.0)`` (a call taking longer is an error) with
  ``step()``, ``run(steps=, stop=, deadline=, pace=)``, ``verify_tools()``,
  ``verify_memory(wm)``, ``model``, ``stats``.
* ``Stats`` -- ``calls``, ``writes_acked``, ``reads_checked``, ``errors`` (tool calls
  that raised or returned ``isError``: the model cannot explain any), ``mismatches``
  (reads that disagreed with the model), ``samples`` (start, seconds, tool) of every
  call; ``latencies(tool=None, since=, until=, overlapping=False)``.
* ``percentile(values, q)`` -- nearest-rank percentile (q in 0..100).

The driver keeps within the server's default limits: a fixed key set, the scratchpad
capped at ``pad_cap`` entries (appends past it become reads), checkpoint evictions
taken from ``checkpoint_create``'s ``evicted``. TTLs are long (10 min to 1 h) so
nothing expires during a run; a key set with a TTL must come back with one no longer
than it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mcp import Client

from memory_core import WorkingMemory
from tests.support.results import tool_text

OPERATIONS = (
    "set",
    "get",
    "exists",
    "delete",
    "append",
    "task_set",
    "task_get",
    "checkpoint_create",
    "checkpoint_restore",
    "checkpoint_list",
    "list_keys",
)
WRITES = frozenset(
    {"set", "delete", "append", "task_set", "checkpoint_create", "checkpoint_restore"}
)
TASK_FIELDS = (
    "task_id",
    "status",
    "description",
    "current_step",
    "total_steps",
    "progress",
    "metadata",
)
STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
SPECIAL_KEYS = ("ключ/1", "emoji🙂", "a:b*c?[x]", "{tag}:meta", " spaced key ")
PAGE_LIMIT = 200
MAX_PAGES = 100


@dataclass(frozen=True)
class Mix:
    weights: dict[str, float]

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(OPERATIONS)
        assert not unknown, f"unknown operations {unknown}"

    def pick(self, rng: random.Random) -> str:
        ops = list(self.weights)
        return rng.choices(ops, weights=[self.weights[o] for o in ops])[0]


CHAOS_MIX = Mix(
    {
        "set": 30,
        "get": 22,
        "exists": 4,
        "delete": 8,
        "append": 12,
        "task_set": 6,
        "task_get": 4,
        "checkpoint_create": 4,
        "checkpoint_restore": 3,
        "checkpoint_list": 2,
        "list_keys": 5,
    }
)
LOAD_MIX = Mix({"get": 70, "set": 20, "append": 5, "checkpoint_create": 5})


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Snapshot:
    variables: dict[str, Any]
    ttls: dict[str, float | None]
    task: dict[str, Any] | None
    scratchpad: list[str]


@dataclass
class Model:
    """What the session must hold: every acknowledged write applied in order."""

    variables: dict[str, Any] = field(default_factory=dict)
    ttls: dict[str, float | None] = field(default_factory=dict)
    task: dict[str, Any] | None = None
    scratchpad: list[str] = field(default_factory=list)
    checkpoints: list[tuple[str, Snapshot]] = field(default_factory=list)  # oldest first

    def snapshot(self) -> Snapshot:
        return Snapshot(
            copy.deepcopy(self.variables),
            dict(self.ttls),
            copy.deepcopy(self.task),
            list(self.scratchpad),
        )

    def restore(self, snap: Snapshot) -> None:
        self.variables = copy.deepcopy(snap.variables)
        self.ttls = dict(snap.ttls)
        self.task = copy.deepcopy(snap.task)
        self.scratchpad = list(snap.scratchpad)

    def checkpoint_ids(self) -> list[str]:
        return [cid for cid, _ in self.checkpoints]


@dataclass
class Stats:
    calls: int = 0
    writes_acked: int = 0
    reads_checked: int = 0
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    samples: list[tuple[float, float, str]] = field(default_factory=list)
    per_tool: Counter[str] = field(default_factory=Counter)

    def latencies(
        self,
        tool: str | None = None,
        since: float = -math.inf,
        until: float = math.inf,
        *,
        overlapping: bool = False,
    ) -> list[float]:
        """Seconds per call (optionally one tool's) of the calls started in [since, until)
        or, with ``overlapping``, of every call in flight at some time in that window."""
        return [
            s
            for started, s, t in self.samples
            if (tool is None or t == tool)
            and (
                since < started + s and started < until if overlapping else since <= started < until
            )
        ]

    def merge(self, other: Stats) -> None:
        self.calls += other.calls
        self.writes_acked += other.writes_acked
        self.reads_checked += other.reads_checked
        self.errors += other.errors
        self.mismatches += other.mismatches
        self.samples += other.samples
        self.per_tool.update(other.per_tool)


class CallFailed(Exception):
    """A tool call raised or returned isError (recorded in ``Stats.errors``)."""


class Driver:
    """One agent on one session; see the module docstring."""

    def __init__(  # noqa: PLR0913 - keyword-only knobs, each with a default
        self,
        client: Client,
        *,
        name: str,
        seed: int,
        mix: Mix = CHAOS_MIX,
        handle: str | None = None,
        keys: int = 16,
        pad_cap: int = 400,
        ttl_share: float = 0.2,
        call_timeout: float = 60.0,
    ) -> None:
        self.client = client
        self.name = name
        self.rng = random.Random(seed)
        self.mix = mix
        self.handle = handle
        self.keys = [f"k{i}" for i in range(keys)] + list(SPECIAL_KEYS)
        self.pad_cap = pad_cap
        self.ttl_share = ttl_share
        self.call_timeout = call_timeout
        self.model = Model()
        self.stats = Stats()
        self._seq = 0

    # calling -------------------------------------------------------------------------
    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        """Call ``tool``; the structured result, or CallFailed (recorded as an error)."""
        if self.handle is not None and tool != "session_open":
            args.setdefault("session", self.handle)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.call_timeout):
                result = await self.client.call_tool(tool, args)
        except Exception as exc:
            self._sample(started, tool)
            self.stats.errors.append(f"{self.name} {tool}: {type(exc).__name__}: {exc}")
            raise CallFailed(tool) from exc
        self._sample(started, tool)
        if result.is_error or result.structured_content is None:
            text = tool_text(result) if result.content else ""
            self.stats.errors.append(f"{self.name} {tool}: isError: {text[:300]}")
            raise CallFailed(tool)
        return dict(result.structured_content)

    def _sample(self, started: float, tool: str) -> None:
        self.stats.calls += 1
        self.stats.per_tool[tool] += 1
        self.stats.samples.append((started, time.monotonic() - started, tool))

    def _mismatch(self, what: str) -> None:
        self.stats.mismatches.append(f"{self.name}: {what}")

    # values ----------------------------------------------------------------------------
    def _value(self) -> Any:  # noqa: PLR0911 - one return per kind of value
        self._seq += 1
        n = self._seq
        kind = self.rng.randrange(7)
        if kind == 0:
            return n
        if kind == 1:
            return f"{self.name}/{n} ünïcødé ✓ 🙂"
        if kind == 2:
            return [n, str(n), None, True, 1.5]
        if kind == 3:
            return {"n": n, "nested": {"list": [n, {"deep": [n]}], "s": "x" * (n % 50)}}
        if kind == 4:
            return None
        if kind == 5:
            return {"n": n, "blob": "y" * self.rng.randrange(1, 2000)}
        return n % 2 == 0

    def _task(self) -> dict[str, Any]:
        self._seq += 1
        total = self.rng.randrange(1, 50)
        step = self.rng.randrange(0, total + 1)
        return {
            "task_id": f"{self.name}-task-{self._seq % 5}",
            "status": self.rng.choice(STATUSES),
            "description": f"step {step} of {total} ✓",
            "current_step": step,
            "total_steps": total,
            "progress": round(step / total, 4),
            "metadata": {"seq": self._seq, "tags": ["a", "b"]},
        }

    # operations ------------------------------------------------------------------------
    async def step(self) -> str:
        """One random operation; returns its name. Failures are recorded, not raised."""
        op = self.mix.pick(self.rng)
        if op == "append" and len(self.model.scratchpad) >= self.pad_cap:
            op = "get"
        if op == "checkpoint_restore" and not self.model.checkpoints:
            op = "checkpoint_create"
        with contextlib.suppress(CallFailed):
            await getattr(self, "_op_" + op)()
        return op

    async def run(
        self,
        steps: int | None = None,
        *,
        stop: asyncio.Event | None = None,
        deadline: float | None = None,
        pace: float = 0.0,
        max_steps: int = 1_000_000,
    ) -> int:
        """Run until ``steps`` are done, ``stop`` is set or ``deadline`` (monotonic) passes;
        ``pace`` seconds between steps. Returns the steps done."""
        assert steps is not None or stop is not None or deadline is not None, "unbounded run"
        done = 0
        limit = min(steps if steps is not None else max_steps, max_steps)
        while done < limit:
            if stop is not None and stop.is_set():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            await self.step()
            done += 1
            if pace:
                await asyncio.sleep(pace)
            else:
                await asyncio.sleep(0)
        return done

    def _key(self) -> str:
        return self.rng.choice(self.keys)

    async def _op_set(self) -> None:
        key, value = self._key(), self._value()
        ttl = self.rng.choice((600, 1800, 3600)) if self.rng.random() < self.ttl_share else None
        args: dict[str, Any] = {"key": key, "value": value}
        if ttl is not None:
            args["ttl_seconds"] = ttl
        await self.call("memory_set", **args)
        self.model.variables[key] = value
        self.model.ttls[key] = ttl
        self.stats.writes_acked += 1

    async def _op_get(self) -> None:
        key = self._key()
        got = await self.call("memory_get", key=key)
        self.stats.reads_checked += 1
        m = self.model
        if got["found"] != (key in m.variables) or got["value"] != m.variables.get(key):
            self._mismatch(
                f"memory_get {key!r}: got found={got['found']} value={got['value']!r}, "
                f"expected {m.variables.get(key, '<absent>')!r}"
            )
        elif key in m.variables:
            self._check_ttl(key, got["ttl_seconds_remaining"], "memory_get")

    def _check_ttl(self, key: str, remaining: float | None, where: str) -> None:
        expected = self.model.ttls.get(key)
        if (remaining is None) != (expected is None) or (
            remaining is not None and expected is not None and remaining > expected + 1
        ):
            self._mismatch(f"{where} {key!r}: ttl {remaining} for a key set with ttl {expected}")

    async def _op_exists(self) -> None:
        key = self._key()
        got = await self.call("memory_exists", key=key)
        self.stats.reads_checked += 1
        if got["exists"] != (key in self.model.variables):
            self._mismatch(f"memory_exists {key!r}: {got['exists']}")

    async def _op_delete(self) -> None:
        key = self._key()
        got = await self.call("memory_delete", key=key)
        expected = key in self.model.variables
        self.model.variables.pop(key, None)
        self.model.ttls.pop(key, None)
        self.stats.writes_acked += 1
        self.stats.reads_checked += 1
        if got["deleted"] != expected:
            self._mismatch(f"memory_delete {key!r}: deleted={got['deleted']}")

    async def _op_append(self) -> None:
        self._seq += 1
        content = f"{self.name} note {self._seq} ✎"
        got = await self.call("scratchpad_append", content=content)
        self.model.scratchpad.append(content)
        self.stats.writes_acked += 1
        self.stats.reads_checked += 1
        if got["length"] != len(self.model.scratchpad):
            self._mismatch(f"scratchpad_append length {got['length']}")

    async def _op_task_set(self) -> None:
        task = self._task()
        await self.call("task_state_set", **task)
        self.model.task = task
        self.stats.writes_acked += 1

    async def _op_task_get(self) -> None:
        got = await self.call("task_state_get")
        self.stats.reads_checked += 1
        if _task_fields(got["state"]) != self.model.task:
            self._mismatch(f"task_state_get {got['state']!r} expected {self.model.task!r}")

    async def _op_checkpoint_create(self) -> None:
        self._seq += 1
        got = await self.call("checkpoint_create", label=f"{self.name} cp {self._seq}")
        evicted = set(got["evicted"])
        unknown = evicted - set(self.model.checkpoint_ids())
        if unknown:
            self._mismatch(f"checkpoint_create evicted unknown ids {unknown}")
        self.model.checkpoints = [cp for cp in self.model.checkpoints if cp[0] not in evicted]
        self.model.checkpoints.append((got["checkpoint_id"], self.model.snapshot()))
        self.stats.writes_acked += 1

    async def _op_checkpoint_restore(self) -> None:
        cid, snap = self.rng.choice(self.model.checkpoints)
        await self.call("checkpoint_restore", checkpoint_id=cid)
        self.model.restore(snap)
        self.stats.writes_acked += 1

    async def _op_checkpoint_list(self) -> None:
        got = await self.call("checkpoint_list")
        self.stats.reads_checked += 1
        ids = [c["id"] for c in got["checkpoints"]]
        if ids != self.model.checkpoint_ids():
            self._mismatch(f"checkpoint_list {ids} expected {self.model.checkpoint_ids()}")

    async def _op_list_keys(self) -> None:
        got = await self.call("memory_list_keys", limit=PAGE_LIMIT)
        self.stats.reads_checked += 1
        if got["keys"] != sorted(self.model.variables):
            self._mismatch(
                f"memory_list_keys {got['keys']} expected {sorted(self.model.variables)}"
            )

    # verification ----------------------------------------------------------------------
    async def read_state(self) -> Observed:
        """The session's state, read back through the tools (every page)."""
        variables: dict[str, Any] = {}
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            args: dict[str, Any] = {"limit": PAGE_LIMIT}
            if cursor:
                args["cursor"] = cursor
            page = await self.call("memory_get_all", **args)
            variables.update(page["values"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        pad: list[str] = []
        cursor = None
        for _ in range(MAX_PAGES):
            args = {"limit": PAGE_LIMIT}
            if cursor:
                args["cursor"] = cursor
            page = await self.call("scratchpad_get", **args)
            pad += page["entries"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        task = (await self.call("task_state_get"))["state"]
        checkpoints = [c["id"] for c in (await self.call("checkpoint_list"))["checkpoints"]]
        ttls: dict[str, float | None] = {}
        for key in variables:
            if self.model.ttls.get(key) is not None:
                ttls[key] = (await self.call("memory_get", key=key))["ttl_seconds_remaining"]
            else:
                ttls[key] = None
        return Observed(variables, ttls, _task_fields(task), pad, checkpoints)

    async def verify_tools(self) -> list[str]:
        """Differences between the model and the state read through the tools."""
        try:
            observed = await self.read_state()
        except CallFailed:
            return [f"{self.name}: reading the final state failed: {self.stats.errors[-1]}"]
        return self.compare(observed, "tools")

    async def verify_memory(self, wm: WorkingMemory) -> list[str]:
        """Differences between the model and what ``wm``'s store holds (e.g. Redis
        through a fallback-less store): the same comparison, no MCP in between."""
        entries = await wm.get_entries()
        task = await wm.get_task_state()
        observed = Observed(
            variables={k: e.value for k, e in entries.items()},
            ttls={k: None if e.ttl_ms is None else e.ttl_ms / 1000 for k, e in entries.items()},
            task=None if task is None else _task_fields(task.model_dump(mode="json")),
            scratchpad=await wm.get_scratchpad(),
            checkpoints=[c.checkpoint_id for c in await wm.list_checkpoints()],
        )
        return self.compare(observed, "store")

    def compare(self, observed: Observed, where: str) -> list[str]:
        m = self.model
        problems = []
        for key in sorted(set(m.variables) | set(observed.variables)):
            if key not in observed.variables:
                problems.append(f"{self.name} [{where}]: lost key {key!r}")
            elif key not in m.variables:
                problems.append(f"{self.name} [{where}]: resurrected/unknown key {key!r}")
            elif observed.variables[key] != m.variables[key]:
                problems.append(
                    f"{self.name} [{where}]: {key!r} = {observed.variables[key]!r}, "
                    f"acknowledged {m.variables[key]!r}"
                )
            else:
                remaining, ttl = observed.ttls.get(key), m.ttls.get(key)
                if (remaining is None) != (ttl is None) or (
                    remaining is not None and ttl is not None and remaining > ttl + 1
                ):
                    problems.append(f"{self.name} [{where}]: {key!r} ttl {remaining} vs {ttl}")
        if observed.scratchpad != m.scratchpad:
            problems.append(
                f"{self.name} [{where}]: scratchpad has {len(observed.scratchpad)} entries, "
                f"acknowledged {len(m.scratchpad)}"
            )
        if observed.task != m.task:
            problems.append(f"{self.name} [{where}]: task {observed.task!r} vs {m.task!r}")
        if observed.checkpoints != m.checkpoint_ids():
            problems.append(
                f"{self.name} [{where}]: checkpoints {observed.checkpoints} vs {m.checkpoint_ids()}"
            )
        return problems

    def items_checked(self) -> int:
        """How many items a final comparison covers: variables, scratchpad entries,
        the task state and checkpoints."""
        m = self.model
        return len(m.variables) + len(m.scratchpad) + 1 + len(m.checkpoints)


@dataclass
class Observed:
    variables: dict[str, Any]
    ttls: dict[str, float | None]
    task: dict[str, Any] | None
    scratchpad: list[str]
    checkpoints: list[str]


def _task_fields(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {name: state.get(name) for name in TASK_FIELDS}
