"""write_file and edit_file: success and error paths, confinement attacks, read tracking,
and file history with rollback (conversation and files), through the real turn loop."""

from __future__ import annotations

import hashlib
import os

import pytest
from fakeapi import text, tool_use
from toolrig import call, make_agent, result_text, results_of, tool_calls

from leon.agent.filehistory import FilesChanged, plan_restore
from leon.agent.tools import ToolContext, ToolRegistry
from leon.agent.tools.write import write_tools
from leon.store.tool_state import ToolState


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.txt").write_text("SECRET\n")
    return d


@pytest.fixture
def ws(tmp_path, outside):
    w = tmp_path / "ws"
    (w / "src").mkdir(parents=True)
    (w / "notes.txt").write_text("alpha\nbeta\ngamma\n")
    (w / "src" / "app.py").write_text("def main():\n    pass\n\n\ndef other():\n    pass\n")
    os.symlink(outside, w / "link_dir")
    os.symlink(outside / "secret.txt", w / "link_file")
    return w


@pytest.fixture
async def agent(stores, leon_paths, ws):
    a = await make_agent(stores, leon_paths, ws)
    yield a
    await a.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- write_file --------------------------------------------------------------------------
async def test_write_creates_file_and_parents_and_records_history(agent, ws, stores):
    r = await call(agent, "write_file", path="docs/new/readme.md", content="# Hi\nthere\n")
    assert not r.is_error, r.content
    assert r.content == "created docs/new/readme.md (2 lines, 11 bytes)"
    assert (ws / "docs/new/readme.md").read_text() == "# Hi\nthere\n"
    ops = await ToolState(stores.leon).file_ops(agent.thread.id)
    assert [(o.before_hash, o.after_hash, o.tool) for o in ops] == [
        (None, sha(b"# Hi\nthere\n"), "write_file")]
    assert await stores.leon.get_blob(ops[0].after_hash) == b"# Hi\nthere\n"


async def test_write_overwrites_and_keeps_mode(agent, ws):
    target = ws / "notes.txt"
    target.chmod(0o640)
    r = await call(agent, "write_file", path="notes.txt", content="alpha\nBETA\ngamma\n")
    assert r.content.startswith("overwrote notes.txt") and "+1 -1" in r.content
    assert target.read_text() == "alpha\nBETA\ngamma\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert not list(ws.glob(".*leon-tmp"))


async def test_write_without_session_refuses(ws):
    reg = ToolRegistry(write_tools())
    r = await reg.call("write_file", {"path": "x.txt", "content": "x"}, ToolContext(workspace=ws))
    assert r.is_error and "session" in r.content
    assert not (ws / "x.txt").exists()


@pytest.mark.parametrize("path", [
    "../escape.txt", "../outside/secret.txt", "src/../../escape.txt", "link_dir/new.txt",
    "link_file", "link_dir/secret.txt",
])
async def test_write_confinement_relative_and_symlinks(agent, ws, outside, path):
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    r = await call(agent, "write_file", path=path, content="pwned\n")
    assert r.is_error and "outside the workspace" in r.content, r.content
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before
    assert not (ws.parent / "escape.txt").exists()


async def test_write_confinement_absolute_and_spill_dir(agent, ws, outside, leon_paths):
    r = await call(agent, "write_file", path=str(outside / "abs.txt"), content="x")
    assert r.is_error and "outside the workspace" in r.content
    assert not (outside / "abs.txt").exists()
    spill = leon_paths.spill / agent.thread.id
    spill.mkdir(parents=True)
    r = await call(agent, "write_file", path=str(spill / "x.txt"), content="x")
    assert r.is_error and "read-only location" in r.content
    r = await call(agent, "edit_file", path="../outside/secret.txt", old_string="S",
                   new_string="P")
    assert r.is_error and "outside the workspace" in r.content
    assert (outside / "secret.txt").read_text() == "SECRET\n"


async def test_write_into_a_directory_is_an_error(agent):
    r = await call(agent, "write_file", path="src", content="x")
    assert r.is_error and "is a directory" in r.content


