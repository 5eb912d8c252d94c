"""End to end: the installed ``leon`` in a real terminal (tmux), talking to the fake
Anthropic API over HTTP. Types a message, then reads the streamed reply and the context
gauge from ``tmux capture-pane``. Skipped only when tmux is not installed (CI installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fakeapi import text

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux)")

# Seconds leon may take to start, answer and draw the gauge. Generous on purpose: it is a
# bound on a wait for what the screen shows, not a speed test, and a first start in a
# fresh venv (byte-compiling Textual and the SDK) on a busy machine took over 30 s.
DEADLINE = 120.0


def tmux(*args: str, socket: str) -> str:
    result = subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True,
                            check=False)
    return result.stdout


def wait_for_screen(socket: str, *needles: str, deadline: float = DEADLINE) -> str:
    """Poll capture-pane until every needle is on the screen (or fail with the screen)."""
    end = time.monotonic() + deadline
    screen = ""
    while time.monotonic() < end:
        screen = tmux("capture-pane", "-p", "-t", "leon", socket=socket)
        if all(n in screen for n in needles):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"not on screen after {deadline}s: {needles}\n---\n{screen}")


def test_leon_in_tmux_against_fake_api(fake_api, tmp_path: Path):
    fake_api.script(text("Hello from the fake Claude. The **gauge** should move now."))
    home, cache, workspace = tmp_path / "home", tmp_path / "cache", tmp_path / "ws"
    workspace.mkdir()
    socket = f"leon-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "ANTHROPIC_API_KEY": fake_api.api_key,
        "ANTHROPIC_BASE_URL": fake_api.base_url,
        "LEON_HOME": str(home),
        "LEON_CACHE": str(cache),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
    }
    exports = " ".join(f"{k}={v!r}" for k, v in env.items())
    command = f"env -i {exports} {sys.executable} -m leon --workspace {workspace}"
    tmux("new-session", "-d", "-s", "leon", "-x", "140", "-y", "40", command, socket=socket)
    try:
        wait_for_screen(socket, "Message leon", "Context")
        tmux("send-keys", "-t", "leon", "hello there", socket=socket)
        wait_for_screen(socket, "hello there")  # in the prompt before Enter sends it
        tmux("send-keys", "-t", "leon", "Enter", socket=socket)
        # the reply, and the gauge measured from the usage the API reported for it
        screen = wait_for_screen(socket, "Hello from the fake Claude", "tokens until compaction",
                                 "measured")
        assert "DEMO" not in screen  # a real (fake) Claude, not the demo model
        assert "hello there" in screen, screen
        request = fake_api.requests[-1]["body"]
        assert request["messages"][-1]["content"][-1]["text"] == "hello there"
        tmux("send-keys", "-t", "leon", "C-q", socket=socket)
        end = time.monotonic() + 10
        while time.monotonic() < end and "leon" in tmux("list-sessions", socket=socket):
            time.sleep(0.2)
    finally:
        tmux("kill-server", socket=socket)
    assert "Traceback" not in screen
    assert not (home / "leon.log").exists()  # no internal error was logged
