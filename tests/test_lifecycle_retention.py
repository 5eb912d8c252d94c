"""Retention rules, one test per key, plus what every gc run records and the space it
reclaims."""

from __future__ import annotations

import os
import time

import pytest
from lifecycle_helpers import DAY, make_thread, settings

from leon.config import ConfigError, Settings
from leon.lifecycle.archive import list_archives
from leon.lifecycle.keys import parse_duration
from leon.lifecycle.retention import plan, run_gc


def ids(report):
    return {r.id for r in report.removed}


def test_durations_parse_and_bad_ones_are_config_errors():
    assert parse_duration("24h") == 86400
    assert parse_duration("30d") == 30 * 86400
    assert parse_duration("90m") == 5400
    assert parse_duration("0s") == 0
    assert parse_duration("2") == 7200  # a bare number is hours
    with pytest.raises(ValueError):
        parse_duration("soon")
    with pytest.raises(ConfigError, match="retention.ephemeral_after"):
        Settings({"retention.ephemeral_after": "tomorrow"})
    with pytest.raises(ConfigError):
        Settings().set("retention.archived_after", "a while")


async def test_ephemeral_threads_go_after_ephemeral_after(stores, leon_paths):
    old = await make_thread(stores, leon_paths, "oneshot", age=2 * DAY)
    young = await make_thread(stores, leon_paths, "subagent", age=3600)
    running = await make_thread(stores, leon_paths, "oneshot", status="active", age=600)
    dead = await make_thread(stores, leon_paths, "oneshot", status="active", age=2 * DAY)
    scoped = await make_thread(stores, leon_paths, "scoped", age=10 * DAY)
    report = await run_gc(stores, leon_paths, settings())
    assert ids(report) == {old, dead}
    assert {r.reason for r in report.removed} == {"ephemeral"}
    report = await run_gc(stores, leon_paths, settings(retention__ephemeral_after="30m"))
    assert ids(report) == {young}
    remaining = {t.id for t in await stores.leon.list_threads()}
    assert remaining == {running, scoped}


async def test_archived_threads_go_after_archived_after(stores, leon_paths):
    old = await make_thread(stores, leon_paths, "scoped", status="archived", age=40 * DAY)
    young = await make_thread(stores, leon_paths, "scoped", status="archived", age=10 * DAY)
    active = await make_thread(stores, leon_paths, "scoped", status="active", age=400 * DAY)
    assert ids(await run_gc(stores, leon_paths, settings())) == {old}
    report = await run_gc(stores, leon_paths, settings(retention__archived_after="7d"))
    assert ids(report) == {young}
    assert [t.id for t in await stores.leon.list_threads()] == [active]


async def test_max_threads_removes_the_oldest_finished_threads(stores, leon_paths):
    made = [await make_thread(stores, leon_paths, "scoped", age=(20 - i) * 3600, messages=1)
            for i in range(14)]
    active = [await make_thread(stores, leon_paths, "scoped", status="active", age=DAY * 99,
                                messages=1) for _ in range(2)]
    report = await run_gc(stores, leon_paths, settings(retention__max_threads=10))
    assert ids(report) == set(made[:6])
    assert {r.reason for r in report.removed} == {"max_threads"}
    assert set(active) <= {t.id for t in await stores.leon.list_threads(limit=100)}


async def test_max_threads_never_removes_active_threads(stores, leon_paths):
    for _ in range(12):
        await make_thread(stores, leon_paths, "scoped", status="active", messages=1)
    report = await run_gc(stores, leon_paths, settings(retention__max_threads=10))
    assert not report.removed
    assert any("max_threads" in n for n in report.notes)


async def test_disk_budget_and_high_water_remove_oldest_until_under(stores, leon_paths):
    made = [await make_thread(stores, leon_paths, "scoped", age=(30 - i) * 3600, size=40_000)
            for i in range(8)]  # ~160 KB each
    usage = (await plan(stores, leon_paths, settings())).usage_bytes
    budget_mb = usage / 1024 / 1024 / 0.9 * 0.7  # the mark is at 70% of the usage
    report = await run_gc(stores, leon_paths, settings(retention__disk_budget_mb=budget_mb))
    assert report.removed and {r.reason for r in report.removed} == {"disk"}
    gone = ids(report)
    assert gone == set(made[:len(gone)])  # oldest first
    assert report.bytes_after < 0.9 * budget_mb * 1024 * 1024  # VACUUM gave the space back
    # the same usage under a higher high-water mark removes nothing
    again = [await make_thread(stores, leon_paths, "scoped", size=40_000) for _ in range(2)]
    usage = (await plan(stores, leon_paths, settings())).usage_bytes
    report = await run_gc(stores, leon_paths, settings(
        retention__disk_budget_mb=usage / 1024 / 1024 / 0.95, retention__high_water=1.0))
    assert not report.removed and set(again) <= {t.id for t in await stores.leon.list_threads()}


