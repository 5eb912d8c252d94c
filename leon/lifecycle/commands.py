"""CLI commands of the session lifecycle: ``leon gc``, ``leon stats``, ``leon threads
restore`` and the archiving ``leon threads rm``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from leon.lifecycle.retention import human
from leon.textsafe import json_dumps, one_line


def startup_lines(paths: Any) -> list[str]:
    """What this process's startup housekeeping did, one line per kind of work (orphans,
    gc), for ``leon run`` to print on stderr; empty when it did nothing."""
    from leon.lifecycle.startup import last_report

    report = last_report(paths)
    return list(report.lines) if report is not None else []


def _err(message: str) -> None:
    print(f"leon: {message}", file=sys.stderr)


async def gc_command(args: argparse.Namespace, stores: Any, paths: Any, settings: Any) -> int:
    """``leon gc [--dry-run] [--json]``: orphans, then retention, then reclaim space."""
    from leon.lifecycle.orphans import sweep
    from leon.lifecycle.retention import run_gc

    orphans = await sweep(stores, paths, dry_run=args.dry_run)
    report = await run_gc(stores, paths, settings, dry_run=args.dry_run, vacuum="full")
    if args.json:
        print(json_dumps({"orphans": orphans.to_json(), "gc": report.to_json()}))
        return 0
    rows = report.would_remove if args.dry_run else report.removed
    for item in rows:
        t = item.thread if args.dry_run else item
        kind, status = t.kind, t.status
        title = t.display_title if args.dry_run else t.title
        reason, size = item.reason, item.bytes
        tid = t.id
        print(f"{'would remove' if args.dry_run else 'removed'} {tid}  {kind:<8} {status:<9} "
              f"{reason:<11} {human(size):>10}  {one_line(title or '')[:50]}")
    if args.dry_run:
        if report.chats_removed:
            print(f"would remove {report.chats_removed} chat outcome(s) of deleted threads")
        for a in report.archives_removed:
            print(f"would remove archive {a} (over retention.archive_max_mb)")
        if report.blobs_removed[0]:
            print(f"would remove {report.blobs_removed[0]} unused blob(s), "
                  f"{human(report.blobs_removed[1])}")
    print(orphans.summary())
    print(report.summary())
    if not args.dry_run and report.removed:
        print(f"archives are in {paths.archive}; `leon threads restore THREAD` brings one back")
    return 0


async def stats_command(args: argparse.Namespace, stores: Any, paths: Any,
                        settings: Any) -> int:
    """``leon stats [--json] [--history]``."""
    from leon.lifecycle.stats import collect, format_history, format_stats, history

    if args.history:
        samples = await history(stores, args.limit)
        if args.json:
            for s in samples:
                print(json.dumps(s))
        else:
            print(format_history(samples))
        return 0
    data = await collect(stores, paths)
    if args.json:
        print(json_dumps(data))
        return 0
    print(format_stats(data))
    budget = settings["retention.disk_budget_mb"] * 1024 * 1024
    used = data["budget_bytes"]
    print(f"budget    {human(used):>10}  in use of {human(budget)} "
          f"({used / budget:.0%}; gc above {settings['retention.high_water']:.0%})")
    return 0


async def restore_command(args: argparse.Namespace, stores: Any, paths: Any) -> int:
    """``leon threads restore ARCHIVE|THREAD`` and ``leon threads restore --list``."""
    from leon.cli import EXIT_FAILED, EXIT_USAGE
    from leon.lifecycle.archive import find_archive, list_archives, restore_archive

    if args.list:
        archives = list_archives(paths)
        if not archives:
            print(f"no archives in {paths.archive}")
        for a in archives:
            when = dt.datetime.fromtimestamp(a.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
            print(f"{when}  {human(a.stat().st_size):>10}  {a.name}")
        return 0
    if not args.archive:
        _err("name an archive file or a thread id (or use --list)")
        return EXIT_USAGE
    try:
        path = find_archive(paths, args.archive)
        tid = await restore_archive(stores, paths, path)
    except (LookupError, ValueError, KeyError) as exc:
        _err(str(exc).strip("'\""))
        return EXIT_FAILED
    print(f"restored thread {tid} from {path}")
    return 0


async def rm_command(stores: Any, paths: Any, thread: Any) -> None:
    """Delete a thread the user named: archived first, then removed from all three
    databases and the spill directory, crash-safely."""
    from leon.lifecycle.deletion import delete_thread
    from leon.lifecycle.retention import thread_bytes

    removed = await delete_thread(stores, paths, thread, "user",
                                  size=await thread_bytes(stores, thread.id))
    await stores.leon.add_event(None, "gc", {"removed": [removed.to_json()], "by": "user",
                                             "summary": f"deleted {thread.id} by hand"})
    print(f"deleted {thread.id} (archived to {removed.archive}; "
          f"`leon threads restore {thread.id}` brings it back)")