# -- edit_file ---------------------------------------------------------------------------
async def test_edit_requires_a_read_then_returns_a_unified_diff(agent, ws):
    r = await call(agent, "edit_file", path="notes.txt", old_string="beta", new_string="BETA")
    assert r.is_error and "has not been read" in r.content and "read_file" in r.content
    assert (await call(agent, "read_file", path="notes.txt")).is_error is False
    r = await call(agent, "edit_file", path="notes.txt", old_string="beta", new_string="BETA")
    assert not r.is_error, r.content
    assert r.content.splitlines()[:3] == ["edited notes.txt", "--- a/notes.txt",
                                          "+++ b/notes.txt"]
    assert "-beta" in r.content and "+BETA" in r.content
    assert (ws / "notes.txt").read_text() == "alpha\nBETA\ngamma\n"
    # the thread saw its own change: a second edit needs no new read
    r = await call(agent, "edit_file", path="notes.txt", old_string="gamma", new_string="G")
    assert not r.is_error, r.content


async def test_edit_refuses_a_file_changed_since_it_was_read(agent, ws):
    await call(agent, "read_file", path="notes.txt")
    (ws / "notes.txt").write_text("alpha\nbeta\ngamma\ndelta\n")  # an editor, a command...
    r = await call(agent, "edit_file", path="notes.txt", old_string="beta", new_string="B")
    assert r.is_error and "changed since it was last read" in r.content
    assert "delta" in (ws / "notes.txt").read_text()
    await call(agent, "read_file", path="notes.txt")
    assert not (await call(agent, "edit_file", path="notes.txt", old_string="beta",
                           new_string="B")).is_error


async def test_read_tracking_survives_a_restart(stores, leon_paths, ws):
    first = await make_agent(stores, leon_paths, ws)
    await call(first, "read_file", path="notes.txt")
    await first.close()
    again = await make_agent(stores, leon_paths, ws, thread=first.thread)
    r = await call(again, "edit_file", path="notes.txt", old_string="alpha", new_string="A")
    assert not r.is_error, r.content
    other = await make_agent(stores, leon_paths, ws)  # another thread has read nothing
    r = await call(other, "edit_file", path="notes.txt", old_string="beta", new_string="B")
    assert r.is_error and "has not been read" in r.content


async def test_edit_error_paths(agent, ws):
    await call(agent, "read_file", path="src/app.py")
    r = await call(agent, "edit_file", path="src/app.py", old_string="    pass\n",
                   new_string="    return 1\n")
    assert r.is_error and "occurs 2 times" in r.content and "lines 2, 6" in r.content
    r = await call(agent, "edit_file", path="src/app.py", old_string="def mian():",
                   new_string="x")
    assert r.is_error and "not found" in r.content and "closest line is 1" in r.content
    r = await call(agent, "edit_file", path="src/app.py", old_string="", new_string="x")
    assert r.is_error and "empty" in r.content
    r = await call(agent, "edit_file", path="src/app.py", old_string="def", new_string="def")
    assert r.is_error and "the same" in r.content
    r = await call(agent, "edit_file", path="src/nope.py", old_string="a", new_string="b")
    assert r.is_error and "no such file" in r.content
    r = await call(agent, "edit_file", path="src/app.py", old_string="    pass\n",
                   new_string="    return 1\n", replace_all=True)
    assert not r.is_error and "2 replacements" in r.content
    assert (ws / "src/app.py").read_text().count("return 1") == 2


