"""Pruning: shorten old tool results in the request, never in stored history.

* A result longer than ``soft_trim_chars`` keeps its head and tail around a marker that
  says how much was cut (and where the full output is, when it was spilled).
* A result longer than ``hard_clear_threshold`` is replaced by a placeholder naming its
  size and its spill file. A spilled result is measured by its full output, not by the
  preview stored in its place.
* The newest ``protect_recent`` results, and results in pinned messages, are untouched.

Pruning is deterministic (the same result and settings give the same text) and
idempotent (pruned text is never pruned again). It is cache-aware: :func:`plan` keeps
every earlier decision exactly as it was and adds new ones only in batches that free at
least ``min_prune_tokens``, so consecutive requests share their prefix with the prompt
cache instead of changing an early message on every turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from leon.memory.count import result_text
from leon.memory.settings import MemorySettings

_TRIM_MARK = re.compile(r"\n\[… [\d,]+ of [\d,]+ characters cut here to save context")
CLEARED_PREFIX = "[tool output cleared from the context to save space: "


@dataclass(frozen=True)
class ResultRef:
    """One tool result of the view, as pruning sees it."""

    tool_use_id: str
    text: str | None            # its stored text (None: not text, never pruned)
    chars: int                  # size of the full output (spilled: the file's)
    spill_path: str | None = None
    protected: bool = False     # among the newest protect_recent results
    pinned: bool = False        # in a pinned message


@dataclass(frozen=True)
class Pruned:
    """What one result is replaced by in the request."""

    kind: str                   # "trim" | "clear"
    text: str
    chars: int                  # size of the full output


def is_pruned(text: str) -> bool:
    return text.startswith(CLEARED_PREFIX) or _TRIM_MARK.search(text) is not None


def trim(text: str, keep: int, chars: int | None = None, spill_path: str | None = None) -> str:
    """Head (two thirds of ``keep``) and tail of ``text`` around a marker; cuts fall on
    line breaks when one is near, so lines stay whole."""
    chars = len(text) if chars is None else chars
    head_n = keep * 2 // 3
    tail_n = keep - head_n
    head = text[:head_n]
    nl = head.rfind("\n")
    if nl >= head_n * 4 // 5:
        head = head[: nl + 1]
    tail = text[len(text) - tail_n:] if tail_n else ""
    nl = tail.find("\n")
    if 0 <= nl <= tail_n // 5:
        tail = tail[nl + 1:]
    cut = len(text) - len(head) - len(tail)
    where = f"; the full output is in {spill_path}" if spill_path else ""
    marker = f"[… {cut:,} of {chars:,} characters cut here to save context{where} …]\n"
    return head + ("" if head.endswith("\n") else "\n") + marker + tail


def placeholder(chars: int, spill_path: str | None) -> str:
    """What a cleared result becomes."""
    if spill_path:
        return (f"{CLEARED_PREFIX}{chars:,} characters. The full output is saved in "
                f"{spill_path}: read it with read_file (offset/limit) or search it with grep.]")
    return (f"{CLEARED_PREFIX}{chars:,} characters. It was not saved to a file; run the "
            "tool again if you need it.]")


def variant(ref: ResultRef, s: MemorySettings) -> Pruned | None:
    """What ``ref`` becomes under ``s`` when it is pruned (None: it stays as it is)."""
    if not s.trim_tool_results or ref.text is None or is_pruned(ref.text):
        return None
    if ref.chars > s.hard_clear_threshold:
        return Pruned("clear", placeholder(ref.chars, ref.spill_path), ref.chars)
    if len(ref.text) > s.soft_trim_chars:
        return Pruned("trim", trim(ref.text, s.soft_trim_chars, ref.chars, ref.spill_path),
                      ref.chars)
    return None


def results_in(role: str, content: Any) -> tuple[tuple[str, str | None], ...]:
    """``(tool_use_id, text)`` of each tool result in one message."""
    if role != "user" or not isinstance(content, list):
        return ()
    return tuple((str(b.get("tool_use_id", "")), result_text(b)) for b in content
                 if isinstance(b, dict) and b.get("type") == "tool_result")


def make_refs(results: list[tuple[str, str | None, bool]], spills: dict[str, tuple[str, int]],
              protect_recent: int, cache: dict[Any, ResultRef] | None = None) -> list[ResultRef]:
    """Refs for ``(tool_use_id, text, pinned)`` results, oldest first. ``spills`` maps a
    tool_use_id to its spill file and full size; ``cache`` keeps refs between calls (a
    result's text never changes)."""
    first_protected = len(results) - protect_recent
    cache = {} if cache is None else cache
    refs = []
    for i, (tid, text, pinned) in enumerate(results):
        spill = spills.get(tid)
        key = (tid, i >= first_protected, pinned, spill)
        ref = cache.get(key)
        if ref is None:
            chars = spill[1] if spill else len(text or "")
            ref = cache[key] = ResultRef(tid, text, chars, spill[0] if spill else None,
                                         protected=i >= first_protected, pinned=pinned)
        refs.append(ref)
    return refs


def result_refs(
    messages: Iterable[tuple[str, Any, bool]],
    spills: dict[str, tuple[str, int]],
    protect_recent: int,
) -> list[ResultRef]:
    """The tool results of ``(role, content, pinned)`` messages, oldest first."""
    return make_refs([(tid, text, pinned) for role, content, pinned in messages
                      for tid, text in results_in(role, content)], spills, protect_recent)


@dataclass
class Plan:
    """Pruning for one request: ``applied`` is what the request uses (earlier decisions
    and this batch); ``batch`` holds the new decisions (empty: none this time)."""

    applied: dict[str, Pruned]
    batch: dict[str, Pruned]
    freed: int = 0              # raw tokens the batch frees
    pending: int = 0            # raw tokens new pruning would free (below the batch size)


def plan(
    refs: list[ResultRef],
    decided: set[str],
    s: MemorySettings,
    variant_of: Callable[[ResultRef], Pruned | None],
    freed_by: Callable[[ResultRef, Pruned], int],
    *,
    force: bool = False,
) -> Plan:
    """Decide the pruning of this request. Results in ``decided`` (pruned by an earlier
    request) stay pruned, with the same text; new candidates join only as a batch freeing
    at least ``min_prune_tokens`` (``freed_by`` says how many tokens each frees), or at
    once with ``force`` (the settings changed, so the prefix changes anyway). Protected
    and pinned results are never pruned, whatever was decided before."""
    applied: dict[str, Pruned] = {}
    new: dict[str, Pruned] = {}
    gain = 0
    for ref in refs:
        if ref.protected or ref.pinned:
            continue
        v = variant_of(ref)
        if v is None:
            continue
        if ref.tool_use_id in decided:
            applied[ref.tool_use_id] = v
        else:
            new[ref.tool_use_id] = v
            gain += freed_by(ref, v)
    if new and (force or gain >= s.min_prune_tokens):
        applied.update(new)
        return Plan(applied, new, freed=gain)
    return Plan(applied, {}, pending=gain)


def apply(content: list[dict[str, Any]], applied: dict[str, Pruned]) -> list[dict[str, Any]]:
    """``content`` with its pruned tool results replaced (a new list; blocks copied only
    when they change)."""
    out = []
    for block in content:
        if block.get("type") == "tool_result" and block.get("tool_use_id") in applied:
            block = dict(block)
            block["content"] = applied[block["tool_use_id"]].text
        out.append(block)
    return out
