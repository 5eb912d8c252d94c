"""One rule for every path leon derives (leon/paths.py): names in leon's own formats only,
no symlink below the roots, directories 0700 and files 0600 — as units, and as attacks on
the real `leon` (planted symlinks, a database naming places outside, an id from an import
made before ids were checked), each asserting a victim directory is untouched."""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from attack_helpers import leon, leon_env, one_line_error, tree
from hypothesis import given, settings
from hypothesis import strategies as st

from leon.lifecycle.archive import archive_name
from leon.memory.spill import spill_name
from leon.paths import (
    ARCHIVE_NAME,
    SPILL_NAME,
    THREAD_ID,
    PathError,
    Paths,
    confine,
    make_private_dir,
    private_dir,
    remove_tree,
)

# -- the formats are what leon makes --------------------------------------------------------


def test_generated_thread_ids_are_in_the_format():
    for _ in range(200):
        assert THREAD_ID.fullmatch(secrets.token_hex(5))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_every_tool_call_id_gives_a_spill_name_in_the_format(tool_use_id):
    name = spill_name(tool_use_id)
    assert SPILL_NAME.fullmatch(name), name
    assert "/" not in name and name not in (".", "..") and not name.startswith(".")


@settings(max_examples=200, deadline=None)
@given(st.text(), st.floats(allow_nan=True, allow_infinity=True))
def test_every_archive_name_is_in_the_format_even_for_a_hostile_id(thread_id, when):
    assert ARCHIVE_NAME.fullmatch(archive_name(thread_id, when))
    if THREAD_ID.fullmatch(thread_id) and math.isfinite(when) and 0 <= when < 2**31:
        assert archive_name(thread_id, when).startswith(f"{thread_id}-")


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "/abs", "a\x00b", "a\nb",
                                 "a\x1bb", "A" * 3, "-x", "x" * 65, "x.y"])
def test_a_thread_id_not_in_the_format_never_becomes_a_path(tmp_path, bad):
    paths = Paths(home=tmp_path / "h", cache=tmp_path / "c")
    for derive in (paths.spill_dir, paths.sandbox_dir):
        with pytest.raises(PathError, match="not a valid thread id"):
            derive(bad)
    with pytest.raises(PathError):
        paths.spill_file("abc", bad)
    assert not (tmp_path / "h").exists() and not (tmp_path / "c").exists()


async def test_create_thread_refuses_an_id_that_is_not_leons(stores):
    with pytest.raises(PathError):
        await stores.leon.create_thread("scoped", thread_id="../../x")


# -- confine, private_dir, remove_tree ------------------------------------------------------


def test_confine_refuses_a_symlink_at_any_level(tmp_path):
    root, victim = tmp_path / "root", tmp_path / "victim"
    (root / "a" / "b").mkdir(parents=True)
    victim.mkdir()
    assert confine(root, "a", "b", "c", "d") == root / "a" / "b" / "c" / "d"  # need not exist
    (root / "link").symlink_to(victim)
    (root / "a" / "b" / "tail").symlink_to(victim / "file")
    (root / "a" / "inner").symlink_to(root / "a" / "b")  # pointing inside: refused all the same
    for parts in (("link",), ("link", "x"), ("a", "b", "tail"), ("a", "inner", "x")):
        with pytest.raises(PathError, match="symlink"):
            confine(root, *parts)
    (root / "file").write_text("x")
    with pytest.raises(PathError, match="not a directory"):
        confine(root, "file", "x")
    for part in ("..", ".", "", "a/b", "x\x00", "x\ny", "\x9b"):
        with pytest.raises(PathError):
            confine(root, part)


