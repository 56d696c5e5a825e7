"""Percentiles and the interleaved measuring loop shared by every benchmark section.

Method (quoted in every report): each variant is warmed up, then measured in
``rounds`` rounds. Inside a round the variants take turns in short blocks of
``block`` sequential calls (A B C, C B A, A B C, ...) until each has made
``iterations`` calls, so every variant's samples of a round span the same stretch of
time and bursts of machine noise hit all of them alike. Per round we take p50/p95/p99
of each variant; the reported figure is the median of the per-round figures.
``gc.collect()`` runs before each round; the collector stays enabled while timing
(production runs with it).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field

# An operation under test: called with the iteration index (to vary keys), returns an
# awaitable. Build it so that the call itself does no work beyond the real one.
Op = Callable[[int], Awaitable[object]]

METHOD = (
    "sequential awaited calls on one event loop; per variant a warm-up, then {rounds} "
    "rounds in which the variants take turns in blocks of {block} calls (order reversed "
    "every turn) until each made {iterations} calls; each figure is the median over "
    "rounds of that round's percentile (linear interpolation); gc.collect() before each "
    "round, gc enabled while timing"
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, interpolating linearly."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


@dataclass(frozen=True, slots=True)
class Summary:
    """Latency percentiles in microseconds over ``n`` calls."""

    n: int
    p50: float
    p95: float
    p99: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(samples_ns: Sequence[int]) -> Summary:
    """Percentiles (µs) of raw samples in nanoseconds."""
    ordered = sorted(samples_ns)
    return Summary(
        n=len(ordered),
        p50=percentile(ordered, 50) / 1000,
        p95=percentile(ordered, 95) / 1000,
        p99=percentile(ordered, 99) / 1000,
    )


def median_of(rounds: Sequence[Summary]) -> Summary:
    """Median of per-round percentiles; ``n`` is the total number of calls."""
    if not rounds:
        raise ValueError("no rounds")
    return Summary(
        n=sum(r.n for r in rounds),
        p50=statistics.median(r.p50 for r in rounds),
        p95=statistics.median(r.p95 for r in rounds),
        p99=statistics.median(r.p99 for r in rounds),
    )


@dataclass(slots=True)
class Measured:
    """One variant's per-round summaries and their median."""

    name: str
    rounds: list[Summary] = field(default_factory=list)

    @property
    def summary(self) -> Summary:
        return median_of(self.rounds)


async def sample(op: Op, iterations: int, start: int = 0) -> list[int]:
    """Time ``iterations`` sequential awaited calls; nanoseconds each."""
    clock = time.perf_counter_ns
    out = [0] * iterations
    for i in range(iterations):
        t0 = clock()
        await op(start + i)
        out[i] = clock() - t0
    return out


async def interleaved(
    variants: dict[str, Op],
    *,
    rounds: int,
    iterations: int,
    warmup: int,
    block: int = 25,
) -> dict[str, Measured]:
    """Measure every variant in rounds of alternating short blocks (see the module
    docstring). Returns each variant's per-round summaries."""
    names = list(variants)
    for name in names:
        await sample(variants[name], warmup)
    results = {name: Measured(name) for name in names}
    counters = dict.fromkeys(names, warmup)
    for r in range(rounds):
        gc.collect()
        samples: dict[str, list[int]] = {name: [] for name in names}
        turn = r
        while len(samples[names[0]]) < iterations:
            size = min(block, iterations - len(samples[names[0]]))
            for name in names if turn % 2 == 0 else names[::-1]:
                samples[name] += await sample(variants[name], size, counters[name])
                counters[name] += size
            turn += 1
        for name in names:
            results[name].rounds.append(summarize(samples[name]))
    return results
