"""bash in the sandbox directory, command metrics, leases (heartbeat, release, expiry,
a SIGKILLed holder), garbage collection and `leon sandbox`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from fakeapi import text, tool_use
from toolrig import call, make_agent, result_text, results_of

from leon.agent.sandbox import HOST, collect_garbage, startup_cleanup
from leon.agent.tools.bash import command_env
from leon.config import Settings


@pytest.fixture
def ws(tmp_path):
    w = tmp_path / "ws"
    w.mkdir()
    (w / "notes.txt").write_text("one\ntwo\n")
    return w


@pytest.fixture
async def agent(stores, leon_paths, ws):
    a = await make_agent(stores, leon_paths, ws)
    yield a
    await a.close()


# -- bash ------------------------------------------------------------------------------
async def test_bash_runs_in_the_sandbox_without_secrets(agent, ws, leon_paths, monkeypatch,
                                                       stores):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws_s3cr3t")
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    r = await call(agent, "bash", command='pwd; echo "ws=$LEON_WORKSPACE"; env | sort')
    assert not r.is_error, r.content
    lines = r.content.splitlines()
    sandbox_dir = leon_paths.sandboxes / agent.thread.id
    assert lines[0] == str(sandbox_dir)
    assert f"ws={ws}" in lines
    assert "sk-ant-" not in r.content and "ghp_" not in r.content and "s3cr3t" not in r.content
    assert "HARMLESS_SETTING" not in r.content  # not on the allowlist (tests/test_bash_env.py)
    assert lines[-1].startswith("[exit code 0 · ")
    assert r.meta["exit_code"] == 0 and r.meta["cwd"] == str(sandbox_dir)
    box = await stores.sandbox.sandbox_for_thread(agent.thread.id)
    [cmd] = await stores.sandbox.commands(box.id)
    assert cmd.command.startswith("pwd;") and cmd.exit_code == 0
    assert cmd.bytes_out == r.meta["bytes_out"] > 0 and cmd.duration_ms > 0


def test_command_env_passes_only_the_allowlist():
    env = command_env({"LEON_WORKSPACE": "/w"}, base={
        "ANTHROPIC_API_KEY": "x", "ANTHROPIC_BASE_URL": "x", "OPENAI_API_KEY": "x",
        "GH_TOKEN": "x", "NPM_TOKEN": "x", "DB_PASSWORD": "x", "MY_SECRET": "x",
        "PATH": "/bin", "HOME": "/h", "SSH_AUTH_SOCK": "/s", "TOKENIZERS_PARALLELISM": "1",
        "LC_ALL": "C"}, passed=["TOKENIZERS_PARALLELISM", "ANTHROPIC_API_KEY"])
    assert sorted(k for k in env if k not in ("PAGER", "GIT_PAGER", "NO_COLOR", "TERM",
                                               "GIT_TERMINAL_PROMPT")) == [
        "HOME", "LC_ALL", "LEON_WORKSPACE", "PATH", "TOKENIZERS_PARALLELISM"]


async def test_bash_exit_code_binary_output_and_cap(stores, leon_paths, ws):
    settings = Settings({"tools.bash_output_cap": 2000})
    agent = await make_agent(stores, leon_paths, ws, settings=settings)
    r = await call(agent, "bash", command="echo failing >&2; exit 3")
    assert not r.is_error and r.meta["exit_code"] == 3
    assert r.content.splitlines()[0] == "failing" and "[exit code 3" in r.content
    r = await call(agent, "bash", command=r"printf 'ab\000\001\377cd'")
    assert "binary data" in r.content and "\x00" not in r.content and r.meta["binary"]
    r = await call(agent, "bash", command="seq 1 100000")
    assert r.meta["bytes_out"] == len("".join(f"{i}\n" for i in range(1, 100001)))
    assert "bytes of output omitted" in r.content and "output capped" in r.content
    assert r.content.startswith("1\n2\n") and "100000\n[output capped" in r.content
    assert len(r.content) < 2600
    r = await call(agent, "bash", command="true")
    assert r.content.startswith("(no output)\n[exit code 0")
    await agent.close()


async def test_bash_timeout_kills_the_process_group(agent, tmp_path):
    marker = tmp_path / "child.pid"
    started = time.monotonic()
    r = await call(agent, "bash", command=f"sleep 30 & echo $! > {marker}; wait", timeout=0.5)
    assert time.monotonic() - started < 5
    assert r.is_error and "timed out after 0.5 s" in r.content and r.meta["exit_code"] is None
    child = int(marker.read_text())
    for _ in range(50):
        if not _alive(child):
            break
        await asyncio.sleep(0.05)
    assert not _alive(child)


async def test_cancelling_a_command_kills_it(agent, tmp_path):
    marker = tmp_path / "cancel.pid"
    task = asyncio.create_task(call(agent, "bash", command=f"echo $$ > {marker}; sleep 30"))
    for _ in range(100):
        if marker.exists() and marker.read_text().strip():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(marker.read_text())
    for _ in range(50):
        if not _alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(pid)


async def test_background_processes_do_not_outlive_the_command(agent, tmp_path):
    marker = tmp_path / "bg.pid"
    r = await call(agent, "bash", command=f"(sleep 30 > /dev/null 2>&1 &) ; "
                                          f"sleep 30 > /dev/null 2>&1 & echo $! > {marker}")
    assert r.meta["exit_code"] == 0
    pid = int(marker.read_text())
    for _ in range(50):
        if not _alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_bash_in_workspace_when_configured(stores, leon_paths, ws):
    agent = await make_agent(stores, leon_paths, ws,
                             settings=Settings({"tools.bash_cwd": "workspace"}))
    r = await call(agent, "bash", command="cat notes.txt")
    assert r.content.startswith("one\ntwo\n")
    await agent.close()


async def test_bash_through_the_turn_loop(stores, leon_paths, ws, fake_api):
    fake_api.script(tool_use("bash", {"command": 'cd "$LEON_WORKSPACE" && wc -l < notes.txt'}),
                    text("Two lines."))
    agent = await make_agent(stores, leon_paths, ws, fake_api=fake_api)
    assert (await agent.send("count lines")).text == "Two lines."
    block = results_of(fake_api.message_requests()[1])[0]
    assert result_text(block).startswith("2\n[exit code 0")
    await agent.close()


async def test_a_spilled_command_output_is_recorded_with_its_metrics(stores, leon_paths, ws,
                                                                     fake_api):
    fake_api.script(tool_use("bash", {"command": "seq 1 5000"}), text("Long."))
    agent = await make_agent(stores, leon_paths, ws, fake_api=fake_api)
    await agent.send("count far")
    box = await stores.sandbox.sandbox_for_thread(agent.thread.id)
    [cmd] = await stores.sandbox.commands(box.id)
    assert cmd.spill_path and cmd.spill_path.startswith(str(leon_paths.spill))
    with open(cmd.spill_path) as fh:
        assert fh.read().startswith("1\n2\n3\n")
    await agent.close()


# -- leases ----------------------------------------------------------------------------
async def test_lease_acquired_on_first_use_heartbeat_and_release(stores, leon_paths, ws):
    agent = await make_agent(stores, leon_paths, ws,
                             settings=Settings({"sandbox.lease_ttl": 5.0}))
    assert await stores.sandbox.sandbox_for_thread(agent.thread.id) is None
    await call(agent, "read_file", path="notes.txt")  # reading needs no sandbox
    assert await stores.sandbox.sandbox_for_thread(agent.thread.id) is None
    await call(agent, "bash", command="true")
    box = await stores.sandbox.sandbox_for_thread(agent.thread.id)
    lease = await stores.sandbox.open_lease(box.id)
    assert lease.holder == f"{os.getpid()}@{HOST}"
    await asyncio.sleep(1.9)  # the heartbeat runs every ttl/3
    beat = await stores.sandbox.get_lease(lease.id)
    assert beat.heartbeat_at > lease.heartbeat_at and beat.expires_at > lease.expires_at
    await agent.close()
    closed = await stores.sandbox.get_lease(lease.id)
    assert closed.released_at is not None and closed.observed_state == "released"
    events = await stores.sandbox.lease_events(lease.id)
    assert [(e.from_state, e.to_state) for e in events] == [(None, "held"), ("held", "released")]


async def test_a_live_holder_blocks_until_its_lease_expires(stores, leon_paths, ws):
    agent = await make_agent(stores, leon_paths, ws)
    box = await stores.sandbox.create_sandbox("box1", agent.thread.id,
                                              str(leon_paths.sandboxes / agent.thread.id))
    other = f"{os.getppid()}@{HOST}"  # a process that is alive and is not us
    lease, _ = await stores.sandbox.acquire_lease(box.id, other, 60, lambda lease, now: None)
    r = await call(agent, "bash", command="echo hi")
    assert r.is_error and "in use by" in r.content and other in r.content
    await stores.sandbox.db.execute("UPDATE leases SET expires_at = ? WHERE id = ?",
                                    (time.time() - 1, lease.id))
    r = await call(agent, "bash", command="echo hi")
    assert not r.is_error, r.content
    [event] = [e for e in await stores.sandbox.lease_events(lease.id) if e.to_state == "expired"]
    assert "without a heartbeat" in event.note
    await agent.close()


HOLDER_SCRIPT = textwrap.dedent("""
    import asyncio, sys, time
    from leon.agent.sandbox import SandboxLease
    from leon.paths import Paths
    from leon.store import Stores

    async def main():
        paths = Paths(home=__import__('pathlib').Path(sys.argv[1]),
                      cache=__import__('pathlib').Path(sys.argv[2]))
        stores = await Stores.open(paths)
        lease = SandboxLease(stores.sandbox, paths, sys.argv[3], 600)
        await lease.acquire()
        print("held", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


async def test_a_sigkilled_holder_does_not_block_the_next_start(stores, leon_paths, ws):
    agent = await make_agent(stores, leon_paths, ws)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(leon_paths.home), str(leon_paths.cache),
         agent.thread.id], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        box = await stores.sandbox.sandbox_for_thread(agent.thread.id)
        lease = await stores.sandbox.open_lease(box.id)
        assert lease.holder == f"{proc.pid}@{HOST}"
        r = await call(agent, "bash", command="echo blocked")
        assert r.is_error and "in use" in r.content  # alive: it really holds it
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the dead holder's lease (600 s left) does not block: taken over at once
    r = await call(agent, "bash", command="echo free")
    assert not r.is_error and r.content.startswith("free")
    dead = await stores.sandbox.get_lease(lease.id)
    assert dead.observed_state == "expired"
    notes = [e.note for e in await stores.sandbox.lease_events(lease.id)]
    assert any("no longer running" in n for n in notes)
    await agent.close()


