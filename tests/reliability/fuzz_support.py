"""Hostile tool arguments (hypothesis strategies) and the checks every answer must pass.

Strings may carry placeholders (``<<OWN>>``, ``<<SENTINEL>>``, ...) that a target
replaces with live ids just before the call: the fuzzer aims at real sessions and
checkpoints (its own, a sentinel's, a closed one) without knowing them up front.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from typing import Any, Literal

from hypothesis import strategies as st

from tests.reliability.load_support import ROOT

CODE_RE = re.compile(r"^([A-Z_]+): \S")
KNOWN_CODES = frozenset(
    {
        "INVALID_KEY",
        "INVALID_VALUE",
        "VALUE_TOO_LARGE",
        "LIMIT_EXCEEDED",
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "SESSION_REQUIRED",
        "SESSION_NOT_FOUND",
    }
)
# Codes hostile input must never produce: a crash, or a storage failure it caused.
FORBIDDEN_CODES = frozenset({"INTERNAL_ERROR", "STORAGE_UNAVAILABLE"})
LEAK_MARKERS = (
    "Traceback",
    'File "',
    "site-packages",
    '.py"',
    ".py:",
    ".py,",
    "/usr/lib",
    "/tmp/",
    str(ROOT),
    "validation error for",
    "input_value",
    "Error executing",
    "pydantic",
)

PLACEHOLDERS = (
    "<<OWN>>",
    "<<SENTINEL>>",
    "<<OTHER>>",
    "<<CLOSED>>",
    "<<OWN_CP>>",
    "<<SENTINEL_CP>>",
    "<<OTHER_CP>>",
    "<<PREFIX>>",
)

# Text that has meant trouble somewhere: glob and Redis key syntax, path traversal,
# JSON-looking strings, format strings, bidi and combining marks, BOM, noncharacters.
NASTY = (
    "",
    " ",
    "*",
    "?",
    "[",
    "]",
    "[!",
    "[a-",
    "[z-a]",
    "[]]",
    "\\",
    "\\*",
    "{",
    "}",
    "{}",
    ":",
    "::",
    "..",
    "../",
    "../../etc/passwd",
    "/",
    "~",
    "%",
    "%00",
    "%s%s%n",
    "${jndi:x}",
    "' OR 1=1 --",
    '"',
    "'",
    "<script>",
    "null",
    "true",
    "NaN",
    "-Infinity",
    "[1, 2]",
    '{"a": 1}',
    "__proto__",
    "__class__",
    "current",
    "memory://session/current",
    "memory://health",
    "ck_",
    "ck_x.y",
    "wm:*",
    "wm:{other}:vars",
    "<<PREFIX>>:{<<SENTINEL>>}:vars",
    "{<<SENTINEL>>}",
    "<<SENTINEL>>",
    "<<SENTINEL>>:vars",
    "*<<SENTINEL>>*",
    "<<PREFIX>>:{<<OWN>>}:cp:<<OWN_CP>>",
    "\x00",
    "a\x00b",
    "\x7f",
    "\u0085",
    "\r\n",
    "\t",
    "\u2028",
    "\u202e",
    "\u200f\u200e\u202b",
    "\u200b",
    "e\u0301\u0301\u0301",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\U0001f600",
    "\U0010ffff",
    "\u0130",
    "\u00df",
    "\ufb01",
)
SURROGATES = ("\ud800", "\udfff", "\ud83d", "a\udc80b", "\ud83d\ude00")


def _chars(allow_surrogates: bool) -> st.SearchStrategy[str]:
    excluded: tuple[Literal["Cs"], ...] = () if allow_surrogates else ("Cs",)
    return st.characters(exclude_categories=excluded)


def texts(allow_surrogates: bool, max_size: int = 40) -> st.SearchStrategy[str]:
    nasty = st.sampled_from(NASTY + (SURROGATES if allow_surrogates else ()))
    small = st.text(_chars(allow_surrogates), max_size=max_size)
    return st.one_of(
        small,
        nasty,
        st.lists(st.one_of(nasty, small), min_size=2, max_size=4).map("".join),
        # length boundaries: key 256, pattern 512, label 256, scratchpad 16 KiB, value 64 KiB
        st.builds(
            lambda ch, n: ch * n,
            st.sampled_from(["a", "\u00e9", "\U0001f600", "*", "{", "\u202e"]),
            st.sampled_from([255, 256, 257, 511, 512, 513, 4097, 16385, 65537, 150_000]),
        ),
    )


def nested(depth: int, kind: str) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "list" else {"d": value}
    return value


def numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(
            [
                0,
                -0.0,
                -1,
                1,
                0.0001,
                5e-324,
                1e308,
                31_622_400,
                31_622_401,
                604_800,
                604_801,
                2**31,
                2**63,
                2**64,
                10**30,
                True,
                False,
                "5",
                "1e3",
                "0x10",
                None,
            ]
        ),
    )


def json_values(allow_surrogates: bool, max_depth: int = 300) -> st.SearchStrategy[Any]:
    text = texts(allow_surrogates, max_size=20)
    scalars = st.one_of(st.none(), st.booleans(), numbers(), text)
    tree = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5), st.dictionaries(text, inner, max_size=5)
        ),
        max_leaves=12,
    )
    depths = [d for d in (10, 62, 63, 64, 65, 100, 200) if d <= max_depth]
    return st.one_of(
        tree,
        st.builds(nested, st.sampled_from(depths), st.sampled_from(["list", "dict"])),
        st.builds(lambda n: [0] * n, st.sampled_from([1000, 20_000, 40_000])),
        st.builds(lambda n: {f"k{i}": i for i in range(n)}, st.sampled_from([100, 5000])),
    )


def _b64(raw: bytes, padded: bool) -> str:
    text = base64.urlsafe_b64encode(raw).decode("ascii")
    return text if padded else text.rstrip("=")


def cursors(allow_surrogates: bool) -> st.SearchStrategy[Any]:
    """Forged and tampered cursors: the real format (base64url JSON) with hostile fields."""
    text = texts(allow_surrogates, max_size=20)
    field = st.one_of(numbers(), text, st.none(), st.lists(st.integers(), max_size=3))
    forged = st.fixed_dictionaries(
        {"k": st.sampled_from(["keys", "values", "scratchpad", "x", 1])},
        optional={"p": st.one_of(st.just("*"), text), "a": field, "o": field},
    )
    return st.one_of(
        text,
        json_values(allow_surrogates, max_depth=64),
        st.tuples(forged, st.booleans()).map(
            lambda fp: _b64(json.dumps(fp[0], ensure_ascii=True).encode(), fp[1])
        ),
        st.binary(max_size=64).map(lambda raw: _b64(raw, False)),
        st.sampled_from(["e30", "W10", "bnVsbA", "=", "!!!!", "eyJrIjoia2V5cyJ9" * 300]),
    )


def globs(allow_surrogates: bool) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(st.sampled_from("*?[]!^-\\a{}:."), min_size=1, max_size=30),
        texts(allow_surrogates),
        # star-heavy patterns: catastrophic backtracking bait against long keys
        st.builds(lambda n: "*a" * n + "*b", st.integers(1, 255)),
        st.builds(lambda n: "*?" * n, st.integers(1, 256)),
    )


def session_args() -> st.SearchStrategy[Any]:
    """Handles: unknown, closed, tampered copies of the sentinel's, injection text."""
    alphabet = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    return st.one_of(
        st.text(alphabet, min_size=20, max_size=66),
        st.sampled_from(
            [
                "<<CLOSED>>",
                "<<OTHER>>",
                "<<SENTINEL>>x",
                "<<SENTINEL>>\n",
                "<<SENTINEL>>\r",
                " <<SENTINEL>>",
                "{<<SENTINEL>>}",
                "<<PREFIX>>:{<<SENTINEL>>}:vars",
                "<<SENTINEL>>:vars",
                "<<SENTINEL>>*",
                "<<SENTINEL>>/../<<OWN>>",
                "<<OWN>>,<<SENTINEL>>",
                "current",
                "*",
                "",
                "A" * 21,
                "A" * 65,
            ]
        ),
    )


