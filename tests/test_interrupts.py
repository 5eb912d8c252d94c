"""Ctrl+C and SIGTERM end the real ``leon run`` promptly, whatever it is doing, with the
documented status (130, 143), no traceback, the partial reply stored and the processes it
started killed; and a model's regex cannot hang it (leon/interrupts.py, grepchild.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakeapi import stall_after, text, tool_use
from proc_helpers import child_pids

MODEL = ("-m", "claude-sonnet-4-6")
EXIT_DEADLINE = 10.0  # generous for a loaded CI machine; the measured times are ~0.1 s
START_DEADLINE = 60.0


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    w.mkdir()
    (w / "f.txt").write_text("a" * 40 + "!\naaaa\n")
    return w


@pytest.fixture
def env(leon_paths, fake_api, ws) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    e.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache),
             ANTHROPIC_API_KEY=fake_api.api_key, ANTHROPIC_BASE_URL=fake_api.base_url)
    return e


def set_grep_timeout(leon_paths, seconds: float) -> None:
    leon_paths.home.mkdir(parents=True, exist_ok=True)
    (leon_paths.home / "config.toml").write_text(f"[tools]\ngrep_timeout = {seconds}\n")


def leon(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


class Running:
    """A ``leon`` process whose stdout and stderr are collected as they come."""

    def __init__(self, env, *args):
        self.proc = subprocess.Popen([sys.executable, "-m", "leon", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out, self.err = bytearray(), bytearray()
        self._readers = [threading.Thread(target=self._pump, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for r in self._readers:
            r.start()

    @staticmethod
    def _pump(stream, into: bytearray) -> None:
        while chunk := stream.read1(4096):
            into += chunk

    def wait_until(self, condition, what: str) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while not condition():
            assert self.proc.poll() is None, f"leon ended before {what}: {self.stderr}"
            assert time.monotonic() < deadline, f"never saw {what}: {self.stderr}"
            time.sleep(0.02)

    def signal_and_wait(self, sig: int) -> float:
        """Send ``sig``; poll for the exit (failing after EXIT_DEADLINE); seconds taken."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        while self.proc.poll() is None:
            assert time.monotonic() - start < EXIT_DEADLINE, "leon did not end after the signal"
            time.sleep(0.01)
        elapsed = time.monotonic() - start
        for r in self._readers:
            r.join(timeout=10)
        return elapsed

    @property
    def stdout(self) -> str:
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")



def gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie waiting for init counts as gone)."""
    deadline = time.monotonic() + EXIT_DEADLINE
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.02)
    return False


# --- a model's regex cannot hang leon ------------------------------------------------------


def test_catastrophic_pattern_from_the_model_is_answered_and_the_run_finishes(env, fake_api, ws):
    fake_api.script(tool_use("grep", {"pattern": "(a+)+$"}), text("done"))
    out = leon(env, "run", *MODEL, "-w", str(ws), "find runs of a")
    assert out.returncode == 0, out.stderr
    assert "done" in out.stdout and "Traceback" not in out.stderr
    [result] = [b for b in fake_api.message_requests()[1]["body"]["messages"][-1]["content"]
                if b["type"] == "tool_result"]
    assert not result.get("is_error") and result["content"] == "f.txt:2:aaaa"


def test_backtracking_pattern_becomes_an_error_result_and_the_run_finishes(
        env, fake_api, ws, leon_paths):
    set_grep_timeout(leon_paths, 1)
    fake_api.script(tool_use("grep", {"pattern": "(?=a)(a+)+$"}), text("I will simplify it."))
    out = leon(env, "run", *MODEL, "-w", str(ws), "find runs of a")
    assert out.returncode == 0, out.stderr
    assert "I will simplify it." in out.stdout
    [result] = [b for b in fake_api.message_requests()[1]["body"]["messages"][-1]["content"]
                if b["type"] == "tool_result"]
    assert result["is_error"] and "took too long" in result["content"]
    assert "simplify" in result["content"].lower()


# --- Ctrl+C and SIGTERM ------------------------------------------------------------------

SCENARIOS = {
    # what the model does, what shows it is under way, what `threads show` must hold after
    "grep": (tool_use("grep", {"pattern": "(?=a)(a+)+$"}, text_before="Let me search."),
             "Let me search."),
    "bash": (tool_use("bash", {"command": "sleep 100"}, text_before="Running it."),
             "Running it."),
    "stalled stream": (stall_after(6, text("alpha beta gamma delta epsilon zeta")),
                       "alpha beta"),
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_signal_ends_leon_run_whatever_it_is_doing(env, fake_api, ws, leon_paths, scenario, sig):
    set_grep_timeout(leon_paths, 600)  # the grep would run for hours: only the signal ends it
    reply, kept = SCENARIOS[scenario]
    fake_api.script(reply, text("never sent"))
    run = Running(env, "run", *MODEL, "--yes", "-w", str(ws), "--thread", "t", "go")
    pid = run.proc.pid
    victim: list[int] = []
    if scenario == "grep":
        run.wait_until(lambda: victim.extend(child_pids(pid, b"linematch.py")) or victim,
                       "the grep child")
    elif scenario == "bash":
        run.wait_until(lambda: victim.extend(child_pids(pid, b"sleep\x00100")) or victim,
                       "the sleep command")
    else:
        run.wait_until(lambda: kept in run.stdout, "the first words of the reply")

    elapsed = run.signal_and_wait(sig)
    print(f"\n{scenario} {signal.Signals(sig).name}: ended {elapsed:.3f} s after the signal")

    assert run.proc.returncode == 128 + sig, run.stderr
    assert "Traceback" not in run.stderr
    said = "interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"
    assert run.stderr.strip().splitlines()[-1] == f"leon: {said} (what had arrived is kept)"
    assert all(gone(p) for p in victim), "a process leon started outlived it"
    shown = leon(env, "threads", "show", "t").stdout
    assert kept in shown
    if scenario == "stalled stream":
        assert f"## Claude ({MODEL[1]}) *(interrupted)*" in shown
    else:  # the tool call is stored with a result saying it was cut short
        assert "cancelled by the user before it finished" in shown
    assert len(fake_api.message_requests()) == 1  # nothing was sent after the signal
    assert not (leon_paths.home / "leon.log").exists()  # no internal error was logged


def test_sigterm_exits_in_time_even_when_the_database_is_locked(env, fake_api, leon_paths):
    """The reply cannot be stored (another process holds the write lock): the watchdog
    ends leon anyway, with the same status, and says it did not wait."""
    fake_api.script(stall_after(6, text("alpha beta gamma delta epsilon zeta")))
    run = Running(env, "run", *MODEL, "--thread", "t", "go")
    run.wait_until(lambda: "alpha beta" in run.stdout, "the first words of the reply")
    holder = sqlite3.connect(leon_paths.home / "leon.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        elapsed = run.signal_and_wait(signal.SIGTERM)
        print(f"\nlocked database SIGTERM: ended {elapsed:.3f} s after the signal")
    finally:
        holder.rollback()
        holder.close()
    assert run.proc.returncode == 143, run.stderr
    assert "Traceback" not in run.stderr
    assert "exiting without waiting for the rest" in run.stderr
    # The next use of the thread seals what was left as interrupted.
    shown = leon(env, "threads", "show", "t").stdout
    assert "## You\n\ngo" in shown
