"""The Lua scripts: their sources, and the error codes they reply with.

Scripts live in ``lua/`` beside this file. Every session script is the shared
``prelude.lua`` followed by its body; ``cp_read`` runs alone (its keys are another
session's).

A script reports an expected failure as an error reply: a code, then its arguments,
separated by spaces (``WM_LIMIT max_keys 1000 1000``). The prelude defines every code
once (``local ERR_... = '...'``); ``SCRIPT_ERRORS`` below maps each code to the
exception the backend raises, and a test keeps the two lists equal. Any other error
reply is unexpected.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from importlib import resources

from memory_core.errors import (
    CheckpointNotFoundError,
    LimitExceededError,
    SessionNotFoundError,
    StorageInternalError,
    WorkingMemoryError,
)

log = logging.getLogger(__name__)

SESSION_SCRIPTS = (
    "open", "touch", "close", "set", "get", "exists", "delete", "keys", "items", "values", "clear",
    "set_task", "get_task", "append_pad", "get_pad", "usage", "cp_create", "cp_restore",
    "cp_list", "cp_delete", "export", "import", "import_stage", "import_commit", "closed",
)  # fmt: skip
STANDALONE_SCRIPTS = ("cp_read", "cp_peek", "cp_index", "cp_recent")

# code -> the exception for the reply's arguments
SCRIPT_ERRORS: dict[str, Callable[[list[str]], WorkingMemoryError]] = {
    "WM_NOSESSION": lambda _args: SessionNotFoundError(),
    "WM_NOTFOUND": lambda _args: CheckpointNotFoundError(),
    "WM_LIMIT": lambda args: LimitExceededError(args[0], int(args[1]), int(args[2])),
}


def source(name: str) -> str:
    """The text of ``lua/<name>.lua`` as shipped in the package."""
    return resources.files("memory_core.storage.redis").joinpath("lua", f"{name}.lua").read_text()


def sources() -> dict[str, str]:
    """Every script as sent to Redis, by name."""
    prelude = source("prelude")
    scripts = {name: prelude + "\n" + source(name) for name in SESSION_SCRIPTS}
    scripts.update({name: source(name) for name in STANDALONE_SCRIPTS})
    return scripts


def sha1(text: str) -> str:
    """The digest EVALSHA names a script by."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def error_from_reply(text: str) -> WorkingMemoryError:
    """The exception for a script's error reply: the one its code names, or
    ``StorageInternalError`` (logged) for a reply no script sends on purpose: a bug or
    an input the engine should have refused, never an outage."""
    code, *args = text.split() or [""]
    make = SCRIPT_ERRORS.get(code)
    if make is None:
        log.error("unexpected Redis error reply: %s", text)
        return StorageInternalError()
    return make(args)
