"""The issue's "done when": a scripted `leon run --yes` session edits a file, runs a
command and delegates a sub-task, and the user rolls all of it back with
`leon rollback --files` — as real processes on the demo model."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def leon(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def checkpoint_ids(env, thread):
    lines = leon(env, "checkpoints", thread).stdout.splitlines()
    return [line.lstrip("*| ").split()[0] for line in lines]


def test_run_yes_edits_runs_delegates_then_rollback_files(leon_paths, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    env.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache))
    ws = tmp_path / "ws"
    ws.mkdir()
    notes = ws / "notes.txt"
    notes.write_text("alpha\nbeta\ngamma\n")

    prompt = ("read notes.txt, replace alpha with ALPHA in notes.txt, "
              'run `cd "$LEON_WORKSPACE" && grep -c ALPHA notes.txt` and delegate list files')
    out = leon(env, "run", "--yes", "--json", "-w", str(ws), prompt)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    finished = {e["name"]: e for e in events if e["kind"] == "tool_result"}
    assert set(finished) == {"read_file", "edit_file", "bash", "task"}
    assert not any(e["is_error"] for e in finished.values()), finished
    assert "+ALPHA" in finished["edit_file"]["output"]
    assert finished["bash"]["output"].startswith("1\n[exit code 0")
    assert "notes.txt" in finished["task"]["output"]  # the sub-agent listed the files
    thread = next(e["thread"] for e in events if e["kind"] == "done")
    assert notes.read_text() == "ALPHA\nbeta\ngamma\n"

    # without --yes nothing that changes things runs
    denied = leon(env, "run", "-w", str(ws), "write other.txt with nope")
    assert denied.returncode == 0 and "denied" in denied.stderr
    assert not (ws / "other.txt").exists()

    # the sub-agent's outcome waits in the inbox; its thread is completed
    inbox = leon(env, "inbox")
    assert "(sub-agent)" in inbox.stdout and "list files" in inbox.stdout
    threads = leon(env, "threads", "ls", "--kind", "subagent", "--json")
    [child] = [json.loads(line) for line in threads.stdout.splitlines()]
    assert child["status"] == "completed"

    # the command is in sandbox.db; the lease was released at exit
    shown = leon(env, "sandbox", "show", thread)
    assert "grep -c ALPHA notes.txt" in shown.stdout and "held -> released" in shown.stdout

    # roll everything back: conversation and files
    first = checkpoint_ids(env, thread)[0]
    back = leon(env, "rollback", thread, first, "--files")
    assert back.returncode == 0, back.stderr
    assert f"restored  {notes}" in back.stdout
    assert notes.read_text() == "alpha\nbeta\ngamma\n"

    # rolling forward by checkpoint, then a file changed outside leon blocks the rollback
    last = checkpoint_ids(env, thread)[-1]
    assert leon(env, "rollback", thread, last, "--files").returncode == 0
    assert notes.read_text() == "ALPHA\nbeta\ngamma\n"
    notes.write_text("ALPHA\nbeta\ngamma\nuser's line\n")
    refused = leon(env, "rollback", thread, first, "--files")
    assert refused.returncode == 1
    assert str(notes) in refused.stderr and "--force" in refused.stderr
    assert notes.read_text().endswith("user's line\n")
    forced = leon(env, "rollback", thread, first, "--files", "--force")
    assert forced.returncode == 0 and notes.read_text() == "alpha\nbeta\ngamma\n"
