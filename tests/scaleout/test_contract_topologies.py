"""The whole contract suite (tests/core/test_contract.py) against Redis Cluster and Sentinel.

Every contract test that takes a backend is collected here a second time; this folder's
``harness``/``harness_factory`` fixtures give it a store over a local topology. Tests
added to the contract later are picked up without touching this file.
"""

from __future__ import annotations

import inspect

from tests.core import test_contract


def _takes_a_backend(name: str, obj: object) -> bool:
    if not name.startswith("test_") or not inspect.isfunction(obj):
        return False
    params = inspect.signature(obj).parameters
    return "harness" in params or "harness_factory" in params


globals().update({n: f for n, f in vars(test_contract).items() if _takes_a_backend(n, f)})
