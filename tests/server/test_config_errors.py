"""What a person sees for a bad setting: one line on stderr naming the flag or the
``WM_*`` variable they used, the value (never a secret) and what is accepted; exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mcp_server.cli import _printable, build_parser, load_settings, main
from tests.support.child_env import measured

PROG = "mcp-working-memory: "


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The whole stderr of a CLI start refused before serving."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


@pytest.mark.parametrize(
    ("argv", "env", "line"),
    [
        (
            [],
            {"WM_PORT": "x"},
            "WM_PORT='x' is not accepted; expected an integer from 0 to 65535",
        ),
        (
            ["--port", "99999"],
            {},
            "--port '99999' is not accepted; expected an integer from 0 to 65535",
        ),
        (
            ["--transport", "ftp"],
            {},
            "--transport 'ftp' is not accepted; expected stdio, or http "
            "(also streamable-http, sse), any case",
        ),
        (
            [],
            {"WM_LOG_LEVEL": "loud"},
            "WM_LOG_LEVEL='loud' is not accepted; expected one of DEBUG, INFO, WARNING, "
            "ERROR, CRITICAL (any case)",
        ),
        (
            [],
            {"WM_FALLBACK": "maybe"},
            "WM_FALLBACK='maybe' is not accepted; expected true or false",
        ),
        (
            ["--connect-timeout", "0"],
            {},
            "--connect-timeout '0' is not accepted; expected a number greater than 0",
        ),
        (
            ["--key-prefix", "a b"],
            {},
            "--key-prefix 'a b' is not accepted; expected 1 to 64 letters, digits or _ . : -",
        ),
        (
            ["--page-size", "600"],
            {},
            "--page-size '600' must not exceed WM_MAX_PAGE_SIZE (default 500)",
        ),
        (
            [],
            {"WM_MAX_PAGE_SIZE": "50"},
            "WM_PAGE_SIZE (default 100) must not exceed WM_MAX_PAGE_SIZE='50'",
        ),
        (
            ["--subscription-bus", "redis"],
            {},
            "--subscription-bus 'redis' needs WM_REDIS_URL (default unset)",
        ),
        (["--bogus"], {}, "unrecognized arguments: --bogus (see --help)"),
        (["--port"], {}, "argument --port: expected one argument (see --help)"),
    ],
)
def test_one_line_names_the_setting_as_set(
    argv: list[str],
    env: dict[str, str],
    line: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _refused(argv, capsys) == PROG + line + "\n"


def test_secrets_are_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WM_REDIS_URL", "redis://agent:hunter2-secret@db.example:6379/0")
    monkeypatch.setenv("WM_AUTH_TOKENS", "hunter2-token-" * 2 + "=alice")
    monkeypatch.setenv("WM_PAGE_SIZE", "{redis_url}")  # a value is never a template
    assert _refused([], capsys) == (
        PROG + "WM_PAGE_SIZE='{redis_url}' is not accepted; expected an integer of at least 1\n"
    )


def test_a_redis_url_is_shown_without_its_password() -> None:
    assert _printable("redis_url", "redis://agent:pw@db:6379/0") == "'redis://agent:***@db:6379/0'"
    assert _printable("redis_url", "redis://:pw@db/0") == "'redis://:***@db/0'"
    assert _printable("redis_url", "redis://db/0") == "'redis://db/0'"
    assert _printable("auth_tokens", "t" * 20) == "(hidden)"


def test_a_real_process_prints_one_line() -> None:
    env = measured({"PATH": os.environ.get("PATH", ""), "WM_PORT": "x"})
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert (
        done.stderr == PROG + "WM_PORT='x' is not accepted; expected an integer from 0 to 65535\n"
    )


@pytest.mark.parametrize(
    ("typed", "transport"),
    [
        ("stdio", "stdio"),
        ("STDIO", "stdio"),
        ("http", "http"),
        ("HTTP", "http"),
        ("sse", "http"),
        ("SSE", "http"),
        ("streamable-http", "http"),
        ("Streamable-HTTP", "http"),
        ("streamable_http", "http"),
    ],
)
def test_transport_aliases(typed: str, transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(["--transport", typed]).transport == transport
    monkeypatch.setenv("WM_TRANSPORT", typed)
    assert load_settings([]).transport == transport


@pytest.mark.parametrize("typed", ["debug", "Debug", "DEBUG", " info "])
def test_levels_and_choices_in_any_case(typed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(["--log-level", typed]).log_level == typed.strip().upper()
    monkeypatch.setenv("WM_LOG_LEVEL", typed)
    assert load_settings([]).log_level == typed.strip().upper()
    assert load_settings(["--subscription-bus", "Memory"]).subscription_bus == "memory"


def test_help_shows_defaults_and_variables() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "(default: 8765; WM_PORT)" in text
    assert "(default: stdio; WM_TRANSPORT)" in text
    assert "(default: INFO; WM_LOG_LEVEL)" in text
    assert "(default: unset; WM_REDIS_URL)" in text
    assert "(default: false; WM_ALLOW_INSECURE_REMOTE)" in text
