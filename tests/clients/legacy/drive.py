"""Runs in the legacy-clients virtualenv (mcp 1.x, langchain-mcp-adapters), not the project's.

Reads a scenario on stdin, prints one JSON line on stdout:
``{"results": [...], "protocol": ...}`` (or ``{"outcomes": [...]}`` for
``{"runs": [scenario, ...]}``). Scenario keys:

- ``client``: ``langchain-per-call`` (``MultiServerMCPClient.get_tools()``: a new
  connection for every tool call, LangChain's default), ``langchain-session``
  (``async with client.session(name)``: one connection), or ``mcp1`` (an ``mcp`` 1.x
  ``ClientSession``);
- ``server``: a LangChain connection dict (``transport`` stdio with command/args/env/cwd,
  or streamable_http with url/headers);
- ``steps``: ``[{"tool": name, "args": {...}}, ...]``. Each result is the tool's
  structured content, or ``{"error": text}`` when the tool answered an error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return str(content)


def _structured(content: Any, artifact: Any) -> Any:
    if isinstance(artifact, dict) and artifact.get("structured_content") is not None:
        return artifact["structured_content"]
    return json.loads(_text(content))


async def _langchain(scenario: dict[str, Any]) -> dict[str, Any]:
    from langchain_core.messages import ToolMessage
    from langchain_mcp_adapters.client import MultiServerMCPClient
    from langchain_mcp_adapters.tools import load_mcp_tools

    client = MultiServerMCPClient({"memory": scenario["server"]})
    results: list[Any] = []

    async def run(tools: list[Any]) -> None:
        by_name = {tool.name: tool for tool in tools}
        for number, step in enumerate(scenario["steps"]):
            call = {"type": "tool_call", "id": f"call-{number}", "name": step["tool"]}
            try:
                message = await by_name[step["tool"]].ainvoke({**call, "args": step["args"]})
            except Exception as exc:  # a tool error: LangChain raises ToolException
                results.append({"error": _text(exc.args[0] if exc.args else exc)})
                continue
            assert isinstance(message, ToolMessage)
            if message.status == "error":
                results.append({"error": _text(message.content)})
            else:
                results.append(_structured(message.content, message.artifact))

    if scenario["client"] == "langchain-session":
        async with client.session("memory") as session:
            await run(await load_mcp_tools(session))
    else:
        await run(await client.get_tools())
    return {"results": results, "protocol": None}


async def _mcp1(scenario: dict[str, Any]) -> dict[str, Any]:
    from contextlib import AsyncExitStack

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamablehttp_client

    server = scenario["server"]
    results: list[Any] = []
    async with AsyncExitStack() as stack:
        if server["transport"] == "stdio":
            params = StdioServerParameters(
                command=server["command"], args=server["args"], env=server["env"], cwd=server["cwd"]
            )
            read, write = await stack.enter_async_context(stdio_client(params))
        else:
            read, write, _ = await stack.enter_async_context(
                streamablehttp_client(server["url"], headers=server.get("headers"))
            )
        session = await stack.enter_async_context(ClientSession(read, write))
        init = await session.initialize()
        listed = await session.list_tools()
        for step in scenario["steps"]:
            result = await session.call_tool(step["tool"], step["args"])
            if result.isError:
                results.append({"error": " ".join(getattr(c, "text", "") for c in result.content)})
            else:
                results.append(result.structuredContent)
    return {
        "results": results,
        "protocol": init.protocolVersion,
        "tools": sorted(tool.name for tool in listed.tools),
    }


def _failure(exc: BaseException) -> str:
    """The innermost messages of a failure (clients wrap them in task groups)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_failure(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def _run(scenario: dict[str, Any]) -> dict[str, Any]:
    runner = _mcp1 if scenario["client"] == "mcp1" else _langchain
    return await runner(scenario)


async def _in_order(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    return {"outcomes": [await _run(scenario) for scenario in scenarios]}


def main() -> None:
    scenario = json.loads(sys.stdin.read())
    # {"runs": [...]}: several scenarios one after the other, in one interpreter (each
    # is its own client, connections and all; only the import time is shared).
    work = _in_order(scenario["runs"]) if "runs" in scenario else _run(scenario)
    try:
        outcome = asyncio.run(work)
    except Exception as exc:  # reported to the test, which decides whether it expected it
        print(json.dumps({"error": _failure(exc)}), flush=True)
        sys.exit(3)
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