# -- reaping and garbage ---------------------------------------------------------------
async def test_gc_reaps_stale_leases_finished_sandboxes_and_orphans(stores, leon_paths, ws):
    sb, leon = stores.sandbox, stores.leon
    active = await leon.create_thread("scoped")
    done = await leon.create_thread("oneshot")
    gone_id = "deadbeef00"
    boxes = {}
    for name, tid in (("active", active.id), ("done", done.id), ("gone", gone_id)):
        path = leon_paths.sandboxes / tid
        path.mkdir(parents=True)
        (path / "scratch.txt").write_text("x")
        boxes[name] = await sb.create_sandbox(f"box-{name}", tid, str(path))
    await leon.update_thread(done.id, status="completed")
    orphan = leon_paths.sandboxes / "orphan-dir"
    orphan.mkdir()
    expired, _ = await sb.acquire_lease("box-active", "1@elsewhere", -5, lambda lease, n: None)
    held, _ = await sb.acquire_lease("box-gone", f"{os.getppid()}@{HOST}", 600,
                                     lambda lease, n: None)

    dry = await collect_garbage(leon, sb, leon_paths, dry_run=True)
    assert [lease.id for lease, _ in dry.leases_reaped] == [expired.id]
    assert {b.id for b in dry.sandboxes_removed} == {"box-done"}
    assert (leon_paths.sandboxes / done.id).exists() and orphan.exists()

    report = await collect_garbage(leon, sb, leon_paths)
    assert [lease.id for lease, _ in report.leases_reaped] == [expired.id]
    assert {b.id for b in report.sandboxes_removed} == {"box-done"}  # box-gone is held
    assert report.orphans_removed == [orphan] and not orphan.exists()
    assert not (leon_paths.sandboxes / done.id).exists()
    assert (leon_paths.sandboxes / active.id / "scratch.txt").exists()
    assert (await sb.get_sandbox("box-done")).state == "removed"
    assert "reaped 1 stale lease(s), 1 finished sandbox(es), 1 orphan" in report.summary()

    await sb.release_lease(held.id)
    report = await collect_garbage(leon, sb, leon_paths, budget=0)
    assert report.left_for_later >= 1  # the budget ran out before box-gone
    report = await collect_garbage(leon, sb, leon_paths)
    assert {b.id for b in report.sandboxes_removed} == {"box-gone"}


