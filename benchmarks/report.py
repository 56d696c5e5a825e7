"""What a benchmark section returns, and how results are printed (markdown) and saved (JSON).

A section produces a ``SectionResult``: rows of latency percentiles, targets judged
PASS/MISS (a miss never changes the exit code: this is a report), free-text notes
(method, environment) and the parts it had to skip, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from benchmarks.stats import Summary

TABLE_HEADER = "| group | operation | n | p50 µs | p95 µs | p99 µs | p95 ratio |"
Verdict = Literal["PASS", "MISS", "SKIP"]


@dataclass(slots=True)
class Row:
    group: str
    operation: str
    summary: Summary
    ratio: float | None = None  # p95 of this row / p95 of its baseline
    baseline: str | None = None  # what the ratio is against

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "operation": self.operation,
            **self.summary.as_dict(),
            "p95_ratio": self.ratio,
            "baseline": self.baseline,
        }


@dataclass(slots=True)
class Target:
    name: str
    measured: float | None  # None: could not be measured (see ``reason``)
    limit: float
    unit: Literal["µs", "×"]
    reason: str = ""

    @property
    def verdict(self) -> Verdict:
        if self.measured is None:
            return "SKIP"
        return "PASS" if self.measured <= self.limit else "MISS"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measured": self.measured,
            "limit": self.limit,
            "unit": self.unit,
            "verdict": self.verdict,
            "reason": self.reason or None,
        }


@dataclass(slots=True)
class SectionResult:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    tables: list[list[str]] = field(default_factory=list)  # markdown tables of its own

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "rows": [r.as_dict() for r in self.rows],
            "targets": [t.as_dict() for t in self.targets],
            "notes": self.notes,
            "skipped": self.skipped,
            "tables": self.tables,
            "seconds": round(self.seconds, 2),
        }


def _num(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _measure(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}×" if unit == "×" else f"{_num(value)} µs"


def render_section(result: SectionResult) -> str:
    lines = [f"## {result.title}", ""]
    if result.rows:
        lines += [TABLE_HEADER, "|---|---|---:|---:|---:|---:|---:|"]
        for row in result.rows:
            s = row.summary
            ratio = "" if row.ratio is None else f"{row.ratio:.2f}× {row.baseline}"
            lines.append(
                f"| {row.group} | {row.operation} | {s.n} | {_num(s.p50)} | {_num(s.p95)} "
                f"| {_num(s.p99)} | {ratio} |"
            )
        lines.append("")
    for table in result.tables:
        lines += [*table, ""]
    for reason in result.skipped:
        lines.append(f"- skipped: {reason}")
    if result.skipped:
        lines.append("")
    for note in result.notes:
        lines.append(f"- {note}")
    if result.notes:
        lines.append("")
    lines.append(f"_section time: {result.seconds:.1f} s_")
    return "\n".join(lines)


def render_targets(results: list[SectionResult]) -> str:
    targets = [t for r in results for t in r.targets]
    lines = ["## targets", ""]
    if not targets:
        return "\n".join([*lines, "(no targets in the sections run)"])
    lines += ["| target | measured | limit | result |", "|---|---:|---:|---|"]
    for t in targets:
        verdict = t.verdict if not t.reason else f"{t.verdict} ({t.reason})"
        lines.append(
            f"| {t.name} | {_measure(t.measured, t.unit)} | ≤ {_measure(t.limit, t.unit)} "
            f"| {verdict} |"
        )
    counts = {v: sum(t.verdict == v for t in targets) for v in ("PASS", "MISS", "SKIP")}
    lines += ["", ", ".join(f"{n} {v}" for v, n in counts.items() if n)]
    return "\n".join(lines)


def render(header: list[str], results: list[SectionResult]) -> str:
    parts = ["# mcp-working-memory benchmark", "", *header, ""]
    parts += [render_section(r) + "\n" for r in results]
    parts.append(render_targets(results))
    return "\n".join(parts) + "\n"
