"""Workspace confinement for file tools.

Every path the model supplies goes through :func:`resolve_path`, which resolves
symlinks fully and then checks the *real* location against the allowed roots — a
lexical check alone would be fooled by ``link -> /etc``.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .base import ToolContext, ToolError

# Directory names walkers (glob, grep) never descend into: generated or vendored
# trees that are huge and almost never what the model is looking for.
SKIP_DIRS: frozenset[str] = frozenset(
    {
        ".git",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".tox",
        "dist",
        "build",
    }
)

BINARY_SNIFF_BYTES = 8192
# Share of undecodable bytes tolerated before a NUL-free file counts as binary, so a
# Latin-1 file with a few accented letters is still shown as text.
_BINARY_ERROR_RATIO = 0.10


def allowed_roots(ctx: ToolContext, *, write: bool = False) -> list[Path]:
    """The resolved directories a tool may touch: the workspace, plus the extra
    read roots unless ``write``."""
    roots = [ctx.workspace.resolve()]
    if not write:
        roots.extend(Path(r).resolve() for r in ctx.extra_read_roots)
    return roots


def _inside(p: Path, roots: list[Path]) -> bool:
    return any(p == r or p.is_relative_to(r) for r in roots)


def is_allowed(ctx: ToolContext, p: Path, *, write: bool = False) -> bool:
    """True if ``p`` (after resolving symlinks) lies inside an allowed root."""
    try:
        real = Path(p).resolve()
    except (OSError, RuntimeError):
        return False
    return _inside(real, allowed_roots(ctx, write=write))


def _symlink_culprit(lexical: Path, roots: list[Path]) -> tuple[Path, Path] | None:
    """The first symlink along ``lexical`` that leads from inside the roots to outside
    them, with its real target — so the refusal can name the link, not just the path."""
    prefix = Path(lexical.anchor)
    for part in lexical.parts[1:]:
        prefix = prefix / part
        if not os.path.islink(prefix):
            continue
        real = Path(os.path.realpath(prefix))
        parent_real = Path(os.path.realpath(prefix.parent))
        if _inside(parent_real, roots) and not _inside(real, roots):
            return prefix, real
    return None


def resolve_path(ctx: ToolContext, path: str, *, write: bool = False) -> Path:
    """Resolve a model-supplied ``path`` to a real absolute path inside the allowed roots.

    Relative paths are taken from ``ctx.workspace``; absolute paths are accepted when
    they land inside the workspace (or, for reads, inside ``ctx.extra_read_roots``).
    Symlinks are followed fully before the check. Raises :class:`ToolError` with a
    message the model can act on when the path is empty, contains NUL, or escapes.
    """
    if not isinstance(path, str):
        raise ToolError(f"path must be a string, got {type(path).__name__}")
    if not path.strip():
        raise ToolError("path is empty; use '.' for the workspace root")
    if "\x00" in path:
        raise ToolError("path contains a NUL byte")

    ws = ctx.workspace.resolve()
    roots = allowed_roots(ctx, write=write)
    raw = Path(os.path.expanduser(path)) if path.startswith("~") else Path(path)
    candidate = raw if raw.is_absolute() else ws / raw
    try:
        real = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop on 3.11
        raise ToolError(f"cannot resolve path {path!r}: {exc}") from exc
    if _inside(real, roots):
        return real

    if write and _inside(real, allowed_roots(ctx, write=False)):
        raise ToolError(
            f"path {path!r} is in a read-only location ({real}); only files inside "
            f"the workspace {ws} can be changed"
        )
    lexical = Path(os.path.normpath(candidate))
    culprit = _symlink_culprit(lexical, roots)
    if culprit is not None:
        link, target = culprit
        try:
            shown = str(link.relative_to(ws))
        except ValueError:
            shown = str(link)
        msg = f"{shown!r} is a symlink to {target}, outside the workspace {ws}"
        if shown != path:
            msg += f" (in path {path!r})"
        raise ToolError(msg)
    if _inside(lexical, roots):
        # No single link to blame, e.g. 'link/../x' where '..' is taken from the target.
        raise ToolError(
            f"path {path!r} resolves through a symlink to {real}, outside the workspace {ws}"
        )
    raise ToolError(f"path {path!r} is outside the workspace {ws}; use a path inside the workspace")


def display_path(ctx: ToolContext, p: Path | str) -> str:
    """``p`` relative to the workspace for messages ('.' for the workspace itself), or
    absolute when it lies elsewhere (e.g. in an extra read root)."""
    p = Path(p)
    if not p.is_absolute():
        return str(p)
    for base in (ctx.workspace.resolve(), ctx.workspace.absolute()):
        try:
            rel = p.relative_to(base)
        except ValueError:
            continue
        return str(rel) if rel.parts else "."
    return str(p)


def is_binary(data: bytes) -> bool:
    """Guess whether ``data`` (a file's first bytes) is binary: a NUL byte in the first
    8 KiB, or more than a small share of bytes that are not valid UTF-8."""
    sample = data[:BINARY_SNIFF_BYTES]
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    # final=False: a multi-byte character cut at the sample edge is not an error.
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(sample, final=False)
    bad = text.count("\ufffd") - sample.count("\ufffd".encode())
    return bad > len(sample) * _BINARY_ERROR_RATIO


def walk_files(
    ctx: ToolContext, root: Path, *, max_depth: int | None = None
) -> Iterator[tuple[Path, os.stat_result]]:
    """Yield ``(path, stat)`` for regular files below ``root`` in sorted order.

    Skips :data:`SKIP_DIRS`, never descends into symlinked directories (no loops, no
    escapes), yields symlinked files only when their target is an allowed regular file,
    and skips FIFOs/devices (reading one would block). ``max_depth`` limits how many
    path components below ``root`` a yielded file may have.
    """
    roots = allowed_roots(ctx)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        depth = len(here.relative_to(root).parts)
        if max_depth is not None and depth + 1 >= max_depth:
            dirnames[:] = []
        else:
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            p = here / name
            try:
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    real = p.resolve()
                    if not _inside(real, roots):
                        continue
                    st = os.stat(real)
            except (OSError, RuntimeError):
                continue  # vanished, dangling link, loop, permission denied
            if stat.S_ISREG(st.st_mode):
                yield p, st
