"""The `leon` command as a user runs it: real processes, real databases, the local API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from export_canon import canonical
from fakeapi import error, text, tool_use


def run(env, *args, input=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(leon_paths, tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    e.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README.md").write_text("# Demo project\nTODO: write docs\n")
    e["PWD"] = str(ws)
    return e


@pytest.fixture
def api_env(env, fake_api):
    return {**env, "ANTHROPIC_API_KEY": fake_api.api_key, "ANTHROPIC_BASE_URL": fake_api.base_url}


def test_run_on_demo_model_says_so_and_uses_tools(env, tmp_path):
    out = run(env, "run", "--workspace", str(tmp_path / "ws"), "read README.md")
    assert out.returncode == 0, out.stderr
    assert "demo model" in out.stderr
    assert "Demo project" in out.stdout


def test_run_json_prints_events(api_env, fake_api):
    fake_api.script(tool_use("grep", {"pattern": "TODO"}), text("One TODO found."))
    out = run(api_env, "run", "--json", "--model", "claude-sonnet-4-6", "find todos")
    assert out.returncode == 0, out.stderr
    kinds = [json.loads(line)["kind"] for line in out.stdout.splitlines()]
    for k in ("user_message", "tool_call", "tool_result", "usage", "turn_finished", "done"):
        assert k in kinds


def test_run_reads_prompt_from_stdin(api_env, fake_api):
    fake_api.script(text("got it"))
    out = run(api_env, "run", "-m", "claude-sonnet-4-6", "-", input="from a pipe\n")
    assert out.returncode == 0 and "got it" in out.stdout
    body = fake_api.message_requests()[0]["body"]
    assert body["messages"][0]["content"][0]["text"].startswith("from a pipe")


def test_api_error_is_one_line_and_nonzero(api_env, fake_api):
    fake_api.script(error(400, message="max_tokens: too large"))
    out = run(api_env, "run", "-m", "claude-sonnet-4-6", "hello")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("leon: ")
    assert "max_tokens: too large" in out.stderr and "Traceback" not in out.stderr


def test_bad_config_exits_2_and_touches_no_database(env, leon_paths):
    leon_paths.home.mkdir(parents=True)
    (leon_paths.home / "config.toml").write_text('max_tokens = "many"\n')
    out = run(env, "threads", "ls")
    assert out.returncode == 2
    assert "max_tokens" in out.stderr and "config.toml" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in leon_paths.home.iterdir()) == ["config.toml"]


def test_foreign_database_is_refused_untouched(env, leon_paths):
    leon_paths.home.mkdir(parents=True)
    (leon_paths.home / "leon.db").write_text("not a database")
    out = run(env, "threads", "ls")
    assert out.returncode == 1 and "not a SQLite database" in out.stderr
    assert (leon_paths.home / "leon.db").read_text() == "not a database"


def test_threads_show_export_import_rm_and_rollback(api_env, fake_api, tmp_path):
    fake_api.script(text("first answer"), text("second answer"), text("branch answer"))
    m = ("-m", "claude-sonnet-4-6")
    assert run(api_env, "run", *m, "--thread", "proj", "first question").returncode == 0
    assert run(api_env, "run", *m, "--thread", "proj", "second question").returncode == 0
    ls = run(api_env, "threads", "ls", "--json")
    [row] = [json.loads(x) for x in ls.stdout.splitlines()]
    assert row["name"] == "proj" and row["messages"] == 4
    cks = run(api_env, "checkpoints", "proj").stdout.splitlines()
    assert len(cks) == 4 and cks[-1].startswith("*")
    second_ck = cks[1].split()[1]
    out = run(api_env, "rollback", "proj", second_ck)
    assert out.returncode == 0 and "nothing was deleted" in out.stdout
    shown = run(api_env, "threads", "show", "proj").stdout
    assert "first answer" in shown and "second question" not in shown
    assert run(api_env, "run", *m, "--thread", "proj", "other question").returncode == 0
    export = tmp_path / "proj.json"
    assert run(api_env, "threads", "export", "proj", "-f", "json", "-o", str(export)).returncode == 0
    data = json.loads(export.read_text())
    assert len(data["messages"]) == 6  # both branches
    assert oct(export.stat().st_mode & 0o777) == "0o600"
    assert run(api_env, "threads", "rm", "proj").returncode == 2  # no --yes, no terminal
    assert run(api_env, "threads", "rm", "proj", "--yes").returncode == 0
    assert run(api_env, "threads", "ls").stdout.startswith("no threads")
    assert run(api_env, "threads", "import", str(export)).returncode == 0
    export2 = tmp_path / "again.json"
    run(api_env, "threads", "export", "proj", "-f", "json", "-o", str(export2))
    again = json.loads(export2.read_text())
    assert again["thread"]["id"] == data["thread"]["id"]
    assert canonical(again) == canonical(data)
    md = run(api_env, "threads", "export", "proj").stdout
    assert "other question" in md and "second question" not in md


def test_unknown_thread_is_a_one_line_error(env):
    out = run(env, "threads", "show", "nope")
    assert out.returncode == 1 and "no thread" in out.stderr and "Traceback" not in out.stderr


def test_doctor_never_prints_the_key(api_env, fake_api):
    assert run(api_env, "threads", "ls").returncode == 0  # doctor itself creates nothing
    out = run(api_env, "doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert fake_api.api_key not in out.stdout + out.stderr
    assert "integrity ok" in out.stdout and "both from ANTHROPIC_API_KEY" in out.stdout


def test_api_key_never_reaches_the_databases(api_env, fake_api, leon_paths):
    fake_api.script(text("fine"))
    assert run(api_env, "run", "-m", "claude-sonnet-4-6", "hello").returncode == 0
    for f in leon_paths.home.rglob("*"):
        if f.is_file():
            assert fake_api.api_key.encode() not in f.read_bytes(), f.name


def wait_for_saved_draft(home, timeout=30.0):
    """Block until a streaming reply has been saved with some text (no fixed sleeps)."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(f"file:{home / 'leon.db'}?mode=ro", uri=True)
            row = conn.execute("SELECT count(*) FROM messages WHERE status = 'streaming'"
                               " AND content != '[]'").fetchone()
            conn.close()
            if row[0]:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    raise AssertionError("no draft was saved")