async def test_edit_keeps_windows_line_ends_and_refuses_binary(agent, ws):
    (ws / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    await call(agent, "read_file", path="win.txt")
    r = await call(agent, "edit_file", path="win.txt", old_string="one\ntwo",
                   new_string="one\n2")
    assert not r.is_error, r.content
    assert (ws / "win.txt").read_bytes() == b"one\r\n2\r\nthree\r\n"
    (ws / "blob.bin").write_bytes(b"\x00\x01binary\x00")
    await call(agent, "read_file", path="blob.bin")
    r = await call(agent, "edit_file", path="blob.bin", old_string="binary", new_string="x")
    assert r.is_error and "not been read" in r.content or "binary" in r.content


# -- through the turn loop, with rollback of files ------------------------------------
async def test_edit_through_the_turn_loop_and_rollback_with_files(stores, leon_paths, ws,
                                                                  fake_api):
    fake_api.script(
        tool_calls(("read_file", {"path": "notes.txt"}),
                   ("edit_file", {"path": "notes.txt", "old_string": "alpha",
                                  "new_string": "ALPHA"}),
                   ("write_file", {"path": "made.txt", "content": "new file\n"})),
        text("Edited and created."),
        tool_use("edit_file", {"path": "notes.txt", "old_string": "beta", "new_string": "BETA"}),
        text("Second edit done."),
    )
    agent = await make_agent(stores, leon_paths, ws, fake_api=fake_api)
    start = (await stores.leon.head(agent.thread.id)) if agent.thread.head_checkpoint_id else None
    assert start is None
    await agent.send("edit please")
    after_first = (await stores.leon.head(agent.thread.id)).id
    await agent.send("and again")
    assert (ws / "notes.txt").read_text() == "ALPHA\nBETA\ngamma\n"
    blocks = results_of(fake_api.message_requests()[1])
    assert [b.get("is_error", False) for b in blocks] == [False, False, False]
    assert "+ALPHA" in result_text(blocks[1])

    # every op is tied to the checkpoint of its tool results
    ops = await ToolState(stores.leon).file_ops(agent.thread.id)
    kinds = {c.id: c.kind for c in await stores.leon.checkpoints(agent.thread.id)}
    assert len(ops) == 3 and all(kinds[o.checkpoint_id] == "tool" for o in ops)

    # roll back to after the first turn: only the second edit is undone
    plan = await agent.rollback(after_first, files=True)
    assert [(f.path.endswith("notes.txt"), f.action) for f in plan.changes] == [(True, "restored")]
    assert (ws / "notes.txt").read_text() == "ALPHA\nbeta\ngamma\n"
    assert (ws / "made.txt").exists()

    # to the very first checkpoint: the created file goes, notes.txt is as it was
    first = (await stores.leon.checkpoints(agent.thread.id))[0].id
    await agent.rollback(first, files=True)
    assert (ws / "notes.txt").read_text() == "alpha\nbeta\ngamma\n"
    assert not (ws / "made.txt").exists()

    # and forward again (a rollback to a later checkpoint redoes the changes)
    last_tool = max(o.checkpoint_id for o in ops)
    await agent.rollback(last_tool, files=True)
    assert (ws / "notes.txt").read_text() == "ALPHA\nBETA\ngamma\n"
    assert (ws / "made.txt").read_text() == "new file\n"
    await agent.close()


async def test_rollback_files_refuses_files_changed_outside_then_force(stores, leon_paths, ws,
                                                                       fake_api):
    fake_api.script(tool_calls(("read_file", {"path": "notes.txt"}),
                               ("edit_file", {"path": "notes.txt", "old_string": "alpha",
                                              "new_string": "ALPHA"})), text("ok"))
    agent = await make_agent(stores, leon_paths, ws, fake_api=fake_api)
    await agent.send("edit")
    head_before = (await stores.leon.head(agent.thread.id)).id
    first = (await stores.leon.checkpoints(agent.thread.id))[0].id
    (ws / "notes.txt").write_text("ALPHA\nbeta\ngamma\nmine\n")  # the user's own edit
    with pytest.raises(FilesChanged) as info:
        await agent.rollback(first, files=True)
    assert [f.path for f in info.value.plan.conflicts] == [str(ws / "notes.txt")]
    assert "notes.txt" in str(info.value)
    assert (await stores.leon.head(agent.thread.id)).id == head_before  # nothing moved
    assert (ws / "notes.txt").read_text().endswith("mine\n")

    await agent.rollback(first, files=True, force=True)
    assert (ws / "notes.txt").read_text() == "alpha\nbeta\ngamma\n"
    restore = (await ToolState(stores.leon).file_ops(agent.thread.id))[-1]
    assert restore.kind == "restore"
    assert await stores.leon.get_blob(restore.before_hash) == b"ALPHA\nbeta\ngamma\nmine\n"
    assert (await plan_restore(stores.leon, agent.thread.id, first)).files == []
    await agent.close()
