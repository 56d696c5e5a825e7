"""``mcp-working-memory``: run the server over stdio (default) or HTTP.

Every ``Settings`` field is a flag (``--redis-url``, ``--max-keys``, ...) and a
``WM_*`` environment variable; flags win. Tokens are read from the environment or a
file only, never from flags (they would show in the process list).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import typing
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from mcp_server.errors import ConfigurationError
from mcp_server.logs import configure_logging
from mcp_server.settings import Settings
from memory_core import WorkingMemoryError, __version__

log = logging.getLogger("mcp_server")

NOT_FLAGS = frozenset({"auth_tokens", "metrics_token"})
HIDDEN = frozenset({"auth_tokens", "metrics_token"})
"""Settings whose value is never printed (a Redis URL is printed without its password)."""
GRACEFUL_SHUTDOWN_SECONDS = 3
PROG = "mcp-working-memory"
MAX_SHOWN = 80

ACCEPTED = {
    "transport": "stdio, or http (also streamable-http, sse), any case",
    "key_prefix": "1 to 64 letters, digits or _ . : -",
    "replica_id": "up to 64 letters, digits, _ or -",
    "tools": "core, all, or tool names separated by commas (see the README)",
}
"""What a setting accepts where its type alone does not say it."""


class _Parser(argparse.ArgumentParser):
    """Flag errors as one line (which flag, what is wrong) instead of the full usage."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{PROG}: {message} (see --help)\n")


def env_name(name: str) -> str:
    return "WM_" + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Working memory for LLM agents over MCP (stdio, streamable HTTP and SSE).",
        epilog="Every option can also be set as WM_<OPTION> in the environment, "
        "e.g. WM_REDIS_URL; bearer tokens only via WM_AUTH_TOKENS or --auth-tokens-file.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for name, field in Settings.model_fields.items():
        if name in NOT_FLAGS:
            continue
        help_text = f"{field.description} (default: {_shown_default(field)}; {env_name(name)})"
        kwargs: dict[str, Any] = {"help": help_text.replace("%", "%%"), "dest": name}
        if field.annotation in (bool, bool | None):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(field.annotation) is typing.Literal:
            kwargs["metavar"] = "{" + ",".join(typing.get_args(field.annotation)) + "}"
        else:
            kwargs["metavar"] = name.upper()
        parser.add_argument(flag_name(name), **kwargs)
    return parser


def load_settings(argv: Sequence[str] | None = None) -> Settings:
    """Settings from flags over ``WM_*`` environment variables.

    Raises:
        SystemExit: unusable options, with code 2, after printing one line per problem
            on stderr: the flag or variable as the user set it, and what it accepts.
    """
    parser = build_parser()
    flags = vars(parser.parse_args(argv))
    try:
        return Settings(**flags)
    except ValidationError as exc:
        lines = [_problem(err, flags) for err in exc.errors(include_url=False)]
        parser.exit(2, "".join(f"{PROG}: {line}\n" for line in dict.fromkeys(lines)))


def _problem(err: ErrorDetails, flags: dict[str, Any]) -> str:
    """One line about one rejected setting, never with a secret in it."""
    if not err["loc"]:  # a rule across settings; it names them as {field}
        names = {name: _source(name, flags, with_value=True) for name in Settings.model_fields}
        message = str(err.get("ctx", {}).get("error", err["msg"]))
        return message.format_map(names)
    name = str(err["loc"][0])
    if name not in Settings.model_fields:
        return f"{name}: {err['msg']}"
    shown = _source(name, flags, with_value=False)
    value = _printable(name, err.get("input"))
    setting = f"{shown} {value}" if name in flags else f"{shown}={value}"
    return f"{setting} is not accepted; expected {_accepted(name)}"


def _source(name: str, flags: dict[str, Any], *, with_value: bool) -> str:
    """The setting as the user wrote it: the flag if given, else the variable."""
    if not with_value:
        return flag_name(name) if name in flags else env_name(name)
    value = _current(name, flags)
    if value is None:
        shown = _shown_default(Settings.model_fields[name])
        return f"{env_name(name)} (default {shown})"
    if name in flags:
        return f"{flag_name(name)} {_printable(name, value)}"
    return f"{env_name(name)}={_printable(name, value)}"


def _current(name: str, flags: dict[str, Any]) -> object:
    if name in flags:
        return flags[name]
    wanted = env_name(name).lower()
    return next((v for k, v in os.environ.items() if k.lower() == wanted), None)


def _printable(name: str, value: object) -> str:
    if name in HIDDEN:
        return "(hidden)"
    text = value if isinstance(value, str) else repr(value)
    if name == "redis_url":
        text = _without_password(text)
    if len(text) > MAX_SHOWN:
        text = text[:MAX_SHOWN] + "..."
    return repr(text)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


def _accepted(name: str) -> str:
    if name in ACCEPTED:
        return ACCEPTED[name]
    field = Settings.model_fields[name]
    annotation = field.annotation
    if annotation in (bool, bool | None):
        return "true or false"
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation))) + " (any case)"
    if annotation is int or annotation is float:
        return _number_range("an integer" if annotation is int else "a number", field)
    return str(field.description)


def _number_range(kind: str, field: FieldInfo) -> str:
    rules = {
        attr: getattr(rule, attr)
        for rule in field.metadata
        for attr in ("ge", "gt", "le")
        if getattr(rule, attr, None) is not None
    }
    if "ge" in rules and "le" in rules:
        return f"{kind} from {rules['ge']} to {rules['le']}"
    if "ge" in rules:
        return f"{kind} of at least {rules['ge']}"
    if "gt" in rules:
        return f"{kind} greater than {rules['gt']}"
    return kind


def _shown_default(field: FieldInfo) -> str:
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "unset"
    if isinstance(default, list):
        return ",".join(map(str, default)) or "none"
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def main(argv: Sequence[str] | None = None) -> None:
    settings = load_settings(argv)
    configure_logging(settings.log_level, settings.log_format)
    try:
        if settings.transport == "stdio":
            from mcp_server.stdio import serve_stdio

            anyio.run(serve_stdio, settings)
        else:
            serve_http(settings)
    except (ConfigurationError, WorkingMemoryError) as exc:
        # configuration refused at startup (unsafe exposure, bad tokens, bad store URL),
        # or the store refused the stdio process session (Redis down, fallback off)
        log.error("cannot start: %s", exc)
        sys.exit(2)
    except KeyboardInterrupt:
        pass


def serve_http(settings: Settings) -> None:
    """Serve HTTP until a signal. The runtime is started before the port is bound, so a
    store that refuses this server stops the process here with one line (the app's
    lifespan enters the started runtime again and closes it on shutdown).

    Raises:
        ConfigurationError: see ``create_app`` and ``Runtime.__aenter__``.
    """
    import uvicorn

    from mcp_server.connections import uvicorn_options
    from mcp_server.heap import freeze_startup_heap
    from mcp_server.http import create_app
    from mcp_server.http_stack import http_stack

    stack = http_stack(settings)
    app = create_app(settings, ready=freeze_startup_heap)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **uvicorn_options(settings, http=stack.http),
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        async with app.state.runtime:
            log.info("http stack %s", stack.name)
            await server.serve()

    anyio.run(serve, backend_options={"use_uvloop": stack.uvloop})
