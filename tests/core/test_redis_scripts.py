"""The Lua scripts and their error codes: one list in Lua, one mapping in Python, equal."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from memory_core import (
    CheckpointNotFoundError,
    LimitExceededError,
    SessionNotFoundError,
    StorageInternalError,
)
from memory_core.storage.redis import scripts

LUA = resources.files("memory_core.storage.redis").joinpath("lua")
CODE_RE = re.compile(r"^local (ERR_[A-Z_]+) = '([A-Z_]+)'", re.MULTILINE)


def _lua(name: str) -> str:
    return LUA.joinpath(f"{name}.lua").read_text()


def test_prelude_defines_exactly_the_codes_python_maps() -> None:
    codes = dict(CODE_RE.findall(_lua("prelude")))
    assert codes, "the prelude defines its error codes as local ERR_... = '...'"
    assert sorted(codes.values()) == sorted(scripts.SCRIPT_ERRORS)


def test_every_error_reply_uses_a_defined_code() -> None:
    defined = set(dict(CODE_RE.findall(_lua("prelude"))))
    for name in (*scripts.SESSION_SCRIPTS, *scripts.STANDALONE_SCRIPTS, "prelude"):
        body = _lua(name)
        for code in scripts.SCRIPT_ERRORS:
            quoted = f"'{code}'"
            assert name == "prelude" or quoted not in body, f"{name}.lua spells {code} itself"
        for argument in re.findall(r"redis\.error_reply\(([^)]*)\)", body):
            assert argument.split(" ")[0] in defined, f"{name}.lua: error_reply({argument})"


def test_every_script_file_is_loaded() -> None:
    files = {p.name.removesuffix(".lua") for p in LUA.iterdir() if p.name.endswith(".lua")}
    assert files == {"prelude", *scripts.SESSION_SCRIPTS, *scripts.STANDALONE_SCRIPTS}
    assert set(scripts.sources()) == files - {"prelude"}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("WM_NOSESSION", SessionNotFoundError),
        ("WM_NOTFOUND", CheckpointNotFoundError),
        ("WM_LIMIT max_keys 5 5", LimitExceededError),
        # an unexpected reply is a bug, never an outage (it must not trip the breaker)
        ("WM_SOMETHING_ELSE", StorageInternalError),
        ("ERR bad argument", StorageInternalError),
        ("", StorageInternalError),
    ],
)
def test_error_replies_become_the_exception_their_code_names(
    reply: str, expected: type[Exception]
) -> None:
    assert type(scripts.error_from_reply(reply)) is expected


def test_limit_reply_carries_its_arguments() -> None:
    error = scripts.error_from_reply("WM_LIMIT max_session_bytes 2048 2000")
    assert isinstance(error, LimitExceededError)
    assert (error.limit, error.maximum, error.current) == ("max_session_bytes", 2048, 2000)
