"""Growth instrumentation (``leon stats``), lazy thread listing, and the lifecycle CLI."""

from __future__ import annotations

import asyncio
import json

import pytest
from lifecycle_helpers import make_thread

from leon.cli import main
from leon.lifecycle import stats
from leon.lifecycle.archive import list_archives
from leon.store import Stores


async def test_stats_counts_kinds_sizes_blobs_and_memory(stores, leon_paths):
    await make_thread(stores, leon_paths, "oneshot", full=True)
    await make_thread(stores, leon_paths, "scoped", status="active", messages=2)
    digest = await stores.leon.put_blob("system_prompt", "p" * 1000)
    for t in await stores.leon.list_threads():
        await stores.leon.update_thread(t.id, system_hash=digest)
    data = await stats.collect(stores, leon_paths)
    assert data["threads"] == {"oneshot": {"completed": 1}, "scoped": {"active": 1}}
    assert data["threads_total"] == 2 and data["messages"] == 6
    assert set(data["databases"]) == {"leon", "sandbox", "chat"}
    assert data["databases"]["leon"]["db"] > 0
    assert data["spill"] == {"bytes": 1500, "files": 1}
    assert data["blobs"]["references"] == 2 and data["blobs"]["dedup_saved_bytes"] == 1000
    assert data["rss_bytes"] > 10 * 1024 * 1024
    text = stats.format_stats(data)
    assert "oneshot" in text and "dedup saved" in text and "resident" in text


async def test_samples_are_appended_and_capped(stores, leon_paths, monkeypatch):
    monkeypatch.setattr(stats, "KEEP_SAMPLES", 3)
    for _ in range(5):
        await make_thread(stores, leon_paths, "scoped", messages=1)
        await stats.append_sample(stores, await stats.collect(stores, leon_paths))
    samples = await stats.history(stores)
    assert [s["threads_total"] for s in samples] == [3, 4, 5]
    assert "threads" in stats.format_history(samples)


async def test_listing_threads_reads_thread_rows_only(stores, leon_paths):
    for _ in range(5):
        await make_thread(stores, leon_paths, "scoped", status="active", messages=20, size=2000)
    statements: list[str] = []
    await stores.leon.db.conn.set_trace_callback(statements.append)
    try:
        listed = await stores.leon.list_threads()
        found = await stores.leon.search_threads("")
    finally:
        await stores.leon.db.conn.set_trace_callback(None)
    assert len(listed) == len(found) == 5
    assert len(statements) == 2
    for sql in statements:
        low = sql.lower()
        assert "from threads" in low
        for table in ("messages", "blobs", "summaries", "checkpoints", "events", "spills"):
            assert table not in low, sql


def _run(coro):
    return asyncio.run(coro)


async def _setup(leon_paths):
    stores = await Stores.open(leon_paths)
    try:
        old = await make_thread(stores, leon_paths, "oneshot", full=True, size=3000)
        keep = await make_thread(stores, leon_paths, "scoped", status="active", title="keep me")
    finally:
        await stores.close()
    return old, keep


def test_cli_gc_dry_run_then_gc_then_restore(leon_paths, capsys):
    old, keep = _run(_setup(leon_paths))
    assert main(["gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would remove {old}" in out and "ephemeral" in out and "KiB" in out
    assert not list_archives(leon_paths)
    assert main(["gc", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data["gc"]["removed"]] == [old]
    assert main(["threads", "ls", "--json"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [keep]
    assert main(["threads", "restore", "--list"]) == 0
    assert old in capsys.readouterr().out
    assert main(["threads", "restore", old]) == 0
    assert f"restored thread {old}" in capsys.readouterr().out
    assert main(["threads", "show", old]) == 0
    assert "xxxx" in capsys.readouterr().out
    assert main(["threads", "restore", "nope"]) == 1


def test_cli_rm_archives_and_deletes_everywhere(leon_paths, capsys):
    old, keep = _run(_setup(leon_paths))
    assert main(["threads", "rm", keep, "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"deleted {keep}" in out and "threads restore" in out
    assert len(list_archives(leon_paths)) == 1
    assert main(["threads", "restore", keep]) == 0


def test_cli_stats_json_and_history(leon_paths, capsys):
    _run(_setup(leon_paths))
    assert main(["stats", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["threads_total"] == 2 and "rss_bytes" in data
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "threads" in out and "budget" in out
    assert main(["stats", "--history"]) == 0
    assert "no samples yet" in capsys.readouterr().out


@pytest.mark.parametrize("key,value", [
    ("lifecycle.general_rollover", "weekly"), ("lifecycle.day_boundary_hour", "25"),
    ("retention.high_water", "1.5"), ("retention.ephemeral_after", "later"),
])
def test_cli_rejects_bad_lifecycle_values(leon_paths, capsys, key, value):
    assert main(["config", "set", key, value]) == 2
    assert key in capsys.readouterr().err


def test_leon_run_reports_startup_housekeeping_in_one_line_each(leon_paths, capsys):
    import os
    import time

    old, keep = _run(_setup(leon_paths))
    for i in range(50):
        d = leon_paths.spill / f"orphan{i}"
        d.mkdir(parents=True)
        (d / "out.txt").write_text("x")
        os.utime(d, (time.time() - 3600, time.time() - 3600))
    assert main(["run", "--model", "demo", "hello"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "orphans:" in line or "gc:" in line]
    assert len(lines) == 2
    assert "50 spill dir(s)" in lines[0] and "removed 1 thread" in lines[1]
    assert main(["stats", "--history"]) == 0
    assert "no samples" not in capsys.readouterr().out  # the start added one
