"""The npm projects the tests drive (clients that are not ours), installed on first use."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def npm_project(directory: Path, package: str, what: str) -> Path:
    """``directory`` with its pinned packages installed (``npm ci`` when ``package`` is
    missing from its node_modules); skipped without node and npm, failed when
    ``WM_REQUIRE_NODE=1`` (CI) says they must be there.

    Args:
        directory: the npm project (package.json and package-lock.json).
        package: a package the project pins, e.g. ``@modelcontextprotocol/sdk``.
        what: what needs node, for the skip reason.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("WM_REQUIRE_NODE") == "1":
            pytest.fail("WM_REQUIRE_NODE=1 but node/npm are not installed")
        pytest.skip(f"node and npm are needed for {what}")
    if not (directory / "node_modules" / package).is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            check=True,
            timeout=600,
        )
    return directory
