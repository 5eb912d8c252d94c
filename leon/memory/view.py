"""Turn stored history into a request the Messages API accepts, whatever happened to it.

History can hold shapes the API refuses: a user message whose reply failed (two user
turns in a row), a reply interrupted after it asked for a tool (a ``tool_use`` with no
result), an empty partial reply. :func:`api_messages` repairs these *in the view only* —
stored history is never changed — so the next turn always sends a valid request:
first message from the user, roles alternating, every ``tool_use`` answered by
``tool_result`` blocks at the start of the next user message, no empty text blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

SUMMARY_PREFIX = "[Summary of the earlier conversation, written when it was compacted]\n\n"
MISSING_RESULT = "(no result: the tool call was interrupted before it finished)"


def summary_message(text: str) -> dict[str, Any]:
    """The summary as the first user turn of the view."""
    return {"role": "user", "content": [{"type": "text", "text": SUMMARY_PREFIX + text}]}


def _clean_blocks(blocks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text" and not str(block.get("text", "")).strip():
            continue
        if kind == "tool_result":
            block = dict(block)
            content = block.get("content")
            if isinstance(content, str) and not content.strip():
                block["content"] = "(empty output)"
            elif isinstance(content, list):
                block["content"] = _clean_blocks(content) or "(empty output)"
        out.append(block)
    return out


def api_messages(
    history: Iterable[dict[str, Any]], *, summary: str | None = None
) -> list[dict[str, Any]]:
    """A valid ``messages`` list from stored ``{"role", "content"}`` dicts (oldest first)."""
    msgs: list[dict[str, Any]] = []
    if summary:
        msgs.append(summary_message(summary))
    for m in history:
        content = m["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        blocks = _clean_blocks(copy.deepcopy(content))
        if not blocks:
            continue
        if msgs and msgs[-1]["role"] == m["role"]:
            msgs[-1]["content"].extend(blocks)
        else:
            msgs.append({"role": m["role"], "content": blocks})

    if msgs and msgs[0]["role"] != "user":
        msgs.insert(0, {"role": "user", "content": [{"type": "text", "text": "(continuing)"}]})

    _pair_tool_calls(msgs)
    return msgs


def _pair_tool_calls(msgs: list[dict[str, Any]]) -> None:
    """Make every user message start with exactly the results the previous assistant
    message asked for; drop stray results; synthesise missing ones."""
    i = 0
    while i < len(msgs):
        msg = msgs[i]
        if msg["role"] == "user":
            prev = msgs[i - 1] if i > 0 else None
            wanted = _tool_use_ids(prev) if prev else []
            results = {b["tool_use_id"]: b for b in msg["content"]
                       if b.get("type") == "tool_result"}
            others = [b for b in msg["content"] if b.get("type") != "tool_result"]
            head = [results.get(tid) or {"type": "tool_result", "tool_use_id": tid,
                                         "content": MISSING_RESULT, "is_error": True}
                    for tid in wanted]
            msg["content"] = head + others
            if not msg["content"]:
                msg["content"] = [{"type": "text", "text": "(continuing)"}]
        elif i + 1 == len(msgs) or msgs[i + 1]["role"] != "user":
            # An assistant turn that asked for tools but is followed by nothing (or by
            # another assistant turn, impossible after merging): answer it here so a
            # request that ends with it stays valid.
            wanted = _tool_use_ids(msg)
            if wanted:
                msgs.insert(i + 1, {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": tid, "content": MISSING_RESULT,
                     "is_error": True} for tid in wanted]})
        i += 1


def _tool_use_ids(msg: dict[str, Any] | None) -> list[str]:
    if not msg or msg["role"] != "assistant":
        return []
    return [b["id"] for b in msg["content"] if b.get("type") == "tool_use"]


def validate(messages: list[dict[str, Any]]) -> list[str]:
    """Problems the API would refuse, as messages (empty when valid). Used by tests and
    as a last check before sending."""
    problems = []
    if not messages:
        return ["no messages"]
    if messages[0]["role"] != "user":
        problems.append("first message is not from the user")
    for i, m in enumerate(messages):
        if i and m["role"] == messages[i - 1]["role"]:
            problems.append(f"messages.{i}: two {m['role']} messages in a row")
        if not m["content"]:
            problems.append(f"messages.{i}: empty content")
        for b in m["content"]:
            if b.get("type") == "text" and not b.get("text", "").strip():
                problems.append(f"messages.{i}: empty text block")
        wanted = _tool_use_ids(m)
        if wanted:
            nxt = messages[i + 1]["content"] if i + 1 < len(messages) else []
            got = [b.get("tool_use_id") for b in nxt[: len(wanted)]
                   if b.get("type") == "tool_result"]
            if i + 1 < len(messages) and sorted(got) != sorted(wanted):
                problems.append(f"messages.{i}: tool_use without tool_result right after")
    return problems
