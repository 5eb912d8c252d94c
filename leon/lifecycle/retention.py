"""Retention: which threads go, and ``leon gc`` doing it.

The rules (every one reads a ``[retention]`` key; :func:`plan` applies them in order):

* **ephemeral** — a ``subagent`` or ``oneshot`` thread that is no longer active goes
  ``ephemeral_after`` after it completed. One that never completed (its process died
  mid-turn) goes ``ephemeral_after`` plus an hour after its last change.
* **archived** — an ``archived`` thread goes ``archived_after`` after its last change.
* **max_threads** — above the cap, the oldest finished threads (status ``completed`` or
  ``archived``) go until the count is at the cap.
* **disk** — when the databases (with their WAL files) plus spill files pass
  ``high_water`` × ``disk_budget_mb``, the oldest finished threads go until the estimate
  is below 80% of that mark.

Never removed: active threads other than dead ephemeral ones, the thread being opened,
and any thread whose sandbox a live process holds a lease on. Also: chats of deleted
threads once their outcome is older than ``archived_after``; archive files beyond
``archive_max_mb`` (oldest first); blobs nothing references any more.

Each removal is archived first and deleted across the three databases with an intent
record (:mod:`.deletion`). A run records what it removed as one ``gc`` event (nothing is
deleted silently) and then reclaims the space (incremental vacuum, or a one-time
``VACUUM`` that switches a database to incremental auto-vacuum).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leon.config import Settings
from leon.lifecycle.archive import list_archives
from leon.lifecycle.deletion import Removed, delete_threads, finish_pending
from leon.lifecycle.keys import parse_duration
from leon.paths import Paths, remove_file
from leon.store import Stores
from leon.store.db import BaseStore
from leon.store.models import EPHEMERAL_KINDS, Thread

NEVER_COMPLETED_GRACE = 3600.0   # s: an active ephemeral thread may still be running
BLOB_GRACE = 3600.0              # s: a blob just stored may not be referenced yet
LOW_WATER = 0.8                  # the disk rule frees down to this share of the mark
BLOB_KINDS = ("system_prompt", "tools", "skills", "file")
SMALL_DB = 4 * 1024 * 1024       # below this a startup may run the one-time full VACUUM
STARTUP_VACUUM_PAGES = 2000      # pages an incremental vacuum frees at startup


def _thread(row: Any) -> Thread:
    return Thread(**{k: row[k] for k in row.keys()})


@dataclass
class Candidate:
    thread: Thread
    reason: str          # ephemeral | archived | max_threads | disk
    bytes: int = 0       # estimated bytes it frees (database content plus spill files)


@dataclass
class GcPlan:
    candidates: list[Candidate] = field(default_factory=list)
    chats: list[tuple[int, str, int]] = field(default_factory=list)  # (chat, thread, bytes)
    archives: list[tuple[Path, int]] = field(default_factory=list)
    blobs: tuple[int, int] = (0, 0)                                  # (count, bytes)
    usage_bytes: int = 0
    high_water_bytes: int = 0
    threads_total: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return (sum(c.bytes for c in self.candidates) + sum(b for _, _, b in self.chats)
                + self.blobs[1])


@dataclass
class GcReport:
    dry_run: bool = False
    removed: list[Removed] = field(default_factory=list)
    would_remove: list[Candidate] = field(default_factory=list)
    chats_removed: int = 0
    archives_removed: list[str] = field(default_factory=list)
    blobs_removed: tuple[int, int] = (0, 0)
    pending_finished: list[str] = field(default_factory=list)
    left_for_later: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    reclaimed: int = 0
    notes: list[str] = field(default_factory=list)
    old_records: int = 0   # gc and orphans events older than archived_after, removed
    duration_ms: float = 0.0

    @property
    def anything(self) -> bool:
        return bool(self.removed or self.chats_removed or self.archives_removed
                    or self.blobs_removed[0] or self.pending_finished or self.left_for_later
                    or self.old_records)

    def summary(self) -> str:
        """One line for a person."""
        if self.dry_run:
            n = len(self.would_remove)
            size = human(sum(c.bytes for c in self.would_remove))
            return (f"would remove {n} thread(s), about {size}"
                    + (f"; {'; '.join(self.notes)}" if self.notes else ""))
        parts = [f"removed {len(self.removed)} thread(s) "
                 f"(~{human(sum(r.bytes for r in self.removed))}, archived)"]
        if self.chats_removed:
            parts.append(f"{self.chats_removed} old chat outcome(s)")
        if self.archives_removed:
            parts.append(f"{len(self.archives_removed)} old archive file(s)")
        if self.blobs_removed[0]:
            parts.append(f"{self.blobs_removed[0]} unused blob(s)")
        if self.pending_finished:
            parts.append(f"finished {len(self.pending_finished)} interrupted deletion(s)")
        if self.old_records:
            parts.append(f"{self.old_records} old gc record(s)")
        text = ", ".join(parts) + f"; disk {human(self.bytes_before)} -> {human(self.bytes_after)}"
        if self.left_for_later:
            text += f"; {self.left_for_later} left for the next run (time budget)"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "removed": [r.to_json() for r in self.removed],
            "would_remove": [{"id": c.thread.id, "kind": c.thread.kind,
                              "status": c.thread.status, "title": c.thread.display_title,
                              "reason": c.reason, "bytes": c.bytes} for c in self.would_remove],
            "chats_removed": self.chats_removed,
            "archives_removed": self.archives_removed,
            "blobs_removed": {"count": self.blobs_removed[0], "bytes": self.blobs_removed[1]},
            "pending_finished": self.pending_finished,
            "left_for_later": self.left_for_later,
            "bytes_before": self.bytes_before, "bytes_after": self.bytes_after,
            "reclaimed": self.reclaimed, "notes": self.notes, "old_records": self.old_records,
            "duration_ms": round(self.duration_ms, 1),
        }


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- measuring -----------------------------------------------------------------------
def dir_bytes(root: Path) -> tuple[int, int]:
    """(bytes, files) below ``root``."""
    total = files = 0
    if not root.is_dir():
        return 0, 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:
                continue
    return total, files


async def live_bytes(store: BaseStore) -> int:
    """A database's bytes in use: its pages less the free ones (SQLite reuses free pages
    before the file grows, so they are not growth), plus its WAL file."""
    db = store.db
    count = await db.fetchone("PRAGMA page_count")
    free = await db.fetchone("PRAGMA freelist_count")
    size = await db.fetchone("PRAGMA page_size")
    wal = Path(f"{store.path}-wal")
    wal_bytes = wal.stat().st_size if wal.exists() else 0
    return (int(count[0]) - int(free[0])) * int(size[0]) + wal_bytes


async def disk_usage(stores: Stores, paths: Paths) -> int:
    """What the disk budget counts: the three databases' bytes in use (with their WAL
    files), plus spill files. Archives have their own cap. Free pages do not count: a
    database that could not be vacuumed yet must not make gc delete thread after thread."""
    dbs = 0
    for store in (stores.leon, stores.sandbox, stores.chat):
        dbs += await live_bytes(store)
    return dbs + (await asyncio.to_thread(dir_bytes, paths.spill))[0]


async def thread_bytes(stores: Stores, thread_id: str) -> int:
    """Estimated bytes a thread holds: its rows' content in leon.db plus its spill files."""
    row = await stores.leon.db.fetchone(
        """SELECT
             (SELECT coalesce(sum(length(CAST(content AS BLOB))) + count(*) * 48, 0)
                FROM messages WHERE thread_id = :t)
           + (SELECT coalesce(sum(length(CAST(text AS BLOB))) + count(*) * 64, 0)
                FROM summaries WHERE thread_id = :t)
           + (SELECT coalesce(sum(length(CAST(data AS BLOB))) + count(*) * 32, 0)
                FROM events WHERE thread_id = :t)
           + (SELECT count(*) * 40 FROM checkpoints WHERE thread_id = :t)
           + (SELECT count(*) * 72 FROM usage WHERE thread_id = :t)
           + (SELECT coalesce(sum(bytes), 0) FROM spills WHERE thread_id = :t) AS n""",
        {"t": thread_id})
    return int(row["n"] or 0) if row else 0


