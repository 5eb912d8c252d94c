"""Spilling for one thread: write large tool output to the spill directory, record it in
the store, and remember which result each file belongs to (pruning names the file in
the placeholder of a cleared result)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from leon.memory import prune as pr
from leon.memory import spill as sp
from leon.paths import PathError

Event = Callable[[str, dict[str, Any]], Awaitable[None]]


class Spiller:
    """The spill files of one thread."""

    def __init__(self, store: Any, thread_id: str, spill_root: Path | None, event: Event):
        self.store = store
        self.thread_id = thread_id
        self.spill_root = spill_root  # Paths.spill; None: nothing is spilled
        self.event = event
        self.files: dict[str, tuple[str, int]] = {}     # tool_use_id -> (path, full chars)
        self._unlinked: dict[str, int] = {}             # tool_use_id -> spill id

    async def load(self) -> None:
        self.files = {s.tool_use_id: (s.path, s.chars)
                      for s in await self.store.spills(self.thread_id)}

    async def spill_if_large(self, tool_use_id: str, tool_name: str, output: str,
                             threshold: int) -> str:
        """``output``, or a preview pointing at the file it was saved to when it is
        longer than ``threshold`` characters."""
        if len(output) <= threshold or self.spill_root is None:
            return output
        if not await self.spill(tool_use_id, tool_name, output):
            return output
        return sp.preview(output, self.files[tool_use_id][0])

    async def spill(self, tool_use_id: str, tool_name: str, output: str,
                    message_id: int | None = None) -> bool:
        """Save ``output`` to a file and record it; False when the path was refused (a
        symlink planted in the spill directory, a thread id leon did not make): the
        output then stays whole in the context, and an ``error`` event says why."""
        assert self.spill_root is not None
        try:
            path = await asyncio.to_thread(sp.write_spill, self.spill_root, self.thread_id,
                                           tool_use_id, output)
        except PathError as exc:
            await self.event("error", {"where": "spill", "error": str(exc)})
            return False
        data = {"tool_use_id": tool_use_id, "tool": tool_name, "path": str(path),
                "bytes": len(output.encode("utf-8", "replace")), "chars": len(output),
                "lines": sp.line_count(output)}
        rec = await self.store.add_spill(
            self.thread_id, tool_use_id=tool_use_id, tool_name=tool_name, path=str(path),
            bytes=data["bytes"], chars=data["chars"], lines=data["lines"], message_id=message_id)
        self.files[tool_use_id] = (str(path), len(output))
        if message_id is None:
            self._unlinked[tool_use_id] = rec.id
        await self.event("spill", data)
        return True

    async def ensure(self, branch: list[Any], hard_clear_threshold: int) -> None:
        """Results longer than the clear threshold that were stored whole (before the
        thresholds were lowered) are spilled now, so their placeholder names a file."""
        if self.spill_root is None:
            return
        for m in branch:
            if m.role != "user" or not isinstance(m.content, list) or m.pinned:
                continue
            for b in m.content:
                if b.get("type") != "tool_result" or b.get("tool_use_id") in self.files:
                    continue
                content = b.get("content")
                if isinstance(content, str) and len(content) > hard_clear_threshold \
                        and not pr.is_pruned(content):
                    if not await self.spill(str(b.get("tool_use_id")), "", content, m.id):
                        return

    async def link(self, branch: list[Any]) -> None:
        """Record which stored message holds each new spilled result."""
        if not self._unlinked:
            return
        pairs = []
        for m in reversed(branch[-8:]):
            for b in m.content if isinstance(m.content, list) else []:
                if b.get("type") == "tool_result":
                    sid = self._unlinked.pop(b.get("tool_use_id"), None)
                    if sid is not None:
                        pairs.append((sid, m.id))
        await self.store.link_spills(pairs)
