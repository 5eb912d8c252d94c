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
    """A call failed in a retryable way; the provider waits ``delay`` s and tries again."""

    attempt: int
    delay: float
    reason: str
    status: int | None = None


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
