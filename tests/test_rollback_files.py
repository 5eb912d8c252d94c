"""`leon rollback --files` through the real `leon`: the files are restored to their content
at the target checkpoint from any head (before, at or after it, across branches), and a
path that leads out of the workspace is refused without changing anything, anywhere.

Every change is made by the real write_file tool (`leon run --yes` against the local
API server); every attack asserts that a victim directory outside the workspace is
byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakeapi import text, tool_use

MODEL = "claude-sonnet-4-6"
THREAD = "work"


def leon(env: dict[str, str], *args: str, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def tree_hash(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (not following symlinks) with its content or link."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


@dataclass
class Rig:
    env: dict[str, str]
    ws: Path
    victim: Path
    home: Path
    fake: object

    def write(self, *changes: tuple[str, str]) -> list[int]:
        """One `leon run` in which the model writes each (path, content) with write_file,
        one tool round each; returns the checkpoint of each round's results."""
        before = self.newest() if (self.home / "leon.db").exists() else 0
        self.fake.script(*[tool_use("write_file", {"path": p, "content": c})
                           for p, c in changes], text("written"))
        out = leon(self.env, "run", "--yes", "--thread", THREAD, "--workspace", str(self.ws),
                   "-m", MODEL, "write the files")
        assert out.returncode == 0, out.stderr
        for p, c in dict(changes).items():
            assert (self.ws / p).read_text() == c
        conn = self.db()
        rows = conn.execute("SELECT c.id FROM checkpoints c JOIN threads t ON t.id ="
                            " c.thread_id WHERE t.name = ? AND c.kind = 'tool' AND c.id > ?"
                            " ORDER BY c.id", (THREAD, before)).fetchall()
        conn.close()
        assert len(rows) == len(changes)
        return [r[0] for r in rows]

    def head(self) -> int:
        conn = self.db()
        row = conn.execute("SELECT head_checkpoint_id FROM threads WHERE name = ?",
                           (THREAD,)).fetchone()
        conn.close()
        return row[0] if row else 0

    def newest(self) -> int:
        conn = self.db()
        row = conn.execute("SELECT max(c.id) FROM checkpoints c JOIN threads t ON t.id ="
                           " c.thread_id WHERE t.name = ?", (THREAD,)).fetchone()
        conn.close()
        return row[0] or 0

    def first(self) -> int:
        """The first checkpoint (the first prompt): before leon changed any file."""
        conn = self.db()
        row = conn.execute("SELECT min(c.id) FROM checkpoints c JOIN threads t ON t.id ="
                           " c.thread_id WHERE t.name = ?", (THREAD,)).fetchone()
        conn.close()
        return row[0]

    def rollback(self, checkpoint: int, *flags: str, cwd: Path | None = None):
        return leon(self.env, "rollback", THREAD, str(checkpoint), *flags, cwd=cwd or self.ws)

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "leon.db")