def checkpoint_ids(allow_surrogates: bool) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(
            [
                "<<OWN_CP>>",
                "<<SENTINEL_CP>>",
                "<<OTHER_CP>>",
                "<<SENTINEL_CP>>\n",
                "<<SENTINEL_CP>>x",
                "ck_<<SENTINEL>>.AAAAAAAAAAAAAAAAAAAAAA",
                "ck_<<OWN>>.AAAAAAAAAAAAAAAAAAAAAA",
                "ck_<<CLOSED>>.AAAAAAAAAAAAAAAAAAAAAA",
                "ck_../../<<SENTINEL>>.x",
                "ck_*.*",
                "ck_{<<SENTINEL>>}.AAAAAAAAAAAAAAAAAAAAAA",
            ]
        ),
        texts(allow_surrogates),
        json_values(allow_surrogates, max_depth=10),
    )


def argument_strategy(name: str, allow_surrogates: bool) -> st.SearchStrategy[Any]:
    """Plausible-but-hostile values for one argument, or a value of the wrong type."""
    text = texts(allow_surrogates)
    anything = json_values(allow_surrogates)
    specific: dict[str, st.SearchStrategy[Any]] = {
        "key": st.one_of(st.sampled_from(["k", "k1", "a" * 256, "\U0001f600" * 256]), text),
        "value": anything,
        "default": anything,
        "ttl_seconds": numbers(),
        "pattern": globs(allow_surrogates),
        "cursor": cursors(allow_surrogates),
        "limit": st.one_of(st.sampled_from([0, 1, 2, 499, 500, 501, -1]), numbers()),
        "session": session_args(),
        "checkpoint_id": checkpoint_ids(allow_surrogates),
        "label": text,
        "content": text,
        "task_id": text,
        "description": text,
        "status": st.one_of(
            st.sampled_from(["pending", "in_progress", "completed", "failed", "cancelled"]),
            text,
        ),
        "current_step": numbers(),
        "total_steps": numbers(),
        "progress": numbers(),
        "metadata": st.one_of(
            st.dictionaries(texts(allow_surrogates, 10), anything, max_size=4),
            st.builds(nested, st.sampled_from([30, 63, 64, 65, 200]), st.just("dict")),
        ),
        "text": text,
    }
    base = specific.get(name, anything)
    return st.one_of(base, base, base, anything)  # mostly on-topic, sometimes any type


