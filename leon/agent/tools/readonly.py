"""Read-only file tools: read_file, list_dir, glob, grep.

All of them confine paths with :func:`resolve_path` and do their filesystem work in a
worker thread so a big tree never stalls the UI's event loop. grep's matching — a pattern
the model wrote — runs in a child process killed at a time limit (:mod:`.grepchild`,
:mod:`.linematch`), never in this process.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import difflib
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from leon.units import human_size

from .base import Tool, ToolContext, ToolError, ToolResult
from .grepchild import FileSender, GrepTimedOut, run_grep
from .linematch import MAX_PATTERN_CHARS
from .linematch import cut_line as _cut
from .paths import display_path, is_binary, resolve_path, walk_files

MAX_LINE_CHARS = 2000  # read_file cuts longer lines (minified code would flood context)
LIST_DIR_CAP = 500
GLOB_CAP = 200
GREP_MAX_FILE_BYTES = 5 * 1024 * 1024
GREP_TIME_LIMIT = 10.0  # seconds per grep call when no tools.grep_timeout setting applies


# --- argument helpers: the model sometimes sends "10" for 10; accept it, refuse nonsense.


def _str_arg(args: dict[str, Any], key: str, default: str | None = None) -> str:
    v = args.get(key)
    if v is None:
        if default is None:
            raise ToolError(f"missing required argument {key!r}")
        return default
    if not isinstance(v, str):
        raise ToolError(f"{key!r} must be a string, got {type(v).__name__}")
    return v


def _int_arg(args: dict[str, Any], key: str, default: int, lo: int, hi: int | None = None) -> int:
    v = args.get(key)
    if v is None:
        return default
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        v = int(v)
    elif isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ToolError(f"{key!r} must be an integer, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ToolError(f"{key!r} must be {bounds}, got {v}")
    return v


def _bool_arg(args: dict[str, Any], key: str, default: bool) -> bool:
    v = args.get(key)
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise ToolError(f"{key!r} must be true or false, got {v!r}")


# --- shared helpers


def _missing(ctx: ToolContext, p: Path, what: str = "file or directory") -> ToolError:
    """A 'no such …' error that offers up to 3 similar names from the parent directory."""
    shown = display_path(ctx, p)
    parent = p.parent
    if not parent.is_dir():
        return ToolError(
            f"no such {what}: {shown!r} (directory {display_path(ctx, parent)!r} "
            "does not exist either)"
        )
    try:
        names = os.listdir(parent)
    except OSError:
        names = []
    close = difflib.get_close_matches(p.name, names, n=3, cutoff=0.6)
    msg = f"no such {what}: {shown!r}"
    if close:
        names_shown = ", ".join(repr(display_path(ctx, parent / c)) for c in close)
        msg += f"; did you mean {names_shown}?"
    return ToolError(msg)


def _expand_braces(pattern: str, limit: int = 64) -> list[str]:
    """'*.{ts,tsx}' -> ['*.ts', '*.tsx'] (innermost first, so nesting works)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    out: list[str] = []
    for alt in m.group(1).split(","):
        out.extend(_expand_braces(pattern[: m.start()] + alt + pattern[m.end() :], limit))
        if len(out) > limit:
            raise ToolError(f"pattern {pattern!r} expands to too many alternatives")
    return out