@pytest.fixture
def rig(leon_paths, tmp_path, fake_api) -> Rig:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    env.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache),
               ANTHROPIC_API_KEY=fake_api.api_key, ANTHROPIC_BASE_URL=fake_api.base_url)
    ws = tmp_path / "ws"
    (ws / "docs").mkdir(parents=True)
    (ws / "notes.txt").write_text("original notes\n")
    (ws / "docs" / "guide.md").write_text("original guide\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("the victim's own file\n")
    return Rig(env, ws, victim, leon_paths.home, fake_api)


def refused_cleanly(out, *needles: str) -> None:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith("leon: not restoring ")
    for needle in needles:
        assert needle in first, first
    assert out.stdout == ""


# -- attacks: nothing outside the workspace is read, written or deleted -------------------
def test_symlinked_parent_is_refused_instead_of_deleting_outside(rig):
    """leon created docs/new.md; docs/ is then swapped for a symlink to a directory
    holding a file of that name and content. Rolling back would delete it there."""
    rig.write(("notes.txt", "leon's notes\n"), ("docs/new.md", "made by leon\n"))
    start, end = rig.first(), rig.head()
    (rig.victim / "new.md").write_text("made by leon\n")  # same bytes: no conflict to hide
    (rig.ws / "docs").rename(rig.ws / "docs.moved")
    os.symlink(rig.victim, rig.ws / "docs")
    before = tree_hash(rig.victim)

    for flags in ((), ("--force",)):
        out = rig.rollback(start, "--files", *flags)
        refused_cleanly(out, str(rig.ws / "docs" / "new.md"), "'docs' is a symlink to",
                        str(rig.victim))
        assert "--force does not override" in out.stderr
        assert tree_hash(rig.victim) == before
        # all or nothing: the legitimate file was not restored either, the head did not move
        assert (rig.ws / "notes.txt").read_text() == "leon's notes\n"
        assert rig.head() == end


def test_symlinked_parent_is_refused_instead_of_overwriting_outside_with_force(rig):
    rig.write(("docs/guide.md", "leon's guide\n"))
    (rig.victim / "guide.md").write_text("the victim's guide\n")
    (rig.ws / "docs").rename(rig.ws / "docs.moved")
    os.symlink(rig.victim, rig.ws / "docs")
    before = tree_hash(rig.victim)

    out = rig.rollback(rig.first(), "--files", "--force")
    refused_cleanly(out, "'docs' is a symlink to")
    assert tree_hash(rig.victim) == before
    assert (rig.victim / "guide.md").read_text() == "the victim's guide\n"


def test_a_link_target_with_escape_sequences_is_printed_inert(rig, tmp_path):
    evil = tmp_path / "evil\x1b]0;owned\x07\x1b[2J"
    evil.mkdir()
    rig.write(("docs/guide.md", "leon's guide\n"))
    (rig.ws / "docs").rename(rig.ws / "docs.moved")
    os.symlink(evil, rig.ws / "docs")
    out = rig.rollback(rig.first(), "--files", "--force")
    refused_cleanly(out, "'docs' is a symlink to", "evil\\x1b]0;owned\\x07\\x1b[2J")
    assert "\x1b" not in out.stderr and "\x07" not in out.stderr
    assert os.listdir(evil) == []


def test_symlinked_file_is_refused_and_its_target_untouched(rig):
    rig.write(("notes.txt", "leon's notes\n"))
    end = rig.head()
    (rig.victim / "secret.txt").write_text("leon's notes\n")  # what leon last wrote
    (rig.ws / "notes.txt").unlink()
    os.symlink(rig.victim / "secret.txt", rig.ws / "notes.txt")
    before = tree_hash(rig.victim)

    for flags in ((), ("--force",)):
        out = rig.rollback(rig.first(), "--files", *flags)
        refused_cleanly(out, "'notes.txt' is a symlink to", str(rig.victim / "secret.txt"))
        assert tree_hash(rig.victim) == before
        assert (rig.ws / "notes.txt").is_symlink()
        assert rig.head() == end


def test_workspace_that_became_a_symlink_is_refused(rig, tmp_path):
    rig.write(("notes.txt", "leon's notes\n"))
    (rig.victim / "notes.txt").write_text("leon's notes\n")
    rig.ws.rename(tmp_path / "ws.old")
    os.symlink(rig.victim, rig.ws)
    before = tree_hash(rig.victim)

    out = rig.rollback(rig.first(), "--files", "--force", cwd=tmp_path)
    refused_cleanly(out, f"the workspace {rig.ws} is now a symlink to {rig.victim}")
    assert tree_hash(rig.victim) == before


def _insert_op(rig: Rig, path: str, before: bytes | None, after: bytes | None,
               workspace: str | None, checkpoint: int) -> int:
    """A file_ops row as an imported or hostile database could hold it."""
    conn = rig.db()
    with conn:
        hashes = []
        for data in (before, after):
            if data is None:
                hashes.append(None)
                continue
            digest = hashlib.sha256(data).hexdigest()
            conn.execute("INSERT OR IGNORE INTO blobs (hash, kind, size, data, created_at)"
                         " VALUES (?,?,?,?,?)", (digest, "file", len(data), data, time.time()))
            hashes.append(digest)
        tid = conn.execute("SELECT id FROM threads WHERE name = ?", (THREAD,)).fetchone()[0]
        cols = [r[1] for r in conn.execute("PRAGMA table_info(file_ops)")]
        row = {"thread_id": tid, "checkpoint_id": checkpoint, "path": path,
               "before_hash": hashes[0], "after_hash": hashes[1], "kind": "tool",
               "tool": "write_file", "created_at": time.time(), "workspace": workspace}
        row = {k: v for k, v in row.items() if k in cols}
        cur = conn.execute(f"INSERT INTO file_ops ({', '.join(row)}) VALUES "
                           f"({', '.join('?' * len(row))})", tuple(row.values()))
        op_id = cur.lastrowid
    conn.close()
    return op_id


def test_rows_naming_paths_outside_the_workspace_are_refused(rig):
    """Rows saying leon changed a file outside the workspace (which it cannot have done),
    as an imported or hostile database could hold them: restoring would overwrite or
    delete the victim's file. Absolute, `..`-laden and deeper `..` paths; with the
    workspace recorded and without (then the one `leon rollback` runs in)."""
    rig.write(("notes.txt", "leon's notes\n"))
    start, end = rig.first(), rig.head()
    victim_file = rig.victim / "keep.txt"
    current = victim_file.read_bytes()
    before = tree_hash(rig.victim)
    paths = [str(victim_file), f"{rig.ws}/../victim/keep.txt",
             f"{rig.ws}/docs/../../victim/keep.txt", f"{rig.ws}/docs/../../victim",
             f"{rig.victim}/\x1b]0;owned\x07\x1b[2J.txt"]
    for path in paths:
        for workspace in (str(rig.ws), None):
            for replacement in (b"attacker's bytes\n", None):  # overwrite, delete
                op = _insert_op(rig, path, replacement, current, workspace, end)
                out = rig.rollback(start, "--files", "--force")
                refused_cleanly(out, "outside the workspace")
                assert "\x1b" not in out.stderr and "\x07" not in out.stderr
                assert tree_hash(rig.victim) == before, (path, workspace)
                assert (rig.ws / "notes.txt").read_text() == "leon's notes\n"  # all or nothing
                conn = rig.db()
                with conn:
                    conn.execute("DELETE FROM file_ops WHERE id = ?", (op,))
                conn.close()
    assert rig.rollback(start, "--files").returncode == 0
    assert (rig.ws / "notes.txt").read_text() == "original notes\n"
    assert tree_hash(rig.victim) == before


def test_a_dotdot_path_that_stays_inside_is_restored(rig):
    """`..` is not refused as such: a row whose path resolves inside the workspace is
    restored where it resolves to."""
    rig.write(("notes.txt", "leon's notes\n"))
    (rig.ws / "docs" / "guide.md").write_text("leon's guide\n")
    _insert_op(rig, f"{rig.ws}/docs/../docs/guide.md", b"original guide\n",
               b"leon's guide\n", str(rig.ws), rig.head())
    out = rig.rollback(rig.first(), "--files")
    assert out.returncode == 0, out.stderr
    assert (rig.ws / "docs" / "guide.md").read_text() == "original guide\n"
    assert (rig.ws / "notes.txt").read_text() == "original notes\n"


def test_a_file_in_the_way_of_a_directory_is_refused_before_anything_changes(rig):
    rig.write(("notes.txt", "leon's notes\n"), ("docs/deep/new.md", "x\n"))
    end = rig.head()
    assert rig.rollback(rig.first(), "--files").returncode == 0
    assert not (rig.ws / "docs" / "deep" / "new.md").exists()
    (rig.ws / "docs" / "deep").rmdir()
    (rig.ws / "docs" / "deep").write_text("now a file\n")
    out = rig.rollback(end, "--files", "--force")
    refused_cleanly(out, "docs/deep is not a directory")
    assert (rig.ws / "notes.txt").read_text() == "original notes\n"


# -- any head: before, at or after the target, across branches ----------------------------
def test_rollback_files_after_a_conversation_only_rollback(rig):
    """The reported bug: `leon rollback T N` then `leon rollback T N --files` said
    "nothing to restore" and left the later content."""
    _, mid, _, _ = rig.write(("notes.txt", "version 1\n"), ("docs/guide.md", "guide 1\n"),
                             ("notes.txt", "version 2\n"), ("docs/extra.md", "extra\n"))

    moved = rig.rollback(mid)
    assert moved.returncode == 0 and rig.head() == mid
    assert (rig.ws / "notes.txt").read_text() == "version 2\n"  # conversation only

    out = rig.rollback(mid, "--files")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == [f"restored  {rig.ws / 'notes.txt'}",
                                           f"deleted   {rig.ws / 'docs' / 'extra.md'}"]
    assert (rig.ws / "notes.txt").read_text() == "version 1\n"
    assert (rig.ws / "docs" / "guide.md").read_text() == "guide 1\n"
    assert not (rig.ws / "docs" / "extra.md").exists()

    again = rig.rollback(mid, "--files")
    assert again.returncode == 0
    assert again.stdout.startswith(f"files: nothing to restore for checkpoint {mid}")


def test_head_before_the_target_redoes_and_moves_forward(rig):
    one, two, three = rig.write(("notes.txt", "version 1\n"), ("docs/new.md", "new\n"),
                                ("notes.txt", "version 3\n"))

    out = rig.rollback(rig.first(), "--files")
    assert out.returncode == 0, out.stderr
    assert (rig.ws / "notes.txt").read_text() == "original notes\n"
    assert not (rig.ws / "docs" / "new.md").exists()

    # redo to a later checkpoint: the head is before it
    out = rig.rollback(two, "--files")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()[:2]) == [f"created   {rig.ws / 'docs' / 'new.md'}",
                                                   f"restored  {rig.ws / 'notes.txt'}"]
    assert (rig.ws / "notes.txt").read_text() == "version 1\n"
    assert (rig.ws / "docs" / "new.md").read_text() == "new\n"

    # head moved back by conversation only, files still at `two`: --files to `three`
    assert rig.rollback(one).returncode == 0
    out = rig.rollback(three, "--files")
    assert out.returncode == 0, out.stderr
    assert (rig.ws / "notes.txt").read_text() == "version 3\n"
    assert rig.head() == three


