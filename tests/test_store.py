"""leon.db: append-only history, checkpoints, rollback as a pointer move, branches,
export/import, blobs, and the safety of opening files we must not damage."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat

import pytest
from export_canon import canonical

from leon.store import LeonStore, StoreError
from leon.store.export import export_json, export_markdown, import_json
from leon.store.schema import CHAT_MIGRATIONS, LEON_MIGRATIONS, SANDBOX_MIGRATIONS


def text(t: str) -> list[dict]:
    return [{"type": "text", "text": t}]


async def say(store: LeonStore, tid: str, *turns: str):
    out = []
    for i, t in enumerate(turns):
        out.append(await store.append_message(tid, "user" if i % 2 == 0 else "assistant", text(t)))
    return out


async def test_append_builds_branch_with_checkpoint_per_step(stores):
    store = stores.leon
    t = await store.create_thread("scoped", title="x")
    steps = await say(store, t.id, "hi", "hello", "more")
    assert [m.text for m in await store.branch(t.id)] == ["hi", "hello", "more"]
    cks = await store.checkpoints(t.id)
    assert [c.kind for c in cks] == ["user", "reply", "user"]
    assert (await store.head(t.id)).id == steps[-1][1].id
    assert (await store.get_thread(t.id)).message_count == 3


async def test_rollback_moves_pointer_and_new_turn_branches_without_deleting(stores):
    store = stores.leon
    t = await store.create_thread("scoped")
    (_, c1), (_, c2), (m3, _), _ = await say(store, t.id, "q1", "a1", "q2", "a2")
    await store.rollback(t.id, c2.id)
    assert [m.text for m in await store.branch(t.id)] == ["q1", "a1"]
    new, _ = await store.append_message(t.id, "user", text("q2 rephrased"))
    assert new.parent_id == c2.message_id
    assert [m.text for m in await store.branch(t.id)] == ["q1", "a1", "q2 rephrased"]
    # the abandoned branch is still stored, message for message
    assert (await store.get_message(m3.id)).text == "q2"
    raw = await store.db.fetchone("SELECT count(*) FROM messages WHERE thread_id = ?", (t.id,))
    assert raw[0] == 5
    events = await store.events(t.id, kinds=["rollback"])
    assert events[-1].data["to"] == c2.id


async def test_branch_tail_is_the_end_of_the_active_branch(stores):
    store = stores.leon
    t = await store.create_thread("scoped")
    (_, c1), (_, c2), _, _ = await say(store, t.id, "q1", "a1", "q2", "a2")
    assert [m.text for m in await store.branch_tail(t.id, 3)] == ["a1", "q2", "a2"]
    assert [m.text for m in await store.branch_tail(t.id, 10)] == ["q1", "a1", "q2", "a2"]
    await store.rollback(t.id, c2.id)
    await store.append_message(t.id, "user", text("q2 rephrased"))
    # the abandoned q2/a2 are not on the active branch, so not in its tail
    assert [m.text for m in await store.branch_tail(t.id, 2)] == ["a1", "q2 rephrased"]
    assert await store.branch_length(t.id) == 3
    assert [m.text for m in await store.branch_tail(t.id, 1, checkpoint_id=c1.id)] == ["q1"]
    assert await store.branch_length(t.id, checkpoint_id=c1.id) == 1
    assert await store.branch_tail((await store.create_thread("scoped")).id, 5) == []


async def test_roll_forward_returns_to_the_branch_last_worked_on(stores):
    store = stores.leon
    t = await store.create_thread("scoped")
    (_, c1), (_, c2), (_, c3), (_, c4) = await say(store, t.id, "q1", "a1", "q2", "a2")
    await store.rollback(t.id, c1.id)
    assert [m.text for m in await store.branch(t.id)] == ["q1"]
    for expected in (c2, c3, c4):
        moved = await store.rollforward(t.id)
        assert moved.id == expected.id
    assert await store.rollforward(t.id) is None
    assert [m.text for m in await store.branch(t.id)] == ["q1", "a1", "q2", "a2"]


async def test_rollback_to_a_branch_tip_switches_branches(stores):
    store = stores.leon
    t = await store.create_thread("scoped")
    (_, c1), (_, c2) = await say(store, t.id, "q1", "a1 first")
    await store.rollback(t.id, c1.id)
    _, c2b = await store.append_message(t.id, "assistant", text("a1 second"))
    assert [m.text for m in await store.branch(t.id)] == ["q1", "a1 second"]
    await store.rollback(t.id, c2.id)
    assert [m.text for m in await store.branch(t.id)] == ["q1", "a1 first"]
    with pytest.raises(LookupError):
        await store.rollback(t.id, 99999)


async def test_summary_checkpoint_and_rollback_before_it_restores_full_view(stores):
    store = stores.leon
    t = await store.create_thread("scoped")
    steps = await say(store, t.id, "q1", "a1", "q2", "a2")
    before = (await store.head(t.id)).id
    summary, ck = await store.add_summary(t.id, upto_message_id=steps[1][0].id, text="S",
                                          model="demo", messages_replaced=2, tokens_before=100,
                                          tokens_after=10)
    assert ck.kind == "compaction" and ck.summary_id == summary.id
    await store.append_message(t.id, "user", text("q3"))
    assert (await store.head(t.id)).summary_id == summary.id
    after = await store.branch(t.id, after_message_id=summary.upto_message_id)
    assert [m.text for m in after] == ["q2", "a2", "q3"]
    await store.rollback(t.id, before)
    assert (await store.head(t.id)).summary_id is None


@pytest.mark.parametrize("ticks", [1, 2, 3, 4, 6])
async def test_a_write_cancelled_midway_leaves_the_next_one_working(stores, ticks):
    """A worker cancelled while its write is on aiosqlite's thread (the gauge saving its
    counts when the user sends) must not leave the connection inside a transaction:
    that made the next message fail with 'cannot start a transaction within a
    transaction' (seen in the tmux test)."""
    store = stores.leon
    t = await store.create_thread("scoped")
    user, _ = await store.append_message(t.id, "user", text("hi"))
    writer = asyncio.ensure_future(store.set_message_tokens([(user.id, 7)]))
    for _ in range(ticks):
        await asyncio.sleep(0)
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer
    assert not store.db.conn.in_transaction
    await store.append_message(t.id, "assistant", text("hello"))
    assert [m.text for m in await store.branch(t.id)] == ["hi", "hello"]