async def test_archive_max_mb_removes_the_oldest_archive_files(stores, leon_paths):
    leon_paths.archive.mkdir(parents=True, exist_ok=True)
    for i in range(3):  # archive files of 20 KB (real ones compress too well for the test)
        (leon_paths.archive / f"t{i}-20200101T000000.json.gz").write_bytes(os.urandom(20_000))
    files = list_archives(leon_paths)
    assert len(files) == 3
    for i, f in enumerate(files):  # distinct ages, oldest first
        os.utime(f, (time.time() - 100 + i, time.time() - 100 + i))
    sizes = [f.stat().st_size for f in files]
    report = await run_gc(stores, leon_paths, settings(
        retention__archive_max_mb=(sum(sizes) + 10) / 1024 / 1024))
    assert report.archives_removed == []
    report = await run_gc(stores, leon_paths, settings(
        retention__archive_max_mb=(sizes[1] + sizes[2] + 10) / 1024 / 1024))
    assert report.archives_removed == [files[0].name]
    assert not files[0].exists() and files[1].exists() and files[2].exists()


async def test_threads_in_use_and_the_opened_thread_are_spared(stores, leon_paths):
    from leon.agent.sandbox import _HELD, holder_id

    held = await make_thread(stores, leon_paths, age=5 * DAY)
    sb = await stores.sandbox.create_sandbox("sbheld", held, str(leon_paths.sandboxes / held))
    lease, _ = await stores.sandbox.acquire_lease(sb.id, holder_id(), 600, lambda lease, now: None)
    _HELD[(str(stores.sandbox.path), lease.id)] = 1
    opened = await make_thread(stores, leon_paths, age=5 * DAY)
    other = await make_thread(stores, leon_paths, age=5 * DAY)
    try:
        report = await run_gc(stores, leon_paths, settings(), keep={opened})
    finally:
        _HELD.pop((str(stores.sandbox.path), lease.id), None)
    assert ids(report) == {other}


async def test_dry_run_changes_nothing_and_names_reasons_and_bytes(stores, leon_paths):
    tid = await make_thread(stores, leon_paths, size=5000, full=True)
    before = await stores.leon.db.fetchone("SELECT count(*) FROM messages")
    report = await run_gc(stores, leon_paths, settings(), dry_run=True)
    assert [c.thread.id for c in report.would_remove] == [tid]
    assert report.would_remove[0].reason == "ephemeral"
    assert report.would_remove[0].bytes > 4 * 5000  # messages plus the spill file
    assert (await stores.leon.db.fetchone("SELECT count(*) FROM messages"))[0] == before[0]
    assert not list_archives(leon_paths)
    assert not await stores.leon.db.fetchall("SELECT * FROM events WHERE kind = 'gc'")
    assert "would remove 1 thread" in report.summary()


async def test_every_run_records_what_it_removed(stores, leon_paths):
    tid = await make_thread(stores, leon_paths)
    report = await run_gc(stores, leon_paths, settings())
    rows = await stores.leon.db.fetchall(
        "SELECT data FROM events WHERE kind = 'gc' AND thread_id IS NULL")
    assert len(rows) == 1
    import json

    data = json.loads(rows[0]["data"])
    assert [r["id"] for r in data["removed"]] == [tid]
    assert data["removed"][0]["reason"] == "ephemeral" and data["removed"][0]["archive"]
    assert "removed 1 thread" in data["summary"]
    # a run with nothing to do adds no row
    await run_gc(stores, leon_paths, settings())
    assert len(await stores.leon.db.fetchall("SELECT 1 FROM events WHERE kind = 'gc'")) == 1
    assert report.removed[0].archive


