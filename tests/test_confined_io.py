"""The no-follow file I/O under `rollback --files`, and the window between the check and
the write: a directory swapped for a symlink after the plan was made fails the write
instead of leading it outside; a file changed meanwhile is not overwritten; a FIFO or a
directory where a file was is refused without blocking."""

from __future__ import annotations

import hashlib
import os

import pytest
from toolrig import call, make_agent

from leon.agent import confined_io as cio
from leon.agent.filehistory import RestoreRefused, _apply, plan_restore, restore_files


def tree_hash(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            out[p] = ("link:" + os.readlink(p) if os.path.islink(p) else
                      hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.isfile(p)
                      else "dir")
    return out


@pytest.fixture
def ws(tmp_path):
    w = tmp_path / "ws"
    (w / "docs").mkdir(parents=True)
    (w / "docs" / "guide.md").write_text("original\n")
    return w


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "victim"
    v.mkdir()
    (v / "guide.md").write_text("the victim's\n")
    return v


@pytest.fixture
async def agent(stores, leon_paths, ws):
    a = await make_agent(stores, leon_paths, ws)
    first = await stores.leon.append_message(a.thread.id, "user", [{"type": "text",
                                                                     "text": "hi"}])
    a.first_checkpoint = first[1].id
    await a.load()
    yield a
    await a.close()


async def changed(agent) -> None:
    """Tie the changes just made to a checkpoint after the first one."""
    _, cp = await agent.store.append_message(agent.thread.id, "assistant",
                                             [{"type": "text", "text": "done"}])
    await agent.session.results_stored(cp.id)


def test_open_dir_refuses_a_symlink_at_any_component(tmp_path, victim):
    (tmp_path / "a").mkdir()
    os.symlink(victim, tmp_path / "a" / "link")
    with pytest.raises(OSError, match="is not a directory"):
        with cio.open_dir(str(tmp_path / "a" / "link")):
            pass
    with pytest.raises(OSError, match="is not a directory"):
        with cio.open_dir(str(tmp_path / "a" / "link" / "deeper"), create=True):
            pass
    assert sorted(os.listdir(victim)) == ["guide.md"]
    with pytest.raises(cio.DirMissing):
        with cio.open_dir(str(tmp_path / "a" / "missing" / "x")):
            pass
    assert not (tmp_path / "a" / "missing").exists()


def test_read_replace_remove_never_follow_the_final_symlink(tmp_path, victim):
    os.symlink(victim / "guide.md", tmp_path / "f")
    with cio.open_dir(str(tmp_path)) as fd:
        assert cio.read_file(fd, "f") == (cio.SYMLINK, None)
        cio.replace_file(fd, "f", b"new\n")      # replaces the link itself
    assert not (tmp_path / "f").is_symlink() and (tmp_path / "f").read_bytes() == b"new\n"
    os.unlink(tmp_path / "f")
    os.symlink(victim / "guide.md", tmp_path / "f")
    with cio.open_dir(str(tmp_path)) as fd:
        cio.remove_file(fd, "f")
    assert not os.path.lexists(tmp_path / "f")
    assert (victim / "guide.md").read_text() == "the victim's\n"


def test_replace_keeps_the_mode_and_reading_a_fifo_does_not_block(tmp_path):
    (tmp_path / "f").write_text("x")
    os.chmod(tmp_path / "f", 0o640)
    os.mkfifo(tmp_path / "pipe")
    with cio.open_dir(str(tmp_path)) as fd:
        cio.replace_file(fd, "f", b"y")
        assert cio.read_file(fd, "pipe") == (cio.OTHER, None)  # returns, unread
        assert cio.read_file(fd, "nothing") == (cio.MISSING, None)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["f", "pipe"]  # no temporary file left


async def test_a_directory_swapped_for_a_symlink_after_the_check_fails_the_write(
        agent, ws, victim):
    r = await call(agent, "write_file", path="docs/guide.md", content="leon's\n")
    assert not r.is_error, r.content
    await changed(agent)
    plan = await plan_restore(agent.store, agent.thread.id, agent.first_checkpoint)
    [item] = plan.files
    assert item.action == "restored" and not plan.refused
    before = tree_hash(victim)
    (ws / "docs").rename(ws / "docs.real")
    os.symlink(victim, ws / "docs")          # between the check and the write
    with pytest.raises(OSError, match="is not a directory"):
        _apply(item)
    assert tree_hash(victim) == before


async def test_a_file_changed_after_the_check_is_not_overwritten(agent, ws):
    await call(agent, "write_file", path="docs/guide.md", content="leon's\n")
    await changed(agent)
    plan = await plan_restore(agent.store, agent.thread.id, agent.first_checkpoint)
    (ws / "docs" / "guide.md").write_text("typed meanwhile\n")
    with pytest.raises(OSError, match="changed while it was being restored"):
        _apply(plan.files[0])
    assert (ws / "docs" / "guide.md").read_text() == "typed meanwhile\n"


@pytest.mark.parametrize("thing", ["fifo", "directory"])
async def test_a_fifo_or_directory_in_place_of_the_file_is_refused_even_forced(
        agent, ws, thing):
    await call(agent, "write_file", path="docs/guide.md", content="leon's\n")
    await changed(agent)
    target = ws / "docs" / "guide.md"
    target.unlink()
    if thing == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    with pytest.raises(RestoreRefused, match="another non-file stands there"):
        await restore_files(agent.store, agent.thread.id, agent.first_checkpoint, force=True)
    assert (target.is_fifo() if thing == "fifo" else target.is_dir())