async def test_drafts_survive_a_dead_process_marked_interrupted(stores):
    store = stores.leon
    t = await store.create_thread("scoped")
    await store.append_message(t.id, "user", text("tell me a story"))
    draft = await store.start_draft(t.id)
    await store.update_draft(draft, text("Once upon a"))
    assert [m.text for m in await store.branch(t.id)] == ["tell me a story"]
    recovered = await store.recover_drafts(t.id)
    assert [m.status for m in recovered] == ["interrupted"]
    branch = await store.branch(t.id)
    assert [(m.text, m.status) for m in branch] == [
        ("tell me a story", "complete"), ("Once upon a", "interrupted")]


async def test_export_json_then_import_restores_exactly(stores):
    store = stores.leon
    t = await store.create_thread("scoped", name="proj", title="Project")
    (_, c1), *_ = await say(store, t.id, "q1", "a1", "q2")
    await store.rollback(t.id, c1.id)
    await store.append_message(t.id, "assistant", text("alt"))
    await store.add_summary(t.id, upto_message_id=c1.message_id, text="sum", model="m",
                            messages_replaced=1, tokens_before=5, tokens_after=2)
    await store.add_usage(t.id, "m", input_tokens=1, output_tokens=2, cache_creation_tokens=3,
                          cache_read_tokens=4, latency_ms=5.0, retries=0)
    exported = await export_json(store, t.id)
    assert len(exported["messages"]) == 4 and len(exported["checkpoints"]) == 5
    # into the same store while the original exists: new ids, same structure
    copy_id = await import_json(store, exported)
    assert copy_id != t.id
    assert [m.text for m in await store.branch(copy_id)] == [m.text for m in await store.branch(t.id)]
    # after deleting the original: the very same ids and rows come back
    await store.delete_thread(copy_id)
    await store.delete_thread(t.id)
    # a row elsewhere takes a freed id (as a gc event would): still the same thread back
    await store.add_event(None, "gc", {"removed": [t.id]})
    again = await import_json(store, exported)
    assert again == t.id
    restored = await export_json(store, t.id)
    assert canonical(restored) == canonical(exported)
    assert [m.text for m in await store.branch(t.id)] == ["q1", "alt"]


