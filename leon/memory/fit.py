"""Fit: the last step before a request is sent, so that no request exceeds the window.

Compaction is the normal way a long thread stays inside the window, but it cannot always
run: it is disabled, its circuit breaker is open, the view has fewer than
``min_messages`` messages, there is no clean place to cut, or the summary call just
failed. Then, when the request would exceed :func:`limit`, :func:`plan` decides what to
leave out of *this request* (stored history is never changed), in this order:

1. clear the oldest tool results before the newest turn (the placeholder names the size
   and the spill file, like pruning's hard clear), oldest first;
2. leave out the oldest whole turns (a turn starts at a user message that is not tool
   results, so a ``tool_use`` never loses its ``tool_result``), oldest first, skipping
   turns that hold a pinned message;
3. clear the newest turn's own tool results, oldest first.

What one request left out stays left out of the next ones (``sticky``) while the thread
is too large, and steps 1 and 2 go a little further than needed (down to
:data:`HYSTERESIS` below the limit): consecutive requests then share their prefix with
the prompt cache instead of changing an early message on every call, and a turn left out
does not come back a request later. When even all of that does not fit, :func:`plan`
says so and the caller refuses to send.

The token counts are estimates (tiktoken with a learned calibration, see
:mod:`leon.memory.count`), so the limit keeps a margin for their error: :data:`MARGIN`
of ``window − reserve_tokens`` once the calibration has learned from the API's reported
usage, :data:`MARGIN_UNCALIBRATED` before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from leon.memory.settings import MemorySettings

MARGIN = 0.05               # share of (window - reserve) kept for the estimate's error
MARGIN_UNCALIBRATED = 0.15  # ... before any call measured this model's tokenizer
HYSTERESIS = 0.10           # steps 1-2 go this share of the limit below it


def limit(s: MemorySettings, calibrated: bool) -> tuple[int, int]:
    """``(limit, margin)``: the most tokens (leon's estimate) a request may hold, and the
    margin below ``window − reserve_tokens`` it keeps for the estimate's error."""
    room = max(0, s.window - s.reserve_tokens)
    margin = int(room * (MARGIN if calibrated else MARGIN_UNCALIBRATED))
    return room - margin, margin


@dataclass(frozen=True)
class Result:
    """One tool result of a message, as fit sees it."""

    tool_use_id: str
    tokens: int          # raw tokens as the request would send it
    cleared: int         # raw tokens of its placeholder
    clearable: bool      # text, not already a placeholder, not pinned
    size: int = 0        # bytes as the request would send it
    cleared_size: int = 0


@dataclass(frozen=True)
class Item:
    """One message of the view (oldest first)."""

    id: int
    turn_start: bool     # a user message that is not tool results: a turn starts here
    pinned: bool
    other: int           # raw tokens that are not tool results (framing included)
    results: tuple[Result, ...] = ()
    size: int = 0        # bytes that are not tool results


@dataclass
class Plan:
    """What to leave out of one request."""

    cleared: list[str] = field(default_factory=list)    # tool_use_ids, in kept messages
    dropped: list[int] = field(default_factory=list)    # item indices left out
    raw: dict[str, int] = field(default_factory=dict)   # the request's raw parts after it
    estimate: int = 0
    fits: bool = True
    cleared_tokens: int = 0       # raw tokens the clearing saved (kept messages)
    dropped_tokens: int = 0       # raw tokens of the messages left out
    newest: int = 0               # estimate of the fixed parts plus the newest turn alone

    @property
    def empty(self) -> bool:
        return not self.cleared and not self.dropped


def newest_turn(items: Sequence[Item]) -> int:
    """Index of the first message of the newest turn (0 when no turn starts later)."""
    for i in range(len(items) - 1, -1, -1):
        if items[i].turn_start:
            return i
    return 0


def plan(items: Sequence[Item], base: dict[str, int], estimate: Callable[[dict[str, int]], int],
         limit_tokens: int, sticky: tuple[Iterable[int], Iterable[str]] = ((), ())) -> Plan:
    """Decide what to leave out so the request's estimate is at most ``limit_tokens``.

    ``base`` holds the raw parts no step changes (``system``, ``tools``, ``summary``,
    ``pinned``, and ``history`` for the view's own repairs); ``estimate`` turns raw parts
    into the calibrated estimate; ``sticky`` is what the previous request left out
    (message ids, tool_use_ids), left out again first. The result's ``fits`` is False
    when nothing more can be left out and the request is still too large."""
    cleared: dict[str, tuple[int, int, int]] = {}  # tid -> (item index, tokens, bytes saved)
    dropped: set[int] = set()
    history = sum(it.other for it in items)
    results = sum(r.tokens for it in items for r in it.results)
    size = sum(it.size + sum(r.size for r in it.results) for it in items)

    def raw_now() -> dict[str, int]:
        raw = dict(base)
        raw["history"] = base.get("history", 0) + history
        raw["tool_results"] = base.get("tool_results", 0) + results
        raw["bytes"] = base.get("bytes", 0) + size
        return raw

    def current() -> int:
        return estimate(raw_now())

    def clear(i: int, r: Result) -> None:
        nonlocal results, size
        if (r.clearable and r.cleared < r.tokens and r.tool_use_id not in cleared
                and i not in dropped):
            cleared[r.tool_use_id] = (i, r.tokens - r.cleared, r.size - r.cleared_size)
            results -= r.tokens - r.cleared
            size -= r.size - r.cleared_size

    def drop(start: int, end: int) -> None:
        nonlocal history, results, size
        for j in range(start, end):
            if j in dropped:
                continue
            dropped.add(j)
            history -= items[j].other
            size -= items[j].size
            for r in items[j].results:
                saved = cleared.pop(r.tool_use_id, None)
                results -= r.tokens - (saved[1] if saved else 0)
                size -= r.size - (saved[2] if saved else 0)

    target = limit_tokens - int(limit_tokens * HYSTERESIS)
    newest = newest_turn(items)
    starts = [i for i in range(newest) if items[i].turn_start] + [newest]
    if starts[0] > 0:
        starts.insert(0, 0)  # messages before the first turn start (after a summary)
    turns = [(a, b) for a, b in zip(starts, starts[1:], strict=False) if a < b]
    # 0. what the previous request left out (whole turns only, never a pinned message)
    gone, hidden = set(sticky[0]), set(sticky[1])
    for a, b in turns:
        if all(items[j].id in gone and not items[j].pinned for j in range(a, b)):
            drop(a, b)
    for i in range(newest):
        for r in items[i].results:
            if r.tool_use_id in hidden:
                clear(i, r)
    # 1. the oldest tool results before the newest turn
    for i in range(newest):
        if current() <= target:
            break
        for r in items[i].results:
            clear(i, r)
    # 2. the oldest whole turns (never the newest), skipping turns with a pinned message
    for a, b in turns:
        if current() <= target:
            break
        if not any(items[j].pinned for j in range(a, b)):
            drop(a, b)
    # 3. the newest turn's own tool results, oldest first, only as far as needed
    for i in range(newest, len(items)):
        for r in items[i].results:
            if current() <= limit_tokens:
                break
            clear(i, r)
    out = Plan(sorted(cleared, key=lambda t: (cleared[t][0], t)), sorted(dropped))
    out.raw = raw_now()
    out.estimate = estimate(out.raw)
    out.fits = out.estimate <= limit_tokens
    out.cleared_tokens = sum(saved for _, saved, _ in cleared.values())
    out.dropped_tokens = sum(items[j].other + sum(r.tokens for r in items[j].results)
                             for j in dropped)
    alone = dict(base)
    alone["history"] = base.get("history", 0) + sum(it.other for it in items[newest:])
    alone["tool_results"] = base.get("tool_results", 0) + sum(
        r.tokens for it in items[newest:] for r in it.results)
    alone["bytes"] = base.get("bytes", 0) + sum(
        it.size + sum(r.size for r in it.results) for it in items[newest:])
    out.newest = estimate(alone)
    return out


def ranges(indices: Sequence[int], ids: Sequence[int]) -> list[list[int]]:
    """Runs of consecutive ``indices`` (sorted) as ``[first id, last id]`` pairs of the
    messages they point at in ``ids`` (for events: which messages were left out)."""
    out: list[list[int]] = []
    last = None
    for i in indices:
        if out and last == i - 1:
            out[-1][1] = ids[i]
        else:
            out.append([ids[i], ids[i]])
        last = i
    return out
