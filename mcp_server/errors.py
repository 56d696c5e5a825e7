"""The one place where failures become what an MCP client sees.

Every failure has a stable code (``INVALID_KEY``, ``SESSION_NOT_FOUND``, ...). ``CODES``
says, per code, what kind of failure it is and which JSON-RPC error code it gets where
the protocol answers with an error instead of a tool result. From there:

* ``tool_failure`` turns an exception into the ``"<CODE>: <sentence>"`` text of an
  ``isError`` tool result;
* ``protocol_error`` turns it into the ``MCPError`` of ``resources/subscribe`` and
  ``subscriptions/listen``; ``resource_error`` into the SDK's own resource error for
  ``resources/read`` (``ResourceNotFoundError`` is the SDK's invalid-params variant).

Callers raise the result ``from`` the original exception, so the server log keeps the
cause while nothing internal reaches the wire. A model reads these messages: each starts
with its code and says what to do next; none contains a stack trace, a storage key, a
rejected value or any other internal detail. memory_core's sentences are tool-neutral;
``TOOL_WORDING`` names the tools that carry out its advice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    UnexpectedToolError,
)
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR as RPC_INTERNAL_ERROR
from mcp_types import INVALID_PARAMS as RPC_INVALID_PARAMS
from pydantic import ValidationError

from mcp_server import metrics
from memory_core import (
    InvalidArgumentError,
    LimitExceededError,
    StorageMisconfiguredError,
    WorkingMemoryError,
)

log = logging.getLogger("mcp_server.tools")

Kind = Literal["client", "unavailable", "operator", "internal"]
"""Who can fix a failure: the caller (``client``), time (``unavailable``: retry), the
operator (``operator``: the store refuses this server, retrying will not help), or we."""


@dataclass(frozen=True, slots=True)
class Code:
    kind: Kind

    @property
    def rpc(self) -> int:
        """The JSON-RPC error code on protocol surfaces: invalid params for what the
        caller can fix, internal error for everything else."""
        return RPC_INVALID_PARAMS if self.kind == "client" else RPC_INTERNAL_ERROR


CODES: dict[str, Code] = {
    "INVALID_KEY": Code("client"),
    "INVALID_VALUE": Code("client"),
    "INVALID_ARGUMENT": Code("client"),
    "VALUE_TOO_LARGE": Code("client"),
    "LIMIT_EXCEEDED": Code("client"),
    "NOT_FOUND": Code("client"),
    "SESSION_NOT_FOUND": Code("client"),
    "SESSION_REQUIRED": Code("client"),
    "STORAGE_UNAVAILABLE": Code("unavailable"),
    "STORAGE_FULL": Code("unavailable"),
    "STORAGE_MISCONFIGURED": Code("operator"),
    "INTERNAL_ERROR": Code("internal"),
}

INTERNAL_ERROR = (
    "INTERNAL_ERROR: the server hit an unexpected problem with this call; retry once, "
    "and if it happens again stop and report it"
)

TOOL_WORDING = {
    "list its checkpoints to see": "call checkpoint_list to see",
    "open a new one (or reconnect)": "open a new one with session_open (or reconnect)",
    "close sessions you no longer need and retry": (
        "close sessions you no longer need (session_close) and retry"
    ),
}
"""memory_core's tool-neutral advice -> the same advice naming this server's tools."""


class ConfigurationError(ValueError):
    """Root of every startup-configuration error: the server refuses to start."""


class StoreURLError(ConfigurationError, InvalidArgumentError):
    """The store URL names no usable store (still memory_core's ``INVALID_ARGUMENT``)."""

    def __init__(self, message: str) -> None:
        InvalidArgumentError.__init__(self, message)


class StoreRefusedError(ConfigurationError):
    """At startup the store answered but refused this server (credentials, permissions,
    database, protocol): one line naming the store (password redacted) and the cause."""

    def __init__(self, exc: StorageMisconfiguredError) -> None:
        super().__init__(f"the store refuses this server: {exc.operator_line()}")


class SessionRequiredError(WorkingMemoryError):
    """A stateless (2026-07-28) request named no session."""

    code = "SESSION_REQUIRED"

    def __init__(self) -> None:
        super().__init__(
            "this request has no connection-bound session; call session_open once and pass "
            "the returned handle as the `session` argument of every call"
        )


def code_of(exc: WorkingMemoryError) -> Code:
    return CODES.get(exc.code, CODES["INTERNAL_ERROR"])


def error_text(exc: WorkingMemoryError) -> str:
    """``"<CODE>: <sentence>"``, with memory_core's advice worded for these tools.

    Every failure an MCP client sees is worded here once, so this is also where a limit
    refusal (any ``LimitExceededError``, quotas included) is counted for ``/metrics``.
    """
    if isinstance(exc, LimitExceededError):
        metrics.limit_refused(exc.limit)
    message = exc.message
    for neutral, worded in TOOL_WORDING.items():
        message = message.replace(neutral, worded)
    return f"{exc.code}: {message}"


def tool_failure(exc: BaseException, tool: str, session: str) -> tuple[str, str]:
    """``(code, text)`` of a tool call that raised ``exc`` (the SDK's ``ToolError`` or
    what it wraps): memory_core's errors keep their code and sentence, rejected
    arguments become ``INVALID_ARGUMENT`` (or ``INVALID_KEY``) naming the argument but
    never its value, anything else is logged with its traceback and answered with a
    generic ``INTERNAL_ERROR``."""
    cause = exc.__cause__ or exc
    if isinstance(cause, WorkingMemoryError):
        return cause.code, error_text(cause)
    if isinstance(cause, ValidationError) and not isinstance(exc, UnexpectedToolError):
        return validation_failure(cause)
    log.error("tool crashed tool=%s session=%s", tool, session, exc_info=cause)
    return "INTERNAL_ERROR", INTERNAL_ERROR


def protocol_error(exc: WorkingMemoryError) -> MCPError:
    """The JSON-RPC error for ``exc``; raise it ``from exc``."""
    return MCPError(code=code_of(exc).rpc, message=error_text(exc))


def resource_error(exc: WorkingMemoryError) -> ResourceError:
    """The SDK resource error for ``exc`` (same code as ``protocol_error``); raise it
    ``from exc``."""
    if code_of(exc).kind == "client":
        return ResourceNotFoundError(error_text(exc))
    return ResourceError(error_text(exc))


def unknown_tool(name: str) -> tuple[str, str]:
    return (
        "NOT_FOUND",
        f"NOT_FOUND: there is no tool named {name[:64]!r}; call tools/list to see the tools",
    )


def disabled_tool(name: str) -> tuple[str, str]:
    """A tool this server has but does not list (``WM_TOOLS``)."""
    return (
        "NOT_FOUND",
        f"NOT_FOUND: the tool {name!r} is not enabled on this server; use the tools in "
        f"tools/list, or ask the operator to enable it with WM_TOOLS=all or "
        f"WM_TOOLS=core,{name}",
    )


def unknown_arguments(unknown: list[str], accepted: list[str]) -> tuple[str, str]:
    names = ", ".join(repr(n[:64]) for n in unknown[:5])
    return (
        "INVALID_ARGUMENT",
        f"INVALID_ARGUMENT: unknown argument {names}; this tool accepts: "
        f"{', '.join(accepted) or 'no arguments'}",
    )


def validation_failure(exc: ValidationError) -> tuple[str, str]:
    """Describe rejected tool arguments by name and rule, never by value."""
    problems, invalid = _problems(exc)
    # A key of the wrong type is a bad key; anything else (or a mix) is a bad argument.
    code = "INVALID_KEY" if invalid == {"key"} and len(problems) == 1 else "INVALID_ARGUMENT"
    return code, f"{code}: {'; '.join(problems)}"


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
