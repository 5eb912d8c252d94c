"""Rolling files back (or forward) with the conversation.

Every change a tool makes is a ``file_ops`` row (content before and after, as blobs, and
the workspace it was confined to) tied to the checkpoint of the tool results it belongs
to; a sub-agent's net changes are also recorded in its parent's thread. Restoring the
files of checkpoint C sets every file leon changed in the thread to its content *at C*,
wherever the conversation head is (before, at or after C, or on another branch):

* the content of a file at C is the *after* of the newest change on C's ancestor chain
  (C included), or else the *before* of the file's first recorded change in the thread
  (its state before leon touched it; no content: the file is deleted). A change whose
  tool results never got stored (leon died mid-round) belongs to the checkpoint that was
  newest when it was made, and counts for the checkpoints after it on that chain;
* a file needs restoring when that content differs from what leon last wrote to it (the
  newest row, ``restore`` rows included) and from what is on disk now. Before anything is
  written, its content on disk must still be what leon last wrote; a file changed outside
  leon since (an editor, a command, git) is a conflict and nothing is done, unless forced.
  Forcing keeps the overwritten content as a blob, in a ``restore`` row, so it is not lost;
* every path is confined as the file tools confine theirs (:func:`resolve_path`: symlinks
  resolved at every component, the real path inside the workspace the change was made
  in). A path that now leads out of it (a symlinked directory or file, a workspace that
  moved or became a symlink, a row naming a path elsewhere) is refused, even when forced,
  and then nothing at all is changed. The I/O itself goes through
  :mod:`leon.agent.confined_io`, which follows no symlink, so one swapped in after the
  check makes the write fail instead of landing outside.

Files a thread's rows say nothing about, and changes made by ``bash`` commands, are not
restored.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from leon.agent import confined_io as cio
from leon.agent.tools.base import ToolContext, ToolError
from leon.agent.tools.paths import resolve_path
from leon.store.leon_store import Checkpoint, LeonStore, NotFound
from leon.store.tool_state import FileOp, ToolState

# The "hash" of something that is not a regular file (a symlink, a directory): it never
# equals a content hash, so such a path is always a conflict.
NOT_REGULAR = "(not a regular file)"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shown(text: str) -> str:
    """``text`` (a path, or a message quoting one) safe to print: every character that is
    not printable (an escape sequence could drive the terminal) is written as its
    Python escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass
class FileRestore:
    path: str                   # as recorded (absolute)
    workspace: str              # the root it is confined to
    real_dir: str               # its directory, resolved and checked inside the workspace
    target_hash: str | None     # content to restore; None: the file must not exist
    expected_hash: str | None   # what leon last wrote; None: leon deleted it
    current_hash: str | None    # on disk now; None: no file; NOT_REGULAR: something else
    data: bytes | None = field(default=None, repr=False)  # the target content

    @property
    def conflict(self) -> bool:
        return self.current_hash != self.expected_hash

    @property
    def action(self) -> str:
        if self.target_hash is None:
            return "deleted"
        return "created" if self.current_hash is None else "restored"


@dataclass
class RestorePlan:
    thread_id: str
    checkpoint_id: int
    files: list[FileRestore] = field(default_factory=list)  # only files that will change
    refused: list[str] = field(default_factory=list)        # one line per refused path

    @property
    def conflicts(self) -> list[FileRestore]:
        return [f for f in self.files if f.conflict]

    @property
    def changes(self) -> list[FileRestore]:
        """The files whose content differs from their content at the checkpoint."""
        return self.files


class FilesChanged(Exception):
    """Files changed outside leon since its last change to them; nothing was restored."""

    def __init__(self, plan: RestorePlan):
        self.plan = plan
        listed = ", ".join(shown(f.path) for f in plan.conflicts)
        super().__init__(
            f"not restoring files: changed outside leon since its last change: {listed}. "
            "Nothing was changed (neither files nor conversation); force to overwrite them "
            "(their current content is kept in leon.db).")


class RestoreRefused(Exception):
    """A path leads outside its workspace, or cannot be restored safely; nothing was
    changed. Forcing does not help."""

    def __init__(self, plan: RestorePlan):
        self.plan = plan
        super().__init__("; ".join(plan.refused))


class RestoreFailed(Exception):
    """Writing failed midway (a file changed, or a directory was swapped for a symlink,
    after the check). The files in ``done`` were restored and recorded; the rest were not."""

    def __init__(self, message: str, done: list[FileRestore]):
        self.done = done
        super().__init__(message)


class _Refused(Exception):
    pass


