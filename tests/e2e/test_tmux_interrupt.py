"""End to end in a real terminal (tmux): ctrl+c, SIGINT and SIGTERM while a tool runs in
the TUI end leon with the documented status (130, 143), the terminal given back, no
traceback, the tool's process killed and the turn stored. Skipped without tmux."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fakeapi import stall_after, text, tool_use
from proc_helpers import child_pids
from test_tmux import tmux, wait_for_screen

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux)")

DEADLINE = 30.0



def wait_for(condition, what: str, deadline: float = DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never saw {what}")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is dead
    except OSError:
        return True


@pytest.mark.parametrize("how", ["ctrl+c", "SIGINT", "SIGTERM"])
def test_tui_ends_cleanly_while_a_tool_runs(fake_api, tmp_path: Path, how: str):
    fake_api.script(tool_use("grep", {"pattern": "(?=a)(a+)+$"}, text_before="Let me search."),
                    text("never sent"))
    home, cache, workspace = tmp_path / "home", tmp_path / "cache", tmp_path / "ws"
    workspace.mkdir()
    home.mkdir()
    (workspace / "f.txt").write_text("a" * 40 + "!\n")
    (home / "config.toml").write_text("[tools]\ngrep_timeout = 600\n")  # only a signal ends it
    status = tmp_path / "status"
    socket = f"leon-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "ANTHROPIC_API_KEY": fake_api.api_key, "ANTHROPIC_BASE_URL": fake_api.base_url,
        "LEON_HOME": str(home), "LEON_CACHE": str(cache), "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8",
    }
    exports = " ".join(f"{k}={v!r}" for k, v in env.items())
    command = (f"env -i {exports} {sys.executable} -m leon --workspace {workspace}; "
               f"echo $? > {status}")
    tmux("new-session", "-d", "-s", "leon", "-x", "140", "-y", "40", command, socket=socket)
    tmux("set-option", "-t", "leon", "remain-on-exit", "on", socket=socket)
    try:
        wait_for_screen(socket, "Message leon", "Context")
        shell = int(tmux("display-message", "-p", "-t", "leon", "#{pane_pid}",
                         socket=socket).strip())
        [leon] = wait_for(lambda: child_pids(shell, b"leon"), "the leon process")
        tmux("send-keys", "-t", "leon", "find the runs of a", socket=socket)
        tmux("send-keys", "-t", "leon", "Enter", socket=socket)
        [grep_child] = wait_for(lambda: child_pids(leon, b"linematch.py"), "the grep child")
        if how == "ctrl+c":
            tmux("send-keys", "-t", "leon", "C-c", socket=socket)
        else:
            os.kill(leon, getattr(signal, how))
        code = wait_for(lambda: status.exists() and status.read_text().strip(),
                        "leon's exit status", deadline=10)
        screen = tmux("capture-pane", "-p", "-t", "leon", socket=socket)
    finally:
        tmux("kill-server", socket=socket)
    assert code == ("143" if how == "SIGTERM" else "130"), screen
    assert "Traceback" not in screen
    said = "stopped by SIGTERM" if how == "SIGTERM" else "interrupted"
    assert f"leon: {said} (what had arrived is kept)" in screen
    assert wait_for(lambda: _gone(grep_child), "the grep child killed", deadline=10)
    assert not (home / "leon.log").exists()  # no internal error was logged
    listed = subprocess.run([sys.executable, "-m", "leon", "threads", "ls", "--json"],
                            env=env, capture_output=True, text=True, check=True).stdout
    thread = listed.splitlines()[0].split('"id": "')[1].split('"')[0]
    shown = subprocess.run([sys.executable, "-m", "leon", "threads", "show", thread], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "Let me search." in shown and "cancelled by the user before it finished" in shown


def test_tui_forced_exit_gives_the_terminal_back(fake_api, tmp_path: Path):
    """The reply cannot be stored (another process holds leon.db's write lock), so the
    watchdog exits without the app's own cleanup: it must still leave the alternate
    screen and exit 143."""
    fake_api.script(stall_after(6, text("alpha beta gamma delta epsilon zeta")))
    home, cache, workspace = tmp_path / "home", tmp_path / "cache", tmp_path / "ws"
    workspace.mkdir()
    status = tmp_path / "status"
    socket = f"leon-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "ANTHROPIC_API_KEY": fake_api.api_key, "ANTHROPIC_BASE_URL": fake_api.base_url,
        "LEON_HOME": str(home), "LEON_CACHE": str(cache), "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8",
    }
    exports = " ".join(f"{k}={v!r}" for k, v in env.items())
    command = (f"env -i {exports} {sys.executable} -m leon --workspace {workspace}; "
               f"echo $? > {status}")
    tmux("new-session", "-d", "-s", "leon", "-x", "140", "-y", "40", command, socket=socket)
    tmux("set-option", "-t", "leon", "remain-on-exit", "on", socket=socket)
    holder = None
    try:
        wait_for_screen(socket, "Message leon", "Context")
        shell = int(tmux("display-message", "-p", "-t", "leon", "#{pane_pid}",
                         socket=socket).strip())
        [leon] = wait_for(lambda: child_pids(shell, b"leon"), "the leon process")
        tmux("send-keys", "-t", "leon", "tell me", socket=socket)
        tmux("send-keys", "-t", "leon", "Enter", socket=socket)
        wait_for_screen(socket, "alpha beta")
        holder = sqlite3.connect(home / "leon.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        os.kill(leon, signal.SIGTERM)
        code = wait_for(lambda: status.exists() and status.read_text().strip(),
                        "leon's exit status", deadline=10)
        screen = tmux("capture-pane", "-p", "-t", "leon", socket=socket)
    finally:
        if holder is not None:
            holder.rollback()
            holder.close()
        tmux("kill-server", socket=socket)
    assert code == "143", screen
    assert "exiting without waiting for the rest" in screen
    assert "Message leon" not in screen  # the alternate screen was left
    assert "Traceback" not in screen
