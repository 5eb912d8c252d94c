"""Opening a leon database safely: refuse what we must not touch, then migrate forward.

Before anything writes, the file is checked read-only: a file that is not SQLite, that
SQLite cannot read, or whose ``PRAGMA user_version`` is newer than this code knows is
refused with a :class:`StoreError` that names the file and what to do — and the file is
left exactly as it was. Only then is it opened for writing (WAL, ``busy_timeout``,
foreign keys) and migrated forward one version at a time, each step in a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiosqlite

from leon.paths import make_private_dir

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000


class StoreError(Exception):
    """A database problem a user must act on; ``str()`` is one line naming the file."""


def _probe(path: Path, name: str, known_version: int) -> int:
    """Check an existing file without modifying it; return its schema version."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "rb") as fh:
        header = fh.read(16)
    if header != SQLITE_HEADER:
        raise StoreError(
            f"{path} is not a SQLite database (the {name} store). Move it aside "
            f"(e.g. mv '{path}' '{path}.bad') and leon will create a new one; it was not changed."
        )
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc).lower():
            raise StoreError(_locked_message(path)) from None
        raise StoreError(
            f"{path} is damaged ({exc}). Run `leon doctor`; to start afresh move it aside "
            f"(mv '{path}' '{path}.bad'). It was not changed."
        ) from None
    if version > known_version:
        raise StoreError(
            f"{path} has schema version {version}, newer than this leon understands "
            f"({known_version}). Upgrade leon (pip install -U leon); the file was not changed."
        )
    return version


def _locked_message(path: Path) -> str:
    return (
        f"{path} is locked by another process (is another leon writing to it?). "
        "Close it and try again."
    )


def _create_private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does: SQLite gives its -wal and -shm
    files the same mode as the main file, so the whole set stays private."""
    if path.exists():
        if (path.stat().st_mode & 0o777) != 0o600:
            path.chmod(0o600)
        return
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


async def open_database(
    path: Path, name: str, migrations: Sequence[str]
) -> aiosqlite.Connection:
    """Open (creating if needed) and migrate one database. Raises :class:`StoreError`."""
    make_private_dir(path.parent)
    current = await asyncio.to_thread(_probe, path, name, len(migrations))
    _create_private_file(path)
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA foreign_keys = ON")
        # 1 KiB pages (new files only; must precede WAL mode): most tables stay small, and
        # with 4 KiB pages the empty pages of every table and index, plus the slack in leaf
        # pages of 1-4 KB messages, made a 100-message database 1.6x its content
        # (bench/storage.py). Reads of long threads were unaffected in that benchmark.
        await conn.execute("PRAGMA page_size = 1024")
        await conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode; only an OS crash can
        # lose the last transactions, never corrupt the file.
        await conn.execute("PRAGMA synchronous = NORMAL")
        # Checkpoint every 32 pages and truncate the WAL afterwards: the default (1000
        # pages, never shrunk) left a WAL of 1-4 MiB beside a small database — 4x its
        # content at 100 messages. Measured cost: a median append of ~2 ms instead of ~1.
        await conn.execute("PRAGMA wal_autocheckpoint = 32")
        await conn.execute("PRAGMA journal_size_limit = 0")
        await _migrate(conn, path, current, migrations)
    except sqlite3.OperationalError as exc:
        await conn.close()
        if "locked" in str(exc).lower() or "busy" in str(exc).lower():
            raise StoreError(_locked_message(path)) from None
        raise StoreError(f"{path}: cannot open the {name} store: {exc}") from None
    except sqlite3.DatabaseError as exc:
        await conn.close()
        raise StoreError(f"{path} is damaged ({exc}). Run `leon doctor`.") from None
    except BaseException:
        await conn.close()
        raise
    return conn


async def _migrate(
    conn: aiosqlite.Connection, path: Path, current: int, migrations: Sequence[str]
) -> None:
    for version in range(current, len(migrations)):
        script = migrations[version]
        try:
            await conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version + 1};\nCOMMIT;"
            )
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("ROLLBACK")
            raise


class Database:
    """One open connection with a write lock: aiosqlite serialises calls on one thread,
    but a multi-statement write must not interleave with another task's."""

    def __init__(self, conn: aiosqlite.Connection, path: Path):
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error or cancellation).

        The lock is held until the connection is out of the transaction again, even when
        the task is cancelled meanwhile: a cancelled ``await`` does not stop a statement
        already queued on aiosqlite's thread, so letting go at once left the connection
        inside a transaction that the next ``BEGIN`` failed on."""
        async with self._lock:
            try:
                await self._run_through("BEGIN IMMEDIATE")
            except asyncio.CancelledError:
                await self._run_through("ROLLBACK", quiet=True)
                raise
            try:
                yield self.conn
            except BaseException:
                await self._run_through("ROLLBACK", quiet=True)
                raise
            else:
                try:
                    await self._run_through("COMMIT")
                except sqlite3.Error:
                    await self._run_through("ROLLBACK", quiet=True)  # a failed COMMIT stays open
                    raise

    async def _run_through(self, sql: str, *, quiet: bool = False) -> None:
        """Run one statement to its end even if this task is cancelled while it runs;
        a cancellation is re-raised once the statement is done. ``quiet`` swallows
        SQLite's errors (a ``ROLLBACK`` with no transaction left to roll back)."""
        step = asyncio.ensure_future(self.conn.execute(sql))
        try:
            await asyncio.shield(step)
        except sqlite3.Error:
            if not quiet:
                raise
        except asyncio.CancelledError:
            while not step.done():  # asyncio.wait neither cancels step nor raises its error
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([step])
            if not step.cancelled():
                step.exception()  # retrieved: the cancellation is what the caller sees
            raise

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[aiosqlite.Row]:
        async with self.conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[object] = ()) -> aiosqlite.Row | None:
        async with self.conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        """One statement, in its own (implicit) transaction."""
        async with self._lock:
            await self.conn.execute(sql, params)

    async def checkpoint_wal(self) -> None:
        """Fold the WAL back into the database and truncate it (call when idle)."""
        async with self._lock:
            await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self) -> None:
        await self.conn.close()

    def size_bytes(self) -> int:
        """Bytes on disk: the database file plus its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total


class BaseStore:
    """Open/close and health checks shared by the three stores."""

    NAME = ""
    MIGRATIONS: Sequence[str] = ()

    def __init__(self, db: Database):
        self.db = db

    @classmethod
    async def open(cls, path: Path):  # type: ignore[no-untyped-def]
        conn = await open_database(path, cls.NAME, cls.MIGRATIONS)
        return cls(Database(conn, path))

    async def close(self) -> None:
        await self.db.close()

    @property
    def path(self) -> Path:
        return self.db.path

    async def integrity_check(self) -> str:
        row = await self.db.fetchone("PRAGMA integrity_check")
        return row[0] if row else "no answer"

    async def schema_version(self) -> int:
        row = await self.db.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0
