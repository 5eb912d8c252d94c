"""Turn stored history into a request the Messages API accepts, whatever happened to it.

History can hold shapes the API refuses: a user message whose reply failed (two user
turns in a row), a reply interrupted after it asked for a tool (a ``tool_use`` with no
result), an empty partial reply. :func:`api_messages` repairs these *in the view only* —
stored history is never changed — so the next turn always sends a valid request:
first message from the user, roles alternating, every ``tool_use`` answered by
``tool_result`` blocks at the start of the next user message, no empty text blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SUMMARY_PREFIX = "[Summary of the earlier conversation, written when it was compacted]\n\n"
MISSING_RESULT = "(no result: the tool call was interrupted before it finished)"


def summary_message(text: str) -> dict[str, Any]:
    """The summary as the first user turn of the view."""
    return {"role": "user", "content": [{"type": "text", "text": SUMMARY_PREFIX + text}]}


def _clean_blocks(blocks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``blocks`` as a new list without empty text blocks and with empty tool output made
    explicit. Blocks are shared with the input unless they change: the view never changes
    what is inside a block, and copying a long history costs more than the rest of a turn
    (the provider copies what it sends)."""
    out = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not (text.strip() if isinstance(text, str) else str(text or "").strip()):
                continue
        elif kind == "tool_result":
            content = block.get("content")
            if isinstance(content, str):
                if not content.strip():
                    block = dict(block, content="(empty output)")
            elif isinstance(content, list):
                block = dict(block, content=_clean_blocks(content) or "(empty output)")
        out.append(block)
    return out


def api_messages(
    history: Iterable[dict[str, Any]], *, summary: str | None = None
) -> list[dict[str, Any]]:
    """A valid ``messages`` list from stored ``{"role", "content"}`` dicts (oldest first)."""
    items = [(i, m) for i, m in enumerate(history)]
    return Assembler().build(items, summary=summary)


class Assembler:
    """:func:`api_messages`, kept between calls: the next request repeats the previous
    one's messages up to where the history changed, so only the new tail is cleaned,
    merged and paired (the part of each turn that grows with the thread is a list copy).

    ``items`` are ``(identity, {"role", "content"})`` pairs; the identity must change
    whenever the message's content does (a stored message id and its pruning, say).
    """

    def __init__(self) -> None:
        self._summary: str | None | object = object()   # nothing built yet
        self._ids: list[Any] = []
        self._out: list[dict[str, Any]] = []
        self._where: list[int] = []     # per item: index in _out of the message holding it
        self._repairs: list[int] = []   # per message of _out: blocks the view added
        self.fresh = 0                  # first message of the last result that is new
        self.repairs = 0                # blocks the view added to the last result

    def build(self, items: list[tuple[Any, dict[str, Any]]], *,
              summary: str | None = None) -> list[dict[str, Any]]:
        ids = [ident for ident, _ in items]
        start, msgs, where, repairs = self._reusable(ids, summary)
        for i in range(start, len(items)):
            m = items[i][1]
            content = m["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            blocks = _clean_blocks(content)
            if blocks:
                if msgs and msgs[-1]["role"] == m["role"]:
                    if len(msgs) - 1 < len(repairs):  # never change a reused message
                        msgs[-1] = {"role": m["role"], "content": list(msgs[-1]["content"])}
                        del repairs[len(msgs) - 1:]
                    msgs[-1]["content"].extend(blocks)
                else:
                    msgs.append({"role": m["role"], "content": blocks})
            where.append(len(msgs) - 1)
        first = len(repairs)
        repairs += [0] * (len(msgs) - len(repairs))
        if start == 0 and msgs and msgs[0]["role"] != "user":
            msgs.insert(0, {"role": "user", "content": [{"type": "text",
                                                          "text": "(continuing)"}]})
            repairs.insert(0, 1)
            where = [w + 1 for w in where]
        _pair_tool_calls(msgs, first, repairs)
        self._summary, self._ids, self._out = summary, ids, msgs
        self._where, self._repairs = where, repairs
        self.fresh, self.repairs = first, sum(repairs)
        return list(msgs)

    def _reusable(self, ids: list[Any], summary: str | None
                  ) -> tuple[int, list[dict[str, Any]], list[int], list[int]]:
        """Where to start: the first item to process, and the messages, item positions
        and repair counts that stay as they were."""
        fresh = (0, [summary_message(summary)] if summary else [], [],
                 [0] if summary else [])
        if summary != self._summary or not self._ids:
            return fresh
        n = min(len(ids), len(self._ids))
        k = n if ids[:n] == self._ids[:n] else next(i for i in range(n)
                                                   if ids[i] != self._ids[i])
        if k == 0:
            return fresh
        o = self._where[k - 1]
        if o <= 1:
            return fresh
        j = k - 1
        while j > 0 and self._where[j - 1] == o:
            j -= 1
        return j, self._out[:o], self._where[:j], self._repairs[:o]


def _missing(tid: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tid, "content": MISSING_RESULT,
            "is_error": True}


def _pair_tool_calls(msgs: list[dict[str, Any]], start: int = 0,
                     repairs: list[int] | None = None) -> None:
    """Make every user message (from ``start``) begin with exactly the results the
    previous assistant message asked for; drop stray results; synthesise missing ones
    (counted in ``repairs``, per message)."""
    repairs = repairs if repairs is not None else [0] * len(msgs)
    i = start
    wanted: list[str] = _tool_use_ids(msgs[i - 1]) if i > 0 else []
    while i < len(msgs):
        msg = msgs[i]
        if msg["role"] == "user":
            content = msg["content"]
            got = [b.get("tool_use_id") for b in content if b.get("type") == "tool_result"]
            # Already right (the usual case): nothing asked and nothing answered, or the
            # answers lead the message in the order asked.
            if got != wanted or any(b.get("type") != "tool_result"
                                    for b in content[: len(wanted)]):
                results = {b["tool_use_id"]: b for b in content
                           if b.get("type") == "tool_result"}
                others = [b for b in content if b.get("type") != "tool_result"]
                msg["content"] = [results.get(tid) or _missing(tid) for tid in wanted] + others
                repairs[i] += sum(1 for tid in wanted if tid not in results)
            if not msg["content"]:
                msg["content"] = [{"type": "text", "text": "(continuing)"}]
                repairs[i] += 1
            wanted = []
        else:
            wanted = _tool_use_ids(msg)
            if wanted and (i + 1 == len(msgs) or msgs[i + 1]["role"] != "user"):
                # An assistant turn that asked for tools but is followed by nothing (or by
                # another assistant turn, impossible after merging): answer it here so a
                # request that ends with it stays valid.
                msgs.insert(i + 1, {"role": "user", "content": [_missing(t) for t in wanted]})
                repairs.insert(i + 1, len(wanted))
        i += 1


def _tool_use_ids(msg: dict[str, Any] | None) -> list[str]:
    if not msg or msg["role"] != "assistant":
        return []
    return [b["id"] for b in msg["content"] if b.get("type") == "tool_use"]


def validate(messages: list[dict[str, Any]], start: int = 0) -> list[str]:
    """Problems the API would refuse, as messages (empty when valid). Used by tests and
    as a last check before sending; ``start`` skips messages already checked (the
    message before it is checked again, for pairing)."""
    problems = []
    if not messages:
        return ["no messages"]
    if messages[0]["role"] != "user":
        problems.append("first message is not from the user")
    for i in range(max(0, start - 1), len(messages)):
        m = messages[i]
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
