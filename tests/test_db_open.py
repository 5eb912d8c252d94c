"""Opening the databases, attacked through the real ``leon``: damaged, truncated, newer,
foreign, directory, symlink and FIFO databases are refused with one line and the home is
left exactly as it was; ``leon doctor`` says what is wrong without changing anything;
and any number of leons starting at once on a new or an older home all start."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat

import pytest
from proc_helpers import leon_env, run_leon, snapshot

from leon.store import LeonStore
from leon.store.db import Database, _statements, open_database, probe
from leon.store.schema import CHAT_MIGRATIONS, LEON_MIGRATIONS, SANDBOX_MIGRATIONS

MIGRATIONS = {"leon.db": LEON_MIGRATIONS, "sandbox.db": SANDBOX_MIGRATIONS,
              "chat.db": CHAT_MIGRATIONS}


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def env(tmp_path, home):
    return leon_env(home, tmp_path / "cache")


@pytest.fixture
def healthy(env, home):
    """A home with some history, closed cleanly (no -wal/-shm left)."""
    out = run_leon(env, "run", "--thread", "t", "--model", "demo", "a first message " * 40)
    assert out.returncode == 0, out.stderr
    assert not [p for p in home.iterdir() if p.name.endswith(("-wal", "-shm"))]
    return home


# -- attacks: each (name, how to damage, what leon says, what doctor says) ------------------
def _truncate(path):
    data = path.read_bytes()
    assert len(data) > 8 * 1024
    path.write_bytes(data[: len(data) // 2])


def _truncate_tail(path):
    """Only the last pages go: the schema still reads (SQLite compares the size)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3 * 1024])


def _truncate_header(path):
    path.write_bytes(path.read_bytes()[:50])


def _garbage_after_header(path):
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * (len(data) - 100))


def _garbage_with_a_stale_wal(path):
    """A crash left a -wal (no -shm): reading it with mode=ro would create the -shm."""
    _garbage_after_header(path)
    with open(f"{path}-wal", "wb") as fh:
        fh.write(b"\x37\x7f\x06\x82" + b"\0" * 28)


def _newer(path):
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS[path.name]) + 5}")
    conn.commit()
    conn.close()


def _not_sqlite(path):
    path.write_bytes(b"my shopping list: eggs, milk\n" * 50)


def _directory(path):
    path.unlink()
    path.mkdir()
    (path / "inside.txt").write_text("keep me")


def _symlink(path):
    victim = path.parent.parent / "victim"
    victim.mkdir(exist_ok=True)
    target = victim / "elsewhere.db"
    target.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(target)


def _wal_symlink(path):
    victim = path.parent.parent / "victim"
    victim.mkdir(exist_ok=True)
    (victim / "precious.txt").write_text("do not overwrite me\n")
    os.symlink(victim / "precious.txt", f"{path}-wal")


def _fifo(path):
    path.unlink()
    os.mkfifo(path, 0o600)


ATTACKS = [
    ("truncated", _truncate, "is damaged", "damaged"),
    ("truncated-tail", _truncate_tail, "is damaged", "damaged"),
    ("truncated-header", _truncate_header, "is damaged", "damaged"),
    ("garbage-after-header", _garbage_after_header, "is damaged", "damaged"),
    ("garbage-with-stale-wal", _garbage_with_a_stale_wal, "is damaged", "damaged"),
    ("newer-schema", _newer, "newer than this leon", "newer than this leon understands"),
    ("not-sqlite", _not_sqlite, "is not a SQLite database", "not a SQLite database"),
    ("directory", _directory, "is a directory, not a database file",
     "a directory, not a database file"),
    ("symlink", _symlink, "is a symbolic link, not a database file",
     "a symbolic link, not a database file"),
    ("wal-symlink", _wal_symlink, "leon.db-wal is a symbolic link",
     "leon.db-wal beside it is a symbolic link"),
    ("fifo", _fifo, "is a named pipe", "a named pipe, not a database file"),
]


def _one_line_failure(out) -> str:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("leon: "), out.stderr
    return lines[0]