async def test_markdown_export_marks_tools_and_interruptions(stores):
    store = stores.leon
    t = await store.create_thread("scoped", title="T")
    await store.append_message(t.id, "user", text("read it"))
    await store.append_message(t.id, "assistant", [
        {"type": "text", "text": "Reading."},
        {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a.txt"}}])
    await store.append_message(t.id, "user", [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "line one"}])
    await store.append_message(t.id, "assistant", text("Partial"), status="interrupted")
    md = export_markdown("T", await store.branch(t.id))
    assert "`read_file`" in md and "line one" in md and "*(interrupted)*" in md


async def test_blobs_are_stored_once(stores):
    store = stores.leon
    h1 = await store.put_blob("system_prompt", "You are helpful.")
    h2 = await store.put_blob("system_prompt", "You are helpful.")
    assert h1 == h2
    row = await store.db.fetchone("SELECT count(*) FROM blobs")
    assert row[0] == 1
    assert await store.get_blob(h1) == b"You are helpful."


async def test_files_are_private(stores, leon_paths):
    assert stat.S_IMODE(os.stat(leon_paths.home).st_mode) == 0o700
    for name in ("leon.db", "sandbox.db", "chat.db", "leon.db-wal"):
        p = leon_paths.home / name
        assert p.exists(), name
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, name


async def test_not_sqlite_is_refused_and_untouched(tmp_path):
    path = tmp_path / "leon.db"
    path.write_bytes(b"my shopping list\n" * 10)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a SQLite database") as info:
        await LeonStore.open(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


async def test_corrupt_database_is_refused_and_untouched(tmp_path):
    path = tmp_path / "leon.db"
    s = await LeonStore.open(path)
    await s.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # header stays, page 1 (the schema) is garbage
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged") as info:
        await LeonStore.open(path)
    assert "leon doctor" in str(info.value)
    assert path.read_bytes() == bytes(data)


async def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = tmp_path / "leon.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(LEON_MIGRATIONS) + 3}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer than this leon"):
        await LeonStore.open(path)
    assert path.read_bytes() == before


async def test_locked_database_gives_a_clear_error(tmp_path, monkeypatch):
    import leon.store.db as dbmod

    path = tmp_path / "leon.db"
    s = await LeonStore.open(path)
    await s.close()
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 100)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")  # an exclusive lock blocks even readers
    holder.execute("BEGIN EXCLUSIVE")
    notes: list[str] = []
    try:
        with pytest.raises(StoreError, match="locked by another process.*gave up after 0.5 s"):
            await LeonStore.open(path, lock_wait=0.5, notify=notes.append)
        assert len(notes) == 1 and "retrying" in notes[0]
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize("migrations,store_cls", [
    (LEON_MIGRATIONS, "LeonStore"), (SANDBOX_MIGRATIONS, "SandboxStore"),
    (CHAT_MIGRATIONS, "ChatStore")])
async def test_migrates_from_every_earlier_version(tmp_path, migrations, store_cls):
    import leon.store as st

    cls = getattr(st, store_cls)
    for start in range(len(migrations)):
        path = tmp_path / f"{store_cls}-{start}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        for v in range(start):
            conn.executescript(migrations[v])
        conn.execute(f"PRAGMA user_version = {start}")
        conn.close()
        s = await cls.open(path)
        assert await s.schema_version() == len(migrations)
        assert await s.integrity_check() == "ok"
        await s.close()


async def test_migration_keeps_existing_rows(tmp_path):
    """Data written at the previous version is still there after migrating to the newest."""
    path = tmp_path / "leon.db"
    conn = sqlite3.connect(path, isolation_level=None)
    last = len(LEON_MIGRATIONS) - 1
    for v in range(max(last, 1)):
        conn.executescript(LEON_MIGRATIONS[v])
    conn.execute(f"PRAGMA user_version = {max(last, 1)}")
    conn.execute("INSERT INTO threads (id, title, kind, created_at, updated_at)"
                 " VALUES ('abc', 'old', 'scoped', 1, 1)")
    conn.close()
    s = await LeonStore.open(path)
    assert (await s.get_thread("abc")).title == "old"
    await s.close()


async def test_find_thread_by_id_name_title_and_long_prefix(stores):
    store = stores.leon
    a = await store.create_thread("scoped", name="alpha", title="Alpha work",
                                  thread_id="aa11bb22cc")
    b = await store.create_thread("scoped", title="General 2026-12-04", thread_id="aa11bb9999")
    await store.create_thread("scoped", title="twin", thread_id="2b3c4d5e6f")
    await store.create_thread("scoped", title="twin", thread_id="3c4d5e6f7a")
    assert (await store.find_thread("alpha")).id == a.id
    assert (await store.find_thread("aa11bb22cc")).id == a.id
    assert (await store.find_thread("General 2026-12-04")).id == b.id  # by its exact title
    assert (await store.find_thread("aa11bb2")).id == a.id  # 7 characters: unambiguous
    with pytest.raises(LookupError, match="several"):
        await store.find_thread("aa11bb")
    with pytest.raises(LookupError, match="use an id"):  # two threads share the title
        await store.find_thread("twin")
    # A short prefix never lands in an unrelated thread (`--thread 2` made a new thread
    # of that name before, not a turn in 2b3c4d5e6f).
    with pytest.raises(LookupError, match="no thread"):
        await store.find_thread("2")
    with pytest.raises(LookupError, match="no thread"):
        await store.find_thread("aa11")
    with pytest.raises(LookupError, match="empty"):
        await store.find_thread("")
    with pytest.raises(LookupError, match="empty"):
        await store.find_thread("  ")
    with pytest.raises(LookupError):
        await store.find_thread("zz")
