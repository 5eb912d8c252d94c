"""Housekeeping when leon starts (the TUI, ``leon run``), once per process and LEON_HOME:

1. finish deletions a crash interrupted (:mod:`.deletion`);
2. remove orphans within :data:`ORPHAN_BUDGET` (:mod:`.orphans`);
3. apply retention within :data:`GC_BUDGET`, with a bounded incremental vacuum
   (:mod:`.retention`); what the budget did not reach waits for the next start;
4. append a growth sample (:mod:`.stats`).

Then, for the thread being opened, the daily rollover's handoff (:mod:`.rollover`).
Housekeeping never stops leon from starting: a failure is an ``error`` event.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from leon.config import Settings
from leon.paths import Paths
from leon.store import Stores
from leon.store.models import Thread

GC_BUDGET = 0.2        # seconds retention may spend at startup
ORPHAN_BUDGET = 0.1    # seconds the orphan sweep may spend at startup

_DONE: set[str] = set()


@dataclass
class StartupReport:
    lines: list[str] = field(default_factory=list)   # one per kind of work, for a person
    duration_ms: float = 0.0
    gc: Any = None
    orphans: Any = None


_last: dict[str, StartupReport] = {}


def last_report(paths: Paths) -> StartupReport | None:
    """What this process's housekeeping did for ``paths`` (None before it ran)."""
    return _last.get(str(paths.leon_db))


async def housekeeping(stores: Stores, paths: Paths, settings: Settings, *,
                       keep: set[str] | frozenset[str] = frozenset(),
                       force: bool = False) -> StartupReport | None:
    """Run once per process (``force`` runs it again)."""
    from leon.lifecycle.orphans import sweep
    from leon.lifecycle.retention import run_gc
    from leon.lifecycle.stats import append_sample, collect

    key = str(paths.leon_db)
    if key in _DONE and not force:
        return None
    _DONE.add(key)
    started = time.monotonic()
    report = StartupReport()
    try:
        report.orphans = await sweep(stores, paths, budget=ORPHAN_BUDGET)
        if report.orphans.anything:
            report.lines.append(report.orphans.summary())
        report.gc = await run_gc(stores, paths, settings, budget=GC_BUDGET, keep=keep,
                                 vacuum="incremental")
        if report.gc.anything:
            report.lines.append("gc: " + report.gc.summary())
        await append_sample(stores, await collect(stores, paths))
    except (sqlite3.Error, OSError) as exc:
        report.lines.append(f"housekeeping stopped: {exc} (leon works; `leon gc` retries)")
        try:
            await stores.leon.add_event(None, "error", {"message": f"startup housekeeping: {exc}"})
        except sqlite3.Error:
            pass
    report.duration_ms = (time.monotonic() - started) * 1000
    _last[key] = report
    return report


async def prepare_thread(stores: Stores, paths: Paths, settings: Settings, provider: Any,
                         model: str, thread: Thread, *, housekeep: bool = True) -> Thread:
    """Housekeeping (sparing ``thread``; skipped with ``housekeep=False``), then the
    rollover handoff if it is due; returns the thread as stored now."""
    from leon.lifecycle.rollover import ensure_handoff

    if housekeep:
        await housekeeping(stores, paths, settings, keep={thread.id})
    if await ensure_handoff(stores, settings, provider, model, thread) is not None:
        return await stores.leon.get_thread(thread.id)
    return thread
