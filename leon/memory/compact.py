"""Compaction, the pure parts: when it is due, where to cut, what to ask the model, and
how its summary is made to keep every salient identifier.

The summary replaces everything older than the last ``keep_recent_tokens`` of the view.
The cut never separates a ``tool_use`` from its ``tool_result``: the kept part starts on
a user turn that carries no tool results (or, when a long tool loop has none, right
after a complete call and its results, where the summary's own user turn precedes it).
A summary that drops salient identifiers of what it replaces (paths, URLs, hashes, ids,
code symbols: :mod:`leon.llm.identifiers`; never bare numbers or plain words) is asked
for again once, naming what it dropped; if it still misses some, it is *repaired*: the
missing ones are appended verbatim under :data:`REPAIR_HEADING`. A summary is never
rejected for what it left out, so compaction cannot get stuck on a summariser's habits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from leon.llm.identifiers import extract_identifiers, missing_identifiers
from leon.memory.count import count_text, result_text
from leon.memory.settings import MemorySettings

SECTIONS = ("Goal", "Decisions", "Files and identifiers", "Errors and fixes", "Open tasks",
            "Next step")

SYSTEM = (
    "You compact a conversation between a user and Claude, an assistant working in a "
    "terminal with tools, so it can continue with less context. Write a structured summary "
    "in Markdown with exactly these sections: " + ", ".join(f"## {s}" for s in SECTIONS) + ". "
    "Keep every file path, URL, id, hash, code name, command and error message verbatim: "
    "list them under Files and identifiers even when the prose leaves them out. Record "
    "decisions with "
    "their reasons, errors with their fixes, and what is still open. Do not invent anything; "
    "write only the summary."
)

INSTRUCTION = (
    "Summarise the conversation transcript below for compaction: a structured summary with "
    "the sections Goal, Decisions, Files and identifiers, Errors and fixes, Open tasks and "
    "Next step, keeping every path, URL, id, hash and code name verbatim."
)

REPAIR_HEADING = "## Identifiers kept verbatim"
RETRY_LIST = 300  # identifiers named in the retry prompt (the rest are repaired)


def is_due(s: MemorySettings, estimate: int, messages: int, limit: int | None = None) -> bool:
    """Whether the view must be compacted before it is sent: over the threshold, or over
    ``limit`` (the most a request may hold, when the threshold is set above it)."""
    over = estimate > s.threshold or (limit is not None and estimate > limit)
    return s.compaction_enabled and messages >= s.min_messages and over


def _has_results(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def valid_cuts(roles: Sequence[str], contents: Sequence[Any]) -> tuple[list[int], list[int]]:
    """Indices ``i`` (>= 1) where the kept part may start: ``(preferred, fallback)``.
    Preferred: a user message without tool results. Fallback, for a long tool loop: an
    assistant message right after tool results (the call and its results stay together
    in the summarised part; the summary is the user turn before the kept part)."""
    preferred, fallback = [], []
    for i in range(1, len(roles)):
        if roles[i] == "user" and not _has_results(contents[i]):
            preferred.append(i)
        elif roles[i] == "assistant" and roles[i - 1] == "user" and _has_results(contents[i - 1]):
            fallback.append(i)
    return preferred, fallback


def find_cut(roles: Sequence[str], contents: Sequence[Any], tokens: Sequence[int],
             keep_recent_tokens: int) -> int | None:
    """Where the kept part starts (messages ``[cut:]`` are kept, ``[:cut]`` summarised),
    or None when there is no safe place. Keeps at least ``keep_recent_tokens`` when it
    can, else as much as a safe cut allows."""
    n = len(roles)
    kept, point = 0, 0
    for i in range(n - 1, -1, -1):
        kept += tokens[i]
        if kept >= keep_recent_tokens:
            point = i
            break
    for cuts in valid_cuts(roles, contents):
        before = [i for i in cuts if i <= point]
        if before:
            return before[-1]
        after = [i for i in cuts if i > point]
        if after:
            return after[0]
    return None


def bounded_cut(roles: Sequence[str], contents: Sequence[Any], tokens: Sequence[int],
                cut: int, budget: int, earlier: int = 0) -> tuple[int, bool]:
    """``cut`` moved earlier, to another safe cut, so that what the summary call reads
    (``earlier`` tokens of the previous summary plus ``tokens[:cut]``) stays within
    ``budget``: a compaction request must fit the window too, however far behind
    compaction fell. Returns ``(cut, moved)``; when no cut is small enough, the first
    one (the caller trims the material)."""
    if earlier + sum(tokens[:cut]) <= budget:
        return cut, False
    preferred, fallback = valid_cuts(roles, contents)
    cuts = sorted(c for c in set(preferred) | set(fallback) if c < cut)
    if not cuts:
        return cut, False
    total, best = earlier, cuts[0]
    upto = 0
    for c in cuts:
        total += sum(tokens[upto:c])
        upto = c
        if total > budget:
            break
        best = c
    return best, True


def _render_input(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def render(messages: Sequence[tuple[str, Any]], *, results: bool = True) -> str:
    """``(role, content)`` messages as a plain transcript (no ids or numbers of its own,
    so every identifier in it comes from the conversation); without tool output when
    ``results`` is false (what the user and the model said and asked for)."""
    parts: list[str] = []
    for role, content in messages:
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        lines = []
        for b in blocks:
            kind = b.get("type")
            if kind == "text" and str(b.get("text", "")).strip():
                lines.append(str(b["text"]))
            elif kind == "tool_use":
                lines.append(f"[tool call] {b.get('name', '')} {_render_input(b.get('input', {}))}")
            elif kind == "tool_result" and results:
                text = result_text(b)
                label = "[tool error]" if b.get("is_error") else "[tool result]"
                lines.append(f"{label}\n{text if text is not None else '(non-text output)'}")
        if lines:
            who = "User" if role == "user" else "Assistant"
            parts.append(f"{who}: " + "\n".join(lines))
    return "\n\n".join(parts)


def material(previous_summary: str | None, transcript: str) -> str:
    """Everything the new summary replaces, as text."""
    if previous_summary:
        return f"Earlier summary:\n{previous_summary}\n\n{transcript}"
    return transcript


def prompt(material_text: str, missing: Sequence[str] = (), budget: int | None = None) -> str:
    """The user message of the compaction call: the instruction paragraph, then the
    material; on a retry, the identifiers the first summary dropped (at most
    :data:`RETRY_LIST` of them, and about ``budget`` tokens: the call must fit the window;
    what is not named is repaired afterwards)."""
    text = INSTRUCTION + "\n\n" + material_text
    if missing:
        named, spent = [], 0
        for m in missing[:RETRY_LIST]:
            spent += count_text(m) + 3
            if budget is not None and spent > budget:
                break
            named.append(f"`{m}`")
        more = len(missing) - len(named)
        text += ("\n\nIdentifiers the previous summary left out; include every one of "
                 "them verbatim: " + ", ".join(named) + (f" (and {more} more)" if more > 0
                                                        else ""))
    return text


def check(material_text: str, summary: str, first: str = "") -> list[str]:
    """Salient identifiers of ``material_text`` that ``summary`` lost (empty: it kept
    them all). Those that also occur in ``first`` (what was said, as opposed to tool
    output) come first, so a repair with a budget keeps them before the others."""
    missing = missing_identifiers(material_text, summary)
    if not first or not missing:
        return missing
    said = set(extract_identifiers(first))
    return [m for m in missing if m in said] + [m for m in missing if m not in said]


def repair(summary: str, missing: Sequence[str], budget: int,
           count: Callable[[str], int]) -> tuple[str, int]:
    """``summary`` with ``missing`` identifiers appended verbatim under
    :data:`REPAIR_HEADING`, as many as fit in ``budget`` tokens (``count`` counts a
    text), in the order given. Returns the text and how many were appended."""
    if not missing:
        return summary, 0
    heading = (f"\n\n{REPAIR_HEADING}\n(The summary above left these out; they are copied "
               "from the conversation it replaces.)\n")
    spent = count(heading)
    kept: list[str] = []
    for ident in missing:
        item = f"`{ident}`" if "`" not in ident else ident
        n = count(item) + 1  # the separator
        if spent + n > budget:
            break
        kept.append(item)
        spent += n
    if not kept:
        return summary, 0
    return summary.rstrip() + heading + ", ".join(kept) + "\n", len(kept)


def carried_text(pinned: Sequence[tuple[str, Any]]) -> str:
    """Pinned messages from before the summary, verbatim, to follow the summary."""
    if not pinned:
        return ""
    body = render(pinned)
    return ("\n\n[Pinned messages, kept verbatim across compaction]\n\n" + body)
