"""A database another process keeps locked: leon retries with a note for up to
``store.lock_wait`` seconds, then gives up with one line, and the user's message is never
lost to the lock — stored, or said plainly to be unstored (a piped prompt kept in a file)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from fakeapi import text
from proc_helpers import Proc, leon_env, run_leon, wait_until

from leon.store.db import DatabaseLocked, LockWait, StoreError, lock_holder

# A process that holds the write lock of a database until it reads a line.
DB_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


class DbHolder:
    def __init__(self, path):
        self.popen = subprocess.Popen([sys.executable, "-c", DB_HOLDER, str(path)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.popen.stdout.readline().strip() == "held"

    @property
    def pid(self):
        return self.popen.pid

    def release(self):
        if self.popen.poll() is None:
            self.popen.stdin.write("\n")
            self.popen.stdin.flush()
            self.popen.wait(timeout=60)


# -- LockWait ------------------------------------------------------------------------------------
def _busy():
    return sqlite3.OperationalError("database is locked")


async def test_a_busy_operation_is_retried_and_noted_once(tmp_path):
    notes: list[str] = []
    wait = LockWait(tmp_path / "leon.db", 30, notes.append)
    attempts = []

    async def op():
        attempts.append(1)
        if len(attempts) < 4:
            raise _busy()
        return "done"

    assert await wait.run(op) == "done"
    assert len(attempts) == 4
    assert notes == ["leon.db is locked by another process; retrying for up to 30 s…"]
    assert wait.busy_since is None  # the spell is over


async def test_a_lock_that_stays_gives_one_line_and_costs_one_wait(tmp_path):
    notes: list[str] = []
    wait = LockWait(tmp_path / "leon.db", 0.3, notes.append)
    attempts = []

    async def op():
        attempts.append(1)
        raise _busy()

    with pytest.raises(DatabaseLocked) as info:
        await wait.run(op)
    assert isinstance(info.value, StoreError) and isinstance(info.value, sqlite3.OperationalError)
    message = str(info.value)
    assert "\n" not in message and "gave up after 0.3 s (store.lock_wait)" in message
    assert len(notes) == 1 and len(attempts) > 1
    # the next statement does not start a fresh 0.3 s: the spell goes on
    attempts.clear()
    with pytest.raises(DatabaseLocked):
        await wait.run(op)
    assert len(attempts) == 1 and len(notes) == 1


async def test_other_errors_are_not_retried(tmp_path):
    wait = LockWait(tmp_path / "leon.db", 30, lambda _: pytest.fail("noted"))

    async def op():
        raise sqlite3.OperationalError("no such table: nowhere")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await wait.run(op)


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="Linux only")
def test_the_holder_of_a_lock_is_named(tmp_path):
    path = tmp_path / "leon.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE x (a)")
    holder = DbHolder(path)
    try:
        assert lock_holder(path) == holder.pid
    finally:
        holder.release()
        conn.close()
    assert lock_holder(path) is None


# -- through the real leon ----------------------------------------------------------------------
@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def env(tmp_path, home):
    e = leon_env(home, tmp_path / "cache")
    out = run_leon(e, "run", "--thread", "t", "--model", "demo", "first")
    assert out.returncode == 0, out.stderr
    return e


def _stored(home):
    conn = sqlite3.connect(home / "leon.db")
    rows = [json.loads(r[0]) for r in conn.execute("SELECT content FROM messages")]
    conn.close()
    return ["".join(b.get("text", "") for b in c if b["type"] == "text") for c in rows]


def _lock_wait(home, seconds):
    (home / "config.toml").write_text(f"[store]\nlock_wait = {seconds}\n")


def test_a_lock_released_while_leon_retries_costs_nothing(env, home):
    holder = DbHolder(home / "leon.db")
    proc = Proc(env, "run", "--thread", "t", "--model", "demo", "sent while locked")
    try:
        note = proc.wait_for_err("is locked by another process")
        assert note == (f"leon: leon.db is locked by another process (pid {holder.pid}); "
                        "retrying for up to 30 s…")
    finally:
        holder.release()
    assert proc.finish() == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "sent while locked" in _stored(home)
    assert "“sent while locked”" in proc.out


def _final_line(out) -> str:
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("leon: ")
    return last


def test_a_lock_held_past_the_limit_is_one_line_and_a_piped_prompt_is_kept(env, home):
    _lock_wait(home, 5)  # room for one retry after the first 2 s refusal
    holder = DbHolder(home / "leon.db")
    try:
        out = run_leon(env, "run", "--thread", "t", "--model", "demo", "-",
                       input="do not lose me\nplease\n", timeout=120)
        oneshot = run_leon(env, "run", "--model", "demo", "an argv prompt", timeout=120)
    finally:
        holder.release()
    last = _final_line(out)
    assert f"leon.db is locked by another process (pid {holder.pid}); gave up after 5 s " \
           "(store.lock_wait); your message was not stored: it is kept in " in last
    kept = last.rsplit("it is kept in ", 1)[1]
    assert open(kept, encoding="utf-8").read() == "do not lose me\nplease\n"
    assert "retrying for up to 5 s" in out.stderr  # the note came first
    last = _final_line(oneshot)
    assert last.endswith("; your message was not stored: run the command again")
    stored = _stored(home)
    assert not any("do not lose me" in s for s in stored) and "an argv prompt" not in stored


def test_a_lock_after_the_message_is_stored_does_not_lose_it(home, tmp_path, fake_api):
    env = leon_env(home, tmp_path / "cache", ANTHROPIC_API_KEY=fake_api.api_key,
                   ANTHROPIC_BASE_URL=fake_api.base_url)
    home.mkdir(parents=True)
    _lock_wait(home, 3)
    fake_api.script(text(" ".join(f"w{i}" for i in range(200)), chunks=200, delay=0.1))
    proc = Proc(env, "run", "--thread", "s", "-m", "claude-sonnet-4-6", "keep this one")

    def stored():
        try:
            return "keep this one" in _stored(home)
        except sqlite3.Error:
            return False

    wait_until(stored, 120, "the user's message in leon.db")
    holder = DbHolder(home / "leon.db")
    try:
        code = proc.finish()
    finally:
        holder.release()
    assert code == 1 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.err_lines[-1]
    assert "gave up after 3 s" in last and "; your message is stored in thread " in last
    assert "keep this one" in _stored(home)
    shown = run_leon(env, "threads", "show", "s")
    assert "keep this one" in shown.stdout
