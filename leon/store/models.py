"""Plain dataclasses the store hands out. Nothing above the store sees a row or SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

THREAD_KINDS = ("general", "scoped", "subagent", "oneshot")
THREAD_STATUSES = ("active", "completed", "archived")
EPHEMERAL_KINDS = ("subagent", "oneshot")


@dataclass
class Thread:
    id: str
    title: str
    kind: str
    status: str
    parent_id: str | None
    name: str | None
    day: str | None
    agent: str
    model: str
    system_hash: str | None
    tools_hash: str | None
    head_checkpoint_id: int | None
    message_count: int
    created_at: float
    updated_at: float
    completed_at: float | None = None
    skills_hash: str | None = None     # blobs.hash of the skills snapshot it used
    guard_cache_creation: int = 0      # cache guard: cache-creation tokens of the last call
    guard_rate_strikes: int = 0        # cache guard: rate-limited calls in a row

    @property
    def display_title(self) -> str:
        return self.title or self.name or f"{self.kind} {self.id}"


# Stop reasons a stored reply is marked with, and the words for the mark.
STOP_MARKS = {
    "max_tokens": "cut off at the output limit",
    "model_context_window_exceeded": "cut off: the context window is full",
    "refusal": "declined",
    "pause_turn": "paused by the API",
}


@dataclass
class Message:
    id: int
    thread_id: str
    parent_id: int | None
    role: str
    content: list[dict[str, Any]]
    status: str
    tokens: int | None
    pinned: bool
    created_at: float
    unsent: bool = False       # a user message whose call failed before any reply came
    model: str | None = None   # the model that wrote an assistant reply
    # Why the API ended this reply, when it was not an ordinary end (see schema.py):
    # 'max_tokens', 'model_context_window_exceeded', 'refusal', 'pause_turn'; else None.
    stop_reason: str | None = None

    @property
    def stop_mark(self) -> str | None:
        """How the transcript, ``threads show`` and exports mark a reply that ended short
        ("cut off at the output limit", "declined"), or None."""
        return STOP_MARKS.get(self.stop_reason or "")

    @property
    def text(self) -> str:
        """The message's text blocks joined (tool blocks left out)."""
        return "".join(b.get("text", "") for b in self.content if b.get("type") == "text")

    def to_api(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}


@dataclass
class Checkpoint:
    id: int
    thread_id: str
    parent_id: int | None
    message_id: int | None
    summary_id: int | None
    kind: str
    label: str | None
    created_at: float


@dataclass
class Summary:
    id: int
    thread_id: str
    upto_message_id: int
    previous_id: int | None
    text: str
    model: str
    messages_replaced: int
    tokens_before: int
    tokens_after: int
    created_at: float


@dataclass
class Event:
    id: int
    thread_id: str | None
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass
class UsageRecord:
    id: int
    thread_id: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    estimated_tokens: int | None
    latency_ms: float
    retries: int
    created_at: float
