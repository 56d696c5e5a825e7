"""Reliability suites: a short version runs in ``make test``; ``make reliability``
(``WM_RELIABILITY=full``) runs the full one. Every loop is bounded in count and time."""

from __future__ import annotations

import os

import pytest

FULL = os.environ.get("WM_RELIABILITY") == "full"


def scale(short: int, full: int) -> int:
    """A count for the mode: ``short`` in ``make test``, ``full`` in ``make reliability``."""
    return full if FULL else short


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)
