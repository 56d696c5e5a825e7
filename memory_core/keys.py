"""Validation of user keys, patterns and ids, and glob matching.

Keys are data, never syntax: they are stored as fields inside one session's
structures, so no character in them can reach another session. Ids that do become
part of storage key names (session and checkpoint ids) are validated here against
a strict alphabet before they are used.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache

from memory_core.errors import InvalidArgumentError, InvalidKeyError, NotFoundError

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
CHECKPOINT_ID_RE = re.compile(r"^ck_[A-Za-z0-9_-]{22,64}\.[A-Za-z0-9_-]{22}$")
MAX_PATTERN_LENGTH = 512


def new_session_id() -> str:
    """A fresh unguessable session id (192 bits)."""
    return secrets.token_urlsafe(24)


def new_checkpoint_id(session_id: str) -> str:
    """A fresh checkpoint id: 128 random bits, plus the owning session's id.

    The session id is part of the checkpoint id so that a retained checkpoint can
    be found after its session ended, without any global index.
    """
    return f"ck_{session_id}.{secrets.token_urlsafe(16)}"


def checkpoint_session(checkpoint_id: object) -> str:
    """The id of the session that owns ``checkpoint_id``.

    Raises:
        NotFoundError: the id is malformed (indistinguishable from an unknown id).
    """
    if not isinstance(checkpoint_id, str) or not CHECKPOINT_ID_RE.match(checkpoint_id):
        raise NotFoundError(
            "no such checkpoint in this session; call checkpoint_list to see the ids you can use"
        )
    return checkpoint_id[3:].rsplit(".", 1)[0]


# Unicode categories Cc (C0, DEL, C1 controls) and Cs (lone surrogates).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _has_control_char(text: str) -> bool:
    return _CONTROL.search(text) is not None


def validate_key(key: object, max_length: int) -> str:
    """Return ``key`` if it is a usable key.

    Raises:
        InvalidKeyError: not a string, empty, longer than ``max_length`` characters,
            or containing control characters or lone surrogates.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"key must be a string, got {type(key).__name__}")
    if not key:
        raise InvalidKeyError("key must not be empty; use a short descriptive name")
    if len(key) > max_length:
        raise InvalidKeyError(
            f"key is {len(key)} characters but at most {max_length} are allowed; use a shorter key"
        )
    if _has_control_char(key):
        raise InvalidKeyError(
            "key contains control characters (such as newline, tab or NUL); "
            "use printable characters only"
        )
    return key


def validate_session_id(session_id: object) -> str:
    from memory_core.errors import SessionNotFoundError

    if not isinstance(session_id, str) or not SESSION_ID_RE.match(session_id):
        raise SessionNotFoundError()
    return session_id


def validate_pattern(pattern: object) -> str:
    if not isinstance(pattern, str):
        raise InvalidArgumentError(f"pattern must be a string, got {type(pattern).__name__}")
    if not pattern:
        raise InvalidArgumentError("pattern must not be empty; use '*' to match every key")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidArgumentError(
            f"pattern is {len(pattern)} characters but at most {MAX_PATTERN_LENGTH} are allowed"
        )
    if _has_control_char(pattern):
        raise InvalidArgumentError("pattern contains control characters; remove them")
    return pattern


@lru_cache(maxsize=256)
def _compile_glob(pattern: str) -> re.Pattern[str]:
    """Translate a glob (``*``, ``?``, ``[abc]``, ``[a-z]``, ``[!x]``/``[^x]``, ``\\x``).

    An unclosed ``[`` matches a literal ``[``.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            j = i
            negate = j < n and pattern[j] in "!^"
            if negate:
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape("["))
                continue
            body = pattern[i + (1 if negate else 0) : j]
            i = j + 1
            parts: list[str] = []
            k = 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    lo, hi = body[k], body[k + 2]
                    if lo <= hi:
                        parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
                    k += 3
                else:
                    parts.append(re.escape(body[k]))
                    k += 1
            cls = "".join(parts)
            if not cls:
                out.append("[^\\s\\S]" if not negate else "[\\s\\S]")
            else:
                out.append(f"[{'^' if negate else ''}{cls}]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def glob_match(pattern: str, key: str) -> bool:
    """True when ``key`` matches the whole glob ``pattern``."""
    if pattern == "*":
        return True
    return _compile_glob(pattern).fullmatch(key) is not None
