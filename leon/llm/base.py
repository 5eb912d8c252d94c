"""What every model provider speaks: requests, stream events, errors.

A provider turns one :class:`ModelRequest` (already valid for the Messages API)
into an async stream of events that ends with :class:`Completed`. It retries
what is worth retrying *before* the first event reaches the caller and reports
each retry as a :class:`Retrying` event; once output has started, a broken
stream raises :class:`StreamInterrupted` so the caller keeps the partial reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class Usage:
    """Token usage the API reported for one call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Everything the request cost on the input side, cached or not."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass
class ModelRequest:
    """One call to the model. ``messages`` must already be valid for the API."""

    model: str
    system: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    max_tokens: int = 8192


@dataclass
class ModelResponse:
    """A finished assistant message."""

    content: list[dict[str, Any]]
    stop_reason: str
    usage: Usage
    model: str
    latency_ms: float = 0.0
    retries: int = 0


@dataclass(frozen=True)
class TextDelta:
    """A fragment of assistant text, in order."""

    text: str


@dataclass(frozen=True)
class ToolUseStarted:
    """The model began a tool call (its input is still streaming)."""

    id: str
    name: str


@dataclass(frozen=True)
class Retrying:
    """A call failed in a retryable way; the provider waits ``delay`` s and tries again.
    ``attempt`` counts the retries (1 = the first retry, which is the call's second
    attempt); ``left`` is the time left in the call's total deadline, if it has one."""

    attempt: int
    delay: float
    reason: str
    status: int | None = None
    left: float | None = None


@dataclass(frozen=True)
class Limits:
    """How long a call may take, in seconds. ``connect``: to open a connection;
    ``first_event``: from sending the request to the first event of the reply;
    ``idle``: between two events of a reply; ``total``: the deadline within which failed
    attempts are retried (a reply that keeps streaming is never cut by it)."""

    connect: float = 10.0
    first_event: float = 60.0
    idle: float = 60.0
    total: float = 300.0


def auth_description(*, key: bool, token: bool, key_source: str = "ANTHROPIC_API_KEY",
                     token_source: str = "ANTHROPIC_AUTH_TOKEN") -> str:
    """Which headers carry which credential, by name only (for errors and `leon doctor`):
    the key goes in ``x-api-key`` and, unless a gateway token takes it, in
    ``Authorization: Bearer``; the token always in ``Authorization: Bearer``."""
    if key and token:
        return (f"x-api-key from {key_source} and Authorization: Bearer from {token_source}")
    if key:
        return f"x-api-key and Authorization: Bearer, both from {key_source}"
    if token:
        return f"Authorization: Bearer from {token_source}"
    return "no credentials"


def safe_url(url: str) -> str:
    """``url`` without credentials, query or fragment, and without control characters:
    fit to print (it comes from the environment)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
        out = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
    except ValueError:
        return "(the configured base URL)"
    return "".join(c for c in out if c.isprintable())


def duration_text(seconds: float) -> str:
    """``0.5 s``, ``4 s``, ``60 s``, ``3 m 40 s``: a wait as a person reads it."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{round(seconds, 1):g} s"
    if seconds < 100:
        return f"{round(seconds)} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} m {rest} s" if rest else f"{minutes} m"


@dataclass(frozen=True)
class Completed:
    """The last event of a successful stream."""

    response: ModelResponse


StreamEvent = TextDelta | ToolUseStarted | Retrying | Completed


class ProviderError(Exception):
    """A call that failed for good. ``message`` is fit to show a user in one line."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


class StreamInterrupted(ProviderError):
    """The stream broke after output had started. ``partial`` holds the complete blocks
    received so far (text blocks, possibly cut short; tool_use blocks whose input never
    finished are dropped)."""

    def __init__(self, message: str, partial: list[dict[str, Any]], *, status: int | None = None):
        super().__init__(message, status=status, retryable=False)
        self.partial = partial


class Provider(Protocol):
    """A source of assistant messages."""

    name: str
    is_demo: bool

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream one reply. Ends with :class:`Completed`, or raises :class:`ProviderError`."""
        ...
