"""Tool error text: the one place where failures become ``"<CODE>: <sentence>"``.

A model reads these messages. Each starts with a stable code and says what to do
next; none contains a stack trace, a storage key, a rejected value or any other
internal detail.
"""

from __future__ import annotations

from pydantic import ValidationError

from memory_core import WorkingMemoryError

INTERNAL_ERROR = (
    "INTERNAL_ERROR: the server hit an unexpected problem with this call; retry once, "
    "and if it happens again stop and report it"
)


class SessionRequiredError(WorkingMemoryError):
    """A stateless (2026-07-28) request named no session."""

    code = "SESSION_REQUIRED"

    def __init__(self) -> None:
        super().__init__(
            "this request has no connection-bound session; call session_open once and pass "
            "the returned handle as the `session` argument of every call"
        )


def error_text(exc: WorkingMemoryError) -> str:
    return f"{exc.code}: {exc.message}"


def unknown_tool_text(name: str) -> str:
    return f"NOT_FOUND: there is no tool named {name[:64]!r}; call tools/list to see the tools"


def unknown_arguments_text(unknown: list[str], accepted: list[str]) -> str:
    names = ", ".join(repr(n[:64]) for n in unknown[:5])
    return (
        f"INVALID_ARGUMENT: unknown argument {names}; this tool accepts: "
        f"{', '.join(accepted) or 'no arguments'}"
    )


def validation_text(exc: ValidationError) -> str:
    """Describe rejected tool arguments by name and rule, never by value."""
    problems, invalid = _problems(exc)
    # A key of the wrong type is a bad key; anything else (or a mix) is a bad argument.
    code = "INVALID_KEY" if invalid == {"key"} and len(problems) == 1 else "INVALID_ARGUMENT"
    return f"{code}: {'; '.join(problems)}"


def describe_validation(exc: ValidationError) -> str:
    """The same description without a code, for a ``WorkingMemoryError`` message."""
    return "; ".join(_problems(exc)[0])


def _problems(exc: ValidationError) -> tuple[list[str], set[str]]:
    problems: list[str] = []
    invalid: set[str] = set()
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = err["loc"]
        name = str(loc[0]) if loc else "arguments"
        path = ".".join(str(part) for part in loc) or name
        if err["type"] == "missing":
            problems.append(f"missing required argument '{path}'")
            continue
        invalid.add(name)
        msg = err["msg"]
        problems.append(f"'{path}': {msg[:1].lower()}{msg[1:]}")
    return (problems[:5] or ["the arguments do not match the input schema"]), invalid
