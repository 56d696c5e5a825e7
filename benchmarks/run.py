"""Run the benchmark sections and print one markdown report: ``python -m benchmarks.run``.

Sections: ``core`` (``WorkingMemory`` get/set on every backend against raw Redis) and
``mcp`` (full MCP tool calls to the server as a subprocess over stdio and streamable
HTTP, against an ``echo`` tool of the same server build). ``--quick`` runs both in
well under a minute (numbers not meaningful); ``--rounds``/``--iterations`` apply to
both.

Adding a section: write a module with
``async def run(ctx: BenchContext) -> SectionResult``, measure with
``benchmarks.stats.interleaved`` (the baseline and the code under test as variants of
one measurement, ratio of p95s), and register it in ``SECTIONS`` (and in
``DEFAULT_SECTIONS`` if a plain run should include it). Sections run one after another
on one event loop, share the ``BenchContext`` (options, the Redis server via
``await ctx.redis()``) and are imported only when selected. Exit code 0 whatever the
targets say (this is a report, not a test); 1 only if a section crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.context import BenchContext, Options
from benchmarks.report import SectionResult, render

# name -> module; the hook for further sections.
SECTIONS: dict[str, str] = {
    "core": "benchmarks.core",
    "mcp": "benchmarks.mcp",
    "http": "benchmarks.http_load",
    "checkpoints": "benchmarks.checkpoints",
    "replicas": "benchmarks.replicas",  # not in DEFAULT_SECTIONS: starts a Redis Cluster
}
DEFAULT_SECTIONS = ["core", "mcp", "http", "checkpoints"]

SectionRun = Callable[[BenchContext], Awaitable[SectionResult]]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="few iterations (smoke test)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument(
        "--sections",
        default=",".join(DEFAULT_SECTIONS),
        help=f"comma-separated, from: {', '.join(SECTIONS)} (default: %(default)s)",
    )
    p.add_argument("--rounds", type=int, help="override the number of rounds")
    p.add_argument("--iterations", type=int, help="override calls per variant per round")
    p.add_argument("--redis-url", help="Redis to use (default: $WM_BENCH_REDIS_URL or :6379)")
    p.add_argument("--no-redis", action="store_true", help="skip everything needing Redis")
    p.add_argument("--no-spawn", action="store_true", help="never start a throwaway redis-server")
    args = p.parse_args(argv)
    args.section_list = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in args.section_list if s not in SECTIONS]
    if unknown or not args.section_list:
        p.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    for name in ("rounds", "iterations"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be >= 1")
    return args


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _header(
    opts: Options, sections: list[str], argv: list[str], started: str, load_before: str
) -> list[str]:
    quick = " (quick: numbers are not meaningful)" if opts.quick else ""
    return [
        f"- command: `python -m benchmarks.run{''.join(' ' + a for a in argv)}`",
        f"- sections: {', '.join(sections)}{quick}",
        f"- date: {started}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU(s), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {_load()}",
    ]


async def _run_all(ctx: BenchContext, names: list[str]) -> tuple[list[SectionResult], bool]:
    """Run the sections in order; a section that raises is reported (with its
    traceback on stderr) and the others still run. Returns (results, all_ok)."""
    results, ok = [], True
    for name in names:
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(SECTIONS[name])
            section_run: SectionRun = module.run
            result = await section_run(ctx)
        except Exception as exc:
            traceback.print_exc()
            ok = False
            result = SectionResult(name, f"{name}: FAILED")
            result.skipped.append(f"the section raised {type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - t0
        result.key = name
        results.append(result)
    return results, ok


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    opts = Options.make(
        quick=args.quick,
        rounds=args.rounds,
        iterations=args.iterations,
        redis_url=args.redis_url,
        use_redis=not args.no_redis,
        spawn_redis=not args.no_spawn,
    )
    ctx = BenchContext(opts)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = _load()
    try:
        results, ok = asyncio.run(_run_all(ctx, args.section_list))
    finally:
        ctx.close()
    shown = sys.argv[1:] if argv is None else argv
    header = _header(opts, args.section_list, shown, started, load_before)
    sys.stdout.write(render(header, results))
    if args.json:
        doc: dict[str, Any] = {
            "quick": opts.quick,
            "options": {
                "rounds": opts.rounds,
                "iterations": opts.iterations,
                "memory_iterations": opts.memory_iterations,
                "warmup": opts.warmup,
                "big_session_keys": opts.big_session_keys,
                "mcp_rounds": opts.mcp_rounds,
                "mcp_iterations": opts.mcp_iterations,
                "mcp_warmup": opts.mcp_warmup,
                "mcp_block": opts.mcp_block,
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "sections": {r.key: r.as_dict() for r in results},
        }
        Path(args.json).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    # A missed target is a finding, not a failure; a section that crashed is a bug.
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