async def _leased_threads(stores: Stores) -> set[str]:
    """Threads whose sandbox a live process holds a lease on."""
    from leon.agent.sandbox import stale_check

    check = stale_check(stores.sandbox)
    now = time.time()
    live = {lease.sandbox_id for lease in await stores.sandbox.open_leases()
            if check(lease, now) is None}
    if not live:
        return set()
    rows = await stores.sandbox.db.fetchall(
        f"SELECT thread_id FROM sandboxes WHERE id IN ({','.join('?' * len(live))})",
        list(live))
    return {r["thread_id"] for r in rows}


# -- planning ------------------------------------------------------------------------
async def _estimates(stores: Stores) -> tuple[float, dict[str, int]]:
    """Cheap size estimates: leon.db bytes per message, and spill bytes per thread."""
    row = await stores.leon.db.fetchone("SELECT coalesce(sum(message_count), 0) FROM threads")
    per_message = await live_bytes(stores.leon) / max(1, int(row[0]) if row else 0)
    spills = {r[0]: int(r[1]) for r in await stores.leon.db.fetchall(
        "SELECT thread_id, sum(bytes) FROM spills GROUP BY thread_id")}
    return per_message, spills


async def plan(stores: Stores, paths: Paths, settings: Settings, *,
               keep: set[str] | frozenset[str] = frozenset(), now: float | None = None,
               sizes: bool = True) -> GcPlan:
    """What a gc would remove now, and why. Reads thread rows only; with ``sizes`` it
    then measures each candidate (:func:`thread_bytes`, which reads its rows), otherwise
    sizes are estimated from the database's bytes per message (startup: fast)."""
    now = time.time() if now is None else now
    eph_after = parse_duration(settings["retention.ephemeral_after"])
    arch_after = parse_duration(settings["retention.archived_after"])
    max_threads = settings["retention.max_threads"]
    budget = settings["retention.disk_budget_mb"] * 1024 * 1024
    mark = int(budget * settings["retention.high_water"])
    db = stores.leon.db
    live = "id NOT IN (SELECT thread_id FROM deletions)"
    # Only candidate rows are read: the rules are WHERE clauses (a home with 10,000
    # threads would otherwise turn every row into a Thread at every start).
    rows = await db.fetchall(
        f"SELECT * FROM threads WHERE {live} AND ("
        f" (kind IN ('subagent', 'oneshot') AND status != 'active'"
        "   AND coalesce(completed_at, updated_at) <= :eph)"
        f" OR (kind IN ('subagent', 'oneshot') AND status = 'active' AND updated_at <= :dead)"
        " OR (kind NOT IN ('subagent', 'oneshot') AND status = 'archived'"
        "   AND updated_at <= :arch))"
        " ORDER BY updated_at, id",
        {"eph": now - eph_after, "dead": now - eph_after - NEVER_COMPLETED_GRACE,
         "arch": now - arch_after})
    total = (await db.fetchone(f"SELECT count(*) FROM threads WHERE {live}"))[0]
    protected = set(keep) | await _leased_threads(stores)
    result = GcPlan(threads_total=int(total), high_water_bytes=mark)
    chosen: dict[str, Candidate] = {}

    def take(t: Thread, reason: str) -> None:
        if t.id not in chosen and t.id not in protected:
            chosen[t.id] = Candidate(t, reason)

    for r in rows:
        t = _thread(r)
        take(t, "ephemeral" if t.kind in EPHEMERAL_KINDS else "archived")

    async def finished() -> AsyncIterator[Thread]:
        """Finished threads, oldest first, a page at a time."""
        offset = 0
        while True:
            page = await db.fetchall(
                f"SELECT * FROM threads WHERE {live} AND status != 'active'"
                " ORDER BY updated_at, id LIMIT 200 OFFSET ?", (offset,))
            for r in page:
                yield _thread(r)
            if len(page) < 200:
                return
            offset += 200

    over = result.threads_total - len(chosen) - max_threads
    if over > 0:
        async for t in finished():
            if over <= 0:
                break
            if t.id not in chosen and t.id not in protected:
                take(t, "max_threads")
                over -= 1
    if over > 0:
        result.notes.append(f"{over} thread(s) over retention.max_threads, but the rest are "
                            "active or in use")
    per_message, spilled = await _estimates(stores)

    async def size(t: Thread) -> int:
        if sizes:
            return await thread_bytes(stores, t.id)
        return int(t.message_count * per_message) + spilled.get(t.id, 0)

    for c in chosen.values():
        c.bytes = await size(c.thread)
    usage = await disk_usage(stores, paths)
    result.usage_bytes = usage
    if usage > mark:
        target = int(mark * LOW_WATER)
        need = usage - target - sum(c.bytes for c in chosen.values())
        if need > 0:
            async for t in finished():
                if need <= 0:
                    break
                if t.id in chosen or t.id in protected:
                    continue
                take(t, "disk")
                chosen[t.id].bytes = await size(t)
                need -= chosen[t.id].bytes
        if need > 0:
            result.notes.append(f"over the disk budget's high-water mark ({human(usage)} of "
                                f"{human(mark)}), and only active threads are left to remove")
    result.candidates = list(chosen.values())
    # chats of deleted threads: their outcome is kept for archived_after
    old_chats = await stores.chat.db.fetchall(
        "SELECT c.id, c.thread_id, coalesce(max(m.created_at), c.created_at) AS newest,"
        " coalesce(sum(length(CAST(m.text AS BLOB))), 0) + 64 AS bytes"
        " FROM chats c LEFT JOIN chat_messages m ON m.chat_id = c.id"
        " WHERE c.thread_id IS NOT NULL GROUP BY c.id HAVING newest <= ?", (now - arch_after,))
    if old_chats:
        present: set[str] = set()
        tids = [r["thread_id"] for r in old_chats]
        for i in range(0, len(tids), 400):  # threads that exist, deleting ones included
            part = tids[i:i + 400]
            present |= {r[0] for r in await db.fetchall(
                f"SELECT id FROM threads WHERE id IN ({','.join('?' * len(part))})", part)}
        result.chats = [(r["id"], r["thread_id"], int(r["bytes"])) for r in old_chats
                        if r["thread_id"] not in present]
    result.archives = await asyncio.to_thread(archives_over_cap, paths, settings)
    row = await stores.leon.db.fetchone(
        f"SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM blobs {_UNUSED_BLOBS}",
        (now - BLOB_GRACE, *BLOB_KINDS))
    result.blobs = (int(row["n"]), int(row["b"])) if row else (0, 0)
    return result


