"""Helpers for tests that run the real ``leon`` as processes: the environment, running
and starting it, reading its stderr as it comes, and snapshots of directories (names,
types, modes, sizes, mtimes, content hashes) to prove nothing changed."""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def leon_env(home: Path, cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a leon process on ``home``/``cache``, no API key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    env.update(LEON_HOME=str(home), LEON_CACHE=str(cache), **extra)
    return env


def run_leon(env: dict[str, str], *args: str, input: str | None = None,
             timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


class Proc:
    """A leon process whose stderr is read line by line as it arrives."""

    def __init__(self, env: dict[str, str], *args: str, stdin: str | None = None):
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "leon", *args], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err_lines: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self.out = ""
        threading.Thread(target=self._read_err, daemon=True).start()
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()
        if stdin is not None:
            self.popen.stdin.write(stdin)  # type: ignore[union-attr]
        self.popen.stdin.close()  # type: ignore[union-attr]

    def _read_err(self) -> None:
        for line in self.popen.stderr:  # type: ignore[union-attr]
            self.err_lines.append(line.rstrip("\n"))

    def _read_out(self) -> None:
        self.out = self.popen.stdout.read()  # type: ignore[union-attr]

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def stderr(self) -> str:
        return "\n".join(self.err_lines)

    def wait_for_err(self, needle: str, timeout: float = 120) -> str:
        """The first stderr line containing ``needle`` (polls; fails after ``timeout``)."""
        return wait_until(lambda: next((x for x in self.err_lines if needle in x), None),
                          timeout, f"{needle!r} on stderr; got {self.err_lines!r}")

    def finish(self, timeout: float = 180) -> int:
        code = self.popen.wait(timeout=timeout)
        self._out_reader.join(timeout)
        return code


def wait_until(probe: Callable[[], Any], timeout: float = 120, what: str = "condition") -> Any:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` (and ``root`` itself), not following links: type, mode,
    size, mtime, and the sha256 of regular files or the target of links."""
    out: dict[str, tuple[Any, ...]] = {}
    entries = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        entries += [Path(dirpath) / n for n in dirnames + filenames]
    for p in entries:
        st = os.lstat(p)
        entry: tuple[Any, ...] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_size,
                                  st.st_mtime_ns)
        if stat.S_ISREG(st.st_mode):
            entry += (hashlib.sha256(p.read_bytes()).hexdigest(),)
        elif stat.S_ISLNK(st.st_mode):
            entry += (os.readlink(p),)
        out[str(p.relative_to(root))] = entry
    return out


def child_pids(pid: int, needle: bytes) -> list[int]:
    """Live processes whose parent is ``pid`` and whose command line holds ``needle``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == pid and needle in cmd:
            found.append(int(entry))
    return found