def _segment_regex(seg: str) -> str:
    """One path segment of a glob: '*' and '?' never cross '/', '[...]' is a class."""
    out, i, n = [], 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "*":
            while i + 1 < n and seg[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and seg[j] in "!^":
                j += 1
            if j < n and seg[j] == "]":
                j += 1
            while j < n and seg[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
            else:
                body = seg[i + 1 : j].replace("\\", "\\\\")
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A matcher for '/'-separated relative paths. Supports '*', '?', '[...]',
    '{a,b}' and '**' as a whole segment (zero or more directories)."""
    alternatives = []
    for alt in _expand_braces(pattern):
        segs = [s for s in alt.split("/") if s]
        parts = []
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            if seg == "**":
                parts.append(".*" if last else "(?:[^/]+/)*")
            else:
                parts.append(_segment_regex(seg) + ("" if last else "/"))
        alternatives.append("".join(parts))
    rx = re.compile("(?:" + "|".join(alternatives) + r")\Z", re.S)
    return lambda rel: rx.match(rel) is not None


def _glob_depth(pattern: str) -> int | None:
    """How deep a glob can reach, or None when '**' makes it unbounded."""
    depth = 0
    for alt in _expand_braces(pattern):
        segs = [s for s in alt.split("/") if s]
        if "**" in segs:
            return None
        depth = max(depth, len(segs))
    return depth


def _clean_pattern(pattern: str, key: str = "pattern") -> str:
    pattern = pattern.strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    if not pattern:
        raise ToolError(f"{key!r} is empty; e.g. '**/*.py'")
    if pattern.startswith("/") or pattern.startswith("~"):
        raise ToolError(
            f"{key!r} must be relative; put the directory in 'path' "
            "(e.g. path='src', pattern='**/*.py')"
        )
    if ".." in pattern.split("/"):
        raise ToolError(f"{key!r} may not contain '..'; set 'path' to the directory instead")
    return pattern


class _ReadOnlyTool(abc.ABC):
    """Runs the synchronous ``_run`` in a worker thread."""

    name = ""
    description = ""
    input_schema: dict[str, Any] = {}
    read_only = True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return await asyncio.to_thread(self._run, args, ctx)

    @abc.abstractmethod
    def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """The tool's blocking work; each tool defines it."""


class ReadFileTool(_ReadOnlyTool):
    name = "read_file"
    description = (
        "Read a text file from the workspace. Output is numbered like `cat -n` (line number, "
        "a tab, the line). Reads at most `limit` lines (default 2000) starting at the 1-based "
        "line `offset`; when more remains, a last line says which offset to use next. Lines "
        "over 2000 characters are cut. Binary files and directories are refused (use list_dir "
        "for directories). Paths are relative to the workspace; absolute paths must be inside "
        "it (or inside a spill directory named in an earlier result). "
        'Examples: {"path": "src/app.py"}, {"path": "README.md", "offset": 200, '
        '"limit": 100}.'
    )
    input_schema = {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "File to read, relative to the workspace (e.g. 'src/main.py').",
            },
            "offset": {
                "type": "integer",
                "minimum": 1,
                "description": "1-based line number to start at (default 1).",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "description": "Maximum number of lines to return (default 2000).",
            },
        },
        "required": ["path"],
    }

    def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        p = resolve_path(ctx, _str_arg(args, "path"))
        offset = _int_arg(args, "offset", 1, 1)
        limit = _int_arg(args, "limit", 2000, 1)
        shown = display_path(ctx, p)
        if p.is_dir():
            raise ToolError(f"{shown!r} is a directory; use list_dir to see its contents")
        if not p.exists():
            raise _missing(ctx, p, "file")
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{shown!r} is not a regular file")  # a FIFO would block forever
        with open(p, "rb") as f:
            head = f.read(8192)
        if is_binary(head):
            return ToolResult(
                f"{shown} is a binary file ({st.st_size} bytes); not shown",
                is_error=True,
                meta={"path": shown, "bytes": st.st_size, "lines": None},
            )

        # Stream so a huge file costs memory only for the requested window.
        out: list[str] = []
        total = 0
        end = offset + limit - 1
        with open(p, encoding="utf-8", errors="replace", newline=None) as f:
            for total, line in enumerate(f, start=1):
                if offset <= total <= end:
                    text = _cut(line.rstrip("\n"), MAX_LINE_CHARS)
                    out.append(f"{total:>6}\t{text}")
        meta = {"path": shown, "bytes": st.st_size, "lines": total}
        if total == 0:
            return ToolResult(f"[{shown} is empty]", meta=meta)
        if offset > total:
            raise ToolError(
                f"offset {offset} is past the end of {shown!r}, which has {total} lines"
            )
        last = min(end, total)
        if last < total:
            out.append(f"[lines {offset}-{last} of {total}; use offset={last + 1} to read more]")
        return ToolResult("\n".join(out), meta=meta)