def test_restore_across_branches(rig):
    base, _, end_a = rig.write(("notes.txt", "base\n"), ("notes.txt", "branch A\n"),
                               ("docs/a.md", "only on A\n"))
    start = rig.first()
    assert rig.rollback(base, "--files").returncode == 0
    _, end_b = rig.write(("notes.txt", "branch B\n"), ("docs/b.md", "only on B\n"))
    assert not (rig.ws / "docs" / "a.md").exists()

    out = rig.rollback(end_a, "--files")
    assert out.returncode == 0, out.stderr
    assert (rig.ws / "notes.txt").read_text() == "branch A\n"
    assert (rig.ws / "docs" / "a.md").read_text() == "only on A\n"
    assert not (rig.ws / "docs" / "b.md").exists()
    assert set(out.stdout.splitlines()[:3]) == {f"restored  {rig.ws / 'notes.txt'}",
                                                f"created   {rig.ws / 'docs' / 'a.md'}",
                                                f"deleted   {rig.ws / 'docs' / 'b.md'}"}

    # conversation-only to B's end, then --files there: from a head on the other branch
    assert rig.rollback(end_b).returncode == 0
    assert rig.rollback(end_b, "--files").returncode == 0
    assert (rig.ws / "notes.txt").read_text() == "branch B\n"
    assert (rig.ws / "docs" / "b.md").read_text() == "only on B\n"
    assert not (rig.ws / "docs" / "a.md").exists()

    assert rig.rollback(start, "--files").returncode == 0
    assert (rig.ws / "notes.txt").read_text() == "original notes\n"
    assert not (rig.ws / "docs" / "b.md").exists()


