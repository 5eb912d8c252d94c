"""Deleting threads across the three databases: archive first, intent record, crash
safety (a real process killed mid-way), restore from the archive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from lifecycle_helpers import counts, make_thread, settings

from leon.lifecycle.archive import find_archive, read_archive, restore_archive
from leon.lifecycle.deletion import CRASH_ENV, delete_thread, pending
from leon.lifecycle.retention import run_gc
from leon.store import Stores


async def test_delete_removes_everything_everywhere_but_the_chat_outcome(stores, leon_paths):
    tid = await make_thread(stores, leon_paths, full=True)
    before = await counts(stores, tid)
    assert before["messages"] == 4 and before["sandboxes"] == 1 and before["chat_messages"] == 2
    fts = (await stores.leon.db.fetchone("SELECT count(*) FROM message_fts"))[0]
    thread = await stores.leon.get_thread(tid)
    removed = await delete_thread(stores, leon_paths, thread, "ephemeral")
    after = await counts(stores, tid)
    assert after == {**{k: 0 for k in after}, "chat_messages": 1}
    outcome = await stores.chat.db.fetchone(
        "SELECT m.text FROM chat_messages m JOIN chats c ON c.id = m.chat_id"
        " WHERE c.thread_id = ?", (tid,))
    assert outcome["text"] == "the outcome: done"  # outlives the thread, by design
    assert not leon_paths.spill_dir(tid).exists()
    assert not (leon_paths.sandboxes / tid).exists()
    assert (await stores.leon.db.fetchone("SELECT count(*) FROM message_fts"))[0] < fts
    archive = read_archive(find_archive(leon_paths, tid))
    assert removed.archive and os.stat(removed.archive).st_mode & 0o777 == 0o600
    assert archive["reason"] == "ephemeral"
    assert len(archive["thread"]["messages"]) == 4
    assert archive["spills"][0]["content"].startswith("spilled output")
    assert [m["text"] for m in archive["chat"]["messages"]] == ["do the thing",
                                                                "the outcome: done"]
    assert archive["sandbox_commands"][0]["command"] == "echo hi"


async def test_user_delete_removes_the_whole_chat(stores, leon_paths):
    tid = await make_thread(stores, leon_paths, kind="scoped", status="active", full=True)
    await delete_thread(stores, leon_paths, await stores.leon.get_thread(tid), "user")
    assert (await counts(stores, tid))["chat_messages"] == 0
    assert await stores.chat.db.fetchone("SELECT 1 FROM chats WHERE thread_id = ?", (tid,)) is None


async def test_restore_brings_the_thread_back_with_its_spill_files(stores, leon_paths):
    tid = await make_thread(stores, leon_paths, full=True, messages=6)
    original = await stores.leon.branch(tid)
    await delete_thread(stores, leon_paths, await stores.leon.get_thread(tid), "ephemeral")
    restored = await restore_archive(stores, leon_paths, find_archive(leon_paths, tid))
    assert restored == tid
    assert [m.content for m in await stores.leon.branch(tid)] == [m.content for m in original]
    spills = await stores.leon.spills(tid)
    assert open(spills[0].path).read().startswith("spilled output")
    # the retention window starts again, so the next gc does not delete it at once
    report = await run_gc(stores, leon_paths, settings())
    assert tid not in [r.id for r in report.removed]
    events = await stores.leon.events(tid, kinds=["restore"])
    assert events and events[0].data["reason"] == "ephemeral"


async def test_restore_gives_new_ids_when_the_old_ones_are_taken(stores, leon_paths):
    tid = await make_thread(stores, leon_paths, messages=2)
    await delete_thread(stores, leon_paths, await stores.leon.get_thread(tid), "ephemeral")
    # new rows take the freed message ids
    other = await stores.leon.create_thread("scoped", title="other")
    for _ in range(3):
        await stores.leon.append_message(other.id, "user", [{"type": "text", "text": "hi"}])
    path = find_archive(leon_paths, tid)
    first = await restore_archive(stores, leon_paths, path)
    second = await restore_archive(stores, leon_paths, path)
    assert first == tid and second != tid  # the thread id was free once, then taken
    texts = [[m.text for m in await stores.leon.branch(t)] for t in (first, second)]
    assert texts[0] == texts[1] and len(texts[0]) == 2 and texts[0][0].startswith("0 ")


def test_a_damaged_archive_is_refused(leon_paths, tmp_path):
    bad = tmp_path / "x.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="not a leon archive"):
        read_archive(bad)


_GC_SCRIPT = textwrap.dedent("""
    import asyncio
    from leon.config import Settings
    from leon.lifecycle.retention import run_gc
    from leon.paths import default_paths
    from leon.store import Stores

    async def main():
        paths = default_paths()
        stores = await Stores.open(paths)
        await run_gc(stores, paths, Settings())
        await stores.close()

    asyncio.run(main())
