"""Settings from WM_* and flags, bearer tokens, and refusing unsafe HTTP setups."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mcp_server.auth import AuthConfigError, StaticTokenVerifier, load_tokens, parse_tokens
from mcp_server.cli import build_parser, load_settings, main
from mcp_server.http import UnsafeConfigError, check_exposure, create_app, transport_security
from mcp_server.runtime import build_store
from mcp_server.settings import Settings
from memory_core import InvalidArgumentError, Limits, SessionStore
from memory_core.storage.fallback import CircuitBreakerBackend, FallbackBackend

TOKEN_A = "a" * 24
TOKEN_B = "b" * 24


def test_defaults() -> None:
    s = Settings()
    assert (s.transport, s.host, s.port, s.redis_url, s.fallback) == (
        "stdio",
        "127.0.0.1",
        8765,
        None,
        None,  # on for a single Redis, off (fail closed) for cluster/sentinel
    )
    assert s.store_url == "memory://" and s.enable_echo_tool is False
    assert s.limits() == Limits()
    assert s.store_config().key_prefix == "wm"


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WM_TRANSPORT", "http")
    monkeypatch.setenv("WM_PORT", "9000")
    monkeypatch.setenv("WM_REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.setenv("WM_FALLBACK", "false")
    monkeypatch.setenv("WM_MAX_KEYS", "7")
    monkeypatch.setenv("WM_LEASE_SECONDS", "60")
    monkeypatch.setenv("WM_ALLOWED_HOSTS", "mem.example:443, localhost:*")
    monkeypatch.setenv("WM_ENABLE_ECHO_TOOL", "1")
    s = Settings()
    assert s.transport == "http" and s.port == 9000 and s.fallback is False
    assert s.store_url == "redis://127.0.0.1:6390/0"
    assert s.limits().max_keys == 7 and s.store_config().lease_seconds == 60
    assert s.allowed_hosts == ["mem.example:443", "localhost:*"]
    assert s.enable_echo_tool is True


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WM_PORT", "9000")
    monkeypatch.setenv("WM_MAX_KEYS", "7")
    s = load_settings(["--transport", "http", "--port", "9100", "--no-fallback", "--max-keys", "9"])
    assert (s.transport, s.port, s.fallback, s.max_keys) == ("http", 9100, False, 9)
    assert load_settings([]).port == 9000


def test_every_setting_but_secrets_is_a_flag() -> None:
    help_text = build_parser().format_help()
    for name in Settings.model_fields:
        flag = "--" + name.replace("_", "-")
        present = re.search(re.escape(flag) + r"(?![-\w])", help_text) is not None
        assert present is (name not in ("auth_tokens", "metrics_token")), name


def test_parse_tokens() -> None:
    text = f"{TOKEN_A}=alice, {TOKEN_B} = bob\n# comment\n\n"
    assert parse_tokens(text, "env") == {TOKEN_A: "alice", TOKEN_B: "bob"}
    for bad in (
        "nopair",
        f"{TOKEN_A}=",
        "short=alice",
        f"{TOKEN_A}=bad name",
        f"{TOKEN_A}=a,{TOKEN_A}=b",
    ):
        with pytest.raises(AuthConfigError) as exc:
            parse_tokens(bad, "env")
        assert TOKEN_A not in str(exc.value)


def test_load_tokens_from_env_and_file(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text(f"# team\n{TOKEN_B}=bob\n")
    s = Settings(auth_tokens=f"{TOKEN_A}=alice", auth_tokens_file=file)
    assert load_tokens(s) == {TOKEN_A: "alice", TOKEN_B: "bob"}
    assert load_tokens(Settings()) == {}
    with pytest.raises(AuthConfigError):
        load_tokens(Settings(auth_tokens_file=tmp_path / "missing"))


async def test_token_verifier() -> None:
    verifier = StaticTokenVerifier({TOKEN_A: "alice"})
    token = await verifier.verify_token(TOKEN_A)
    assert token is not None and token.client_id == "alice"
    assert await verifier.verify_token(TOKEN_B) is None
    assert await verifier.verify_token("") is None


def test_remote_exposure_needs_tokens_or_an_override() -> None:
    check_exposure(Settings(host="127.0.0.1"), has_tokens=False)
    check_exposure(Settings(host="10.0.0.5"), has_tokens=True)
    check_exposure(Settings(host="10.0.0.5", allow_insecure_remote=True), has_tokens=False)
    with pytest.raises(UnsafeConfigError):
        check_exposure(Settings(host="10.0.0.5"), has_tokens=False)
    with pytest.raises(UnsafeConfigError):
        create_app(Settings(transport="http", host="0.0.0.0"))


def test_dns_rebinding_protection_is_always_on() -> None:
    local = transport_security(Settings(host="127.0.0.1"))
    assert local.enable_dns_rebinding_protection
    assert "127.0.0.1:*" in local.allowed_hosts and "http://localhost:*" in local.allowed_origins
    named = transport_security(Settings(host="10.0.0.5"))
    assert "10.0.0.5:*" in named.allowed_hosts
    explicit = transport_security(
        Settings(
            host="0.0.0.0",
            allowed_hosts=["mem.example:8765"],
            allowed_origins=["https://app.example"],
        )
    )
    assert explicit.allowed_hosts == ["mem.example:8765"]
    assert explicit.allowed_origins == ["https://app.example"]
    with pytest.raises(UnsafeConfigError, match="ALLOWED_HOSTS"):
        transport_security(Settings(host="0.0.0.0"))


def test_store_url_selects_the_backend() -> None:
    assert type(build_store(Settings()).backend).__name__ == "MemoryBackend"
    with pytest.raises(InvalidArgumentError):
        build_store(Settings(redis_url="ftp://nowhere"))


def test_cli_refuses_unsafe_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("mcp_server.cli.configure_logging", lambda level, fmt: None)
    with pytest.raises(SystemExit) as exc:
        main(["--transport", "http", "--host", "0.0.0.0"])
    assert exc.value.code == 2
    assert "without bearer tokens" in caplog.text


def _serves_fallback(store: SessionStore) -> bool:
    """True for a breaker with a mirror, False for one that fails closed."""
    backend = store.backend
    assert isinstance(backend, CircuitBreakerBackend)
    return isinstance(backend, FallbackBackend)


def test_fallback_default_depends_on_the_topology() -> None:
    from mcp_server.runtime import build_store

    single = build_store(Settings(redis_url="redis://127.0.0.1:1/0"))
    cluster = build_store(Settings(redis_url="redis+cluster://127.0.0.1:1"))
    forced = build_store(Settings(redis_url="redis+cluster://127.0.0.1:1", fallback=True))
    assert _serves_fallback(single) is True
    assert _serves_fallback(cluster) is False
    assert _serves_fallback(forced) is True


def test_a_named_replica_fails_closed_by_default() -> None:
    """WM_REPLICA_ID says this process is one of several replicas: fallback defaults to
    off even for a single Redis (private copies per replica could diverge)."""
    replica = build_store(Settings(redis_url="redis://127.0.0.1:1/0", replica_id="a"))
    forced = build_store(Settings(redis_url="redis://127.0.0.1:1/0", replica_id="a", fallback=True))
    assert _serves_fallback(replica) is False
    assert _serves_fallback(forced) is True
    with pytest.raises(ValueError, match="replica_id"):
        Settings(replica_id="a/b")