def test_private_dir_makes_every_level_0700_and_leaves_existing_parents_alone(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    old = os.umask(0)  # the modes must not depend on the umask
    try:
        made = private_dir(existing / "new1" / "new2" / "cache", "spill", "abc")
    finally:
        os.umask(old)
    assert made == existing / "new1" / "new2" / "cache" / "spill" / "abc"
    for d in (existing / "new1", existing / "new1" / "new2", existing / "new1" / "new2" / "cache",
              made.parent, made):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755  # not leon's: not touched


def test_private_dir_tightens_a_directory_an_older_leon_left_0755(tmp_path):
    (tmp_path / "cache" / "spill").mkdir(parents=True, mode=0o755)
    (tmp_path / "cache" / "spill").chmod(0o755)
    private_dir(tmp_path / "cache", "spill", "abc")
    assert stat.S_IMODE((tmp_path / "cache" / "spill").stat().st_mode) == 0o700


def test_private_dir_refuses_a_symlink_in_the_way(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    victim.chmod(0o755)
    make_private_dir(tmp_path / "cache")
    (tmp_path / "cache" / "spill").symlink_to(victim)
    before = tree(victim)
    with pytest.raises(PathError, match="symlink"):
        private_dir(tmp_path / "cache", "spill", "abc")
    assert tree(victim) == before  # nothing made there, no chmod 0700 of it


def test_remove_tree_removes_a_link_never_its_target(tmp_path):
    root, victim = tmp_path / "root", tmp_path / "victim"
    root.mkdir()
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    (root / "link").symlink_to(victim, target_is_directory=True)
    before = tree(victim)
    assert remove_tree(root, "link")
    assert not os.path.lexists(root / "link") and tree(victim) == before
    with pytest.raises(PathError):
        remove_tree(root, "..")


def test_a_spill_path_from_the_database_only_lends_its_name(tmp_path):
    paths = Paths(home=tmp_path / "h", cache=tmp_path / "c")
    derived = paths.stored_spill("abc", "/tmp/victim/toolu_1.txt")
    assert derived == paths.spill / "abc" / "toolu_1.txt"
    for stored in ("/etc/passwd", "/home/u/.bashrc", "../..", "x\x00.txt"):
        with pytest.raises(PathError):
            paths.stored_spill("abc", stored)


# -- attacks through the real leon ----------------------------------------------------------


@pytest.fixture
def rig(leon_paths, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("do not touch\n")
    return {"env": leon_env(leon_paths.home, leon_paths.cache), "paths": leon_paths, "ws": ws,
            "victim": victim, "tmp": tmp_path}


def _run(rig, *args, **kw):
    return leon(rig["env"], *args, cwd=rig["ws"], **kw)


def _thread_id(rig, name: str) -> str:
    conn = sqlite3.connect(rig["paths"].leon_db)
    try:
        return conn.execute("SELECT id FROM threads WHERE name = ?", (name,)).fetchone()[0]
    finally:
        conn.close()


def _outside(rig) -> list[str]:
    """What lies next to leon's roots (a traversal would add entries here)."""
    return sorted(p.name for p in rig["tmp"].iterdir())


def test_thread_id_from_an_unchecked_old_import_cannot_reach_outside(rig):
    """A thread whose id is ``../../victim`` (imported before ids were checked): its
    commands get no sandbox outside the cache, it can be removed, and housekeeping goes on."""
    proc = _run(rig, "run", "-m", "demo", "-t", "legacy", "hello")
    assert proc.returncode == 0, proc.stderr
    old, bad = _thread_id(rig, "legacy"), "../../victim"
    conn = sqlite3.connect(rig["paths"].leon_db)
    with conn:
        conn.execute("PRAGMA defer_foreign_keys = ON")
        for table in ("messages", "checkpoints", "events", "usage", "summaries"):
            conn.execute(f"UPDATE {table} SET thread_id = ? WHERE thread_id = ?", (bad, old))
        conn.execute("UPDATE threads SET id = ? WHERE id = ?", (bad, old))
    conn.close()
    victim, outside = tree(rig["victim"]), _outside(rig)
    proc = _run(rig, "run", "-m", "demo", "--yes", "-t", "legacy",
                "run `pwd` and run `seq 1 30000`")
    assert proc.returncode == 0, proc.stderr
    assert "not a valid thread id" in proc.stdout
    assert str(rig["victim"]) not in proc.stdout
    proc = _run(rig, "threads", "rm", bad, "--yes")
    assert proc.returncode == 0, proc.stderr
    proc = _run(rig, "gc")
    assert proc.returncode == 0 and "housekeeping stopped" not in proc.stderr, proc.stderr
    proc = _run(rig, "run", "-m", "demo", "hello")
    assert proc.returncode == 0 and "housekeeping stopped" not in proc.stderr, proc.stderr
    assert tree(rig["victim"]) == victim and _outside(rig) == outside


def test_symlinked_spill_directory_gets_no_file(rig):
    """``$LEON_CACHE/spill`` planted as a link to the victim: a big output is not spilled
    there (it stays in the context, and an error event says why)."""
    make_private_dir(rig["paths"].cache)
    rig["paths"].spill.symlink_to(rig["victim"], target_is_directory=True)
    victim = tree(rig["victim"])
    proc = _run(rig, "run", "-m", "demo", "--yes", "-t", "big", "run `seq 1 30000`")
    assert proc.returncode == 0, proc.stderr
    assert tree(rig["victim"]) == victim
    conn = sqlite3.connect(rig["paths"].leon_db)
    try:
        events = [json.loads(r[0]) for r in conn.execute(
            "SELECT data FROM events WHERE kind = 'error'")]
        spills = conn.execute("SELECT count(*) FROM spills").fetchone()[0]
    finally:
        conn.close()
    assert spills == 0
    assert any(e.get("where") == "spill" and "symlink" in e["error"] for e in events), events


def test_symlinked_thread_spill_directory_does_not_widen_what_the_model_reads(rig):
    """Before: the thread's spill directory, resolved, was a read root — a link there to
    the victim let `read_file` read it."""
    proc = _run(rig, "run", "-m", "demo", "-t", "reader", "hello")
    tid = _thread_id(rig, "reader")
    make_private_dir(rig["paths"].spill)
    (rig["paths"].spill / tid).symlink_to(rig["victim"], target_is_directory=True)
    proc = _run(rig, "run", "-m", "demo", "-t", "reader", f"read {rig['victim']}/precious.txt")
    assert proc.returncode == 0, proc.stderr
    assert "do not touch" not in proc.stdout
    assert "outside" in proc.stdout


def test_symlinked_sandboxes_directory_runs_nothing_there(rig):
    make_private_dir(rig["paths"].cache)
    rig["paths"].sandboxes.symlink_to(rig["victim"], target_is_directory=True)
    victim = tree(rig["victim"])
    proc = _run(rig, "run", "-m", "demo", "--yes", "-t", "box", "run `touch pwned`")
    assert proc.returncode == 0, proc.stderr
    assert "symlink" in proc.stdout
    assert tree(rig["victim"]) == victim


def test_sandbox_row_naming_a_place_outside_is_never_used_nor_deleted(rig):
    proc = _run(rig, "run", "-m", "demo", "--yes", "-t", "box", "run `pwd`")
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(rig["paths"].sandbox_db)
    with conn:
        conn.execute("UPDATE sandboxes SET path = ?", (str(rig["victim"]),))
    conn.close()
    victim = tree(rig["victim"])
    proc = _run(rig, "run", "-m", "demo", "--yes", "-t", "box", "run `touch made-here`")
    assert proc.returncode == 0, proc.stderr
    tid = _thread_id(rig, "box")
    assert (rig["paths"].sandboxes / tid / "made-here").exists()
    for args in (("sandbox", "gc"), ("threads", "rm", tid, "--yes"), ("gc",)):
        proc = _run(rig, *args)
        assert proc.returncode == 0, (args, proc.stderr)
    assert tree(rig["victim"]) == victim


def test_symlinked_archive_directory_refuses_the_delete(rig):
    proc = _run(rig, "run", "-m", "demo", "-t", "doomed", "hello")
    tid = _thread_id(rig, "doomed")
    rig["paths"].archive.symlink_to(rig["victim"], target_is_directory=True)
    victim = tree(rig["victim"])
    proc = _run(rig, "threads", "rm", tid, "--yes")
    assert proc.returncode == 1
    assert "symlink" in one_line_error(proc)
    assert _run(rig, "threads", "show", tid).returncode == 0  # not deleted: no archive
    assert tree(rig["victim"]) == victim


def _modes(root: Path, skip: Path) -> list[tuple[str, str]]:
    """(path, problem) for every directory below ``root`` not 0700 and every file not 0600
    (the sandbox contents are the commands' files, not leon's)."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath).parent == skip:
            dirnames[:] = []
            filenames = []
        for name in [*dirnames, *filenames, ""]:
            p = Path(dirpath, name) if name else Path(dirpath)
            mode = stat.S_IMODE(p.lstat().st_mode)
            want = 0o700 if p.is_dir() else 0o600
            if mode != want:
                bad.append((str(p), oct(mode)))
    return bad


def test_every_directory_leon_makes_is_0700_and_every_file_0600(tmp_path):
    parent = tmp_path / "existing"
    parent.mkdir(mode=0o755)
    parent.chmod(0o755)
    home, cache = parent / "h1" / "home", parent / "c1" / "c2" / "cache"
    env = leon_env(home, cache)
    ws = tmp_path / "ws"
    ws.mkdir()

    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "leon", *args], env=env, cwd=ws,
                              capture_output=True, text=True, timeout=120,
                              preexec_fn=lambda: os.umask(0o002))  # a lax umask
        assert proc.returncode == 0, (args, proc.stderr)
        return proc

    run("config", "set", "memory.spill.threshold_chars", "4000")
    run("run", "-m", "demo", "--yes", "-t", "one", "run `seq 1 30000`")
    tid = json.loads(run("threads", "ls", "--json").stdout.splitlines()[0])["id"]
    run("threads", "export", tid, "-f", "json", "-o", str(home / "export.json"))
    run("threads", "rm", tid, "--yes")
    assert list((home / "archive").iterdir()) and list((cache / "spill").iterdir()) == []
    run("threads", "restore", tid)
    assert list((cache / "spill" / tid).iterdir())
    for root in (home, cache):
        assert _modes(root, cache / "sandboxes") == []
    for made in (parent / "h1", parent / "c1", parent / "c1" / "c2"):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
    assert stat.S_IMODE(parent.stat().st_mode) == 0o755
