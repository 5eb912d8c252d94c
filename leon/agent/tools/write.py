"""File tools that change the workspace: ``write_file`` and ``edit_file``.

Both confine paths with :func:`resolve_path` (``write=True``: the workspace only), ask
for permission through the session before they run (:meth:`preview` says what would
change), and record the file's content before and after in the thread's file history,
so ``leon rollback --files`` can undo them. ``edit_file`` only touches a file the thread
has read and that has not changed since.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import difflib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import ToolContext, ToolError, ToolResult
from .paths import display_path, is_binary, resolve_path
from .readonly import _bool_arg, _missing, _str_arg

DIFF_LINES_CAP = 400


def session_of(ctx: ToolContext, tool: str) -> Any:
    session = getattr(ctx, "session", None)
    if session is None:
        raise ToolError(f"{tool} needs a leon session (permissions, file history, sandbox) "
                        "and is not available in this context")
    return session


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` through a temporary file in the same directory, so
    a crash leaves the old or the new content, never half of it. An existing file keeps
    its permission bits; a symlink at ``path`` itself is replaced, not followed."""
    mode: int | None = None
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            mode = stat.S_IMODE(st.st_mode)
    except FileNotFoundError:
        pass
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".leon-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _decode(data: bytes) -> str:
    # surrogateescape: any byte that is not UTF-8 survives the round trip unchanged.
    return data.decode("utf-8", errors="surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def unified_diff(before: bytes | None, after: bytes | None, shown: str) -> str:
    """A unified diff of two versions of a file (None: the file does not exist)."""
    a = _decode(before or b"").splitlines(keepends=True)
    b = _decode(after or b"").splitlines(keepends=True)
    lines = []
    for line in difflib.unified_diff(
            a, b, fromfile="/dev/null" if before is None else f"a/{shown}",
            tofile="/dev/null" if after is None else f"b/{shown}", n=3):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    if len(lines) > DIFF_LINES_CAP:
        cut = len(lines) - DIFF_LINES_CAP
        lines = lines[:DIFF_LINES_CAP] + [f"[... {cut} more diff lines not shown]\n"]
    return "".join(lines).rstrip("\n")


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


@dataclass
class Change:
    """What a file tool is about to do to one file."""

    path: Path
    shown: str
    before: bytes | None
    after: bytes
    note: str = ""


def _read_existing(p: Path, shown: str) -> bytes | None:
    if p.is_dir():
        raise ToolError(f"{shown!r} is a directory")
    if not p.exists():
        return None
    if not stat.S_ISREG(p.stat().st_mode):
        raise ToolError(f"{shown!r} is not a regular file")
    return p.read_bytes()


class _ChangeTool(abc.ABC):
    """Shared flow: plan the change (also used for the permission preview), then apply it
    and record it in the file history."""

    name = ""
    description = ""
    input_schema: dict[str, Any] = {}
    read_only = False
    needs_permission = True

    @abc.abstractmethod
    def _plan(self, args: dict[str, Any], ctx: ToolContext) -> Change:
        """What the call would change (raises :class:`ToolError` when it cannot)."""

    async def _checked_plan(self, args: dict[str, Any], ctx: ToolContext) -> Change:
        change = await asyncio.to_thread(self._plan, args, ctx)
        if self.name == "edit_file":
            await session_of(ctx, self.name).require_fresh(change.path, change.shown, change.before)
        return change

    async def preview(self, args: dict[str, Any], ctx: ToolContext) -> tuple[str, str, str]:
        """(title, detail, subject) for the permission prompt: the diff, or the content of
        a new file; ``subject`` is the workspace-relative path rules are matched against."""
        change = await self._checked_plan(args, ctx)
        if change.before is None:
            title = f"Create {change.shown}"
            detail = _decode(change.after)
        else:
            title = f"{'Edit' if self.name == 'edit_file' else 'Overwrite'} {change.shown}"
            detail = unified_diff(change.before, change.after, change.shown) or "(no change)"
        return title, detail, change.shown

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        session = session_of(ctx, self.name)
        change = await self._checked_plan(args, ctx)
        if change.before == change.after:
            return ToolResult(f"{change.shown} already has this content; nothing was written",
                              meta={"path": change.shown, "changed": False})
        await asyncio.to_thread(self._apply, change)
        await session.record_change(change.path, change.before, change.after, self.name)
        return self._result(change)

    @staticmethod
    def _apply(change: Change) -> None:
        if change.before is None:
            change.path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(change.path, change.after)

    @abc.abstractmethod
    def _result(self, change: Change) -> ToolResult:
        """What the model is told after ``change`` was written."""


class WriteFileTool(_ChangeTool):
    name = "write_file"
    description = (
        "Create a file in the workspace, or replace a file's whole content. Parent "
        "directories are created as needed. Prefer edit_file for changing part of an existing "
        "file: it is cheaper and shows a diff. The user is asked before the file is written "
        "(or a config rule allows it); every change is recorded so the user can roll it back. "
        "Paths are relative to the workspace and must stay inside it. "
        'Example: {"path": "notes/plan.md", "content": "# Plan\\n- write tests\\n"}.'
    )
    input_schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File to write, relative to the "
                     "workspace (e.g. 'src/app.py')."},
            "content": {"type": "string",
                        "description": "The complete new content of the file (UTF-8 text)."},
        },
        "required": ["path", "content"],
    }

    def _plan(self, args: dict[str, Any], ctx: ToolContext) -> Change:
        p = resolve_path(ctx, _str_arg(args, "path"), write=True)
        content = args.get("content")
        if not isinstance(content, str):
            raise ToolError(f"'content' must be a string, got {type(content).__name__}")
        shown = display_path(ctx, p)
        return Change(p, shown, _read_existing(p, shown), _encode(content))

    def _result(self, change: Change) -> ToolResult:
        n, size = _line_count(change.after), len(change.after)
        meta = {"path": change.shown, "changed": True, "created": change.before is None,
                "bytes": size, "lines": n}
        lines = f"{n} line{'s' if n != 1 else ''}"
        if change.before is None:
            return ToolResult(f"created {change.shown} ({lines}, {size} bytes)", meta=meta)
        diff = unified_diff(change.before, change.after, change.shown)
        added = sum(1 for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++"))
        removed = sum(1 for x in diff.splitlines() if x.startswith("-") and not x.startswith("---"))
        return ToolResult(f"overwrote {change.shown} ({lines}, {size} bytes; "
                          f"+{added} -{removed} lines)", meta=meta)


class EditFileTool(_ChangeTool):
    name = "edit_file"
    description = (
        "Replace an exact string in a text file of the workspace. `old_string` must match "
        "the file exactly (whitespace and indentation included; copy it from read_file output "
        "without the line-number prefix) and must occur exactly once, unless `replace_all` is "
        "true. Include enough surrounding lines to make it unique. The file must have been "
        "read with read_file in this conversation and not changed since; otherwise read it "
        "(again) first. The user is asked before the edit is made (or a config rule allows "
        "it). Returns a unified diff of the change. "
        'Example: {"path": "src/app.py", "old_string": "def main():\\n    pass", '
        '"new_string": "def main():\\n    run()"}.'
    )
    input_schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string",
                     "description": "File to edit, relative to the workspace."},
            "old_string": {"type": "string",
                           "description": "The exact text to replace (not empty)."},
            "new_string": {"type": "string",
                           "description": "The text to put in its place (may be empty to "
                           "delete)."},
            "replace_all": {"type": "boolean",
                            "description": "Replace every occurrence instead of requiring "
                            "exactly one (default false)."},
        },
        "required": ["path", "old_string", "new_string"],
    }

    def _plan(self, args: dict[str, Any], ctx: ToolContext) -> Change:
        p = resolve_path(ctx, _str_arg(args, "path"), write=True)
        old, new = args.get("old_string"), args.get("new_string")
        if not isinstance(old, str) or not isinstance(new, str):
            raise ToolError("'old_string' and 'new_string' must be strings")
        replace_all = _bool_arg(args, "replace_all", False)
        shown = display_path(ctx, p)
        if not old:
            raise ToolError("'old_string' is empty; to create a file use write_file, to insert "
                            "text include a neighbouring line in old_string and new_string")
        if old == new:
            raise ToolError("'old_string' and 'new_string' are the same; nothing would change")
        if not p.exists():
            raise _missing(ctx, p, "file")
        before = _read_existing(p, shown)
        assert before is not None
        if is_binary(before):
            raise ToolError(f"{shown!r} is a binary file; edit_file only edits text")
        text = _decode(before)
        count = text.count(old)
        if count == 0 and "\r\n" in text and "\n" in old:
            # The file has Windows line ends; read_file showed them as plain newlines.
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
            count = text.count(old)
        if count == 0:
            raise ToolError(self._not_found(text, old, shown))
        if count > 1 and not replace_all:
            lines = self._lines_of(text, old)
            where = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
            raise ToolError(f"'old_string' occurs {count} times in {shown} (lines {where}); "
                            "include more surrounding text to make it unique, or set "
                            "replace_all to true")
        after = text.replace(old, new) if replace_all else text.replace(old, new, 1)
        note = f"{count} replacements" if count > 1 else ""
        return Change(p, shown, before, _encode(after), note)

    @staticmethod
    def _lines_of(text: str, needle: str) -> list[int]:
        out, start = [], 0
        while (i := text.find(needle, start)) != -1:
            out.append(text.count("\n", 0, i) + 1)
            start = i + max(1, len(needle))
        return out

    @staticmethod
    def _not_found(text: str, old: str, shown: str) -> str:
        msg = (f"'old_string' was not found in {shown}. It must match exactly, including "
               "whitespace and indentation, without read_file's line-number prefix")
        first = next((line for line in old.splitlines() if line.strip()), "")
        lines = text.splitlines()
        close = difflib.get_close_matches(first, lines, n=1, cutoff=0.6) if first else []
        if close:
            number = lines.index(close[0]) + 1
            msg += f". The closest line is {number}: {close[0].strip()[:120]!r}"
        return msg + "; read the file again if unsure"

    def _result(self, change: Change) -> ToolResult:
        diff = unified_diff(change.before, change.after, change.shown)
        head = f"edited {change.shown}" + (f" ({change.note})" if change.note else "")
        return ToolResult(f"{head}\n{diff}", meta={"path": change.shown, "changed": True})


def write_tools() -> list[Any]:
    return [WriteFileTool(), EditFileTool()]
