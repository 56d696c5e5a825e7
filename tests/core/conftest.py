"""Fixtures over the store table (tests/support/stores.py): every test that takes
``harness`` or ``harness_factory`` runs once per store kind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from memory_core import Limits
from tests.support.stores import (
    SMALL_LIMITS,
    STORES,
    Harness,
    HarnessFactory,
    StoreKind,
    Target,
    open_harness,
    share_harness,
)


@pytest.fixture(params=[kind.param() for kind in STORES])
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    kind: StoreKind = request.param
    return kind


@pytest.fixture
def store_target(request: pytest.FixtureRequest, store_kind: StoreKind) -> Target:
    return store_kind.target(request)


@pytest.fixture
async def harness(
    store_kind: StoreKind, store_target: Target, key_prefix: str
) -> AsyncIterator[Harness]:
    h = await open_harness(store_kind, store_target, key_prefix, SMALL_LIMITS)
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture
async def harness_factory(
    store_kind: StoreKind, store_target: Target, harness: Harness, key_prefix: str
) -> AsyncIterator[HarnessFactory]:
    """More harnesses of the current store kind, with other limits (see HarnessFactory)."""
    made: list[Harness] = []

    async def factory(limits: Limits, share: Harness | None = None) -> Harness:
        if share is not None and (store_kind.manual_clock or store_kind.shared_client):
            h = await share_harness(store_kind, share, limits)
        else:
            prefix = share.prefix if share else f"{key_prefix}f{len(made)}"
            h = await open_harness(store_kind, store_target, prefix, limits)
        made.append(h)
        return h

    try:
        yield factory
    finally:
        for h in made:
            await h.close()
