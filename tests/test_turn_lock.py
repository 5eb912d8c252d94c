"""One turn at a time per thread: the turn lock (leon/store/turnlock.py), leon processes
answering on one thread at once, waiting and --no-wait, holders killed with -9, and a
store that keeps the active branch linear even for a writer that slipped past the lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading

import pytest
from fakeapi import text
from proc_helpers import Proc, leon_env, run_leon, wait_until

from leon.store import LeonStore, StoreError
from leon.store.turnlock import ThreadBusy, TurnLock

# A process that holds a thread's turn lock until it reads a line (or is killed).
HOLDER = """
import sys
from pathlib import Path
from leon.store.turnlock import TurnLock
lock = TurnLock(Path(sys.argv[1]), sys.argv[2])
assert lock.try_acquire()
print("held", flush=True)
sys.stdin.readline()
lock.release()
"""


class Holder:
    def __init__(self, locks_dir, thread_id):
        self.popen = subprocess.Popen([sys.executable, "-c", HOLDER, str(locks_dir), thread_id],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.popen.stdout.readline().strip() == "held"

    def release(self):
        self.popen.stdin.write("\n")
        self.popen.stdin.flush()
        assert self.popen.wait(timeout=60) == 0

    def kill(self):
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=60)


@pytest.fixture
def env(tmp_path):
    return leon_env(tmp_path / "home", tmp_path / "cache")


@pytest.fixture
def thread_t(env, tmp_path):
    """Thread ``t`` with one exchange; returns its id."""
    out = run_leon(env, "run", "--thread", "t", "--model", "demo", "first")
    assert out.returncode == 0, out.stderr
    listed = [json.loads(x) for x in run_leon(env, "threads", "ls", "--json").stdout.split("\n")
              if x.strip()]
    return next(t["id"] for t in listed if t["name"] == "t")


def branch_of(home, thread_id):
    """(role, text, status) of the active branch, read from leon.db directly."""
    conn = sqlite3.connect(home / "leon.db")
    head = conn.execute("SELECT c.message_id FROM threads t JOIN checkpoints c"
                        " ON c.id = t.head_checkpoint_id WHERE t.id = ?", (thread_id,)).fetchone()
    out, mid = [], head[0] if head else None
    while mid is not None:
        parent, role, content, status = conn.execute(
            "SELECT parent_id, role, content, status FROM messages WHERE id = ?",
            (mid,)).fetchone()
        words = "".join(b.get("text", "") for b in json.loads(content) if b["type"] == "text")
        out.append((role, words, status))
        mid = parent
    conn.close()
    return out[::-1]


def stored_texts(home):
    conn = sqlite3.connect(home / "leon.db")
    rows = [json.loads(r[0]) for r in conn.execute("SELECT content FROM messages")]
    conn.close()
    return ["".join(b.get("text", "") for b in c if b["type"] == "text") for c in rows]


# -- the lock itself ---------------------------------------------------------------------------
def test_one_holder_at_a_time_and_the_file_goes_with_the_last(tmp_path):
    locks = tmp_path / "locks"
    first, second = TurnLock(locks, "abc123"), TurnLock(locks, "abc123")
    assert first.try_acquire()
    assert not second.try_acquire()  # two objects conflict even in one process
    assert second.holder() == f"{os.getpid()}@{socket.gethostname()}"
    assert stat.S_IMODE(os.stat(locks).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600
    unrelated = TurnLock(locks, "other")
    assert unrelated.try_acquire()  # another thread is not affected
    first.release()
    assert not first.path.exists()  # removed under the lock by its last holder
    assert second.try_acquire()
    second.release()
    assert [p.name for p in locks.iterdir()] == [unrelated.path.name]
    unrelated.release()
    assert list(locks.iterdir()) == []


@pytest.mark.parametrize("thread_id", ["../../../etc/passwd", "/abs/path", "..", "a/b\\c",
                                       "x" * 5000, "\x00\x1b[2J", "é\udcff"])
def test_no_thread_id_becomes_a_path(tmp_path, thread_id):
    locks = tmp_path / "locks"
    lock = TurnLock(locks, thread_id)
    assert lock.path.parent == locks and len(lock.path.name) == 37
    assert lock.try_acquire()
    lock.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locks"]


def test_a_symlinked_locks_directory_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    (tmp_path / "locks").symlink_to(victim)
    with pytest.raises(StoreError, match="is a symbolic link"):
        TurnLock(tmp_path / "locks", "t1").try_acquire()
    assert stat.S_IMODE(os.stat(victim).st_mode) == 0o755 and list(victim.iterdir()) == []


async def test_waiting_says_so_once_then_gets_the_lock(tmp_path):
    locks = tmp_path / "locks"
    other = TurnLock(locks, "t1")
    assert other.try_acquire()
    seen: list[str | None] = []

    def waiting(holder):
        seen.append(holder)
        other.release()  # the other leon finishes while we wait

    mine = TurnLock(locks, "t1")
    await mine.acquire(60, waiting)
    assert mine.held and seen == [f"{os.getpid()}@{socket.gethostname()}"]
    mine.release()


async def test_no_wait_and_a_wait_that_runs_out_raise_thread_busy(tmp_path):
    locks = tmp_path / "locks"
    other = TurnLock(locks, "t1")
    assert other.try_acquire()
    with pytest.raises(ThreadBusy, match=rf"another leon \(pid {os.getpid()}\) is answering"):
        await TurnLock(locks, "t1").acquire(0)
    with pytest.raises(ThreadBusy, match="still answering on this thread after 0.2 s"):
        await TurnLock(locks, "t1").acquire(0.2)
    other.release()


async def test_a_holder_killed_with_sigkill_releases_the_lock(tmp_path):
    locks = tmp_path / "locks"
    holder = Holder(locks, "t1")
    mine = TurnLock(locks, "t1")
    assert not mine.try_acquire()
    assert mine.holder() == f"{holder.popen.pid}@{socket.gethostname()}"
    holder.kill()
    await mine.acquire(60)  # the kernel let go of it with the process
    assert mine.held
    mine.release()


# -- the store keeps the branch linear ---------------------------------------------------------
def _text(t):
    return [{"type": "text", "text": t}]


async def test_a_reply_overtaken_by_another_writer_goes_after_it(tmp_path):
    """Writer A starts a reply; writer B (no lock) stores a user message meanwhile. A's
    reply must not become B's sibling (which dropped B's message from the branch)."""
    store = await LeonStore.open(tmp_path / "leon.db")
    t = await store.create_thread("scoped")
    await store.append_message(t.id, "user", _text("from A"))
    draft = await store.start_draft(t.id)
    b_msg, _ = await store.append_message(t.id, "user", _text("from B"))
    reply, ckpt = await store.finish_draft(draft, _text("A's reply"))
    assert reply.parent_id == b_msg.id and reply.id > b_msg.id
    assert [m.text for m in await store.branch(t.id)] == ["from A", "from B", "A's reply"]
    checkpoints = await store.checkpoints(t.id)
    assert [c.message_id for c in checkpoints] == [m.id for m in await store.branch(t.id)]
    assert (await store.head(t.id)).id == ckpt.id
    # sealing it again (a cancellation after it was stored) changes nothing
    again, same = await store.finish_draft(reply.id, _text("partial"), status="interrupted")
    assert again.text == "A's reply" and same.id == ckpt.id
    assert len(await store.checkpoints(t.id)) == 3
    await store.close()


async def test_a_draft_newer_than_the_head_is_moved_onto_it(tmp_path):
    """The head moved back (a rollback by a writer without the lock) while the reply
    streamed: the reply continues the head as it is, keeping its own row."""
    store = await LeonStore.open(tmp_path / "leon.db")
    t = await store.create_thread("scoped")
    _, c1 = await store.append_message(t.id, "user", _text("q1"))
    await store.append_message(t.id, "assistant", _text("a1"))
    await store.append_message(t.id, "user", _text("q2"))
    draft = await store.start_draft(t.id)
    await store.rollback(t.id, c1.id)
    reply, _ = await store.finish_draft(draft, _text("a2"))
    assert reply.id == draft  # its id is above the head's: the order of ids still holds
    assert [m.text for m in await store.branch(t.id)] == ["q1", "a2"]
    await store.close()


async def test_loading_leaves_the_draft_of_a_live_leon_alone(tmp_path, leon_paths):
    """Recovering drafts is for dead processes: while another leon holds the thread's
    turn lock, its streaming draft is its reply in progress, not an orphan."""
    from leon.config import Settings
    from leon.runtime import choose_provider, make_agent
    from leon.store import Stores

    stores = await Stores.open(leon_paths)
    try:
        t = await stores.leon.create_thread("scoped", name="live")
        await stores.leon.append_message(t.id, "user", _text("question"))
        draft = await stores.leon.start_draft(t.id)
        await stores.leon.update_draft(draft, _text("half a repl"))
        other = stores.leon.turn_lock(t.id)
        assert other.try_acquire()
        settings = Settings()
        choice = choose_provider("demo", settings)
        agent = await make_agent(stores, leon_paths, settings, choice, t, tmp_path)
        assert [d.id for d in await stores.leon.drafts(t.id)] == [draft]
        assert [m.text for m in agent.branch] == ["question"]
        other.release()
        await agent.send("next")  # holds the lock now: the draft is a dead one's
        texts = [(m.role, m.text, m.status) for m in agent.branch]
        assert texts[:3] == [("user", "question", "complete"),
                             ("assistant", "half a repl", "interrupted"),
                             ("user", "next", "complete")]
        assert texts[3][0] == "assistant" and len(texts) == 4
        await agent.close()
    finally:
        await stores.close()


# -- real leon processes ----------------------------------------------------------------------
def test_three_leons_answering_on_one_thread_keep_it_linear(tmp_path):
    """Three `leon run --thread shared` processes, 20 turns each, at the same time: every
    prompt stored once, the active branch strictly user/assistant with all 120 messages,
    each reply answering the prompt just before it, every checkpoint on the branch."""
    home = tmp_path / "home"
    env = leon_env(home, tmp_path / "cache")
    turns = 20
    failures: list[str] = []

    def worker(n):
        for k in range(turns):
            out = run_leon(env, "run", "--thread", "shared", "--model", "demo", f"w{n}-{k}",
                           timeout=600)
            if out.returncode != 0 or "Traceback" in out.stderr:
                failures.append(out.stderr)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    listed = [json.loads(x) for x in run_leon(env, "threads", "ls", "--json").stdout.split("\n")
              if x.strip()]
    assert [t["name"] for t in listed] == ["shared"]  # one thread, however they raced
    tid = listed[0]["id"]
    branch = branch_of(home, tid)
    assert len(branch) == 6 * turns
    assert [r for r, _, _ in branch] == ["user", "assistant"] * (3 * turns)
    prompts = [t for r, t, _ in branch if r == "user"]
    assert sorted(prompts) == sorted(f"w{n}-{k}" for n in range(3) for k in range(turns))
    for (_, question, _), (_, answer, status) in zip(branch[::2], branch[1::2], strict=True):
        assert f"“{question}”" in answer and status == "complete"
    assert sorted(stored_texts(home)) == sorted(t for _, t, _ in branch)  # nothing else
    shown = run_leon(env, "threads", "show", "shared").stdout
    heads = [x for x in shown.splitlines() if x.startswith("## ")]
    assert heads == ["## You", "## Claude (demo)"] * (3 * turns)
    listing = run_leon(env, "checkpoints", "shared").stdout.splitlines()
    assert len(listing) == 6 * turns
    assert all(x[0] in "|*" for x in listing)  # every checkpoint on the active branch


def test_no_wait_exits_1_and_stores_nothing(env, tmp_path, thread_t):
    holder = Holder(tmp_path / "home" / "locks", thread_t)
    try:
        out = run_leon(env, "run", "--thread", "t", "--no-wait", "--model", "demo",
                       "impatient", timeout=60)
    finally:
        holder.release()
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lines = [x for x in out.stderr.splitlines() if "demo model" not in x]
    assert lines == [f"leon: another leon (pid {holder.popen.pid}) is answering on this thread "
                     "(--no-wait); your message was not stored: run the command again"]
    assert "impatient" not in stored_texts(tmp_path / "home")


def test_no_wait_keeps_a_piped_prompt_in_a_private_file(env, tmp_path, thread_t):
    holder = Holder(tmp_path / "home" / "locks", thread_t)
    try:
        out = run_leon(env, "run", "--thread", "t", "--no-wait", "--model", "demo", "-",
                       input="a long prompt\nfrom a pipe\n", timeout=60)
    finally:
        holder.release()
    assert out.returncode == 1
    kept = out.stderr.strip().splitlines()[-1].rsplit("it is kept in ", 1)[1]
    assert open(kept, encoding="utf-8").read() == "a long prompt\nfrom a pipe\n"
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(kept)).st_mode) == 0o700


@pytest.mark.parametrize("ending", ["released", "killed"])
def test_a_second_leon_waits_for_the_first_then_answers(env, tmp_path, thread_t, ending):
    holder = Holder(tmp_path / "home" / "locks", thread_t)
    proc = Proc(env, "run", "--thread", "t", "--model", "demo", "patient")
    try:
        note = proc.wait_for_err("waiting for the other leon")
        assert f"(pid {holder.popen.pid})" in note and "on this thread" in note
        assert "--no-wait gives up at once" in note
        assert "patient" not in stored_texts(tmp_path / "home")  # nothing stored meanwhile
    finally:
        holder.release() if ending == "released" else holder.kill()
    assert proc.finish() == 0, proc.stderr
    roles = [(r, t) for r, t, _ in branch_of(tmp_path / "home", thread_t)]
    assert [r for r, _ in roles] == ["user", "assistant"] * 2
    assert roles[2] == ("user", "patient") and "“patient”" in roles[3][1]


def test_a_leon_killed_mid_reply_does_not_hold_up_the_next(tmp_path, fake_api):
    """kill -9 during a slow reply: the next run on the thread starts at once (no
    waiting: the kernel released the lock), keeps the partial reply and goes on."""
    home = tmp_path / "home"
    env = leon_env(home, tmp_path / "cache", ANTHROPIC_API_KEY=fake_api.api_key,
                   ANTHROPIC_BASE_URL=fake_api.base_url)
    fake_api.script(text(" ".join(f"word{i}" for i in range(300)), chunks=300, delay=0.1))
    first = Proc(env, "run", "--thread", "k", "-m", "claude-sonnet-4-6", "tell a long story")

    def draft_saved():
        try:
            conn = sqlite3.connect(f"file:{home / 'leon.db'}?mode=ro", uri=True)
            try:
                return conn.execute("SELECT count(*) FROM messages WHERE status = 'streaming'"
                                    " AND content != '[]'").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error:
            return 0

    wait_until(draft_saved, 120, "a saved draft")
    assert list((home / "locks").iterdir())  # the dying leon holds the thread's lock
    first.popen.send_signal(signal.SIGKILL)
    first.finish()
    out = run_leon(env, "run", "--thread", "k", "--model", "demo", "after the crash")
    assert out.returncode == 0, out.stderr
    assert "waiting for the other leon" not in out.stderr
    branch = branch_of(home, json.loads(run_leon(env, "threads", "ls", "--json")
                                        .stdout.splitlines()[0])["id"])
    assert [(r, s) for r, _, s in branch] == [("user", "complete"), ("assistant", "interrupted"),
                                              ("user", "complete"), ("assistant", "complete")]
    assert branch[1][1].startswith("word0") and branch[2][1] == "after the crash"
    assert list((home / "locks").iterdir()) == []


def test_rollback_waits_for_no_one_and_moves_nothing_while_a_leon_answers(env, tmp_path,
                                                                        thread_t):
    before = branch_of(tmp_path / "home", thread_t)
    holder = Holder(tmp_path / "home" / "locks", thread_t)
    try:
        for args in (("rollback", "t", "1"), ("rollforward", "t")):
            out = run_leon(env, *args, timeout=60)
            assert out.returncode == 1 and "Traceback" not in out.stderr
            assert out.stderr.strip() == (f"leon: another leon (pid {holder.popen.pid}) is "
                                          "answering on this thread; try again when it has "
                                          "answered")
    finally:
        holder.release()
    assert branch_of(tmp_path / "home", thread_t) == before
    assert run_leon(env, "rollback", "t", "1").returncode == 0