def test_killed_mid_stream_keeps_the_partial_reply(api_env, fake_api, leon_paths):
    fake_api.script(text(" ".join(f"word{i}" for i in range(100)), chunks=100, delay=0.1),
                    text("resumed"))
    proc = subprocess.Popen([sys.executable, "-m", "leon", "run", "-m", "claude-sonnet-4-6",
                             "--thread", "k", "story"], env=api_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_saved_draft(leon_paths.home)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    shown = run(api_env, "threads", "show", "k").stdout
    assert "interrupted, or still streaming" in shown and "word0" in shown
    # the next turn seals the partial reply as interrupted and sends a valid request
    out = run(api_env, "run", "-m", "claude-sonnet-4-6", "--thread", "k", "go on")
    assert out.returncode == 0 and "resumed" in out.stdout
    shown = run(api_env, "threads", "show", "k").stdout
    assert "## Claude *(interrupted)*" in shown and "word0" in shown and "resumed" in shown
    sent = fake_api.message_requests()[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]


def test_sigterm_mid_stream_keeps_the_partial_reply(api_env, fake_api, leon_paths):
    fake_api.script(text(" ".join(f"w{i}" for i in range(100)), chunks=100, delay=0.1))
    proc = subprocess.Popen([sys.executable, "-m", "leon", "run", "-m", "claude-sonnet-4-6",
                             "--thread", "t", "story"], env=api_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_saved_draft(leon_paths.home)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert proc.returncode != 0
    shown = run(api_env, "threads", "show", "t").stdout
    assert "*(interrupted)*" in shown and "w0" in shown
