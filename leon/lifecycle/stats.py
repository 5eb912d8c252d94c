"""Growth instrumentation: ``leon stats`` and the sample each start appends.

:func:`collect` reads only cheap things: thread rows (grouped), file sizes, the blobs
table, the process's resident memory. Messages are counted from the threads' cached
``message_count``, never by scanning messages. :func:`append_sample` stores a compact
copy in ``stats_samples`` (the newest :data:`KEEP_SAMPLES` are kept), so
``leon stats --history`` shows growth over time.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import time
from typing import Any

from leon.lifecycle.archive import list_archives
from leon.lifecycle.retention import dir_bytes, disk_usage, human
from leon.paths import Paths
from leon.store import Stores

KEEP_SAMPLES = 1000


def rss_bytes() -> int:
    """Resident memory of this process now (Linux ``/proc``; elsewhere the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024


def _file(path: Any) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


async def collect(stores: Stores, paths: Paths) -> dict[str, Any]:
    """Counts and sizes, as a JSON-ready dict."""
    leon = stores.leon.db
    threads: dict[str, dict[str, int]] = {}
    for r in await leon.fetchall(
            "SELECT kind, status, count(*) AS n, coalesce(sum(message_count), 0) AS m"
            " FROM threads GROUP BY kind, status"):
        threads.setdefault(r["kind"], {})[r["status"]] = r["n"]
    row = await leon.fetchone("SELECT coalesce(sum(message_count), 0) AS m, count(*) AS n"
                              " FROM threads")
    deleting = await leon.fetchone("SELECT count(*) AS n FROM deletions")
    databases = {}
    for store in (stores.leon, stores.sandbox, stores.chat):
        databases[store.NAME] = {"db": _file(store.path), "wal": _file(f"{store.path}-wal")}
    spill, spill_files = await asyncio.to_thread(dir_bytes, paths.spill)
    archives = await asyncio.to_thread(list_archives, paths)
    blobs = await leon.fetchone("SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM blobs")
    refs = await leon.fetchone(
        """SELECT count(*) AS n, coalesce(sum(b.size), 0) AS b FROM (
               SELECT system_hash AS h FROM threads UNION ALL SELECT tools_hash FROM threads
               UNION ALL SELECT skills_hash FROM threads
               UNION ALL SELECT before_hash FROM file_ops UNION ALL SELECT after_hash FROM file_ops
           ) r JOIN blobs b ON b.hash = r.h""")
    by_kind = {r["kind"]: {"count": r["n"], "bytes": r["b"]} for r in await leon.fetchall(
        "SELECT kind, count(*) AS n, coalesce(sum(size), 0) AS b FROM blobs GROUP BY kind")}
    return {
        "taken_at": time.time(),
        "threads": threads,
        "threads_total": int(row["n"]) if row else 0,
        "threads_deleting": int(deleting["n"]) if deleting else 0,
        "messages": int(row["m"]) if row else 0,
        "databases": databases,
        "db_bytes": sum(d["db"] + d["wal"] for d in databases.values()),
        "spill": {"bytes": spill, "files": spill_files},
        "archive": {"bytes": sum(_file(a) for a in archives), "files": len(archives)},
        "blobs": {"count": int(blobs["n"]), "bytes": int(blobs["b"]),
                  "references": int(refs["n"]), "referenced_bytes": int(refs["b"]),
                  # what storing a copy per reference would have cost, less what is stored
                  "dedup_saved_bytes": max(0, int(refs["b"]) - int(blobs["b"])),
                  "by_kind": by_kind},
        "budget_bytes": await disk_usage(stores, paths),  # what the disk budget counts
        "rss_bytes": rss_bytes(),
    }


async def append_sample(stores: Stores, data: dict[str, Any]) -> None:
    """Store a compact sample; keep the newest :data:`KEEP_SAMPLES`."""
    sample = {"threads_total": data["threads_total"], "messages": data["messages"],
              "db_bytes": data["db_bytes"], "spill_bytes": data["spill"]["bytes"],
              "archive_bytes": data["archive"]["bytes"], "blobs": data["blobs"]["count"],
              "rss_bytes": data["rss_bytes"],
              "threads": {k: sum(v.values()) for k, v in data["threads"].items()}}
    async with stores.leon.db.transaction() as conn:
        await conn.execute("INSERT INTO stats_samples (data, created_at) VALUES (?, ?)",
                           (json.dumps(sample, separators=(",", ":")), data["taken_at"]))
        await conn.execute(
            "DELETE FROM stats_samples WHERE id <= (SELECT max(id) FROM stats_samples) - ?",
            (KEEP_SAMPLES,))


async def history(stores: Stores, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` samples, oldest first."""
    rows = await stores.leon.db.fetchall(
        "SELECT data, created_at FROM stats_samples ORDER BY id DESC LIMIT ?", (limit,))
    return [{"at": r["created_at"], **json.loads(r["data"])} for r in reversed(rows)]


def format_stats(data: dict[str, Any]) -> str:
    """``leon stats`` for a person."""
    lines = [f"threads   {data['threads_total']} ({data['messages']} messages)"
             + (f", {data['threads_deleting']} being deleted" if data["threads_deleting"]
                else "")]
    for kind in ("general", "scoped", "subagent", "oneshot"):
        statuses = data["threads"].get(kind, {})
        if statuses:
            detail = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
            lines.append(f"  {kind:<9} {sum(statuses.values()):>6}  ({detail})")
    for name, d in data["databases"].items():
        lines.append(f"{name + '.db':<9} {human(d['db']):>10}  wal {human(d['wal'])}")
    lines.append(f"spill     {human(data['spill']['bytes']):>10}  "
                 f"{data['spill']['files']} file(s)")
    lines.append(f"archive   {human(data['archive']['bytes']):>10}  "
                 f"{data['archive']['files']} file(s)")
    b = data["blobs"]
    lines.append(f"blobs     {human(b['bytes']):>10}  {b['count']} stored, "
                 f"{b['references']} reference(s); dedup saved {human(b['dedup_saved_bytes'])}")
    lines.append(f"memory    {human(data['rss_bytes']):>10}  resident (this process)")
    return "\n".join(lines)


def format_history(samples: list[dict[str, Any]]) -> str:
    import datetime as dt

    if not samples:
        return "no samples yet: each start of leon (the TUI or `leon run`) adds one"
    lines = [f"{'when':<16} {'threads':>8} {'messages':>9} {'databases':>11} {'spill':>10} "
             f"{'archive':>10} {'rss':>10}"]
    for s in samples:
        when = dt.datetime.fromtimestamp(s["at"]).strftime("%Y-%m-%d %H:%M")
        lines.append(f"{when:<16} {s['threads_total']:>8} {s['messages']:>9} "
                     f"{human(s['db_bytes']):>11} {human(s['spill_bytes']):>10} "
                     f"{human(s['archive_bytes']):>10} {human(s['rss_bytes']):>10}")
    return "\n".join(lines)
