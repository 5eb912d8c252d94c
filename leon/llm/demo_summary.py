"""The demo model's summaries: extractive, structured, and identifier-complete.

Compaction replaces old turns with a summary, so a summary that drops a file path
or an id silently breaks later turns. The demo summariser therefore copies
sentences rather than paraphrasing, and lists every identifier it finds (see
:mod:`leon.llm.identifiers`) even when it has to cut sentences to stay bounded.

This module also holds the small helpers that read Messages API content blocks,
shared with the rest of the demo model.
"""

from __future__ import annotations

import json
import re
from typing import Any

from leon.llm.identifiers import extract_identifiers

SECTIONS = (
    "Goal",
    "Decisions",
    "Files and identifiers",
    "Errors and fixes",
    "Open tasks",
    "Next step",
)

MAX_WORDS = 2000
_SENTENCE_WORDS = 60  # longer sentences are cut; their identifiers survive in the list
_SECTION_LIMITS = {"Decisions": 10, "Errors and fixes": 8, "Open tasks": 8}

_DECISION = re.compile(r"\b(decid\w*|will|won't|use[sd]?|using|chose|chosen|choose)\b|'ll\b", re.I)
_ERROR = re.compile(r"error|fail|exception|traceback|\bfix\w*|\bresolv\w*|workaround", re.I)
_OPEN = re.compile(r"\btodo\b|\bneeds? to\b|\bnext\b", re.I)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[*_])|\n+")
# Extensions that make a dotted name a file rather than ``module.attribute`` (display only).
_EXTENSIONS = set(
    "py pyi md txt toml json jsonl yaml yml js mjs ts tsx jsx rs go c h cc cpp hpp java kt rb sh "
    "bash zsh fish css tcss scss html htm lock cfg ini conf sql db sqlite log csv tsv xml svg png "
    "jpg jpeg gif webp pdf zip gz tgz tar env rst ipynb swift php lua vue dart ex exs hs ml nix "
    "tf proto graphql gitignore dockerignore editorconfig".split()
)


# --- reading content blocks ---------------------------------------------------


def blocks_of(message: Any) -> list[dict[str, Any]]:
    """The content blocks of a message; a plain-string content becomes one text block."""
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        return []
    blocks: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, dict):
            blocks.append(block)
        elif isinstance(block, str):
            blocks.append({"type": "text", "text": block})
    return blocks


def message_text(message: Any) -> str:
    """The text blocks of a message joined by blank lines (tool blocks and images ignored)."""
    parts = [b.get("text") for b in blocks_of(message) if b.get("type") == "text"]
    return "\n\n".join(p for p in parts if isinstance(p, str) and p)


def tool_result_text(block: dict[str, Any]) -> str:
    """The text of a ``tool_result`` block, whether its content is a string or blocks."""
    content = block.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for item in content:
        if isinstance(item, dict) and item.get("type") == "text":
            parts.append(str(item.get("text", "")))
        elif isinstance(item, dict) and item.get("type") == "image":
            parts.append("[image]")
        elif isinstance(item, str):
            parts.append(item)
    return "\n".join(parts)


