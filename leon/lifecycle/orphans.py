"""Orphans: files that belong to nothing live, removed at startup within a time budget.

* spill directories of threads that no longer exist (or are being deleted), and spill
  files in a live thread's directory that no ``spills`` row records;
* sandbox directories without a sandbox row, and sandboxes of finished or deleted
  threads whose lease is not held (:func:`leon.agent.sandbox.collect_garbage`);
* archive temp files a crash left mid-write.

Only entries untouched for :data:`MIN_AGE` seconds are removed, so a thread another
process is creating right now keeps its first spill file. The result is one summary line
and one ``orphans`` event — never a warning per file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leon.lifecycle.archive import TMP_PREFIX, TMP_SUFFIX
from leon.paths import PathError, Paths, remove_tree
from leon.store import Stores

MIN_AGE = 60.0  # seconds an entry must be untouched before it counts as an orphan


@dataclass
class OrphanReport:
    spill_dirs: int = 0
    spill_files: int = 0
    archive_tmp: int = 0
    sandbox_dirs: int = 0
    sandboxes: int = 0
    leases: int = 0
    bytes: int = 0
    left_for_later: int = 0
    dry_run: bool = False
    examples: list[str] = field(default_factory=list)  # a few paths, for the event

    @property
    def anything(self) -> bool:
        return bool(self.spill_dirs or self.spill_files or self.archive_tmp
                    or self.sandbox_dirs or self.sandboxes or self.leases)

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        text = (f"orphans: {verb} {self.spill_dirs} spill dir(s), {self.spill_files} spill "
                f"file(s), {self.sandbox_dirs + self.sandboxes} sandbox(es), "
                f"{self.archive_tmp} archive temp file(s) ({_human(self.bytes)})")
        if self.leases:
            text += f"; closed {self.leases} stale lease(s)"
        if self.left_for_later:
            text += f"; {self.left_for_later} left for the next start (time budget)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"spill_dirs": self.spill_dirs, "spill_files": self.spill_files,
                "archive_tmp": self.archive_tmp, "sandbox_dirs": self.sandbox_dirs,
                "sandboxes": self.sandboxes, "leases": self.leases, "bytes": self.bytes,
                "left_for_later": self.left_for_later, "examples": self.examples[:5],
                "summary": self.summary()}


def _human(n: int) -> str:
    from leon.lifecycle.retention import human

    return human(n)


def _size(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for dirpath, _, names in os.walk(path):  # never into symlinked directories
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _old(path: Path, now: float) -> bool:
    try:
        return path.lstat().st_mtime <= now - MIN_AGE
    except OSError:
        return False


# An orphan: its kind, the root it lies under ("cache" or "home") and the names below it.
Orphan = tuple[str, str, tuple[str, ...]]


def _scan(paths: Paths, live: set[str], recorded: set[tuple[str, str]],
          now: float) -> list[Orphan]:
    """Orphan candidates, without touching anything. Nothing behind a symlink is looked
    at: ``spill`` itself, a thread's directory or an archive directory that is a link is
    not leon's (a symlinked file in a live thread's directory is an orphan: the link goes,
    never its target)."""
    found: list[Orphan] = []
    if paths.spill.is_dir() and not paths.spill.is_symlink():
        for entry in sorted(paths.spill.iterdir()):
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name not in live:
                    if _old(entry, now):
                        found.append(("spill_dir", "cache", ("spill", entry.name)))
                    continue
                for f in sorted(entry.iterdir()):
                    if (f.is_symlink() or f.is_file()) and (entry.name, f.name) not in recorded \
                            and _old(f, now):
                        found.append(("spill_file", "cache", ("spill", entry.name, f.name)))
    if paths.archive.is_dir() and not paths.archive.is_symlink():
        for f in paths.archive.iterdir():
            if f.name.startswith(TMP_PREFIX) and f.name.endswith(TMP_SUFFIX) and _old(f, now):
                found.append(("archive_tmp", "home", ("archive", f.name)))
    return found


def _measure_and_remove(root: Path, parts: tuple[str, ...], dry_run: bool) -> int:
    """The orphan's size; then (unless ``dry_run``) delete it through
    :func:`leon.paths.remove_tree` (checked, links never followed) — one it refuses is
    left alone. One worker-thread hop for both: the startup budget is small."""
    size = 0
    with contextlib.suppress(OSError):
        size = _size(root.joinpath(*parts))
    if not dry_run:
        with contextlib.suppress(PathError, OSError):
            remove_tree(root, *parts)
    return size


async def sweep(stores: Stores, paths: Paths, *, budget: float | None = None,
                dry_run: bool = False, record: bool = True) -> OrphanReport:
    """Find and remove orphans, stopping after ``budget`` seconds (the rest waits for
    the next start). Records one ``orphans`` event when it removed anything."""
    from leon.agent.sandbox import collect_garbage

    started = time.monotonic()
    deadline = None if budget is None else started + budget
    report = OrphanReport(dry_run=dry_run)
    live = {r["id"] for r in await stores.leon.db.fetchall(
        "SELECT id FROM threads WHERE id NOT IN (SELECT thread_id FROM deletions)")}
    # A row names its file; only the (thread, file name) pair counts (leon.paths).
    recorded = {(r["thread_id"], Path(r["path"]).name) for r in await stores.leon.db.fetchall(
        "SELECT thread_id, path FROM spills")}
    found = await asyncio.to_thread(_scan, paths, live, recorded, time.time())
    for i, (kind, where, parts) in enumerate(found):
        if i and deadline is not None and time.monotonic() > deadline:
            report.left_for_later += len(found) - i
            break
        root = paths.cache if where == "cache" else paths.home
        report.bytes += await asyncio.to_thread(_measure_and_remove, root, parts, dry_run)
        attr = {"spill_dir": "spill_dirs", "spill_file": "spill_files",
                "archive_tmp": "archive_tmp"}[kind]
        setattr(report, attr, getattr(report, attr) + 1)
        if len(report.examples) < 5:
            report.examples.append(str(root.joinpath(*parts)))
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    sandboxes = await collect_garbage(stores.leon, stores.sandbox, paths, budget=remaining,
                                      dry_run=dry_run)
    report.sandbox_dirs = len(sandboxes.orphans_removed)
    report.sandboxes = len(sandboxes.sandboxes_removed)
    report.leases = len(sandboxes.leases_reaped)
    report.left_for_later += sandboxes.left_for_later
    report.examples += [str(p) for p in sandboxes.orphans_removed[:2]]
    if record and not dry_run and report.anything:
        await stores.leon.add_event(None, "orphans", report.to_json())
    return report