def test_conflict_from_any_head_then_force_keeps_the_overwritten_content(rig):
    one, _ = rig.write(("notes.txt", "version 1\n"), ("notes.txt", "version 2\n"))
    assert rig.rollback(one).returncode == 0
    (rig.ws / "notes.txt").write_text("the user's edit\n")

    out = rig.rollback(one, "--files")
    assert out.returncode == 1 and str(rig.ws / "notes.txt") in out.stderr
    assert "--force" in out.stderr
    assert (rig.ws / "notes.txt").read_text() == "the user's edit\n"

    out = rig.rollback(one, "--files", "--force")
    assert out.returncode == 0, out.stderr
    assert (rig.ws / "notes.txt").read_text() == "version 1\n"
    conn = rig.db()
    kind, data = conn.execute(
        "SELECT o.kind, b.data FROM file_ops o JOIN blobs b ON b.hash = o.before_hash"
        " ORDER BY o.id DESC LIMIT 1").fetchone()
    conn.close()
    assert (kind, bytes(data)) == ("restore", b"the user's edit\n")


def test_rows_without_a_workspace_use_the_one_given_to_rollback(rig, tmp_path):
    """Rows from before the workspace was recorded (or imported ones) are confined to
    `--workspace`, or the current directory."""
    rig.write(("notes.txt", "leon's notes\n"))
    conn = rig.db()
    with conn:
        conn.execute("UPDATE file_ops SET workspace = NULL")
    conn.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused_cleanly(rig.rollback(rig.first(), "--files", cwd=elsewhere), "outside the workspace")
    assert (rig.ws / "notes.txt").read_text() == "leon's notes\n"
    out = rig.rollback(rig.first(), "--files", "--workspace", str(rig.ws), cwd=elsewhere)
    assert out.returncode == 0, out.stderr
    assert (rig.ws / "notes.txt").read_text() == "original notes\n"