async def test_vacuum_reclaims_the_space_of_deleted_threads(stores, leon_paths):
    for _ in range(6):
        await make_thread(stores, leon_paths, size=50_000, messages=6)
    await stores.leon.db.checkpoint_wal()
    before = stores.leon.db.size_bytes()
    report = await run_gc(stores, leon_paths, settings())
    assert len(report.removed) == 6
    assert stores.leon.db.size_bytes() < before / 3
    assert report.reclaimed > 0
    # the one-time VACUUM switched the database to incremental auto-vacuum
    assert (await stores.leon.db.fetchone("PRAGMA auto_vacuum"))[0] == 2
    for _ in range(3):
        await make_thread(stores, leon_paths, size=50_000, messages=6)
    await stores.leon.db.checkpoint_wal()
    before = stores.leon.db.size_bytes()
    await run_gc(stores, leon_paths, settings(), vacuum="incremental")
    assert stores.leon.db.size_bytes() < before * 0.6


async def test_chat_outcomes_of_deleted_threads_go_after_archived_after(stores, leon_paths):
    tid = await make_thread(stores, leon_paths, full=True)
    await run_gc(stores, leon_paths, settings())
    assert await stores.chat.db.fetchone("SELECT 1 FROM chats WHERE thread_id = ?", (tid,))
    report = await run_gc(stores, leon_paths, settings(retention__archived_after="0s"))
    assert report.chats_removed == 1
    assert not await stores.chat.db.fetchone("SELECT 1 FROM chats WHERE thread_id = ?", (tid,))


async def test_unused_blobs_go_shared_ones_stay(stores, leon_paths, monkeypatch):
    import leon.lifecycle.retention as retention

    monkeypatch.setattr(retention, "BLOB_GRACE", -1.0)
    shared = await stores.leon.put_blob("system_prompt", "shared prompt")
    lonely = await stores.leon.put_blob("system_prompt", "only the deleted thread")
    keep = await make_thread(stores, leon_paths, "scoped", status="active")
    gone = await make_thread(stores, leon_paths)
    await stores.leon.update_thread(keep, system_hash=shared)
    await stores.leon.update_thread(gone, system_hash=lonely)
    await stores.leon.db.execute("UPDATE threads SET updated_at = 0, completed_at = 0"
                                 " WHERE id = ?", (gone,))
    report = await run_gc(stores, leon_paths, settings())
    assert report.blobs_removed[0] == 1
    assert await stores.leon.get_blob(shared) == b"shared prompt"
    with pytest.raises(LookupError):
        await stores.leon.get_blob(lonely)


async def test_a_time_budget_leaves_the_rest_for_the_next_run(stores, leon_paths, monkeypatch):
    import leon.lifecycle.deletion as deletion

    monkeypatch.setattr(deletion, "ARCHIVE_CHUNK", 1)  # the deadline is checked per chunk
    for _ in range(5):
        await make_thread(stores, leon_paths)
    report = await run_gc(stores, leon_paths, settings(), budget=0.0)
    assert len(report.removed) == 1 and report.left_for_later == 4
    assert "4 left for the next run" in report.summary()
    report = await run_gc(stores, leon_paths, settings())
    assert len(report.removed) == 4 and not report.left_for_later


async def test_free_pages_do_not_count_against_the_budget(stores, leon_paths):
    from leon.lifecycle.retention import disk_usage

    made = [await make_thread(stores, leon_paths, "scoped", size=20_000) for _ in range(5)]
    await stores.leon.db.checkpoint_wal()
    used, size = await disk_usage(stores, leon_paths), stores.leon.db.size_bytes()
    for tid in made[:4]:
        await stores.leon.delete_thread(tid)  # no vacuum: the file keeps its pages
    await stores.leon.db.checkpoint_wal()
    assert stores.leon.db.size_bytes() >= size * 0.9
    assert await disk_usage(stores, leon_paths) < used / 2


async def test_old_gc_records_go_after_archived_after_and_are_counted(stores, leon_paths):
    await make_thread(stores, leon_paths)
    await run_gc(stores, leon_paths, settings())
    await stores.leon.db.execute("UPDATE events SET created_at = 0 WHERE kind = 'gc'")
    await make_thread(stores, leon_paths)
    report = await run_gc(stores, leon_paths, settings())
    assert report.old_records == 1 and "1 old gc record" in report.summary()
    rows = await stores.leon.db.fetchall("SELECT data FROM events WHERE kind = 'gc'")
    assert len(rows) == 1  # the new run's own record
