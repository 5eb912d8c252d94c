"""Rolling files back with the conversation.

Every change a tool makes is a ``file_ops`` row (content before and after, as blobs) tied
to the checkpoint of the tool results it belongs to; a sub-agent's net changes are also
recorded in its parent's thread. To restore the files of checkpoint C:

* the checkpoints to undo are those on the current branch (head and its ancestors) that
  are not ancestors of C; those to redo, when C lies on another branch, the reverse;
* each file one of those touched is set to its content at C: the *after* of the newest
  change at or before C, or else the *before* of the oldest undone change (no content:
  the file is deleted);
* before anything is written, each file's current content must equal the *after* of its
  newest recorded change; a file changed outside leon since (an editor, a command, git)
  is a conflict and nothing is done, unless forced. Forcing keeps the overwritten
  content as a blob, in a ``restore`` row, so it is not lost either.

Changes made by ``bash`` commands are not recorded and are not rolled back.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from leon.agent.tools.write import write_bytes_atomic
from leon.store.leon_store import LeonStore
from leon.store.tool_state import FileOp, ToolState


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _current(path: Path) -> tuple[str | None, bytes | None, bool]:
    """(hash, content, is_other): hash None when the file does not exist; is_other when
    something that is not a regular file stands there."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        return "(not a regular file)", None, True
    if not path.exists():
        return None, None, False
    data = path.read_bytes()
    return sha256(data), data, False


@dataclass
class FileRestore:
    path: str
    target_hash: str | None     # content to restore; None: the file must not exist
    expected_hash: str | None   # the newest recorded content; None: leon deleted it
    current_hash: str | None

    @property
    def conflict(self) -> bool:
        return self.current_hash != self.expected_hash

    @property
    def action(self) -> str:
        if self.target_hash is None:
            return "delete"
        return "create" if self.current_hash is None else "restore"


@dataclass
class RestorePlan:
    thread_id: str
    checkpoint_id: int
    files: list[FileRestore] = field(default_factory=list)

    @property
    def conflicts(self) -> list[FileRestore]:
        return [f for f in self.files if f.conflict]

    @property
    def changes(self) -> list[FileRestore]:
        """Files whose content actually differs from the target."""
        return [f for f in self.files if f.current_hash != f.target_hash]


class FilesChanged(Exception):
    """Files changed outside leon since its last change to them; nothing was restored."""

    def __init__(self, plan: RestorePlan):
        self.plan = plan
        listed = ", ".join(f.path for f in plan.conflicts)
        super().__init__(
            f"not restoring files: changed outside leon since its last change: {listed}. "
            "Nothing was changed (neither files nor conversation); force to overwrite them "
            "(their current content is kept in leon.db).")


def _ancestors(parents: dict[int, int | None], start: int | None) -> set[int]:
    out: set[int] = set()
    while start is not None and start not in out:
        out.add(start)
        start = parents.get(start)
    return out


async def plan_restore(store: LeonStore, thread_id: str, checkpoint_id: int) -> RestorePlan:
    """What restoring the files of ``checkpoint_id`` would do (reads files, writes nothing)."""
    target = await store.get_checkpoint(thread_id, checkpoint_id)
    head = await store.head(thread_id)
    parents = {c.id: c.parent_id for c in await store.checkpoints(thread_id)}
    keep = _ancestors(parents, target.id)
    branch = _ancestors(parents, head.id if head else None)
    ops = await ToolState(store).file_ops(thread_id)

    def undone(op: FileOp) -> bool:
        if op.checkpoint_id is None:  # a change whose results never got stored (crash)
            return op.created_at > target.created_at
        return op.checkpoint_id in branch and op.checkpoint_id not in keep

    def redone(op: FileOp) -> bool:
        return op.checkpoint_id in keep and op.checkpoint_id not in branch

    changes = [op for op in ops if op.kind != "restore"]
    touched = dict.fromkeys(op.path for op in changes if undone(op) or redone(op))
    plan = RestorePlan(thread_id, target.id)
    for path in touched:
        kept = [op for op in changes if op.path == path and op.checkpoint_id in keep]
        if kept:
            target_hash = kept[-1].after_hash
        else:
            target_hash = next(op for op in changes if op.path == path and undone(op)).before_hash
        newest = [op for op in ops if op.path == path][-1]
        current, _, _ = await asyncio.to_thread(_current, Path(path))
        plan.files.append(FileRestore(path, target_hash, newest.after_hash, current))
    return plan


async def restore_files(store: LeonStore, thread_id: str, checkpoint_id: int, *,
                        force: bool = False) -> RestorePlan:
    """Set the files changed since (or, across branches, before) ``checkpoint_id`` to
    their content there. Raises :class:`FilesChanged` (changing nothing) on conflicts
    unless ``force``."""
    plan = await plan_restore(store, thread_id, checkpoint_id)
    if plan.conflicts and not force:
        raise FilesChanged(plan)
    state = ToolState(store)
    for item in plan.changes:
        path = Path(item.path)
        _, current_data, _ = await asyncio.to_thread(_current, path)
        before_hash = await state.put_content(current_data)
        if item.target_hash is None:
            await asyncio.to_thread(_unlink, path)
        else:
            data = await store.get_blob(item.target_hash)
            await asyncio.to_thread(_write, path, data)
        await state.add_file_op(thread_id, item.path, before_hash, item.target_hash,
                                kind="restore", tool="rollback", checkpoint_id=checkpoint_id)
    await store.add_event(thread_id, "rollback_files", {
        "to": checkpoint_id, "forced": bool(force and plan.conflicts),
        "files": [{"path": f.path, "action": f.action} for f in plan.changes]})
    return plan


def _unlink(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(f"{path} is a directory now; not removing it")
    path.unlink(missing_ok=True)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(f"{path} is a directory now; not replacing it")
    write_bytes_atomic(path, data)