async def test_startup_cleanup_runs_once_and_logs_one_line(stores, leon_paths):
    (leon_paths.sandboxes / "orphan").mkdir(parents=True)
    report = await startup_cleanup(stores.leon, stores.sandbox, leon_paths)
    assert report is not None and len(report.orphans_removed) == 1
    assert await startup_cleanup(stores.leon, stores.sandbox, leon_paths) is None
    rows = await stores.leon.db.fetchall("SELECT data FROM events WHERE kind = 'cleanup'")
    assert len(rows) == 1 and "1 orphan" in rows[0]["data"]


def test_sandbox_cli(leon_paths, ws, capsys, monkeypatch):
    from leon.cli import main

    monkeypatch.chdir(ws)
    assert main(["run", "--yes", "run `echo from-the-sandbox`"]) == 0
    out = capsys.readouterr()
    assert "from-the-sandbox" in out.out
    assert main(["sandbox", "ls"]) == 0
    line = capsys.readouterr().out.strip()
    box_id, thread_id = line.split()[0], line.split()[2]
    assert "1 cmds" in line and "free" in line
    assert main(["sandbox", "show", thread_id]) == 0
    shown = capsys.readouterr().out
    assert "held -> released" in shown and "echo from-the-sandbox" in shown and "exit 0" in shown
    assert main(["sandbox", "gc", "--dry-run"]) == 0  # the oneshot thread is completed
    assert f"sandbox {box_id}" in capsys.readouterr().out
    assert (leon_paths.sandboxes / thread_id).exists()
    assert main(["sandbox", "rm", box_id]) == 0
    assert "removed sandbox" in capsys.readouterr().out
    assert not (leon_paths.sandboxes / thread_id).exists()
    assert main(["sandbox", "ls"]) == 0
    assert "no sandboxes" in capsys.readouterr().out
    assert main(["sandbox", "show", "nope"]) == 1
