"""Orphans at startup and the startup housekeeping: one summary line, one event, a time
budget; a sample per start."""

from __future__ import annotations

import json
import os
import time

from lifecycle_helpers import make_thread, settings

from leon.lifecycle import startup
from leon.lifecycle.orphans import sweep


def _age(path, seconds=3600):
    t = time.time() - seconds
    os.utime(path, (t, t))


async def _litter(stores, leon_paths, n=30):
    """Orphan spill dirs, an unrecorded spill file, an orphan sandbox dir, archive temps."""
    live = await make_thread(stores, leon_paths, "scoped", status="active", full=True)
    for i in range(n):
        d = leon_paths.spill / f"gone{i:03}"
        d.mkdir(parents=True)
        (d / "toolu_x.txt").write_text("old output")
        _age(d)
    stray = leon_paths.spill_dir(live) / "toolu_unrecorded.txt"
    stray.write_text("no row points here")
    _age(stray)
    fresh = leon_paths.spill / "justnow"
    fresh.mkdir()
    box = leon_paths.sandboxes / "nobody"
    box.mkdir(parents=True)
    leon_paths.archive.mkdir(parents=True, exist_ok=True)
    tmp = leon_paths.archive / ".abc-20200101T000000.json.gz.tmp"
    tmp.write_bytes(b"half")
    _age(tmp)
    return live, stray, fresh, box, tmp


async def test_orphans_are_removed_with_one_line_and_one_event(stores, leon_paths):
    live, stray, fresh, box, tmp = await _litter(stores, leon_paths)
    report = await sweep(stores, leon_paths)
    assert (report.spill_dirs, report.spill_files, report.archive_tmp) == (30, 1, 1)
    assert report.sandbox_dirs == 1
    assert not stray.exists() and not tmp.exists() and not box.exists()
    assert fresh.exists()  # too new: another process may be creating its thread
    assert (leon_paths.spill_dir(live) / "toolu_1.txt").exists()  # recorded: kept
    assert (leon_paths.sandboxes / live).exists()
    line = report.summary()
    assert "\n" not in line and "30 spill dir(s)" in line
    rows = await stores.leon.db.fetchall("SELECT data FROM events WHERE kind = 'orphans'")
    assert len(rows) == 1
    data = json.loads(rows[0]["data"])
    assert data["spill_dirs"] == 30 and len(data["examples"]) <= 7


async def test_dry_run_removes_no_orphan(stores, leon_paths):
    live, stray, fresh, box, tmp = await _litter(stores, leon_paths, n=3)
    report = await sweep(stores, leon_paths, dry_run=True)
    assert report.spill_dirs == 3 and stray.exists() and tmp.exists()
    assert not await stores.leon.db.fetchall("SELECT 1 FROM events WHERE kind = 'orphans'")


async def test_the_sweep_stops_at_its_budget_and_continues_next_start(stores, leon_paths):
    await _litter(stores, leon_paths, n=30)
    report = await sweep(stores, leon_paths, budget=0.0)
    assert report.left_for_later > 0
    assert "left for the next start" in report.summary()
    report = await sweep(stores, leon_paths)
    assert not report.left_for_later
    assert not [p for p in leon_paths.spill.iterdir() if p.name.startswith("gone")]


async def test_startup_housekeeping_runs_once_within_budget(stores, leon_paths, monkeypatch):
    monkeypatch.setattr(startup, "_DONE", set())
    await _litter(stores, leon_paths, n=5)
    for _ in range(3):
        await make_thread(stores, leon_paths)
    opened = await make_thread(stores, leon_paths)
    started = time.monotonic()
    report = await startup.housekeeping(stores, leon_paths, settings(), keep={opened})
    assert time.monotonic() - started < 2.0
    assert len(report.gc.removed) == 3 and opened not in {r.id for r in report.gc.removed}
    assert len(report.lines) == 2 and report.lines[1].startswith("gc: removed 3")
    assert await startup.housekeeping(stores, leon_paths, settings()) is None  # once
    assert startup.last_report(leon_paths) is report
    samples = await stores.leon.db.fetchall("SELECT data FROM stats_samples")
    assert len(samples) == 1


async def test_startup_housekeeping_respects_its_gc_budget(stores, leon_paths, monkeypatch):
    import leon.lifecycle.deletion as deletion

    monkeypatch.setattr(deletion, "ARCHIVE_CHUNK", 1)  # the deadline is checked per chunk
    monkeypatch.setattr(startup, "_DONE", set())
    monkeypatch.setattr(startup, "GC_BUDGET", 0.0)
    for _ in range(4):
        await make_thread(stores, leon_paths)
    left = []
    for _ in range(4):  # each start removes at least one, and says what it left
        report = await startup.housekeeping(stores, leon_paths, settings(), force=True)
        assert len(report.gc.removed) == 1
        left.append(report.gc.left_for_later)
    assert left == [3, 2, 1, 0]