# -- what a file held at a checkpoint -------------------------------------------------------
def _ancestors(parents: dict[int, int | None], start: int | None) -> set[int]:
    out: set[int] = set()
    while start is not None and start not in out:
        out.add(start)
        start = parents.get(start)
    return out


def contents_at(ops: list[FileOp], checkpoints: list[Checkpoint],
                checkpoint_id: int) -> dict[str, str | None]:
    """The content (blob hash; None: no file) of every file the thread's ``ops`` (in id
    order) changed, at ``checkpoint_id``. ``restore`` rows are not changes of the
    conversation and are ignored here."""
    parents = {c.id: c.parent_id for c in checkpoints}
    chain = _ancestors(parents, checkpoint_id)
    by_time = sorted((c.created_at, c.id) for c in checkpoints)
    times = [t for t, _ in by_time]

    def on_chain(op: FileOp) -> bool:
        if op.checkpoint_id is not None:
            return op.checkpoint_id in chain
        # Its results were never stored: it belongs to the checkpoint that was newest when
        # it was made, and is part of the files' state only after that checkpoint.
        i = bisect.bisect_right(times, op.created_at)
        anchor = by_time[i - 1][1] if i else None
        return anchor is not None and anchor != checkpoint_id and anchor in chain

    first: dict[str, str | None] = {}
    latest: dict[str, str | None] = {}
    for op in ops:
        if op.kind == "restore":
            continue
        first.setdefault(op.path, op.before_hash)
        if on_chain(op):
            latest[op.path] = op.after_hash
    return {path: latest.get(path, before) for path, before in first.items()}


# -- confinement -----------------------------------------------------------------------------
def confine(path: str, workspace: str | None) -> tuple[str, str]:
    """(real directory, file name) of the recorded ``path``, after checking it the way
    the file tools check theirs: the workspace must still be the directory it was (not
    moved, not a symlink now), and the path, resolved at every component, must lie
    inside it (its directory, and the file itself when it is a symlink). Raises
    :class:`_Refused` with a one-line reason naming the path and the culprit."""
    if not workspace:
        raise _Refused(f"not restoring {shown(path)}: no workspace is recorded for this change; "
                       "run `leon rollback` in the workspace or pass --workspace")
    if "\x00" in path or not os.path.isabs(path):
        raise _Refused(f"not restoring {shown(path)}: not an absolute path")
    if "\x00" in workspace or not os.path.isabs(workspace):
        raise _Refused(f"not restoring {shown(path)}: the workspace {shown(workspace)} is "
                       "not an absolute path")
    ws = os.path.normpath(workspace)
    real_ws = os.path.realpath(ws)
    if real_ws != ws:
        how = "a symlink" if os.path.islink(ws) else "reached through a symlink"
        raise _Refused(f"not restoring {shown(path)}: the workspace {shown(ws)} is now {how} "
                       f"to {shown(real_ws)}")
    if not os.path.isdir(ws):
        raise _Refused(f"not restoring {shown(path)}: the workspace {shown(ws)} is gone")
    name = os.path.basename(path)
    if name in ("", ".", ".."):
        raise _Refused(f"not restoring {shown(path)}: not a file's path")
    ctx = ToolContext(workspace=Path(ws))
    try:
        real_dir = resolve_path(ctx, os.path.dirname(path), write=True)
        resolve_path(ctx, path, write=True)  # a symlink at the file itself that leads out
    except ToolError as exc:  # it names the link and where it leads (which may be hostile)
        raise _Refused(f"not restoring {shown(path)}: {shown(str(exc))}") from None
    return str(real_dir), name


def _on_disk(real_dir: str, name: str) -> tuple[str, bytes | None]:
    """(kind, content) of what stands at ``real_dir/name`` now, following no symlink."""
    try:
        with cio.open_dir(real_dir) as fd:
            return cio.read_file(fd, name)
    except cio.DirMissing:
        return cio.MISSING, None


def _hash_of(kind: str, data: bytes | None) -> str | None:
    if kind == cio.FILE:
        assert data is not None
        return sha256(data)
    return None if kind == cio.MISSING else NOT_REGULAR


