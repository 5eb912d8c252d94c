"""Handoff summaries: what a new segment of work starts from instead of the old history
(the daily rollover of the general thread, and the cache guard's fresh segment).

The model is asked, without tools, for four sections — open threads, decisions, open
questions, traps to avoid. Whatever it writes is then shaped by :func:`shape`: the four
sections always exist in that order (synonyms a model tends to use are folded in, e.g.
*Open tasks* into open threads, *Errors and fixes* into traps), questions the user asked
and nobody marked answered are added when the model named none, and the whole is cut to
:data:`MAX_CHARS` (about a thousand tokens) — a handoff is bounded by construction.
"""

from __future__ import annotations

import re
from typing import Any

from leon.llm.base import Completed, ModelRequest, Provider

SECTIONS = ("Open threads", "Decisions", "Open questions", "Traps to avoid")
EXTRA = "Files and identifiers"
MAX_CHARS = 4000             # the handoff itself
MAX_INPUT_CHARS = 60_000     # transcript sent to the model: the newest part
SYSTEM = ("You write handoff notes. The next session of this work starts from your note "
          "instead of the conversation, so keep what matters for continuing and nothing else.")
INSTRUCTION = (
    "Write a handoff summary of the conversation below for whoever continues it, in four "
    "markdown sections: ## Open threads, ## Decisions, ## Open questions, ## Traps to avoid. "
    "Short bullets; keep paths, ids and numbers exact.")

_ALIASES = {
    "open threads": "Open threads", "open tasks": "Open threads", "next step": "Open threads",
    "next steps": "Open threads", "goal": "Open threads", "in progress": "Open threads",
    "decisions": "Decisions", "decided": "Decisions",
    "open questions": "Open questions", "questions": "Open questions",
    "traps to avoid": "Traps to avoid", "traps": "Traps to avoid", "pitfalls": "Traps to avoid",
    "errors and fixes": "Traps to avoid", "gotchas": "Traps to avoid",
    "files and identifiers": EXTRA, "identifiers": EXTRA,
}
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_QUESTION = re.compile(r"[^.!?\n]*\?")


def render_transcript(messages: list[Any], summary: str | None) -> str:
    """The old segment as plain text, newest part kept when it is long."""
    parts = []
    if summary:
        parts.append(f"[Summary of the earlier part]\n{summary.strip()}")
    for m in messages:
        content = m.content if hasattr(m, "content") else m.get("content", [])
        role = m.role if hasattr(m, "role") else m.get("role", "user")
        for b in content if isinstance(content, list) else [{"type": "text", "text": content}]:
            kind = b.get("type")
            if kind == "text" and b.get("text", "").strip():
                parts.append(f"[{role}] {b['text'].strip()}")
            elif kind == "tool_use":
                parts.append(f"[tool call {b.get('name')}] {str(b.get('input'))[:300]}")
            elif kind == "tool_result":
                c = b.get("content")
                text = c if isinstance(c, str) else " ".join(
                    x.get("text", "") for x in c or [] if isinstance(x, dict))
                parts.append(f"[tool result] {text[:500]}")
    text = "\n\n".join(parts)
    if len(text) > MAX_INPUT_CHARS:
        text = "[... older part left out ...]\n\n" + text[-MAX_INPUT_CHARS:]
    return text


def questions(messages: list[Any]) -> list[str]:
    """Questions the user asked (the last few), as a fallback for the section."""
    found: list[str] = []
    for m in messages:
        role = m.role if hasattr(m, "role") else m.get("role")
        if role != "user":
            continue
        content = m.content if hasattr(m, "content") else m.get("content", [])
        for b in content if isinstance(content, list) else []:
            if b.get("type") == "text":
                found += [q.strip() for q in _QUESTION.findall(b.get("text", "")) if
                          len(q.split()) >= 3]
    return found[-5:]


def shape(text: str, *, fallback_questions: list[str] | None = None,
          title: str = "", max_chars: int = MAX_CHARS) -> str:
    """The four sections, in order, bounded to ``max_chars``."""
    body: dict[str, list[str]] = {name: [] for name in (*SECTIONS, EXTRA)}
    current: str | None = None
    loose: list[str] = []
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            current = _ALIASES.get(m.group(1).strip().rstrip(":").lower(), EXTRA)
            continue
        if not line.strip():
            continue
        (body[current] if current else loose).append(line.rstrip())
    if loose:  # prose before any heading: the gist of what is open
        body["Open threads"] = loose + body["Open threads"]
    if not body["Open questions"] and fallback_questions:
        body["Open questions"] = [f"- {q}" for q in fallback_questions]
    head = f"# Handoff{': ' + title if title else ''}\n"
    share = max(200, (max_chars - len(head)) // len(SECTIONS))
    out = [head]
    for name in SECTIONS:
        lines = body[name] or ["- none recorded"]
        out.append(f"\n## {name}\n" + _cut_lines(lines, share))
    extra = body[EXTRA]
    rest = max_chars - sum(len(p) for p in out) - len(EXTRA) - 8
    if extra and rest > 100:
        out.append(f"\n## {EXTRA}\n" + _cut_lines(extra, rest))
    result = "".join(out).rstrip() + "\n"
    return result[:max_chars]


def _cut_lines(lines: list[str], limit: int) -> str:
    kept, used = [], 0
    for line in lines:
        if used + len(line) + 1 > limit:
            kept.append("- [... cut to keep the handoff short]")
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept) + "\n"


async def write_handoff(provider: Provider, model: str, *, messages: list[Any],
                        summary: str | None, title: str = "", max_tokens: int = 2048,
                        on_usage: Any = None) -> str:
    """Ask the model for the handoff of ``messages`` (after ``summary``) and shape it.
    ``on_usage(response)`` is awaited with the model's response (to record its usage).
    Raises :class:`leon.llm.base.ProviderError` when the call fails."""
    transcript = render_transcript(messages, summary)
    request = ModelRequest(model=model, system=SYSTEM, tools=[], max_tokens=max_tokens,
                           messages=[{"role": "user", "content": [
                               {"type": "text", "text": f"{INSTRUCTION}\n\n{transcript}"}]}])
    text = ""
    async for event in provider.stream(request):
        if isinstance(event, Completed):
            text = "".join(b.get("text", "") for b in event.response.content
                           if b.get("type") == "text")
            if on_usage is not None:
                await on_usage(event.response)
    return shape(text, fallback_questions=questions(messages), title=title)