@pytest.mark.parametrize("name,damage,says,doctor_says", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_a_bad_leon_db_is_refused_and_nothing_changes(healthy, env, tmp_path, name, damage,
                                                      says, doctor_says):
    damage(healthy / "leon.db")  # the snapshot covers tmp_path/victim too
    before = snapshot(tmp_path)
    for args in (("threads", "ls"), ("run", "--model", "demo", "hello"),
                 ("run", "--thread", "t", "--model", "demo", "hello")):
        line = _one_line_failure(run_leon(env, *args, timeout=60))
        assert says in line and "leon.db" in line
        assert snapshot(tmp_path) == before, f"{name}: leon {' '.join(args)} changed files"
    doctor = run_leon(env, "doctor", timeout=60)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "Traceback" not in doctor.stderr
    bad = [x for x in doctor.stdout.splitlines() if x.startswith("BAD")]
    assert len(bad) == 1 and bad[0].startswith("BAD    leon.db:") and doctor_says in bad[0]
    assert "fix:" in doctor.stdout
    assert "ok     sandbox.db: integrity ok" in doctor.stdout
    assert snapshot(tmp_path) == before, f"{name}: leon doctor changed files"


@pytest.mark.parametrize("db", ["chat.db", "sandbox.db"])
def test_a_bad_second_database_leaves_the_healthy_ones_untouched(healthy, env, tmp_path, db):
    """All three are checked before any is opened for writing: a damaged chat.db does not
    leave leon.db opened (its -wal and -shm created, its mtime moved) behind."""
    _garbage_after_header(healthy / db)
    before = snapshot(tmp_path)
    line = _one_line_failure(run_leon(env, "run", "--model", "demo", "hello", timeout=60))
    assert db in line and "is damaged" in line
    assert snapshot(tmp_path) == before
    doctor = run_leon(env, "doctor", timeout=60)
    assert doctor.returncode == 1 and f"BAD    {db}: damaged" in doctor.stdout
    assert "ok     leon.db: integrity ok" in doctor.stdout
    assert snapshot(tmp_path) == before


def test_damage_beyond_what_the_start_up_check_reads_is_one_line(healthy, env, home):
    """Pages the start-up check does not read (message content) break later: still one
    line naming leon doctor, and doctor's integrity check finds it."""
    path = home / "leon.db"
    conn = sqlite3.connect(path)
    pages = [r[0] for r in conn.execute(
        "SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf'")] \
        if _has_dbstat(conn) else []
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    thread = conn.execute("SELECT id FROM threads WHERE name = 't'").fetchone()[0]
    conn.close()
    if not pages:
        pytest.skip("this SQLite has no dbstat table to find the message pages")
    data = bytearray(path.read_bytes())
    for page in pages:
        start = (page - 1) * page_size
        data[start:start + page_size] = b"\xee" * page_size
    path.write_bytes(bytes(data))
    out = run_leon(env, "threads", "show", thread, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("leon: ")
    assert "damaged" in out.stderr and "leon doctor" in out.stderr
    doctor = run_leon(env, "doctor", timeout=60)
    assert doctor.returncode == 1 and "BAD    leon.db: damaged" in doctor.stdout


def _has_dbstat(conn) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1")
    except sqlite3.Error:
        return False
    return True


def test_doctor_on_a_healthy_home_is_ok_and_creates_nothing(env, home, tmp_path):
    fresh = run_leon(env, "doctor", timeout=60)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "not created yet" in fresh.stdout
    assert not (home / "leon.db").exists()
    assert run_leon(env, "threads", "ls").returncode == 0
    before = snapshot(tmp_path)
    out = run_leon(env, "doctor", timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    for db in MIGRATIONS:
        assert f"ok     {db}: integrity ok, schema v{len(MIGRATIONS[db])}, mode 600" in out.stdout
    assert snapshot(tmp_path) == before


def test_doctor_prints_no_control_characters_from_a_crafted_file(healthy, env):
    """Index and table names chosen by whoever made the file reach SQLite's integrity
    report; doctor must not pass their escape sequences to the terminal."""
    path = healthy / "chat.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute('CREATE TABLE "\x1b]0;pwned\x07" (a, b)')
    conn.execute('CREATE INDEX "\x1b[2Jidx" ON "\x1b]0;pwned\x07" (a)')
    conn.execute('INSERT INTO "\x1b]0;pwned\x07" VALUES (1, 10), (2, 20), (3, 30)')
    # The index now claims to cover column b, but holds the values of a: SQLite's
    # integrity check reports it by name.
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = replace(sql, '(a)', '(b)')"
                 " WHERE type = 'index' AND name = '\x1b[2Jidx'")
    conn.close()
    out = run_leon(env, "doctor", timeout=60)
    assert out.returncode == 1 and "BAD    chat.db: damaged" in out.stdout, out.stdout
    assert "?[2Jidx" in out.stdout  # the name is shown, defused
    assert not any(ch in out.stdout + out.stderr for ch in "\x1b\x07\x9b")


# -- the check itself ------------------------------------------------------------------------
def test_probe_of_a_wal_database_creates_no_side_files(tmp_path):
    path = tmp_path / "leon.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE x (a)")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leon.db"]
    before = snapshot(tmp_path)
    assert probe(path, "leon", 5) == 1
    assert snapshot(tmp_path) == before  # a mode=ro open would have made -wal and -shm


