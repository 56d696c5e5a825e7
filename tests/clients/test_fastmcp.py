"""fastmcp's client (pinned in the dev extras) in its default mode: it negotiates the
stateless 2026-07-28 era against our 2.x server, over streamable HTTP."""

from __future__ import annotations

from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.clients.conftest import ALICE, bearer
from tests.server.e2e import RunningServer

STATELESS = "2026-07-28"


def client(running: RunningServer, headers: dict[str, str]) -> Client[Any]:
    return Client(StreamableHttpTransport(running.url + "/mcp", headers=headers))


async def structured(c: Client[Any], tool: str, **args: Any) -> dict[str, Any]:
    result = await c.call_tool(tool, args)
    assert result.structured_content is not None
    return dict(result.structured_content)


async def test_default_mode_negotiates_the_stateless_era_and_threads_a_handle(
    http_server: RunningServer,
) -> None:
    async with client(http_server, bearer(ALICE)) as c:
        assert c.protocol_version == STATELESS
        handle = (await structured(c, "session_open"))["session"]
        await structured(c, "memory_set", key="plan", value=[1, 2], session=handle)
        read = await structured(c, "memory_get", key="plan", session=handle)
        assert read["found"] is True and read["value"] == [1, 2]
