"""On uvloop (the HTTP server's default loop) redis-py can raise RuntimeError for a write
on a connection that is already closed ("unable to perform operation on <TCPTransport
closed=True ...>; the handler is closed"): an outage, like ConnectionError. Found by
``tests/reliability/test_chaos.py::test_hung_redis_keeps_latency_bounded_and_breaker_cycles``
(connections reset under load), which exercises it end to end."""

from __future__ import annotations

import pytest

from memory_core import StorageInternalError, StorageUnavailableError
from memory_core.storage.redis.backend import classify

UVLOOP_CLOSED = (
    "unable to perform operation on <TCPTransport closed=True reading=False "
    "0x55beaa7bf7e0>; the handler is closed"
)


def test_a_write_on_a_closed_uvloop_transport_is_an_outage() -> None:
    assert isinstance(
        classify(RuntimeError(UVLOOP_CLOSED), "redis://h:1/0"), StorageUnavailableError
    )


def test_any_other_runtime_error_is_a_bug(caplog: pytest.LogCaptureFixture) -> None:
    error = classify(RuntimeError("dictionary changed size during iteration"), "redis://h:1/0")
    assert isinstance(error, StorageInternalError)
    assert "failed unexpectedly" in caplog.text