def _render_input(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def render_messages(messages: list[Any]) -> str:
    """All the text of ``messages`` — prose, tool calls (name, id, ``key=value`` inputs)
    and tool results — as one string: the text a summary answers for."""
    lines: list[str] = []
    for message in messages:
        for block in blocks_of(message):
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                lines.append(block["text"])
            elif kind == "tool_use":
                args = block.get("input") if isinstance(block.get("input"), dict) else {}
                rendered = " ".join(f"{k}={_render_input(v)}" for k, v in args.items())
                lines.append(f"{block.get('name', '')} {block.get('id', '')} {rendered}".strip())
            elif kind == "tool_result":
                lines.append(f"{block.get('tool_use_id', '')} {tool_result_text(block)}".strip())
    return "\n".join(lines)


# --- sentences ---------------------------------------------------------------


def sentences(text: str) -> list[str]:
    """Split prose into sentences (and lines), cleaned of Markdown list/heading marks."""
    out = []
    for raw in _SENTENCE_BREAK.split(text or ""):
        s = raw.strip().lstrip("#>*-• ").strip()
        if s and not s.startswith("```"):
            out.append(s)
    return out


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` ("" if there is none)."""
    found = sentences(text)
    return found[0] if found else ""


def _cut(sentence: str, words: int = _SENTENCE_WORDS) -> str:
    parts = sentence.split()
    return sentence if len(parts) <= words else " ".join(parts[:words]) + " …"


def _word_count(text: str) -> int:
    return len(text.split())


# --- the summary ---------------------------------------------------------------


def _prose(messages: list[Any]) -> list[tuple[str, str]]:
    """(role, sentence) pairs from text blocks, plus one line per failed tool result."""
    out: list[tuple[str, str]] = []
    for message in messages:
        role = message.get("role", "") if isinstance(message, dict) else ""
        for block in blocks_of(message):
            if block.get("type") == "text":
                out.extend((role, s) for s in sentences(str(block.get("text", ""))))
            elif block.get("type") == "tool_result" and block.get("is_error"):
                first = first_sentence(tool_result_text(block)) or "no message"
                out.append((role, f"Tool call {block.get('tool_use_id', '')} failed: {first}"))
    return out


def _pick(prose: list[tuple[str, str]], pattern: re.Pattern[str], limit: int) -> list[str]:
    """The most recent ``limit`` distinct matching sentences, in conversation order."""
    seen: dict[str, None] = {}
    for _, s in prose:
        if pattern.search(s):
            seen.setdefault(_cut(s), None)
    return list(seen)[-limit:]


def _compact_identifiers(identifiers: list[str]) -> list[str]:
    """Drop identifiers that another listed identifier already contains as a token
    (``app.py`` inside ``src/app.py``), so a huge list still keeps every identifier.

    Looks up each identifier's token-bounded substrings (same boundaries as
    :func:`leon.llm.identifiers.contains_identifier`) in a set: linear in the list size."""
    known = set(identifiers)
    covered: set[str] = set()
    for ident in identifiers:
        word = [c.isalnum() or c == "_" for c in ident]  # exactly what regex \w matches
        n = len(ident)
        starts = [i for i in range(n) if i == 0 or not word[i - 1] or not word[i]]
        ends = [j for j in range(1, n + 1) if j == n or not word[j] or not word[j - 1]]
        if len(starts) * len(ends) > 5000:
            continue  # a huge code span: keeping more is always safe
        for i in starts:
            for j in ends:
                if j > i and j - i < n and ident[i:j] in known:
                    covered.add(ident[i:j])
    return [i for i in identifiers if i not in covered]


def _is_file(identifier: str) -> bool:
    if "/" in identifier:
        return True
    name = re.sub(r"(?::\d+)+(?::.*)?$", "", identifier)  # drop :line(:col) and grep text
    return "." in name and name.rsplit(".", 1)[1].lower() in _EXTENSIONS


def _identifier_lines(identifiers: list[str]) -> list[str]:
    files = [i for i in identifiers if " " not in i and _is_file(i)]
    file_set = set(files)
    others = [i for i in identifiers if i not in file_set]
    lines = []
    if files:
        lines.append("- Files: " + ", ".join(f"`{i}`" for i in files))
    if others:
        lines.append("- Identifiers: " + ", ".join(f"`{i}`" for i in others))
    return lines or ["- None."]


def _bullets(items: list[str]) -> list[str]:
    return [f"- {s}" for s in items] or ["- None recorded."]


def summarise(messages: list[Any], *, max_words: int = MAX_WORDS) -> str:
    """An extractive Markdown summary of ``messages`` with the six :data:`SECTIONS`.

    Every identifier in :func:`render_messages` appears in the result; sentence
    sections are trimmed (oldest first) to keep the whole within ``max_words``
    unless the identifier list alone is longer.
    """
    prose = _prose(messages)
    identifiers = extract_identifiers(render_messages(messages))
    id_lines = _identifier_lines(identifiers)
    if _word_count("\n".join(id_lines)) > max_words // 2:
        id_lines = _identifier_lines(_compact_identifiers(identifiers))

    user_sentences = [s for role, s in prose if role == "user"]
    goal = _cut(user_sentences[0]) if user_sentences else "Not stated yet."
    picked = {name: _pick(prose, pattern, _SECTION_LIMITS[name]) for name, pattern in
              (("Decisions", _DECISION), ("Errors and fixes", _ERROR), ("Open tasks", _OPEN))}
    if picked["Open tasks"]:
        next_step = picked["Open tasks"][-1]
    elif user_sentences:
        next_step = f"Pick up from the latest request: “{_cut(user_sentences[-1], 40)}”"
    else:
        next_step = "Nothing to pick up yet."

    # Trim the longest sentence section until everything fits the word budget.
    overhead = _word_count(goal) + _word_count(next_step) + _word_count("\n".join(id_lines)) + 30
    while sum(_word_count(s) for items in picked.values() for s in items) + overhead > max_words:
        longest = max(picked, key=lambda k: len(picked[k]))
        if not picked[longest]:
            break
        picked[longest].pop(0)

    body = {
        "Goal": [goal],
        "Decisions": _bullets(picked["Decisions"]),
        "Files and identifiers": id_lines,
        "Errors and fixes": _bullets(picked["Errors and fixes"]),
        "Open tasks": _bullets(picked["Open tasks"]),
        "Next step": [next_step],
    }
    return "\n\n".join(f"## {name}\n" + "\n".join(body[name]) for name in SECTIONS) + "\n"