# -- plan and restore ----------------------------------------------------------------------
async def plan_restore(store: LeonStore, thread_id: str, checkpoint_id: int, *,
                       workspace: Path | str | None = None) -> RestorePlan:
    """What restoring the files of ``checkpoint_id`` would do. Reads files (inside their
    workspace only) and blobs; writes nothing. ``workspace`` is the root for rows that
    do not record theirs (older and imported ones)."""
    target = await store.get_checkpoint(thread_id, checkpoint_id)
    checkpoints = await store.checkpoints(thread_id)
    ops = await ToolState(store).file_ops(thread_id)
    wanted = contents_at(ops, checkpoints, target.id)
    last_written: dict[str, str | None] = {}
    roots: dict[str, str] = {}
    for op in ops:
        last_written[op.path] = op.after_hash
        if op.workspace:
            roots[op.path] = op.workspace
    fallback = str(Path(workspace).absolute()) if workspace is not None else None

    plan = RestorePlan(thread_id, target.id)
    for path, want in wanted.items():
        expected = last_written[path]
        if want == expected:
            continue  # leon's record: unchanged between the checkpoint and now
        root = roots.get(path, fallback)
        try:
            real_dir, name = confine(path, root)
            kind, data = await asyncio.to_thread(_on_disk, real_dir, name)
        except _Refused as exc:
            plan.refused.append(str(exc))
            continue
        except OSError as exc:  # e.g. a component that is a file now
            plan.refused.append(f"not restoring {shown(path)}: {_why(exc)}")
            continue
        current = _hash_of(kind, data)
        if current == want:
            continue
        if kind == cio.OTHER:
            plan.refused.append(f"not restoring {shown(path)}: a directory or another "
                                "non-file stands there now; not replacing it")
            continue
        content = None
        if want is not None:
            content = await _blob(store, want)
            if content is None:
                plan.refused.append(f"not restoring {shown(path)}: its content at checkpoint "
                                    f"{target.id} is missing or damaged in leon.db")
                continue
        assert root is not None
        plan.files.append(FileRestore(path, root, real_dir, want, expected, current, content))
    return plan


async def _blob(store: LeonStore, digest: str) -> bytes | None:
    """The blob ``digest``, or None when it is missing or does not match its hash."""
    try:
        data = await store.get_blob(digest)
    except NotFound:
        return None
    return data if sha256(data) == digest else None


def _why(exc: OSError) -> str:
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {shown(str(exc.filename))}"
    return exc.strerror or str(exc)


def _apply(item: FileRestore) -> bytes | None:
    """Write one planned file; returns the content it replaced. Re-reads the file through
    the same no-follow descriptor first, so a change since the plan is not overwritten."""
    name = os.path.basename(item.path)
    try:
        with cio.open_dir(item.real_dir, create=item.target_hash is not None) as fd:
            kind, data = cio.read_file(fd, name)
            if _hash_of(kind, data) != item.current_hash:
                raise OSError(f"{shown(item.path)} changed while it was being restored")
            if item.target_hash is None:
                cio.remove_file(fd, name)
            else:
                assert item.data is not None
                cio.replace_file(fd, name, item.data)
            return data
    except cio.DirMissing:
        if item.current_hash is None:
            return None  # nothing there, and nothing to be there
        raise OSError(f"{shown(item.path)} vanished while it was being restored") from None


async def restore_files(store: LeonStore, thread_id: str, checkpoint_id: int, *,
                        force: bool = False,
                        workspace: Path | str | None = None) -> RestorePlan:
    """Set every file the thread changed to its content at ``checkpoint_id``, from any
    head. Checks every file before writing any: raises :class:`RestoreRefused` (even when
    ``force``) for a path outside its workspace, :class:`FilesChanged` for files changed
    outside leon unless ``force`` (both change nothing), :class:`RestoreFailed` when a
    write fails midway. ``workspace``: the root for rows that do not record one."""
    plan = await plan_restore(store, thread_id, checkpoint_id, workspace=workspace)
    if plan.refused:
        raise RestoreRefused(plan)
    if plan.conflicts and not force:
        raise FilesChanged(plan)
    state = ToolState(store)
    done: list[FileRestore] = []
    try:
        for item in plan.files:
            try:
                replaced = await asyncio.to_thread(_apply, item)
            except OSError as exc:
                raise RestoreFailed(f"could not restore {shown(item.path)}: {_why(exc)}",
                                    done) from exc
            before_hash = await state.put_content(replaced)
            await state.add_file_op(thread_id, item.path, before_hash, item.target_hash,
                                    kind="restore", tool="rollback",
                                    checkpoint_id=checkpoint_id, workspace=item.workspace)
            done.append(item)
    finally:
        await store.add_event(thread_id, "rollback_files", {
            "to": checkpoint_id, "forced": bool(force and plan.conflicts),
            "complete": len(done) == len(plan.files),
            "files": [{"path": f.path, "action": f.action} for f in done]})
    return plan
