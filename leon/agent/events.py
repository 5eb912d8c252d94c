"""What the turn loop reports while it works, as past-tense facts. The CLI prints them
(``--json`` as lines of JSON), the TUI draws them; neither reaches into the loop."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class AgentEvent:
    """Base of every event; ``kind`` names it in JSON output."""

    kind: str = field(init=False, default="event")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind
        return data


@dataclass
class UserMessageStored(AgentEvent):
    """The user's message is safely in the database (before the model is called)."""

    message_id: int
    checkpoint_id: int
    text: str
    resent: bool = False  # an unsent message sent again: nothing new was stored
    kind: str = field(init=False, default="user_message")


@dataclass
class TextStreamed(AgentEvent):
    """A fragment of the reply arrived."""

    text: str
    kind: str = field(init=False, default="text")


@dataclass
class ToolCallStarted(AgentEvent):
    """The model asked for a tool; it is about to run."""

    tool_use_id: str
    name: str
    input: dict[str, Any]
    kind: str = field(init=False, default="tool_call")


@dataclass
class ToolCallFinished(AgentEvent):
    """A tool returned; ``output`` is what the model will see."""

    tool_use_id: str
    name: str
    is_error: bool
    output: str
    bytes: int
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = field(init=False, default="tool_result")


@dataclass
class MessageStored(AgentEvent):
    """A reply or a set of tool results was stored with a checkpoint."""

    message_id: int
    checkpoint_id: int
    role: str
    status: str
    stop_reason: str | None = None  # set when the reply ended short (see ReplyStopped)
    kind: str = field(init=False, default="message_stored")


@dataclass
class WaitingForThread(AgentEvent):
    """Another leon (``holder``: "pid N") is answering on this thread; this turn waits
    for it, up to ``limit`` seconds, before it stores anything."""

    thread_id: str
    holder: str
    limit: float
    kind: str = field(init=False, default="waiting")

    @property
    def text(self) -> str:
        return (f"waiting for the other leon ({self.holder}) on this thread "
                f"(up to {self.limit_text})…")

    @property
    def limit_text(self) -> str:
        """How long it waits at most, as a person reads it ("10 min", "30 s")."""
        return _duration(self.limit)


@dataclass
class BranchReloaded(AgentEvent):
    """The thread changed in another process (its turns, a rollback, a reply left by a
    leon that died) and the agent read it again before this turn: redraw it."""

    thread_id: str
    kind: str = field(init=False, default="branch_reloaded")


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


@dataclass
class Retried(AgentEvent):
    """The API refused for now (rate limit, overload, dropped connection); retrying."""

    attempt: int
    delay: float
    reason: str
    status: int | None = None
    left: float | None = None  # seconds left in the call's total deadline
    kind: str = field(init=False, default="retry")


@dataclass
class UsageRecorded(AgentEvent):
    """Tokens the API reported for one call."""

    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    latency_ms: float
    estimated_tokens: int | None = None
    kind: str = field(init=False, default="usage")


@dataclass
class MemoryEvent(AgentEvent):
    """Pruning, compaction, spill, guard: ``event`` names it, ``data`` has the numbers."""

    event: str
    data: dict[str, Any]
    kind: str = field(init=False, default="memory")


@dataclass
class ReplyInterrupted(AgentEvent):
    """The reply was cut off; what arrived is kept, marked interrupted."""

    message_id: int
    reason: str
    kind: str = field(init=False, default="interrupted")


@dataclass
class ReplyStopped(AgentEvent):
    """The API ended the reply short of an answer: cut off at the output limit
    (``max_tokens``) or by the context window, declined (``refusal``), or paused. The
    reply is stored with its stop reason; ``message`` says what happened in one line;
    ``not_run`` names the tool calls it asked for that were answered with an error
    instead of being run."""

    message_id: int
    stop_reason: str
    message: str
    not_run: list[str] = field(default_factory=list)
    kind: str = field(init=False, default="reply_stopped")


@dataclass
class TurnFinished(AgentEvent):
    """The model ended its turn."""

    stop_reason: str
    text: str
    kind: str = field(init=False, default="turn_finished")


@dataclass
class TurnFailed(AgentEvent):
    """The turn stopped on an error; the user's message is kept."""

    error: str
    status: int | None = None
    kind: str = field(init=False, default="error")