def plausible(name: str) -> st.SearchStrategy[Any]:
    """A valid-looking value for one argument, to get deep into a tool's logic."""
    word = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=12)
    small = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), word),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(word, inner, max_size=3)
        ),
        max_leaves=6,
    )
    return {
        "key": st.sampled_from(["k", "k1", "plan", "a*b", "x:y", "{z}"]) | word.filter(bool),
        "value": small,
        "default": small,
        "ttl_seconds": st.none() | st.floats(0.5, 10_000),
        "pattern": st.sampled_from(["*", "k*", "?", "[ak]*", "\\*"]),
        "cursor": st.none(),
        "limit": st.integers(1, 50),
        "checkpoint_id": st.just("<<OWN_CP>>"),
        "status": st.sampled_from(["pending", "in_progress", "completed", "failed", "cancelled"]),
        "current_step": st.integers(0, 10),
        "total_steps": st.integers(0, 10),
        "progress": st.floats(0, 1),
        "metadata": st.dictionaries(word, small, max_size=3),
    }.get(name, word.filter(bool))


@st.composite
def tool_arguments(
    draw: st.DrawFn, schema: dict[str, Any], allow_surrogates: bool, own_session: bool
) -> dict[str, Any]:
    """Arguments for a tool. A third of the cases are valid-looking with one hostile
    argument (or none); the rest are hostile throughout, with each property present
    or missing and sometimes extra ones.

    ``own_session``: the caller works through a handle (stateless), so ``session``
    is mostly ``<<OWN>>`` to get past session resolution into the tool's logic.
    """
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    single_fault = draw(st.integers(0, 2)) == 0
    args: dict[str, Any] = {}
    for name in sorted(properties):
        if name == "session":
            choice = draw(st.integers(0, 9))
            if own_session and (single_fault or choice < 7):
                args[name] = "<<OWN>>"
            elif choice >= 7 and not single_fault:
                args[name] = draw(argument_strategy(name, allow_surrogates))
            continue
        if single_fault:
            if name in required or draw(st.booleans()):
                args[name] = draw(plausible(name))
        elif draw(st.integers(0, 9)) < (9 if name in required else 5):
            args[name] = draw(argument_strategy(name, allow_surrogates))
    if single_fault:
        names = sorted(properties)
        victim = draw(st.sampled_from([*names, None])) if names else None
        if victim is not None:
            args[victim] = draw(argument_strategy(victim, allow_surrogates))
        return args
    if draw(st.integers(0, 9)) == 0:
        extra = draw(
            st.dictionaries(
                st.one_of(st.sampled_from(["Session", "keys", "ttl", "__proto__"]), texts(False)),
                json_values(allow_surrogates, max_depth=10),
                min_size=1,
                max_size=3,
            )
        )
        args |= {k: v for k, v in extra.items() if k not in properties}
    return args


