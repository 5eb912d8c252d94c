"""What is wrong with a database, found without changing it (``leon doctor``).

:func:`diagnose` never opens a file for writing and never creates one: it uses the same
read-only, side-file-free access as the check in :mod:`leon.store.db`, so it can look at a
database leon refuses to open — the case where a user needs it most.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from leon.store.db import (
    BUSY_TIMEOUT_MS,
    SQLITE_HEADER,
    is_busy,
    lock_holder,
    plain_file_problem,
    readonly_uri,
)
from leon.units import human_size

MAX_PROBLEMS = 10  # lines of quick_check/integrity_check output shown

# C0 and C1 controls (and DEL): SQLite's messages may quote table or index names that a
# crafted file chose; nothing from the file may drive the terminal.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` on one line, with control characters shown as ``?``."""
    return _CONTROLS.sub("?", " ".join(str(text).split()))


@dataclass
class Diagnosis:
    """One database's state: ``ok``, ``missing`` (made on first use), ``older`` (migrated
    on the next start), ``not_a_file``, ``not_sqlite``, ``damaged``, ``newer`` or
    ``locked``; ``not_private`` when its mode lets others read it."""

    name: str
    path: Path
    state: str
    summary: str
    details: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state in ("ok", "missing", "older")


def diagnose(path: Path, name: str, known_version: int) -> Diagnosis:
    """Look at ``path`` without changing anything and say what state it is in."""
    aside = f"move it aside (mv '{path}' '{path}.bad'); leon then starts a new, empty one"
    restore = ("threads that `leon gc` or `leon threads rm` archived can then be brought "
               "back with `leon threads restore --list` / `leon threads restore ID`")
    problem = plain_file_problem(path)
    if problem is not None:
        bad, kind = problem
        if bad == path:
            return Diagnosis(name, path, "not_a_file", f"{kind}, not a database file",
                             advice=[aside])
        return Diagnosis(name, path, "not_a_file",
                         f"{bad.name} beside it is {kind}: SQLite would write through it",
                         advice=[f"if no leon is running, remove it (rm '{bad}')"])
    st = os.lstat(path) if os.path.lexists(path) else None
    if st is None:
        return Diagnosis(name, path, "missing", "not created yet (leon makes it on first use)")
    if st.st_size == 0:
        return Diagnosis(name, path, "ok", "empty (leon sets it up on first use)")
    mode = st.st_mode & 0o777
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        return Diagnosis(name, path, "damaged", clean(f"cannot read it: {exc.strerror}"),
                         advice=["check its owner and permissions (leon wants 0600, yours)"])
    if header != SQLITE_HEADER:
        return Diagnosis(name, path, "not_sqlite", "not a SQLite database (wrong header)",
                         advice=[aside])
    try:
        conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        return _damaged(name, path, str(exc), [], aside, restore)
    try:
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            if is_busy(exc):
                return _locked(name, path)
            return _damaged(name, path, str(exc), _check(conn, "quick_check"), aside, restore)
        if version > known_version:
            return Diagnosis(
                name, path, "newer",
                f"schema v{version}, newer than this leon understands (v{known_version})",
                advice=["upgrade leon (pip install -U leon); the file is fine as it is"])
        try:
            problems = [clean(r[0]) for r in
                        conn.execute(f"PRAGMA integrity_check({MAX_PROBLEMS})").fetchall()]
        except sqlite3.Error as exc:
            if is_busy(exc):
                return _locked(name, path)
            return _damaged(name, path, str(exc), _check(conn, "quick_check"), aside, restore)
    finally:
        conn.close()
    if problems != ["ok"]:
        return _damaged(name, path, "integrity check failed", problems, aside, restore)
    size = st.st_size + (os.stat(f"{path}-wal").st_size if os.path.exists(f"{path}-wal") else 0)
    facts = f"integrity ok, schema v{version}, mode {mode:o}, {human_size(size)}"
    if mode != 0o600:
        return Diagnosis(name, path, "not_private", facts,
                         advice=[f"make it private: chmod 600 '{path}'"])
    if version < known_version:
        return Diagnosis(name, path, "older",
                         facts + f" (migrated to v{known_version} on the next start)")
    holder = lock_holder(path)
    if holder is not None:
        facts += f"; pid {holder} is writing to it now"
    return Diagnosis(name, path, "ok", facts)


def _check(conn: sqlite3.Connection, pragma: str) -> list[str]:
    """SQLite's own list of problems, if it can still produce one."""
    try:
        rows = conn.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})").fetchall()
    except sqlite3.Error as exc:
        return [clean(f"{pragma} could not run: {exc}")]
    return [clean(f"{pragma}: {r[0]}") for r in rows if r[0] != "ok"]


def _damaged(name: str, path: Path, why: str, details: list[str], aside: str,
             restore: str) -> Diagnosis:
    return Diagnosis(
        name, path, "damaged", clean(f"damaged: {why}"), details,
        advice=[aside,
                f"to salvage what is readable: sqlite3 '{path}.bad' .recover | sqlite3 '{path}'",
                restore])


def _locked(name: str, path: Path) -> Diagnosis:
    pid = lock_holder(path)
    who = f"process {pid}" if pid else "another process"
    return Diagnosis(name, path, "locked", f"locked by {who}; it could not be read",
                     advice=["wait for it to finish, or stop it; then run `leon doctor` again"])
