"""The memory middleware's settings: every key it reads, with its default and range, and
the rules across keys. Importing this module registers them in :data:`leon.config.KEYS`
(``leon.config`` imports it at the bottom, so a ``config.toml`` may set them).

Each key is read afresh before every model call (:class:`MemorySettings.of`), so a change
made through :meth:`leon.config.Settings.set` applies to the next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leon.config import Key, register, register_rule

# Context windows by model-name prefix (longest prefix wins); `memory.context_window`
# overrides them. Claude models have 200k tokens unless a beta header says otherwise.
CONTEXT_WINDOWS: dict[str, int] = {
    "claude-": 200_000,
    "demo": 200_000,
}
DEFAULT_WINDOW = 200_000

P = "memory.pruning."
C = "memory.compaction."

register(
    Key("memory.context_window", int, 0,
        "Context window in tokens; 0 uses the model's built-in size (200000 for Claude).",
        0, 2_000_000),
    Key(P + "soft_trim_chars", int, 3000,
        "Older tool results longer than this keep their head and tail, with a marker "
        "saying how much was cut.", 200, 1_000_000),
    Key(P + "hard_clear_threshold", int, 10000,
        "Older tool results longer than this are replaced by a placeholder naming the size "
        "and the spill file.", 500, 10_000_000),
    Key(P + "protect_recent", int, 3,
        "The newest tool results that are never trimmed or cleared.", 0, 1000),
    Key(P + "trim_tool_results", bool, True,
        "Trim and clear older tool results in the request (history is never changed)."),
    Key(P + "min_prune_tokens", int, 5000,
        "New trimming is applied in batches that free at least this many tokens, so the "
        "prompt cache keeps its prefix between batches.", 0, 1_000_000),
    Key(C + "enabled", bool, True, "Summarise old turns automatically when the context fills."),
    Key(C + "trigger_ratio", float, 0.70,
        "Compact when the request exceeds this share of (window - reserve_tokens).", 0.1, 0.95),
    Key(C + "min_messages", int, 20,
        "Never compact a view with fewer messages than this.", 2, 100_000),
    Key(C + "reserve_tokens", int, 16384,
        "Tokens kept free for the reply and tool results.", 0, 1_000_000),
    Key(C + "keep_recent_tokens", int, 20000,
        "The newest turns, about this many tokens, are kept verbatim; older ones are "
        "summarised.", 0, 1_000_000),
    Key("memory.spill.threshold_chars", int, 10000,
        "Tool output longer than this is saved to a file; the model sees a preview, the "
        "size and the path. Never above memory.pruning.hard_clear_threshold.", 500, 10_000_000),
)


def _spill_rule(v: dict[str, Any]) -> str | None:
    spill, hard = v.get("memory.spill.threshold_chars"), v.get(P + "hard_clear_threshold")
    if spill is not None and hard is not None and spill > hard:
        return (f"'memory.spill.threshold_chars' ({spill}) must not be above "
                f"'memory.pruning.hard_clear_threshold' ({hard}): output cleared from the "
                "context must have been saved to a spill file the model can read back. "
                "Raise the clear threshold first, or choose a lower spill threshold.")
    return None


def _trim_rule(v: dict[str, Any]) -> str | None:
    soft, hard = v.get(P + "soft_trim_chars"), v.get(P + "hard_clear_threshold")
    if soft is not None and hard is not None and soft > hard:
        return (f"'memory.pruning.soft_trim_chars' ({soft}) must not be above "
                f"'memory.pruning.hard_clear_threshold' ({hard}): results are trimmed "
                "before they are cleared.")
    return None


def _window_rule(v: dict[str, Any]) -> str | None:
    window = v.get("memory.context_window") or DEFAULT_WINDOW
    reserve = v.get(C + "reserve_tokens", 0)
    keep = v.get(C + "keep_recent_tokens", 0)
    ratio = v.get(C + "trigger_ratio", 0.7)
    if window <= reserve:
        return (f"'memory.context_window' ({window}) must be larger than "
                f"'memory.compaction.reserve_tokens' ({reserve}).")
    threshold = int(ratio * (window - reserve))
    if keep >= threshold:
        return (f"'memory.compaction.keep_recent_tokens' ({keep}) must be below the compaction "
                f"threshold ({threshold} = trigger_ratio x (context_window - reserve_tokens)), "
                "or every request would be compacted again.")
    return None


for _rule in (_spill_rule, _trim_rule, _window_rule):
    register_rule(_rule)


def context_window(model: str, override: int = 0) -> int:
    """The window for ``model``: the override when set, else the built-in table."""
    if override:
        return override
    best = ""
    for prefix in CONTEXT_WINDOWS:
        if model.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return CONTEXT_WINDOWS[best] if best else DEFAULT_WINDOW


@dataclass(frozen=True)
class MemorySettings:
    """A snapshot of the memory keys, taken before each model call."""

    window: int
    soft_trim_chars: int
    hard_clear_threshold: int
    protect_recent: int
    trim_tool_results: bool
    min_prune_tokens: int
    compaction_enabled: bool
    trigger_ratio: float
    min_messages: int
    reserve_tokens: int
    keep_recent_tokens: int
    spill_threshold_chars: int

    @classmethod
    def of(cls, settings: Any, model: str) -> MemorySettings:
        """Read every key now (``settings`` is a :class:`leon.config.Settings`)."""
        return cls(
            window=context_window(model, settings["memory.context_window"]),
            soft_trim_chars=settings[P + "soft_trim_chars"],
            hard_clear_threshold=settings[P + "hard_clear_threshold"],
            protect_recent=settings[P + "protect_recent"],
            trim_tool_results=settings[P + "trim_tool_results"],
            min_prune_tokens=settings[P + "min_prune_tokens"],
            compaction_enabled=settings[C + "enabled"],
            trigger_ratio=settings[C + "trigger_ratio"],
            min_messages=settings[C + "min_messages"],
            reserve_tokens=settings[C + "reserve_tokens"],
            keep_recent_tokens=settings[C + "keep_recent_tokens"],
            spill_threshold_chars=settings["memory.spill.threshold_chars"],
        )

    @property
    def threshold(self) -> int:
        """Compaction fires when the request's estimate is above this many tokens."""
        return int(self.trigger_ratio * max(0, self.window - self.reserve_tokens))

    @property
    def prune_signature(self) -> tuple[int, int, bool]:
        """The settings a pruned result's text depends on: when they change, earlier
        pruning decisions are re-made."""
        return (self.soft_trim_chars, self.hard_clear_threshold, self.trim_tool_results)
