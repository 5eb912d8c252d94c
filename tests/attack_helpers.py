"""Helpers for attack tests through the real `leon`: run it as a subprocess, fingerprint a
directory tree (a victim must come out byte-for-byte the same) and the databases (a
refused import must leave every row as it was)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any


def leon(env: dict[str, str], *args: str, cwd: Path | None = None, input: str | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m leon ARGS`` with ``env``; text output captured."""
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env, cwd=cwd, input=input,
                          capture_output=True, text=True, timeout=timeout)


def leon_env(home: Path, cache: Path) -> dict[str, str]:
    """The environment of a user whose leon lives in ``home`` and ``cache`` (no API key:
    the demo model)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC", "LEON_"))}
    env.update(LEON_HOME=str(home), LEON_CACHE=str(cache))
    return env


def tree(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (not following links): its type, mode and content hash
    (or link target). Two equal results mean nothing was created, changed, chmod-ed or
    deleted there."""
    out: dict[str, str] = {}
    if not os.path.lexists(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, ""]:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            mode = oct(stat.S_IMODE(st.st_mode))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = f"link {os.readlink(p)}"
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = f"dir {mode}"
            else:
                with open(p, "rb") as fh:
                    out[rel] = f"file {mode} {hashlib.sha256(fh.read()).hexdigest()}"
    return out


def rows(home: Path) -> dict[str, Any]:
    """Every row of every table of the three databases (FTS shadow tables left out)."""
    out: dict[str, Any] = {}
    for name in ("leon.db", "sandbox.db", "chat.db"):
        path = home / name
        if not path.exists():
            continue
        conn = sqlite3.connect(path)
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '%fts%'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            for t in tables:
                out[f"{name}:{t}"] = conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
        finally:
            conn.close()
    return out


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refusal (``leon: ...``), asserting there is exactly
    one and no traceback."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("leon: ") and "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in lines[0], lines[0]
    return lines[0]
