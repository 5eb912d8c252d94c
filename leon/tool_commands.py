"""CLI commands for the tools that change things: ``leon sandbox ls|show|rm|gc``,
``leon inbox`` and the file part of ``leon rollback --files``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from leon.cli import EXIT_FAILED, EXIT_USAGE
from leon.paths import Paths
from leon.textsafe import clean, one_line


def _err(message: str) -> None:
    print(f"leon: {message}", file=sys.stderr)


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _lease_line(lease: Any, now: float) -> str:
    if lease is None:
        return "free"
    if lease.released_at is None:
        left = lease.expires_at - now
        state = f"expires in {left:.0f} s" if left > 0 else f"expired {-left:.0f} s ago"
        return f"held by {lease.holder} ({state})"
    return f"{lease.observed_state} {_when(lease.released_at)}"


# -- leon sandbox ------------------------------------------------------------------------
async def sandbox_command(args: argparse.Namespace, stores: Any, paths: Paths,
                          settings: Any) -> int:
    action = args.sandbox_cmd
    store = stores.sandbox
    now = time.time()
    if action == "ls":
        boxes = await store.list_sandboxes(include_removed=args.all)
        if not boxes:
            print("no sandboxes: one is made when a thread first changes a file or runs a command")
            return 0
        counts = await store.command_counts()
        for box in boxes:
            lease = await store.open_lease(box.id)
            print(f"{box.id}  thread {box.thread_id}  {box.state:<7} "
                  f"{counts.get(box.id, 0):>4} cmds  {_lease_line(lease, now)}  {box.path}")
        return 0
    if action == "gc":
        from leon.agent.sandbox import collect_garbage

        report = await collect_garbage(stores.leon, store, paths, dry_run=args.dry_run)
        for lease, reason in report.leases_reaped:
            print(f"lease {lease.id} of sandbox {lease.sandbox_id}: {reason}")
        for box in report.sandboxes_removed:
            print(f"sandbox {box.id} (thread {box.thread_id}): {box.path}")
        for path in report.orphans_removed:
            print(f"orphan directory: {path}")
        print(report.summary())
        return 0
    matches = await store.find_sandbox(args.sandbox)
    if not matches:
        _err(f"no sandbox {args.sandbox!r} (see `leon sandbox ls --all`)")
        return EXIT_FAILED
    if len({m.id for m in matches}) > 1 and matches[0].id != args.sandbox and \
            matches[0].thread_id != args.sandbox:
        _err(f"{args.sandbox!r} matches several sandboxes: "
             f"{', '.join(m.id for m in matches[:5])}; type more of the id")
        return EXIT_USAGE
    box = matches[0]
    if action == "show":
        print(f"sandbox  {box.id}\nthread   {box.thread_id}\nprovider {box.provider}\n"
              f"path     {box.path}\nstate    {box.state} (created {_when(box.created_at)}"
              + (f", removed {_when(box.removed_at)})" if box.removed_at else ")"))
        leases = await store.leases(box.id)
        print(f"\nleases ({len(leases)} newest):" if leases else "\nno leases")
        for lease in leases:
            print(f"  {lease.id}: {lease.holder}, acquired {_when(lease.acquired_at)}, "
                  f"heartbeat {_when(lease.heartbeat_at)}, desired {lease.desired_state}, "
                  f"{_lease_line(lease, now)}")
            for event in await store.lease_events(lease.id):
                print(f"      {_when(event.created_at)}  {event.from_state or '-'} -> "
                      f"{event.to_state}  {one_line(event.note or '')}")
        commands = await store.commands(box.id)
        print(f"\ncommands ({len(commands)} newest):" if commands else "\nno commands")
        for c in commands:
            code = "killed" if c.exit_code is None else f"exit {c.exit_code}"
            spill = f"  spilled to {c.spill_path}" if c.spill_path else ""
            print(f"  {_when(c.created_at)}  {code:<8} {c.duration_ms:>9.0f} ms "
                  f"{c.bytes_out:>9} B  {one_line(c.command)[:100]}{spill}")
        return 0
    if action == "rm":
        from leon.agent.sandbox import remove_sandbox, stale_check

        if box.state == "removed":
            print(f"sandbox {box.id} is already removed")
            return 0
        lease = await store.open_lease(box.id)
        if lease is not None and stale_check(store)(lease, now) is None and not args.force:
            _err(f"sandbox {box.id} is in use ({_lease_line(lease, now)}); stop that leon first, "
                 "or use --force")
            return EXIT_FAILED
        if lease is not None:
            await store.release_lease(lease.id, "released by `leon sandbox rm`")
        if await remove_sandbox(store, paths, box):
            print(f"removed sandbox {box.id} ({box.path})")
        else:
            print(f"sandbox {box.id} marked removed; its directory {box.path} could not be "
                  "deleted (not under leon's sandboxes directory, or not writable)")
        return 0
    raise AssertionError(action)


def doctor_agents(paths: Paths) -> int:
    """`leon doctor`'s line about agent profiles; returns the number of problems."""
    from leon.agent.profiles import load_profiles

    profiles, problems = load_profiles(paths.agents)
    print(f"ok     agents: {', '.join(sorted(profiles))} ({paths.agents})")
    for problem in problems:
        print(f"BAD    agent profile skipped: {problem}")
    return len(problems)


