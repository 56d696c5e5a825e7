"""Test helpers: an agent that calls tools, in either protocol era."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from jsonschema import Draft202012Validator
from mcp import Client
from mcp_types import CallToolResult

from mcp_server.server import WorkingMemoryServer
from tests.support.results import resource_text, tool_text

MODES = ("legacy", "stateless")
CODE_RE = re.compile(r"^[A-Z_]+: \S")
NO_SESSION = {"session_open", "echo"}
LEAK_MARKERS = (
    "Traceback",
    "validation error for",
    "pydantic",
    "input_value",
    'File "',
    "Error executing",
)


class Agent:
    """Calls tools like one agent: stateless agents pass their session handle."""

    def __init__(self, client: Client, handle: str | None) -> None:
        self.client = client
        self.handle = handle
        self._schemas: dict[str, dict[str, Any]] | None = None

    def _args(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        if self.handle is not None and "session" not in args and tool not in NO_SESSION:
            return {**args, "session": self.handle}
        return args

    async def raw(self, tool: str, args: dict[str, Any] | None = None) -> CallToolResult:
        return await self.client.call_tool(tool, self._args(tool, args or {}))

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        """A call that must succeed; its arguments must also be valid by the tool's
        published input schema (what a schema-checking client would send)."""
        await self._check_arguments(tool, self._args(tool, args))
        result = await self.raw(tool, args)
        assert not result.is_error, result.content
        assert result.structured_content is not None
        return dict(result.structured_content)

    async def _check_arguments(self, tool: str, args: dict[str, Any]) -> None:
        if self._schemas is None:
            listed = (await self.client.list_tools()).tools
            self._schemas = {t.name: t.input_schema for t in listed}
        Draft202012Validator(self._schemas[tool]).validate(args)

    async def fail(self, tool: str, args: dict[str, Any] | None = None) -> str:
        """The error text of a call that must fail, checked for shape and leaks."""
        result = await self.raw(tool, args)
        assert result.is_error, f"{tool} succeeded: {result.structured_content}"
        text = tool_text(result)
        assert CODE_RE.match(text), text
        for marker in LEAK_MARKERS:
            assert marker not in text, text
        return text

    async def state(self) -> dict[str, Any]:
        """The session state resource of this agent's session."""
        uri = f"memory://session/{self.handle or 'current'}"
        result = await self.client.read_resource(uri)
        return dict(json.loads(resource_text(result)))

    async def snapshot(self) -> dict[str, Any]:
        """Everything a failed call must leave unchanged."""
        state = await self.state()
        del state["expires_in"]
        return state


@asynccontextmanager
async def agent(
    server: WorkingMemoryServer, mode: str, **client_kwargs: Any
) -> AsyncIterator[Agent]:
    """An in-process client: ``legacy`` uses the handshake (a connection-bound session),
    ``stateless`` the 2026-07-28 era with a handle from ``session_open``."""
    client_mode = "legacy" if mode == "legacy" else "auto"
    async with Client(server, mode=client_mode, **client_kwargs) as client:
        handle = None
        if mode == "stateless":
            opened = await client.call_tool("session_open", {})
            assert opened.structured_content is not None
            handle = opened.structured_content["session"]
        yield Agent(client, handle)