class ListDirTool(_ReadOnlyTool):
    name = "list_dir"
    description = (
        "List a directory in the workspace: subdirectories first (with a trailing '/'), then "
        "files with their sizes; symlinks are shown as 'name -> target'. Nothing is hidden "
        "(dotfiles included). At most 500 entries are shown. Use glob to find files "
        'recursively. Examples: {} for the workspace root, {"path": "src/leon"}.'
    )
    input_schema = {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "Directory to list, relative to the workspace (default '.').",
            }
        },
        "required": [],
    }

    def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        p = resolve_path(ctx, _str_arg(args, "path", "."))
        shown = display_path(ctx, p)
        if not p.exists():
            raise _missing(ctx, p, "directory")
        if not p.is_dir():
            raise ToolError(f"{shown!r} is a file, not a directory; use read_file to read it")
        rows: list[tuple[int, str, str]] = []
        with os.scandir(p) as it:
            for e in it:
                rows.append(self._row(e))
        rows.sort(key=lambda r: (r[0], r[1].casefold(), r[1]))
        lines = [r[2] for r in rows[:LIST_DIR_CAP]]
        if len(rows) > LIST_DIR_CAP:
            lines.append(f"[... and {len(rows) - LIST_DIR_CAP} more entries not shown]")
        if not rows:
            lines = [f"[{shown} is empty]"]
        return ToolResult("\n".join(lines), meta={"path": shown, "entries": len(rows)})

    @staticmethod
    def _row(e: os.DirEntry[str]) -> tuple[int, str, str]:
        """(sort group, name, rendered line); group 0 sorts directories first."""
        try:
            if e.is_symlink():
                target = os.readlink(e.path)
                try:
                    is_dir = e.is_dir()  # follows the link only to place it among dirs
                except OSError:  # a symlink loop
                    is_dir = False
                return (0 if is_dir else 1, e.name, f"{e.name}{'/' if is_dir else ''} -> {target}")
            if e.is_dir(follow_symlinks=False):
                return (0, e.name, f"{e.name}/")
            st = e.stat(follow_symlinks=False)
        except OSError:
            return (1, e.name, f"{e.name}  (unreadable)")
        if stat.S_ISREG(st.st_mode):
            return (1, e.name, f"{e.name}  ({human_size(st.st_size)})")
        return (1, e.name, f"{e.name}  (special file)")


class GlobTool(_ReadOnlyTool):
    name = "glob"
    description = (
        "Find files by name pattern below a directory (default: the workspace). Patterns are "
        "relative to `path` and use '/' separators: '*' and '?' match within one path segment, "
        "'**' matches any number of directories, '[abc]' and '{a,b}' work too. '*.py' only "
        "matches at the top level; use '**/*.py' to search recursively. Returns workspace-"
        "relative paths of files (not directories), newest first, at most 200. Skips .git, "
        "node_modules, __pycache__, virtualenvs, dist and build directories. "
        'Examples: {"pattern": "**/*.py"}, {"pattern": "tests/test_*.py"}, '
        '{"pattern": "**/*.{ts,tsx}", "path": "web"}.'
    )
    input_schema = {
        "type": "object",
        "properties": {
            "pattern": {
                "type": "string",
                "description": "Glob pattern relative to `path`, e.g. '**/*.py' or 'src/*.toml'.",
            },
            "path": {
                "type": "string",
                "description": "Directory to search from, relative to the workspace (default '.').",
            },
        },
        "required": ["pattern"],
    }

    def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = _clean_pattern(_str_arg(args, "pattern"))
        base = resolve_path(ctx, _str_arg(args, "path", "."))
        shown = display_path(ctx, base)
        if not base.exists():
            raise _missing(ctx, base, "directory")
        if not base.is_dir():
            raise ToolError(f"{shown!r} is a file; glob needs a directory as 'path'")
        match = compile_glob(pattern)
        hits = [
            (st.st_mtime, p)
            for p, st in walk_files(ctx, base, max_depth=_glob_depth(pattern))
            if match(p.relative_to(base).as_posix())
        ]
        hits.sort(key=lambda h: (-h[0], str(h[1])))
        meta = {"path": shown, "pattern": pattern, "matches": len(hits)}
        if not hits:
            return ToolResult(f"no files match {pattern!r} under {shown}", meta=meta)
        lines = [display_path(ctx, p) for _, p in hits[:GLOB_CAP]]
        if len(hits) > GLOB_CAP:
            lines.append(
                f"[{len(hits) - GLOB_CAP} more files not shown; narrow the pattern or path]"
            )
        return ToolResult("\n".join(lines), meta=meta)