""")


@pytest.mark.parametrize("step", ["archived", "intent", "sandbox", "chat", "spill"])
async def test_a_gc_killed_mid_way_leaves_no_half_deleted_thread(leon_paths, step):
    stores = await Stores.open(leon_paths)
    try:
        tid = await make_thread(stores, leon_paths, full=True)
        keep = await make_thread(stores, leon_paths, kind="scoped", status="active", full=True)
    finally:
        await stores.close()
    env = {**os.environ, CRASH_ENV: step}
    proc = subprocess.run([sys.executable, "-c", _GC_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    stores = await Stores.open(leon_paths)
    try:
        listed = [t.id for t in await stores.leon.list_threads()]
        found = [t.id for t in await stores.leon.search_threads("")]
        left = await counts(stores, tid)
        if step == "archived":  # died before the intent: the thread is whole
            assert tid in listed and left["messages"] == 4 and left["sandboxes"] == 1
        else:                   # the intent is recorded: hidden until it is gone
            assert tid not in listed and tid not in found
            assert [p[0] for p in await pending(stores)] == [tid]
        assert (await counts(stores, keep))["messages"] == 4  # the others are untouched
        report = await run_gc(stores, leon_paths, settings())
        assert (report.pending_finished == [tid]) == (step != "archived")
        gone = await counts(stores, tid)
        assert gone == {**{k: 0 for k in gone}, "chat_messages": 1}
        assert not leon_paths.spill_dir(tid).exists()
        assert not (leon_paths.sandboxes / tid).exists()
        assert (await counts(stores, keep))["messages"] == 4
        assert await restore_archive(stores, leon_paths, find_archive(leon_paths, tid)) == tid
    finally:
        await stores.close()


async def test_batch_archives_equal_single_archives(stores, leon_paths):
    from leon.lifecycle.archive import build_archive, build_archives

    made = [await make_thread(stores, leon_paths, full=True) for _ in range(3)]
    digest = await stores.leon.put_blob("file", b"\x00binary\xff")
    await stores.leon.db.execute(
        "INSERT INTO file_ops (thread_id, path, before_hash, after_hash, created_at)"
        " VALUES (?, 'a.bin', NULL, ?, 1.0)", (made[1], digest))
    batch = await build_archives(stores, leon_paths, [(t, "ephemeral") for t in made])
    for tid in made:
        one = await build_archive(stores, leon_paths, tid, "ephemeral")
        for d in (one, batch[tid]):
            d.pop("archived_at")
        assert batch[tid] == one


async def test_deleting_a_thread_that_is_gone_says_so(stores, leon_paths):
    from leon.store import NotFound

    tid = await make_thread(stores, leon_paths)
    thread = await stores.leon.get_thread(tid)
    await delete_thread(stores, leon_paths, thread, "user")
    with pytest.raises(NotFound):
        await delete_thread(stores, leon_paths, thread, "user")
