"""How fast Ctrl+C (SIGINT) and SIGTERM end the real ``leon run``, whatever it is doing.

    python bench/interrupts.py [--runs 3]

Each run starts ``leon run`` against the fake Messages API (tests/fakeapi.py, on
127.0.0.1) in a fresh LEON_HOME, waits until the situation is under way, sends the
signal and polls (every 5 ms) for the exit. The figure is from ``send_signal`` to the
moment ``poll()`` sees the process gone. Situations:

* ``grep``: the model's grep with ``(?=a)(a+)+$`` (Python's engine, hours of
  backtracking), ``tools.grep_timeout = 600``; under way once leon's grep child exists;
* ``bash``: ``sleep 100`` (with ``--yes``); under way once the ``sleep`` process exists;
* ``stalled stream``: the reply stops after three words and the connection stays open;
  under way once those words are on stdout;
* ``locked db``: a stalled stream, and another process holds leon.db's write lock, so
  the partial reply cannot be stored: the watchdog's forced exit (``GRACE`` = 1.5 s).

It checks the exit status (130 / 143) and that stderr holds no traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakeapi import FakeAnthropic, stall_after, text, tool_use  # noqa: E402


def children(pid: int, needle: bytes) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if ppid == pid and needle in f.read():
                    return True
        except OSError:
            continue
    return False


def one_run(situation: str, sig: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic() as api:
        home, ws = Path(tmp) / "home", Path(tmp) / "ws"
        home.mkdir()
        ws.mkdir()
        (ws / "f.txt").write_text("a" * 40 + "!\n")
        (home / "config.toml").write_text("[tools]\ngrep_timeout = 600\n")
        stall = stall_after(6, text("alpha beta gamma delta epsilon"))
        api.script({"grep": tool_use("grep", {"pattern": "(?=a)(a+)+$"}),
                    "bash": tool_use("bash", {"command": "sleep 100"})}.get(situation, stall))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
        env.update(LEON_HOME=str(home), LEON_CACHE=str(Path(tmp) / "cache"),
                   ANTHROPIC_API_KEY=api.api_key, ANTHROPIC_BASE_URL=api.base_url)
        proc = subprocess.Popen([sys.executable, "-m", "leon", "run", "--yes", "-w", str(ws),
                                 "-m", "claude-sonnet-4-6", "go"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = bytearray()
        threading.Thread(target=lambda: [out.extend(c) for c in iter(
            lambda: proc.stdout.read1(4096), b"")], daemon=True).start()
        ready = {"grep": lambda: children(proc.pid, b"linematch.py"),
                 "bash": lambda: children(proc.pid, b"sleep\x00100")}.get(
                     situation, lambda: b"alpha beta" in out)
        deadline = time.monotonic() + 60
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{situation}: leon never got going")
            time.sleep(0.01)
        holder = None
        if situation == "locked db":
            holder = sqlite3.connect(home / "leon.db", isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
        start = time.monotonic()
        proc.send_signal(sig)
        while proc.poll() is None:
            time.sleep(0.005)
        elapsed = time.monotonic() - start
        if holder is not None:
            holder.rollback()
            holder.close()
        err = proc.stderr.read().decode()
        assert proc.returncode == 128 + sig, (situation, proc.returncode, err)
        assert "Traceback" not in err, err
        return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    runs = ap.parse_args().runs
    print("| situation | signal | median | max |")
    print("|---|---|---|---|")
    for situation in ("grep", "bash", "stalled stream", "locked db"):
        for sig in (signal.SIGINT, signal.SIGTERM):
            times = [one_run(situation, sig) for _ in range(runs)]
            print(f"| {situation} | {signal.Signals(sig).name} | "
                  f"{statistics.median(times) * 1000:,.0f} ms | {max(times) * 1000:,.0f} ms |")


if __name__ == "__main__":
    main()
