"""Deleting a thread across leon.db, sandbox.db, chat.db and the spill directory, so that
a crash at any moment leaves no half-deleted thread.

SQLite cannot commit one transaction across the three files in WAL mode (an ATTACHed
multi-database commit is atomic per file only), so deletion is a small protocol:

1. **archive** — the thread is written to an archive file (:mod:`.archive`);
2. **intent** — one leon.db transaction records it in ``deletions``. From here on the
   thread is hidden from every list and is certain to go;
3. **sandbox.db** — its sandboxes with their leases, lease events and commands (one
   transaction), and the sandbox directories;
4. **chat.db** — its chat keeps only its newest message: the outcome a sub-agent or a
   ``leon run`` posted, which by design outlives the thread (one transaction);
5. **spill files** — the thread's spill directory;
6. **leon.db** — one transaction deletes the thread row (messages, checkpoints,
   summaries, events, usage, spills, file history cascade) and the intent together.

Steps 3-6 are idempotent. At startup :func:`finish_pending` completes every intent a
crash left, so the thread is never seen half-deleted: before step 2 it is whole, after
it hidden until gone. ``LEON_TEST_GC_CRASH_AT=<step>`` makes the process SIGKILL itself
right after that step (``archived``, ``intent``, ``sandbox``, ``chat``, ``spill``): the
tests kill a real process mid-way with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from leon.lifecycle.archive import (
    archive_name,
    build_archives,
    encode_archive,
    store_archive,
    sync_dir,
)
from leon.paths import PathError, Paths, is_valid, remove_tree, same_path
from leon.store import NotFound, Stores
from leon.store.models import Thread

CRASH_ENV = "LEON_TEST_GC_CRASH_AT"
ARCHIVE_CHUNK = 8  # threads read per query round while archiving (the deadline is checked between)


def _crash_point(step: str) -> None:
    """Test hook: die here, as a power cut or ``kill -9`` would."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Removed:
    """One deleted thread, as the ``gc`` event records it."""

    id: str
    kind: str
    status: str
    title: str
    reason: str
    bytes: int
    archive: str | None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _remove_sandbox_dir(paths: Paths, stored: str) -> None:
    """Remove a sandbox directory a row names, only if it is ``LEON_CACHE/sandboxes/NAME``
    (checked by :func:`leon.paths.remove_tree`): a row could name anything."""
    path = Path(stored)
    if same_path(path.parent, paths.sandboxes):
        with contextlib.suppress(PathError):
            remove_tree(paths.cache, "sandboxes", path.name)


def _remove_spill_dir(paths: Paths, thread_id: str) -> None:
    """Remove a thread's spill directory. A thread id leon did not make (a row from an
    import before ids were checked) names no directory of leon's: nothing to remove."""
    if is_valid("thread id", thread_id):
        with contextlib.suppress(PathError):
            remove_tree(paths.cache, "spill", thread_id)


async def delete_thread(stores: Stores, paths: Paths, thread: Thread, reason: str, *,
                        size: int = 0, archive: bool = True) -> Removed:
    """Archive (unless ``archive`` is false) and delete one thread everywhere. Raises
    :class:`~leon.store.NotFound` when it is already gone."""
    removed = await delete_threads(stores, paths, [(thread, reason, size)], archive=archive)
    if not removed:
        raise NotFound(f"no thread {thread.id!r}")
    return removed[0]