def archives_over_cap(paths: Paths, settings: Settings) -> list[tuple[Path, int]]:
    """Archive files beyond ``retention.archive_max_mb``, oldest first."""
    cap = settings["retention.archive_max_mb"] * 1024 * 1024
    archives = [(a, a.stat().st_size) for a in list_archives(paths)]
    total = sum(size for _, size in archives)
    over = []
    for a, size in archives:
        if total <= cap:
            break
        over.append((a, size))
        total -= size
    return over


_UNUSED_BLOBS = f"""WHERE created_at < ? AND kind IN ({','.join('?' * len(BLOB_KINDS))})
    AND hash NOT IN (
        SELECT system_hash FROM threads WHERE system_hash IS NOT NULL
        UNION SELECT tools_hash FROM threads WHERE tools_hash IS NOT NULL
        UNION SELECT skills_hash FROM threads WHERE skills_hash IS NOT NULL
        UNION SELECT before_hash FROM file_ops WHERE before_hash IS NOT NULL
        UNION SELECT after_hash FROM file_ops WHERE after_hash IS NOT NULL)"""


# -- doing it --------------------------------------------------------------------------
async def run_gc(stores: Stores, paths: Paths, settings: Settings, *, dry_run: bool = False,
                 budget: float | None = None, keep: set[str] | frozenset[str] = frozenset(),
                 vacuum: str = "full", now: float | None = None,
                 record: bool = True) -> GcReport:
    """Plan and apply retention. ``budget``: seconds it may spend (the rest is left for
    the next run and counted in ``left_for_later``); ``vacuum``: ``full`` (``leon gc``),
    ``incremental`` (startup: bounded work) or ``none``. Records one ``gc`` event when
    it removed anything."""
    started = time.monotonic()
    deadline = None if budget is None else started + budget
    # archiving stops at 60% of the budget: deleting the batch takes about half as long
    archive_deadline = None if budget is None else started + budget * 0.6
    report = GcReport(dry_run=dry_run)
    if not dry_run:
        report.pending_finished = await finish_pending(stores, paths, deadline)
    p = await plan(stores, paths, settings, keep=keep, now=now, sizes=dry_run)
    report.notes = list(p.notes)
    report.bytes_before = p.usage_bytes
    if dry_run:
        report.would_remove = p.candidates
        report.chats_removed = len(p.chats)
        report.archives_removed = [str(a) for a, _ in p.archives]
        report.blobs_removed = p.blobs
        report.bytes_after = p.usage_bytes
        report.duration_ms = (time.monotonic() - started) * 1000
        return report
    # One batch: archives until the deadline (at least one, so a tight budget still makes
    # progress from start to start), then one transaction per database for all of them.
    report.removed = await delete_threads(
        stores, paths, [(c.thread, c.reason, c.bytes) for c in p.candidates],
        deadline=archive_deadline)
    report.left_for_later = len(p.candidates) - len(report.removed)
    if p.chats and (deadline is None or time.monotonic() <= deadline):
        ids = [chat_id for chat_id, _, _ in p.chats]
        async with stores.chat.db.transaction() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                await conn.execute(
                    f"DELETE FROM chats WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        report.chats_removed = len(ids)
    # counted after this run's own archives are written
    for a, _ in await asyncio.to_thread(archives_over_cap, paths, settings):
        remove_file(paths.home, "archive", a.name)  # checked: leon.paths
        report.archives_removed.append(a.name)
    # blobs only the deleted threads referenced are unused now: count them again
    unused = (time.time() - BLOB_GRACE, *BLOB_KINDS)
    row = await stores.leon.db.fetchone(
        f"SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM blobs {_UNUSED_BLOBS}", unused)
    if row and row["n"]:
        await stores.leon.db.execute(f"DELETE FROM blobs {_UNUSED_BLOBS}", unused)
        report.blobs_removed = (int(row["n"]), int(row["b"]))
    # gc's own records (and the orphan sweep's) are kept for archived_after as well
    cutoff = (time.time() if now is None else now) - parse_duration(
        settings["retention.archived_after"])
    row = await stores.leon.db.fetchone(
        "SELECT count(*) FROM events WHERE thread_id IS NULL AND kind IN ('gc', 'orphans')"
        " AND created_at < ?", (cutoff,))
    if row and row[0]:
        await stores.leon.db.execute(
            "DELETE FROM events WHERE thread_id IS NULL AND kind IN ('gc', 'orphans')"
            " AND created_at < ?", (cutoff,))
        report.old_records = int(row[0])
    if report.anything and vacuum != "none":
        for store in (stores.leon, stores.sandbox, stores.chat):
            report.reclaimed += await reclaim(store, full=(vacuum == "full"))
    report.bytes_after = await disk_usage(stores, paths)
    report.duration_ms = (time.monotonic() - started) * 1000
    if record and report.anything:
        data = report.to_json()
        data["summary"] = report.summary()
        await stores.leon.add_event(None, "gc", data)
    return report


async def reclaim(store: BaseStore, *, full: bool) -> int:
    """Give free pages back to the file system; returns the bytes the file shrank by.

    A database in incremental auto-vacuum mode frees its free pages in place
    (``PRAGMA incremental_vacuum``; bounded at startup). Others are switched to it once,
    with a full ``VACUUM`` — by ``leon gc``, or at startup when the file is small."""
    db = store.db
    before = db.size_bytes()
    row = await db.fetchone("PRAGMA freelist_count")
    free = int(row[0]) if row else 0
    if free == 0:
        return 0
    row = await db.fetchone("PRAGMA auto_vacuum")
    mode = int(row[0]) if row else 0
    import sqlite3

    try:
        if mode == 2:
            pages = "" if full else f"({STARTUP_VACUUM_PAGES})"
            # executescript steps the pragma to the end (execute() frees one page per step)
            async with db._lock:  # noqa: SLF001 - one statement, but it must not interleave
                await db.conn.executescript(f"PRAGMA incremental_vacuum{pages};")
        elif full or Path(store.path).stat().st_size < SMALL_DB:
            async with db._lock:  # noqa: SLF001
                await db.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                await db.conn.execute("VACUUM")
        else:
            return 0
        await db.checkpoint_wal()
    except sqlite3.OperationalError:
        return 0  # busy (another process reading): the next run reclaims it
    return max(0, before - db.size_bytes())
