"""The token counts one thread's requests are built from, cached so a turn only counts
what is new: per stored message (also kept in ``messages.tokens``), per tool result, per
pruned variant, and the few texts every request repeats (system prompt, tool schemas,
summary)."""

from __future__ import annotations

import json
from typing import Any

from leon.memory import prune as pr
from leon.memory.count import (
    BLOCK_OVERHEAD,
    content_bytes,
    count_other,
    count_system,
    count_text,
    count_tools,
    split_content,
    text_bytes,
    tools_bytes,
)
from leon.memory.settings import MemorySettings
from leon.memory.view import MISSING_RESULT


class TokenCache:
    """Raw (uncalibrated) counts, by what they count."""

    TEXTS = 64  # distinct repeated texts kept (system prompts, summaries, tool sets)

    def __init__(self) -> None:
        self.messages: dict[int, tuple[int, int]] = {}     # id -> (total, not tool results)
        self.results: dict[str, int] = {}                  # tool_use_id -> tokens
        self.variants: dict[tuple[str, Any, Any], tuple[pr.Pruned | None, int]] = {}
        self.texts: dict[str, int] = {}
        self.unsaved: list[tuple[int, int]] = []            # fresh counts for messages.tokens
        self.results_of: dict[int, tuple[tuple[str, str | None], ...]] = {}
        self.pruned: dict[int, tuple[tuple[Any, ...], Any, int]] = {}  # id -> (key, content, n)
        self.items: dict[int, tuple[int, dict[str, Any]]] = {}  # id -> view item, unpruned
        self.refs: dict[Any, pr.ResultRef] = {}             # see prune.make_refs
        self.sizes: dict[Any, int] = {}                     # view item identity -> bytes

    def size(self, item: tuple[Any, dict[str, Any]]) -> int:
        """Bytes of one view item ``(identity, message)`` as sent (the identity changes
        whenever its content does, so it is counted once)."""
        n = self.sizes.get(item[0])
        if n is None:
            n = self.sizes[item[0]] = content_bytes(item[1]["content"])
        return n

    def size_of_text(self, text: str) -> int:
        key = "bytes\0" + text
        n = self.texts.get(key)
        if n is None:
            n = self.texts[key] = text_bytes(text)
        return n

    def text(self, kind: str, text: str) -> int:
        """A repeated text: ``system`` prompt or a ``text`` block."""
        key = kind + "\0" + text
        n = self.texts.get(key)
        if n is None:
            if len(self.texts) > self.TEXTS:
                self.texts.clear()
            n = count_system(text) if kind == "system" else count_text(text) + BLOCK_OVERHEAD
            self.texts[key] = n
        return n

    def tools(self, schemas: list[dict[str, Any]]) -> int:
        return self.tools_counts(schemas)[0]

    def tools_counts(self, schemas: list[dict[str, Any]]) -> tuple[int, int]:
        """Raw tokens and bytes of the tool schemas (one serialisation per call)."""
        if not schemas:
            return 0, 0
        key = "tools\0" + json.dumps(schemas, sort_keys=True)
        n = self.texts.get(key)
        if n is None:
            n = self.texts[key] = count_tools(schemas)
        size = self.texts.get("bytes\0" + key)
        if size is None:
            size = self.texts["bytes\0" + key] = tools_bytes(schemas)
        return n, size

    def message(self, m: Any) -> tuple[int, int]:
        """``(total, other)`` raw tokens of a stored message: all of it, and what is not
        tool results. Counted once; a count from ``messages.tokens`` is reused, and a
        fresh one is kept in :attr:`unsaved` until :meth:`take_unsaved`."""
        c = self.messages.get(m.id)
        if c is None:
            content = m.content
            has_results = isinstance(content, list) and any(
                b.get("type") == "tool_result" for b in content)
            if m.tokens is not None and not has_results:
                c = (m.tokens, m.tokens)
            elif m.tokens is not None:
                c = (m.tokens, count_other(content))
                ids = [b.get("tool_use_id") for b in content if b.get("type") == "tool_result"]
                if len(ids) == 1:  # the usual shape: the result is all the rest
                    self.results.setdefault(str(ids[0]), c[0] - c[1])
            else:
                total, other, results = split_content(content)
                self.results.update(results)
                self.unsaved.append((m.id, total))
                c = (total, other)
            self.messages[m.id] = c
        return c

    def take_unsaved(self) -> list[tuple[int, int]]:
        """Counts made since the last call, to store in ``messages.tokens``."""
        out, self.unsaved = self.unsaved, []
        return out

    def tool_results(self, m: Any) -> tuple[tuple[str, str | None], ...]:
        """The tool results of a stored message (cached: stored messages never change)."""
        found = self.results_of.get(m.id)
        if found is None:
            found = self.results_of[m.id] = pr.results_in(m.role, m.content)
        return found

    def result(self, ref: pr.ResultRef) -> int:
        """Raw tokens of one tool result block as stored."""
        n = self.results.get(ref.tool_use_id)
        if n is None:
            n = count_text(ref.text or "") + count_text(ref.tool_use_id) + 2 * BLOCK_OVERHEAD
            self.results[ref.tool_use_id] = n
        return n

    def variant(self, ref: pr.ResultRef, s: MemorySettings) -> tuple[pr.Pruned | None, int]:
        """What pruning makes of ``ref`` under ``s``, and its raw tokens."""
        key = (ref.tool_use_id, s.prune_signature, ref.spill_path)
        hit = self.variants.get(key)
        if hit is None:
            v = pr.variant(ref, s)
            hit = (v, count_text(v.text) + count_text(ref.tool_use_id) + 2 * BLOCK_OVERHEAD
                   if v else 0)
            self.variants[key] = hit
        return hit

    def repairs(self, blocks: int) -> int:
        """Raw tokens of ``blocks`` the view added to make history valid (rare)."""
        return blocks * (self.text("text", MISSING_RESULT) + BLOCK_OVERHEAD) if blocks else 0
