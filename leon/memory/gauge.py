"""The context gauge: what the next request would send, by part. The TUI draws exactly
this; `leon run --json` and `leon stats` print it. Computed by the memory layer
(:func:`leon.memory.context.ContextManager.gauge`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Gauge:
    """Token figures for the next request."""

    system: int                 # system prompt
    tools: int                  # tool schemas
    summary: int                # the active compaction summary (0 if none)
    history: int                # user and assistant messages (text, tool calls)
    tool_results: int           # tool results after pruning
    pruning_saved: int          # tokens pruning removes from tool results in this request
    window: int                 # the model's context window
    reserve: int                # reserve_tokens kept free for the reply
    threshold: int              # compaction fires above this many tokens
    measured: bool              # True: the API's last reported usage; False: an estimate
    calibration: float = 1.0    # factor applied to tiktoken counts (learned from the API)
    messages: int = 0           # messages in the view
    compaction_enabled: bool = True
    compaction_blocked: bool = False  # the circuit breaker tripped for this thread
    parts: dict[str, int] = field(default_factory=dict)  # free-form extras (pinned, ...)
    limit: int = 0              # the most a request may hold (window - reserve - margin)
    # What the next send does about the fill: "ok" (below the threshold), "compacts",
    # "fits" (over the threshold, compaction will not run, the request still fits),
    # "leaves_out" (the request builder clears old tool results / leaves out the oldest
    # turns), "too_large" (not even the newest turn fits: the send is refused).
    status: str = "ok"
    why: str = ""               # why compaction will not run ("" when it would)
    note: str = ""              # one line for a person: what happens next and why

    @property
    def total(self) -> int:
        return self.system + self.tools + self.summary + self.history + self.tool_results

    @property
    def fraction(self) -> float:
        """How full the window is (0..1+)."""
        return self.total / self.window if self.window else 0.0

    @property
    def until_compaction(self) -> int:
        """Tokens left before compaction fires (0 when over the threshold)."""
        return max(0, self.threshold - self.total)

    def to_json(self) -> dict[str, object]:
        """Every field plus the derived figures (for ``leon run --json``)."""
        from dataclasses import asdict

        data: dict[str, object] = asdict(self)
        data.update(total=self.total, fraction=round(self.fraction, 4),
                    until_compaction=self.until_compaction)
        return data
