"""One owner for startup and shutdown: the runtime starts what it holds and closes it
in one order (bound sessions, then events, then the store), once."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_server.http import create_app
from mcp_server.runtime import Runtime, build_store
from mcp_server.settings import Settings


def _record(monkeypatch: pytest.MonkeyPatch, runtime: Runtime) -> list[str]:
    steps: list[str] = []

    def spy(name: str, original: Any) -> Any:
        async def step(*args: Any, **kwargs: Any) -> Any:
            steps.append(name)
            return await original(*args, **kwargs)

        return step

    for name, owner, method in (
        ("store.start", runtime.store, "start"),
        ("events.start", runtime.events, "start"),
        ("sessions", runtime.binder, "close_all"),
        ("events.close", runtime.events, "close"),
        ("store.close", runtime.store, "close"),
    ):
        monkeypatch.setattr(owner, method, spy(name, getattr(owner, method)))
    return steps


async def test_runtime_starts_and_closes_in_order_once(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(transport="http")
    runtime = Runtime(settings, build_store(settings))
    steps = _record(monkeypatch, runtime)
    async with runtime:
        session = await runtime.store.open("anonymous")
        runtime.binder._bound[session] = "anonymous"  # as a connection would bind it
        assert steps == ["store.start", "events.start"]
    assert steps[2:] == ["sessions", "events.close", "store.close"]
    assert runtime.binder.bound_count == 0
    await runtime.close("again")  # closing twice is a no-op
    assert len(steps) == 5


async def test_the_http_app_owns_an_injected_store(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(transport="http")
    app = create_app(settings, build_store(settings))
    steps = _record(monkeypatch, app.state.runtime)
    async with app.router.lifespan_context(app):
        assert steps == ["store.start", "events.start"]
    assert steps[2:] == ["sessions", "events.close", "store.close"]


def test_tokens_are_loaded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Settings] = []
    import mcp_server.runtime
    from mcp_server.auth import load_tokens as original

    def counting(settings: Settings) -> dict[str, str]:
        loads.append(settings)
        return original(settings)

    monkeypatch.setattr(mcp_server.runtime, "load_tokens", counting)
    create_app(Settings(transport="http", auth_tokens="a" * 16 + "=alice"))
    assert len(loads) == 1
