"""Spill: tool output too large for the context goes to a file; the model gets a preview
(head and tail), the full size, the path and a one-line hint to read it back.

Files live in the thread's spill directory (0700), one per tool call, 0600, at paths made
and checked by :mod:`leon.paths`. The read tools may read that directory, so the model can
follow the pointer with ``read_file`` (offset/limit) or ``grep``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from leon.paths import check, confine, open_private_file

PREVIEW_HEAD = 1500
PREVIEW_TAIL = 500


def spill_name(tool_use_id: str) -> str:
    """A safe file name for one tool call's output."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", tool_use_id or "output").strip(".") or "output"
    return f"{safe[:120]}.txt"


def write_spill(spill_root: Path, thread_id: str, tool_use_id: str, output: str) -> Path:
    """Write ``output`` to the thread's directory below ``spill_root`` (``Paths.spill``),
    private to the user; return the path. Every component is checked first
    (:mod:`leon.paths`): a thread id that is not leon's, or a symlinked directory on the
    way, raises :class:`~leon.paths.PathError` and nothing is written."""
    name = spill_name(tool_use_id)
    anchor = (spill_root.name, check("thread id", thread_id))
    path = confine(spill_root.parent, *anchor, check("spill name", name))
    tmp_name = f"{name[:-len('.txt')]}.tmp"
    fd = open_private_file(spill_root.parent, *anchor, tmp_name)
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(output)
    os.replace(confine(spill_root.parent, *anchor, tmp_name), path)
    return path


def line_count(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def preview(output: str, path: Path | str, *, head: int = PREVIEW_HEAD,
            tail: int = PREVIEW_TAIL) -> str:
    """What the model sees instead of a spilled output (deterministic)."""
    start = output[:head]
    nl = start.rfind("\n")
    if nl >= head * 4 // 5:
        start = start[: nl + 1]
    end = output[len(output) - tail:]
    nl = end.find("\n")
    if 0 <= nl <= tail // 5:
        end = end[nl + 1:]
    hidden = len(output) - len(start) - len(end)
    return (
        f"{start.rstrip(chr(10))}\n[… {hidden:,} characters not shown …]\n{end.lstrip(chr(10))}\n"
        f"[Output too large for the context: {len(output):,} characters, "
        f"{line_count(output):,} lines. Only the start and the end are shown above; the full "
        f"output is saved in {path}. Read it with read_file (offset/limit) or search it "
        "with grep.]"
    )