# -- leon inbox ----------------------------------------------------------------------------
async def inbox_command(args: argparse.Namespace, stores: Any, paths: Paths,
                        settings: Any) -> int:
    chat = stores.chat
    messages = await chat.unread(limit=max(1, args.limit))
    if not messages:
        print("inbox: nothing unread")
        return 0
    counts = await chat.unread_counts()
    total = sum(counts.values())
    current = None
    for m in messages:
        if m.chat_id != current:
            current = m.chat_id
            where = f" (thread {m.thread_id})" if m.thread_id else ""
            title = one_line(m.chat_title or "") or f"chat {m.chat_id}"
            print(f"\n== {title}{where}")
        # cleaned before it is split: a bare CR would otherwise start an unindented line
        text = clean(m.text).strip()
        lines = text.splitlines()
        shown = "\n   ".join(lines[:8]) + (f"\n   [... {len(lines) - 8} more lines]"
                                           if len(lines) > 8 else "")
        print(f"[{_when(m.created_at)}] {one_line(m.sender_name)}: {shown}")
    more = total - len(messages)
    if args.mark_read:
        await chat.mark_messages_read(messages)
        print(f"\nmarked {len(messages)} message(s) read" + (f"; {more} more unread" if more > 0
                                                             else ""))
    else:
        print(f"\n{total} unread" + (f" ({more} not shown; raise --limit)" if more > 0 else "")
              + "; `leon inbox --mark-read` marks them read")
    return 0


# -- leon rollback --files -------------------------------------------------------------------
async def rollback_files(stores: Any, thread_id: str, checkpoint_id: int, force: bool,
                         workspace: Path | None = None) -> bool:
    """Restore the files to their content at the checkpoint and say, per file, what was
    done; False (after saying why) when refused. ``workspace`` confines changes whose row
    does not record the workspace they were made in."""
    from leon.agent.filehistory import (
        FilesChanged,
        RestoreFailed,
        RestoreRefused,
        restore_files,
        shown,
    )

    try:
        plan = await restore_files(stores.leon, thread_id, checkpoint_id, force=force,
                                   workspace=workspace)
    except RestoreRefused as exc:
        for reason in exc.plan.refused:
            _err(reason)
        print("Nothing was changed (neither files nor conversation); --force does not "
              "override this.", file=sys.stderr)
        return False
    except FilesChanged as exc:
        _err("not rolling back: these files were changed outside leon since its last change "
             "to them:")
        for f in exc.plan.conflicts:
            print(f"  {shown(f.path)}", file=sys.stderr)
        print("Nothing was changed. Re-run with --force to overwrite them (their current "
              "content is kept in leon.db), or without --files to roll back the conversation "
              "only.", file=sys.stderr)
        return False
    except RestoreFailed as exc:
        for f in exc.done:
            print(f"{f.action:<9} {shown(f.path)}")
        _err(f"{exc}; the conversation was not moved (the files listed above were restored)")
        return False
    if not plan.changes:
        print(f"files: nothing to restore for checkpoint {checkpoint_id}")
    for f in plan.changes:
        print(f"{f.action:<9} {shown(f.path)}")
    return True
