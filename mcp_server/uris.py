"""Resource URIs: the caller's own session, any session by handle, server health."""

from __future__ import annotations

SESSION_PREFIX = "memory://session/"
CURRENT_SESSION_URI = SESSION_PREFIX + "current"
SESSION_TEMPLATE = SESSION_PREFIX + "{session}"
HEALTH_URI = "memory://health"
CURRENT = "current"


def session_uri(session_id: str) -> str:
    return SESSION_PREFIX + session_id