async def delete_threads(stores: Stores, paths: Paths, batch: list[tuple[Thread, str, int]], *,
                         archive: bool = True, deadline: float | None = None) -> list[Removed]:
    """Archive and delete ``(thread, reason, estimated bytes)`` items as one batch: each
    step of the protocol is one transaction per database for the whole batch, so the
    fsyncs of the WAL checkpoints are paid once, not per thread. Archiving stops at
    ``deadline`` (after at least one); only the archived threads are deleted."""
    removed: list[Removed] = []
    writes: list[asyncio.Future[Path]] = []
    try:
        for i in range(0, len(batch), ARCHIVE_CHUNK):
            if i and deadline is not None and time.monotonic() > deadline:
                break
            chunk = batch[i:i + ARCHIVE_CHUNK]
            built = await build_archives(stores, paths, [(t.id, r) for t, r, _ in chunk]) \
                if archive else {}
            for thread, reason, size in chunk:
                name = None
                if thread.id in built:
                    name = archive_name(thread.id, thread.updated_at)
                    data = built.pop(thread.id)
                    # Compressed here (small: a millisecond; large ones in a worker), then
                    # written and fsynced in worker threads while the next chunk is read:
                    # parallel fsyncs share the file system's journal commits, and the
                    # workers allocate next to nothing (compressing there grew the
                    # process by megabytes of per-thread malloc arenas).
                    blob = encode_archive(data) if thread.message_count < 200 else \
                        await asyncio.to_thread(encode_archive, data)
                    writes.append(asyncio.ensure_future(asyncio.to_thread(
                        store_archive, paths, name, blob, False)))
                elif archive:
                    continue  # gone meanwhile (another leon deleted it)
                removed.append(Removed(thread.id, thread.kind, thread.status,
                                       thread.display_title, reason, size,
                                       str(paths.archive / name) if name else None))
    finally:
        await asyncio.gather(*writes)  # all written before anything is deleted
    if not removed:
        return removed
    if archive:
        await asyncio.to_thread(sync_dir, paths.archive)
    _crash_point("archived")
    now = time.time()
    async with stores.leon.db.transaction() as conn:
        await conn.executemany(
            "INSERT OR REPLACE INTO deletions (thread_id, reason, archive, created_at)"
            " VALUES (?,?,?,?)", [(r.id, r.reason, r.archive, now) for r in removed])
    _crash_point("intent")
    await finish_deletions(stores, paths, [(r.id, r.reason) for r in removed])
    return removed


def _marks(ids: list[str]) -> str:
    return ",".join("?" * len(ids))


async def finish_deletion(stores: Stores, paths: Paths, thread_id: str,
                          reason: str = "") -> None:
    await finish_deletions(stores, paths, [(thread_id, reason)])


async def finish_deletions(stores: Stores, paths: Paths, items: list[tuple[str, str]]) -> None:
    """Steps 3-6 for threads with an intent (``(thread_id, reason)``); safe to run again
    after any of them. A thread the user deleted (reason ``user``) loses its whole chat;
    one that retention removed keeps its chat's newest message, its outcome."""
    for i in range(0, len(items), 400):  # SQLite's limit on bound parameters
        chunk = items[i:i + 400]
        ids = [tid for tid, _ in chunk]
        marks = _marks(ids)
        sandbox = stores.sandbox.db
        rows = await sandbox.fetchall(f"SELECT path FROM sandboxes WHERE thread_id IN ({marks})",
                                      ids)
        for r in rows:
            await asyncio.to_thread(_remove_sandbox_dir, paths, r["path"])
        # leases, lease_events and commands go with their sandbox (ON DELETE CASCADE)
        await sandbox.execute(f"DELETE FROM sandboxes WHERE thread_id IN ({marks})", ids)
        _crash_point("sandbox")
        by_user = [tid for tid, reason in chunk if reason == "user"]
        async with stores.chat.db.transaction() as conn:
            if by_user:
                await conn.execute(f"DELETE FROM chats WHERE thread_id IN ({_marks(by_user)})",
                                   by_user)
            await conn.execute(
                f"DELETE FROM chat_messages WHERE chat_id IN"
                f" (SELECT id FROM chats WHERE thread_id IN ({marks}))"
                " AND id < (SELECT max(m.id) FROM chat_messages m"
                " WHERE m.chat_id = chat_messages.chat_id)", ids)
        _crash_point("chat")
        for tid in ids:
            await asyncio.to_thread(_remove_spill_dir, paths, tid)
        _crash_point("spill")
        async with stores.leon.db.transaction() as conn:
            await conn.execute(f"DELETE FROM threads WHERE id IN ({marks})", ids)
            await conn.execute(f"DELETE FROM deletions WHERE thread_id IN ({marks})", ids)


async def pending(stores: Stores) -> list[tuple[str, str, str | None]]:
    """Intents a crash left: ``(thread_id, reason, archive)``."""
    rows = await stores.leon.db.fetchall(
        "SELECT thread_id, reason, archive FROM deletions ORDER BY created_at")
    return [(r["thread_id"], r["reason"], r["archive"]) for r in rows]


async def finish_pending(stores: Stores, paths: Paths,
                         deadline: float | None = None) -> list[str]:
    """Complete every deletion a crash interrupted (within ``deadline``, a monotonic time);
    returns the thread ids finished."""
    items = [(tid, reason) for tid, reason, _ in await pending(stores)]
    if deadline is not None:
        items = items[:50]  # a bounded batch at startup; the rest at the next start
    await finish_deletions(stores, paths, items)
    return [tid for tid, _ in items]