def substitute(value: Any, ids: dict[str, str]) -> Any:
    """Replace placeholders in every string (keys included) with live ids."""
    if isinstance(value, str):
        if "<<" not in value:
            return value
        for marker, real in ids.items():
            value = value.replace(marker, real)
        return value
    if isinstance(value, list):
        return [substitute(v, ids) for v in value]
    if isinstance(value, dict):
        return {substitute(k, ids): substitute(v, ids) for k, v in value.items()}
    return value


def leaks(text: str, sent: str, secrets: list[str]) -> list[str]:
    """Internal details in ``text`` that the request itself did not contain.

    ``secrets``: strings that must never appear (e.g. ``<prefix>:{``, tokens).
    """
    found = [m for m in LEAK_MARKERS if m in text and m not in sent]
    found += [s for s in secrets if s and s in text and s not in sent]
    return found


class Outcomes:
    """Fuzz cases run, per suite and tool, by outcome (``ok`` or the error code)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], Counter[str]] = {}

    def add(self, suite: str, tool: str, outcome: str) -> None:
        self.counts.setdefault((suite, tool), Counter())[outcome] += 1

    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def table(self) -> str:
        suites = sorted({s for s, _ in self.counts})
        tools = sorted({t for _, t in self.counts})
        lines = [
            "| tool | " + " | ".join(suites) + " | outcomes (all suites) |",
            "|---|" + "---:|" * len(suites) + "---|",
        ]
        for tool in tools:
            merged: Counter[str] = Counter()
            cells = []
            for suite in suites:
                c = self.counts.get((suite, tool), Counter())
                merged += c
                cells.append(str(sum(c.values())))
            outcomes = ", ".join(f"{k} {v}" for k, v in merged.most_common())
            lines.append(f"| {tool} | " + " | ".join(cells) + f" | {outcomes} |")
        per_suite = [
            str(sum(sum(c.values()) for (s, _), c in self.counts.items() if s == suite))
            for suite in suites
        ]
        lines.append("| **total** | " + " | ".join(per_suite) + f" | {self.total()} cases |")
        return "\n".join(lines)
