"""``mcp-working-memory``: run the server over stdio (default) or HTTP.

Every ``Settings`` field is a flag (``--redis-url``, ``--max-keys``, ...) and a
``WM_*`` environment variable; flags win. Tokens are read from the environment or a
file only, never from flags (they would show in the process list).
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from collections.abc import Sequence
from typing import Any

import anyio
from pydantic import ValidationError

from mcp_server.errors import ConfigurationError
from mcp_server.logs import configure_logging
from mcp_server.settings import Settings
from memory_core import WorkingMemoryError, __version__

log = logging.getLogger("mcp_server")

NOT_FLAGS = frozenset({"auth_tokens"})
GRACEFUL_SHUTDOWN_SECONDS = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-working-memory",
        description="Working memory for LLM agents over MCP (stdio, streamable HTTP and SSE).",
        epilog="Every option can also be set as WM_<OPTION> in the environment, "
        "e.g. WM_REDIS_URL; bearer tokens only via WM_AUTH_TOKENS or --auth-tokens-file.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for name, field in Settings.model_fields.items():
        if name in NOT_FLAGS:
            continue
        flag = "--" + name.replace("_", "-")
        kwargs: dict[str, Any] = {"help": field.description, "dest": name}
        if field.annotation in (bool, bool | None):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(field.annotation) is typing.Literal:
            kwargs["choices"] = typing.get_args(field.annotation)
        else:
            kwargs["metavar"] = name.upper()
        parser.add_argument(flag, **kwargs)
    return parser


def load_settings(argv: Sequence[str] | None = None) -> Settings:
    """Settings from flags over ``WM_*`` environment variables.

    Raises:
        SystemExit: unusable options (after printing which ones and why).
    """
    parser = build_parser()
    flags = vars(parser.parse_args(argv))
    try:
        return Settings(**flags)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        parser.error(problems)


def main(argv: Sequence[str] | None = None) -> None:
    settings = load_settings(argv)
    configure_logging(settings.log_level)
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

    from mcp_server.http import create_app

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        async with app.state.runtime:
            await server.serve()

    anyio.run(serve)
