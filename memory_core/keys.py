"""Validation of user keys, patterns and ids, and glob matching.

Keys are data, never syntax: they are stored as fields inside one session's
structures, so no character in them can reach another session. Ids that do become
part of storage key names (session and checkpoint ids) are validated here against
a strict alphabet before they are used.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from functools import lru_cache

from memory_core.errors import (
    CheckpointNotFoundError,
    InvalidArgumentError,
    InvalidKeyError,
    SessionNotFoundError,
)

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
CHECKPOINT_ID_RE = re.compile(r"^ck_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$")
MAX_PATTERN_LENGTH = 512
MAX_SESSION_NAME_LENGTH = 128
DEFAULT_SESSION_NAME = "\x00default"
"""The name of a principal's default session (stateless requests without handle or
name). A control character, so no client-chosen name can be it."""


def new_session_id() -> str:
    """A fresh unguessable session id (192 bits)."""
    return secrets.token_urlsafe(24)


def _digest(domain: str, *parts: str, length: int) -> str:
    text = "\x00".join((domain, *parts)).encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(hashlib.sha256(text).digest()).decode()[:length]


@lru_cache(maxsize=4096)
def session_tag(session_id: str) -> str:
    """The storage tag of a session: a one-way digest of its id (132 bits).

    Every storage key of the session is named by its tag (on Redis Cluster the tag is
    the hash tag, so one session is one slot), and checkpoint ids carry the tag of
    their session. The tag locates a session's data but cannot be turned back into
    the session id, the handle that grants access.
    """
    return _digest("wm-session-tag", session_id, length=22)


def principal_tag(principal: str) -> str:
    """The storage tag of a principal's own keys (the index of its recent checkpoints)."""
    return "p" + _digest("wm-principal-tag", principal, length=22)


def named_session_id(principal: str, name: str) -> str:
    """The session id of ``principal``'s session called ``name`` (192 bits).

    Derived, not stored: every process computes the same id from (principal, name), so
    the name -> session mapping lives in the store as the session itself and opening
    it is one atomic create-if-absent. Another principal's same name is another id,
    and the store refuses a session to any principal but its owner.
    """
    return _digest("wm-named-session", principal, name, length=32)


def validate_session_name(name: object) -> str:
    """Return ``name`` if it can name a session.

    Raises:
        InvalidArgumentError: not a string, empty or blank, longer than
            ``MAX_SESSION_NAME_LENGTH`` characters, or holding control characters.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"session name must be a string, got {type(name).__name__}")
    if not name.strip():
        raise InvalidArgumentError("session name must not be empty; use a short descriptive name")
    if len(name) > MAX_SESSION_NAME_LENGTH:
        raise InvalidArgumentError(
            f"session name is {len(name)} characters but at most "
            f"{MAX_SESSION_NAME_LENGTH} are allowed; use a shorter name"
        )
    if has_control_char(name):
        raise InvalidArgumentError(
            "session name contains control characters; use printable characters only"
        )
    return name


def new_checkpoint_id(session_id: str) -> str:
    """A fresh checkpoint id: the owning session's tag, plus 128 random bits.

    The tag lets a retained checkpoint be found after its session ended (and routes
    it to the session's cluster slot) without revealing the session id.
    """
    return f"ck_{session_tag(session_id)}.{secrets.token_urlsafe(16)}"


def checkpoint_tag(checkpoint_id: object) -> str:
    """The tag (``session_tag``) of the session that owns ``checkpoint_id``.

    Raises:
        NotFoundError: the id is malformed (indistinguishable from an unknown id).
    """
    if not isinstance(checkpoint_id, str) or not CHECKPOINT_ID_RE.match(checkpoint_id):
        raise CheckpointNotFoundError()
    return checkpoint_id[3:].split(".", 1)[0]


# Unicode categories Cc (C0, DEL, C1 controls) and Cs (lone surrogates).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_char(text: str) -> bool:
    """True when ``text`` holds a control character or a lone surrogate: what no key,
    pattern or label may contain."""
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
    if has_control_char(key):
        raise InvalidKeyError(
            "key contains control characters (such as newline, tab or NUL); "
            "use printable characters only"
        )
    return key


def validate_session_id(session_id: object) -> str:
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
    if has_control_char(pattern):
        raise InvalidArgumentError("pattern contains control characters; remove them")
    return pattern


class _Glob:
    """A glob split at its stars into fixed-width segments.

    One regex with a ``.*`` per star backtracks exponentially (``*a*a*a*a*b`` against
    ``aaaa...`` ran for minutes, stalling the event loop); matching segment by segment
    does not: the first segment is anchored at the start, the last at the end, and
    each middle one is placed at its leftmost occurrence, which is optimal for globs.
    Every segment matches exactly one character per token, so each search is linear
    in the key times the segment's width.
    """

    __slots__ = ("segments", "widths")

    def __init__(self, segments: list[list[str]]) -> None:
        self.segments = [re.compile("".join(tokens), re.DOTALL) for tokens in segments]
        self.widths = [len(tokens) for tokens in segments]

    def fullmatch(self, key: str) -> bool:
        segments, widths = self.segments, self.widths
        if len(segments) == 1:
            return segments[0].fullmatch(key) is not None
        pos, end = 0, len(key) - widths[-1]
        if end < widths[0]:
            return False
        if widths[0] and segments[0].match(key) is None:
            return False
        pos = widths[0]
        if widths[-1] and segments[-1].fullmatch(key, end) is None:
            return False
        for segment, width in zip(segments[1:-1], widths[1:-1], strict=True):
            if not width:
                continue
            found = segment.search(key, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True


@lru_cache(maxsize=256)
def _compile_glob(pattern: str) -> _Glob:
    """Translate a glob (``*``, ``?``, ``[abc]``, ``[a-z]``, ``[!x]``/``[^x]``, ``\\x``).

    An unclosed ``[`` matches a literal ``[``.
    """
    segments: list[list[str]] = [[]]
    out = segments[0]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if out or len(segments) == 1:  # consecutive stars are one star
                out = []
                segments.append(out)
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
    return _Glob(segments)


def glob_match(pattern: str, key: str) -> bool:
    """True when ``key`` matches the whole glob ``pattern`` (linear-time, see ``_Glob``)."""
    if pattern == "*":
        return True
    return _compile_glob(pattern).fullmatch(key)