class GrepTool:
    """Regex search in file contents. The matching runs in a child process killed at a
    time limit (:mod:`.grepchild`), on RE2 wherever that gives Python's answer
    (:mod:`.linematch`); this side walks, filters and reads the files."""

    name = "grep"
    description = (
        "Search file contents with a Python regular expression (re module syntax), line by "
        "line, in all text files below `path` (a directory or a single file; default: the "
        "workspace). Output lines are 'path:line_number:text'; with `context`, surrounding "
        "lines are shown as 'path-line_number-text' and groups are separated by '--'. "
        "Binary files, files over 5 MB and .git/node_modules/virtualenv/build directories are "
        "skipped. `glob` filters files: '*.py' matches file names at any depth, a pattern "
        "with '/' matches the path relative to `path`. Shows at most `max_results` matching "
        "lines (default 200). Runs with a time limit (10 s): backreferences, lookarounds, "
        "\\B, atomic groups and possessive quantifiers (and \\b in non-ASCII files) need a "
        "backtracking engine where nested repetition like (a+)+ can time out; you then get an "
        'error: simplify the pattern. Examples: {"pattern": "def \\\\w+_tool"}, '
        '{"pattern": "TODO|FIXME", "glob": "*.{py,md}", "ignore_case": true}, '
        '{"pattern": "class Config", "path": "src", "context": 3}.'
    )
    input_schema = {
        "type": "object",
        "properties": {
            "pattern": {
                "type": "string",
                "description": "Python regular expression searched in each line, e.g. "
                "'import\\s+os' (escape literal characters such as '(' or '.').",
            },
            "path": {
                "type": "string",
                "description": "Directory or file to search, relative to the workspace "
                "(default '.').",
            },
            "glob": {
                "type": "string",
                "description": "Only search files matching this glob, e.g. '*.py' or "
                "'src/**/*.ts'.",
            },
            "ignore_case": {
                "type": "boolean",
                "description": "Match case-insensitively (default false).",
            },
            "context": {
                "type": "integer",
                "minimum": 0,
                "maximum": 50,
                "description": "Lines of context to show before and after each match (default 0).",
            },
            "max_results": {
                "type": "integer",
                "minimum": 1,
                "description": "Maximum number of matching lines to show (default 200).",
            },
        },
        "required": ["pattern"],
    }
    read_only = True

    def __init__(self, time_limit: float | None = None):
        self._time_limit = time_limit  # None: the tools.grep_timeout setting

    def time_limit(self, ctx: ToolContext) -> float:
        """Seconds one call may take, walking and matching together."""
        if self._time_limit is not None:
            return self._time_limit
        settings = getattr(getattr(ctx, "session", None), "settings", None)
        if settings is not None:
            with contextlib.suppress(KeyError):
                return float(settings["tools.grep_timeout"])
        return GREP_TIME_LIMIT

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        search = await asyncio.to_thread(_GrepSearch.from_args, args, ctx)
        limit = self.time_limit(ctx)
        header = {"pattern": search.pattern, "ignore_case": search.ignore_case,
                  "context": search.context, "max_results": search.max_results}
        try:
            found, _ = await run_grep(header, search.produce, limit)
        except GrepTimedOut as exc:
            return ToolResult(_timed_out_message(exc, search.pattern), is_error=True,
                              meta={"path": search.shown, "timed_out": True,
                                    "files_searched": exc.files_sent})
        meta = {
            "path": search.shown,
            "matches": found.matches,
            "shown": found.shown,
            "files": found.files,
            "skipped_large": len(search.too_big),
        }
        out = list(found.out)
        notes = []
        if found.matches > found.shown:
            notes.append(
                f"[{found.matches - found.shown} more matches not shown; narrow the pattern, "
                "path or glob, or raise max_results]"
            )
        if search.too_big:
            listed = ", ".join(search.too_big[:5]) + (", ..." if len(search.too_big) > 5 else "")
            notes.append(f"[skipped {len(search.too_big)} file(s) larger than 5 MB: {listed}]")
        if not out:
            out.append(f"no matches for {search.pattern!r} in {search.shown}")
        return ToolResult("\n".join(out + notes), meta=meta)


