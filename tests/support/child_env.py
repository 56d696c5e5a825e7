"""Environments for the server subprocesses the tests start.

Subprocesses get a clean environment (so a developer's ``WM_*`` cannot change a test),
which would also drop what coverage's ``patch = ["subprocess"]`` puts in the test run's
environment to measure them. ``measured`` adds it back; outside a coverage run it adds
nothing. The reliability suites' servers are not measured on purpose: their figures
and latency bounds are about the server, not the tracer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ALL_TOOLS = {"WM_TOOLS": "all"}
"""The suites exercise every tool; a server lists only the core group unless told
(tests/server/test_tool_budget.py tests that default and the selection)."""

# COVERAGE_PROCESS_CONFIG is set by patch = ["subprocess"]; COVERAGE_PROCESS_START by a
# manual set-up. Either makes the child's coverage .pth file start measuring.
COVERAGE_VARIABLES = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def measured(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the variables that let coverage measure the child, if any are set."""
    return {**env, **{k: os.environ[k] for k in COVERAGE_VARIABLES if k in os.environ}}


def unmeasured(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without them: the child runs untraced."""
    return {k: v for k, v in env.items() if k not in COVERAGE_VARIABLES}
