"""Spill: tool output too large for the context goes to a file; the model gets a preview
(head and tail), the full size, the path and a one-line hint to read it back.

Files live in the thread's spill directory (0700), one per tool call, 0600. The read
tools may read that directory, so the model can follow the pointer with ``read_file``
(offset/limit) or ``grep``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from leon.paths import make_private_dir

PREVIEW_HEAD = 1500
PREVIEW_TAIL = 500


def spill_name(tool_use_id: str) -> str:
    """A safe file name for one tool call's output."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", tool_use_id or "output").strip(".") or "output"
    return f"{safe[:120]}.txt"


def write_spill(directory: Path, tool_use_id: str, output: str) -> Path:
    """Write ``output`` to the spill directory, private to the user; return the path."""
    make_private_dir(directory)
    path = directory / spill_name(tool_use_id)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(output)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
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
