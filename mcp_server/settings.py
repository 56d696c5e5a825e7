"""Server configuration: every option from ``WM_*`` environment variables or the CLI.

One flat ``Settings`` model (pydantic-settings). The CLI builds its flags from the
same fields, so a new option appears in both places at once.
"""

from __future__ import annotations

import ipaddress
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mcp_server.tool_groups import ALWAYS, select_tools
from memory_core import Limits, StoreConfig
from memory_core.errors import InvalidArgumentError
from memory_core.keys import validate_session_name

TRANSPORT_ALIASES = {
    "stdio": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamable_http": "http",
    "streamablehttp": "http",
    "sse": "http",
}
"""What people type for a transport (any case) -> the transport that serves it: the HTTP
transport serves streamable HTTP and SSE side by side."""

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def _limit(name: str) -> Any:
    """The default of a ``memory_core.Limits`` field, so the two never drift."""
    return Limits.model_fields[name].default


def _store(name: str) -> Any:
    return StoreConfig.model_fields[name].default


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Configuration of one server process.

    Field names map to ``WM_<NAME>`` environment variables and ``--<name>`` flags.
    """

    model_config = SettingsConfigDict(env_prefix="WM_", extra="ignore", frozen=True)

    # transport ------------------------------------------------------------------------
    transport: Literal["stdio", "http"] = Field(
        "stdio",
        description="stdio (one client, the parent process) or http (streamable HTTP on /mcp "
        "and SSE on /sse; also accepted as streamable-http or sse)",
    )
    host: str = Field("127.0.0.1", description="HTTP bind address")
    http_stack: Literal["fast", "pure"] = Field(
        "fast",
        description="HTTP event loop and parser: fast (uvloop and httptools, falling back to "
        "pure with a warning where they cannot load) or pure (asyncio and h11)",
    )
    port: int = Field(8765, ge=0, le=65535, description="HTTP port")

    # storage --------------------------------------------------------------------------
    redis_url: str | None = Field(
        None,
        description="redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL; "
        "unset keeps memory in-process",
    )
    fallback: bool | None = Field(
        None,
        description="serve from memory while Redis is unreachable (unset: on for a single "
        "Redis, off for cluster/sentinel)",
    )
    subscription_bus: Literal["auto", "memory", "redis"] = Field(
        "auto",
        description="where subscription notifications fan out: redis (pub/sub, across "
        "replicas), memory (this process only); auto: redis for HTTP with a Redis URL",
    )
    require_noeviction: bool = Field(
        False,
        description="refuse to start when Redis's maxmemory-policy evicts keys (any policy "
        "but noeviction); unset: start and log a warning",
    )
    connect_timeout: float = Field(0.25, gt=0, description="Redis connect timeout, seconds")
    command_timeout: float = Field(0.5, gt=0, description="Redis command timeout, seconds")
    key_prefix: str = Field(
        _store("key_prefix"), pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Redis key prefix"
    )
    lease_seconds: int = Field(_store("lease_seconds"), ge=1, description="idle lease of a session")
    max_lease_seconds: int = Field(
        _store("max_lease_seconds"), ge=1, description="longest lease session_open may ask for"
    )
    checkpoint_retention_seconds: int = Field(
        _store("checkpoint_retention_seconds"),
        ge=1,
        description="how long checkpoints outlive their session",
    )

    # limits (see memory_core.Limits) --------------------------------------------------
    max_keys: int = Field(_limit("max_keys"), ge=1, description="variables per session")
    max_value_bytes: int = Field(_limit("max_value_bytes"), ge=16, description="bytes/value")
    max_session_bytes: int = Field(
        _limit("max_session_bytes"), ge=1024, description="bytes per session (all data)"
    )
    max_scratchpad_entries: int = Field(
        _limit("max_scratchpad_entries"), ge=1, description="scratchpad notes per session"
    )
    max_scratchpad_entry_bytes: int = Field(
        _limit("max_scratchpad_entry_bytes"), ge=16, description="bytes per scratchpad note"
    )
    max_checkpoints: int = Field(
        _limit("max_checkpoints"), ge=1, description="checkpoints kept per session"
    )
    max_sessions: int = Field(_limit("max_sessions"), ge=1, description="open sessions/process")
    max_sessions_per_principal: int = Field(
        _limit("max_sessions_per_principal"),
        ge=1,
        description="open sessions one principal (bearer token identity) may hold per process",
    )
    max_retained_bytes_per_principal: int = Field(
        _limit("max_retained_bytes_per_principal"),
        ge=1024,
        description="checkpoint bytes one principal may hold per process (open and closed "
        "sessions alike, until each expires); past it checkpoint_create is refused",
    )
    max_retained_bytes: int = Field(
        _limit("max_retained_bytes"),
        ge=1024,
        description="checkpoint bytes held per process, every principal together",
    )
    max_key_length: int = Field(
        _limit("max_key_length"), ge=1, le=4096, description="characters per key"
    )
    max_ttl_seconds: int = Field(_limit("max_ttl_seconds"), ge=1, description="largest key TTL")
    max_task_state_bytes: int = Field(
        _limit("max_task_state_bytes"), ge=256, description="bytes of the task state"
    )

    # tool output ------------------------------------------------------------------------
    page_size: int = Field(100, ge=1, description="default entries per page of a listing")
    max_page_size: int = Field(500, ge=1, description="largest `limit` a listing accepts")
    max_page_bytes: int = Field(
        64 * 1024, ge=1024, description="soft cap on the serialized size of one page"
    )

    # logging ----------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="stderr log level; DEBUG adds one line per tool call"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="stderr log lines as text, or one JSON object per line"
    )
    access_log: bool = Field(
        False, description="log one line per HTTP request (method, path, status, ms, principal)"
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="bearer token a Prometheus scraper sends for /metrics; needed when "
        "auth tokens are set (/metrics is open only on a server without auth)",
    )

    # HTTP security --------------------------------------------------------------------
    auth_tokens: SecretStr | None = Field(
        None, description="bearer tokens as token=principal pairs, comma separated"
    )
    auth_tokens_file: Path | None = Field(
        None, description="file with one token=principal per line (# comments)"
    )
    allow_insecure_remote: bool = Field(
        False, description="serve a non-loopback address without bearer tokens"
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Host header values accepted (host:port, host:*)"
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origin header values accepted (scheme://host:port)"
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="largest request: an HTTP body, or a stdio line (a longer line is "
        "skipped and answered with an error)",
    )
    replica_id: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_-]{0,64}$",
        description="this replica's name in SSE message URLs (/messages/<id>/), so a load "
        "balancer can route SSE posts to the replica that holds the stream; set, it also "
        "makes fallback default to off",
    )
    http_idle_timeout: float = Field(
        1800.0, gt=0, description="seconds before an idle streamable HTTP session is closed"
    )
    http_request_timeout: float = Field(
        10.0,
        gt=0,
        description="seconds a client has to send a request's line and headers, and again "
        "its body; a connection that takes longer is closed (headers) or answered 408 (body)",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="HTTP connections (and requests in progress) per process; past it a "
        "request is answered 503",
    )
    stream_stall_seconds: float = Field(
        10.0,
        gt=0,
        description="seconds an event stream (SSE, the GET stream, subscriptions/listen) may "
        "go unread while the server has output for it; then the connection is closed",
    )
    max_pending_answers: int = Field(
        64,
        ge=1,
        description="answers an SSE connection's client may leave unread on its stream; past "
        "it a POST is answered 429 and changes nothing",
    )

    # sessions ---------------------------------------------------------------------------
    session_name: str | None = Field(
        None,
        description="stdio: make the process session the named one, resumed at start and "
        "kept after the process ends (it lives on its idle lease)",
    )
    default_session: Literal["on", "off"] = Field(
        "on",
        description="stateless (2026-07-28) requests with neither a session handle nor a "
        "name use the principal's default session; off: they get SESSION_REQUIRED",
    )

    # tools ------------------------------------------------------------------------------
    tools: str = Field(
        "core",
        description="tools to list: core, all, or groups and tool names separated by commas; "
        + ", ".join(ALWAYS)
        + " are always listed",
    )

    # benchmarks -------------------------------------------------------------------------
    enable_echo_tool: bool = Field(False, description="register an `echo` tool (benchmarks)")

    @field_validator("transport", mode="before")
    @classmethod
    def _transport_alias(cls, value: object) -> object:
        if isinstance(value, str):
            return TRANSPORT_ALIASES.get(value.strip().lower(), value)
        return value

    @field_validator("session_name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                validate_session_name(value)
            except InvalidArgumentError as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator(
        "log_level",
        "log_format",
        "subscription_bus",
        "default_session",
        "http_stack",
        mode="before",
    )
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        """``debug`` is ``DEBUG``: a choice matches whatever its case."""
        if isinstance(value, str) and info.field_name is not None:
            for choice in typing.get_args(cls.model_fields[info.field_name].annotation):
                if value.strip().lower() == str(choice).lower():
                    return choice
        return value

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: str) -> str:
        select_tools(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    # Rules across settings name them as ``{field}``; the CLI writes each as the user set
    # it (``--page-size 600``, ``WM_MAX_PAGE_SIZE=500``).
    @model_validator(mode="after")
    def _check_pages(self) -> Settings:
        if self.page_size > self.max_page_size:
            raise ValueError("{page_size} must not exceed {max_page_size}")
        return self

    @model_validator(mode="after")
    def _check_bus(self) -> Settings:
        if self.subscription_bus == "redis" and not self.redis_url:
            raise ValueError("{subscription_bus} needs {redis_url}")
        return self

    # derived --------------------------------------------------------------------------
    @property
    def store_url(self) -> str:
        return self.redis_url or "memory://"

    @property
    def bus_kind(self) -> Literal["memory", "redis"]:
        """The subscription bus to build. ``auto`` means redis for HTTP with a Redis store
        (replicas share sessions); a stdio process serves one client, so it stays local."""
        if self.subscription_bus == "auto":
            return "redis" if self.redis_url and self.transport == "http" else "memory"
        return self.subscription_bus

    @property
    def enabled_tools(self) -> tuple[str, ...]:
        return select_tools(self.tools)

    def limits(self) -> Limits:
        return Limits(**{name: getattr(self, name) for name in Limits.model_fields})

    def store_config(self) -> StoreConfig:
        return StoreConfig(
            lease_seconds=self.lease_seconds,
            max_lease_seconds=self.max_lease_seconds,
            checkpoint_retention_seconds=self.checkpoint_retention_seconds,
            key_prefix=self.key_prefix,
            require_noeviction=self.require_noeviction,
            limits=self.limits(),
        )