def test_statements_split_triggers_strings_and_comments():
    script = """
    -- a comment; with a semicolon
    CREATE TABLE a (x TEXT DEFAULT 'one;two');
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        INSERT INTO a VALUES ('x;'); SELECT 1;
    END;
    -- trailing comment
    """
    parts = list(_statements(script))
    assert len(parts) == 2
    assert parts[0].endswith("'one;two');") and parts[1].rstrip().endswith("END;")
    for migrations in MIGRATIONS.values():
        conn = sqlite3.connect(":memory:")
        for script in migrations:
            for statement in _statements(script):
                conn.execute(statement)  # one statement each, all of them valid
        conn.close()


async def test_a_migration_another_process_finished_meanwhile_is_not_run_again(tmp_path):
    """The race of two first starts, made deterministic: this open is held at its
    migration's BEGIN IMMEDIATE while another connection migrates and commits; once it
    gets the lock it re-reads user_version and runs nothing twice."""
    path = tmp_path / "leon.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA page_size = 1024")
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("BEGIN IMMEDIATE")
    notes: list[str] = []
    opening = asyncio.ensure_future(open_database(path, "leon", LEON_MIGRATIONS,
                                                  notify=notes.append))
    try:
        for _ in range(2000):  # until the open waits for the lock (it says so)
            if notes or opening.done():
                break
            await asyncio.sleep(0.01)
        assert notes and "locked by another process" in notes[0], opening
        for script in LEON_MIGRATIONS:
            for statement in _statements(script):
                other.execute(statement)
        other.execute(f"PRAGMA user_version = {len(LEON_MIGRATIONS)}")
        other.execute("COMMIT")
        conn = await asyncio.wait_for(opening, 120)
    finally:
        other.close()
    store = LeonStore(Database(conn, path))
    assert await store.schema_version() == len(LEON_MIGRATIONS)
    assert await store.integrity_check() == "ok"
    await store.create_thread("scoped", name="works")
    await store.close()


# -- parallel starts -------------------------------------------------------------------------
def _start_together(env, commands):
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-m", "leon", *c], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for c in commands]
    return [(p.wait(timeout=300), *p.communicate()) for p in procs]


def _assert_current(home):
    for name, migrations in MIGRATIONS.items():
        conn = sqlite3.connect(home / name)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations), name
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", name
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal", name
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 1024, name
        conn.close()
        assert stat.S_IMODE(os.stat(home / name).st_mode) == 0o600


@pytest.mark.parametrize("trial", range(3))
def test_six_leons_starting_together_on_an_empty_home_all_start(tmp_path, trial):
    home = tmp_path / "home"
    env = leon_env(home, tmp_path / "cache")
    commands = [("threads", "ls")] * 3 + [("run", "--model", "demo", f"hello {i}")
                                           for i in range(3)]
    results = _start_together(env, commands)
    for code, _out, err in results:
        assert code == 0, err
        assert "already exists" not in err and "Traceback" not in err
    _assert_current(home)
    listed = run_leon(env, "threads", "ls", "--json")
    assert listed.stdout.count('"kind": "oneshot"') == 3


def _older_home(home):
    """Every database at schema version 1 (what an old leon left), leon.db with a thread."""
    home.mkdir(parents=True, mode=0o700)
    for name, migrations in MIGRATIONS.items():
        fd = os.open(home / name, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        conn = sqlite3.connect(home / name, isolation_level=None)
        conn.execute("PRAGMA page_size = 1024")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(migrations[0])
        conn.execute("PRAGMA user_version = 1")
        if name == "leon.db":
            conn.execute("INSERT INTO threads (id, title, kind, name, created_at, updated_at)"
                         " VALUES ('0123456789', 'from the old days', 'scoped', 'old', 1, 1)")
        conn.close()


@pytest.mark.parametrize("trial", range(2))
def test_six_leons_starting_together_on_an_older_home_migrate_it_once(tmp_path, trial):
    home = tmp_path / "home"
    env = leon_env(home, tmp_path / "cache")
    _older_home(home)
    commands = [("threads", "ls")] * 4 + [("run", "--thread", "old", "--model", "demo",
                                           f"hi {i}") for i in range(2)]
    results = _start_together(env, commands)
    for code, _out, err in results:
        assert code == 0, err
        assert "already exists" not in err and "duplicate column" not in err
    _assert_current(home)
    shown = run_leon(env, "threads", "show", "old")
    assert shown.returncode == 0 and "hi 0" in shown.stdout and "hi 1" in shown.stdout
