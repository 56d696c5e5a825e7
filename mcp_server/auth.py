"""Bearer tokens mapped to principals, and who is calling right now.

A principal owns sessions: a session opened by one principal is invisible to every
other. With auth on, the principal is the name a token maps to; with auth off it is
``anonymous`` on HTTP and ``local`` on stdio (the parent process).
"""

from __future__ import annotations

import hashlib
import re

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from mcp_server.errors import ConfigurationError
from mcp_server.settings import Settings

ANONYMOUS_PRINCIPAL = "anonymous"
PRINCIPAL_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,128}$")
MIN_TOKEN_LENGTH = 16


class AuthConfigError(ConfigurationError):
    """The token configuration cannot be used; the message names the line, never a token."""


def parse_tokens(text: str, source: str) -> dict[str, str]:
    """Parse ``token=principal`` pairs separated by commas or newlines (``#`` comments).

    Raises:
        AuthConfigError: a pair is malformed, a token is too short or repeated, or a
            principal name has characters outside ``[A-Za-z0-9_.@:-]``.
    """
    tokens: dict[str, str] = {}
    entries = [part for line in text.splitlines() for part in line.split("#", 1)[0].split(",")]
    for number, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry:
            continue
        token, sep, principal = entry.rpartition("=")
        token, principal = token.strip(), principal.strip()
        if not sep or not token:
            raise AuthConfigError(f"{source}: entry {number} is not token=principal")
        if len(token) < MIN_TOKEN_LENGTH:
            raise AuthConfigError(
                f"{source}: entry {number} has a token shorter than {MIN_TOKEN_LENGTH} characters"
            )
        if not PRINCIPAL_RE.match(principal):
            raise AuthConfigError(f"{source}: entry {number} has an invalid principal name")
        if token in tokens:
            raise AuthConfigError(f"{source}: entry {number} repeats a token")
        tokens[token] = principal
    return tokens


def load_tokens(settings: Settings) -> dict[str, str]:
    """Tokens from ``WM_AUTH_TOKENS`` and ``WM_AUTH_TOKENS_FILE``; empty when auth is off."""
    tokens: dict[str, str] = {}
    if settings.auth_tokens is not None:
        tokens |= parse_tokens(settings.auth_tokens.get_secret_value(), "WM_AUTH_TOKENS")
    if settings.auth_tokens_file is not None:
        try:
            text = settings.auth_tokens_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise AuthConfigError(f"cannot read the auth tokens file: {exc.strerror}") from exc
        tokens |= parse_tokens(text, str(settings.auth_tokens_file))
    return tokens


class StaticTokenVerifier:
    """The SDK ``TokenVerifier`` for a fixed token -> principal table.

    Tokens are kept only as SHA-256 digests, so the lookup time says nothing about
    how much of a guessed token was right.
    """

    def __init__(self, tokens: dict[str, str]) -> None:
        self._principals = {_digest(token): principal for token, principal in tokens.items()}

    async def verify_token(self, token: str) -> AccessToken | None:
        principal = self._principals.get(_digest(token))
        if principal is None:
            return None
        return AccessToken(token="", client_id=principal, scopes=[], subject=principal)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def current_principal(default: str) -> str:
    """The principal of the request being served: the bearer token's, else ``default``."""
    token = get_access_token()
    return token.client_id if token is not None else default