def _timed_out_message(exc: GrepTimedOut, pattern: str) -> str:
    why = (f" This pattern needs Python's backtracking engine because {exc.why_python}."
           if exc.why_python else "")
    return (f"pattern {pattern!r} took too long: the search was stopped after {exc.limit:g} s "
            f"({exc.files_sent} file(s) read).{why} Simplify it — avoid nested repetition "
            "such as (a+)+ or (a|aa)*, backreferences and lookarounds — or narrow `path` or "
            "`glob`.")


class _GrepSearch:
    """One grep call's checked arguments, and the producer that streams its files."""

    def __init__(self, pattern: str, ignore_case: bool, context: int, max_results: int,
                 target: Path, shown: str, file_filter: Callable[[Path], bool] | None,
                 ctx: ToolContext):
        self.pattern = pattern
        self.ignore_case = ignore_case
        self.context = context
        self.max_results = max_results
        self.target = target
        self.shown = shown
        self.file_filter = file_filter
        self.ctx = ctx
        self.too_big: list[str] = []

    @classmethod
    def from_args(cls, args: dict[str, Any], ctx: ToolContext) -> _GrepSearch:
        pattern = _str_arg(args, "pattern")
        if not pattern:
            raise ToolError("'pattern' is empty")
        if len(pattern) > MAX_PATTERN_CHARS:
            raise ToolError(f"'pattern' is longer than {MAX_PATTERN_CHARS} characters")
        ignore_case = _bool_arg(args, "ignore_case", False)
        context = _int_arg(args, "context", 0, 0, 50)
        max_results = _int_arg(args, "max_results", 200, 1)
        glob_pat = _str_arg(args, "glob", "")
        glob_pat = _clean_pattern(glob_pat, "glob") if glob_pat else ""
        target = resolve_path(ctx, _str_arg(args, "path", "."))
        shown = display_path(ctx, target)
        if not target.exists():
            raise _missing(ctx, target)
        file_filter: Callable[[Path], bool] | None = None
        if target.is_dir():
            if glob_pat:
                matcher = compile_glob(glob_pat)
                by_name = "/" not in glob_pat  # like rg -g: '*.py' matches at any depth
                file_filter = lambda p: matcher(  # noqa: E731
                    p.name if by_name else p.relative_to(target).as_posix()
                )
        elif not stat.S_ISREG(target.stat().st_mode):
            raise ToolError(f"{shown!r} is not a regular file")
        return cls(pattern, ignore_case, context, max_results, target, shown, file_filter, ctx)

    def produce(self, sender: FileSender) -> None:
        """The worker thread's part: walk, filter, read and send each text file."""
        target = self.target
        if target.is_dir():
            files: Iterator[tuple[Path, os.stat_result]] = walk_files(self.ctx, target)
        else:
            files = iter([(target, target.stat())])
        for p, st in files:
            if sender.stopped:
                return
            if self.file_filter is not None and not self.file_filter(p):
                continue
            rel = display_path(self.ctx, p)
            if st.st_size > GREP_MAX_FILE_BYTES:
                self.too_big.append(rel)
                continue
            try:
                with open(p, "rb") as f:
                    data = f.read(GREP_MAX_FILE_BYTES + 1)  # it may have grown since
            except OSError:
                continue
            if len(data) > GREP_MAX_FILE_BYTES:
                self.too_big.append(rel)
                continue
            if is_binary(data):
                if p == target:
                    raise ToolError(f"{self.shown!r} is a binary file ({st.st_size} bytes)")
                continue
            sender.send(rel, data)


def read_only_tools() -> list[Tool]:
    """One instance of each read-only file tool, in a stable order."""
    return [ReadFileTool(), ListDirTool(), GlobTool(), GrepTool()]
