"""Opening a leon database safely: refuse what we must not touch, then migrate forward.

Before anything writes, the file is checked without being modified: a path that is not a
plain file (a symlink, a directory, a FIFO), a file that is not SQLite, that SQLite cannot
read, or whose ``PRAGMA user_version`` is newer than this code knows is refused with a
:class:`StoreError` that names the file and what to do — and the directory is left
exactly as it was (no ``-wal``/``-shm`` appear: when no process has the database open,
the check reads it with ``immutable=1``, which takes no locks and creates no files).

Only then is it opened for writing (WAL, ``busy_timeout``, foreign keys) and migrated
forward inside ``BEGIN IMMEDIATE`` transactions that re-read the version once they hold
the write lock, so any number of processes may start at once: the migration runs once.
Opening also holds an exclusive ``flock`` on the database's directory, so two leons never
create, switch to WAL or migrate the same file at the same moment.

A database another process keeps locked is retried with growing pauses for up to
:data:`LOCK_WAIT_SECONDS` (the ``store.lock_wait`` setting), saying so once through a
``notify`` callback, then refused with a one-line :class:`DatabaseLocked`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import stat
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import aiosqlite

from leon.paths import make_private_dir

SQLITE_HEADER = b"SQLite format 3\x00"
# Each statement waits this long for a lock before SQLite gives up; the LockWait above it
# then retries (and says so) up to LOCK_WAIT_SECONDS. Short, so the note comes early.
BUSY_TIMEOUT_MS = 2000
LOCK_WAIT_SECONDS = 30.0
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")

T = TypeVar("T")
Notify = Callable[[str], None]


class StoreError(Exception):
    """A database problem a user must act on; ``str()`` is one line naming the file."""


class DatabaseLocked(StoreError, sqlite3.OperationalError):
    """Another process kept the database locked longer than leon waits. Also an
    ``sqlite3.OperationalError``, so code that tolerates a busy database tolerates it."""


def is_busy(exc: BaseException) -> bool:
    """SQLite refused because another connection holds a lock (SQLITE_BUSY/LOCKED)."""
    if not isinstance(exc, sqlite3.OperationalError) or isinstance(exc, DatabaseLocked):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def lock_holder(path: Path) -> int | None:
    """The pid of another process holding a write lock on the database or its ``-shm``
    (read from ``/proc/locks``, so Linux only), or None when unknown."""
    targets = set()
    for p in (Path(f"{path}-shm"), path):
        try:
            st = os.stat(p)
        except OSError:
            continue
        targets.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    try:
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    me = os.getpid()
    for line in table.splitlines():
        # "12: POSIX  ADVISORY  WRITE 4242 08:02:131090 120 120"; "->" marks a waiter
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->" or parts[1] != "POSIX" or parts[3] != "WRITE":
            continue
        try:
            major, minor, inode = parts[5].split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
            pid = int(parts[4])
        except ValueError:
            continue
        if key in targets and pid > 0 and pid != me:
            return pid
    return None


def _holder_text(path: Path) -> str:
    pid = lock_holder(path)
    return f" (pid {pid})" if pid else ""


class LockWait:
    """Retry an operation while the database is busy: pauses from 50 ms growing to 1 s,
    until ``limit`` seconds after the first refusal; ``notify`` hears about it once.
    Then :class:`DatabaseLocked`.

    One object per connection: a *spell* of refusals spans operations (a write that
    gave up does not restart the clock for the next one) and ends when a write gets
    through, so a database locked for good costs one ``limit``, not one per statement."""

    def __init__(self, path: Path, limit: float = LOCK_WAIT_SECONDS,
                 notify: Notify | None = None):
        self.path = path
        self.limit = limit
        self.notify = notify
        self.busy_since: float | None = None
        self.noted = False

    async def run(self, op: Callable[[], Awaitable[T]], *, ends_spell: bool = True) -> T:
        """``op()``, retried while SQLite says the database is busy. ``ends_spell``:
        success means the lock is gone (a write); reads get through a WAL writer's lock
        and prove nothing."""
        delay = 0.05
        while True:
            started = time.monotonic()
            try:
                result = await op()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
            else:
                if ends_spell:
                    self.busy_since, self.noted = None, False
                return result
            now = time.monotonic()
            if self.busy_since is None:  # the refused attempt itself waited busy_timeout
                self.busy_since = started
            deadline = self.busy_since + self.limit
            # Give up when another attempt, as long as this one, would end past it.
            if now + (now - started) > deadline:
                raise DatabaseLocked(
                    f"{self.path} is locked by another process{_holder_text(self.path)}; "
                    f"gave up after {self.limit:g} s (store.lock_wait)") from None
            if not self.noted and self.notify is not None:
                self.noted = True
                self.notify(f"{self.path.name} is locked by another process"
                            f"{_holder_text(self.path)}; retrying for up to {self.limit:g} s…")
            await asyncio.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 1.0)


# -- checking a file without touching it -------------------------------------------------
def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    return "not a regular file"


def plain_file_problem(path: Path) -> tuple[Path, str] | None:
    """``(file, what it is)`` when the database, or a ``-wal``/``-shm``/``-journal`` beside
    it, exists but is not a plain file; None when all is well."""
    for candidate in (path, *(Path(f"{path}{s}") for s in SIDE_SUFFIXES)):
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            continue
        if (kind := _kind(st.st_mode)) is not None:
            return candidate, kind
    return None


def check_plain_files(path: Path, name: str) -> os.stat_result | None:
    """The database's ``lstat`` (None when it does not exist); refuse a path, or a
    ``-wal``/``-shm``/``-journal`` beside it, that is not a plain file: SQLite would follow
    a link out of leon's home (and write its side files there), and a FIFO would hang."""
    problem = plain_file_problem(path)
    if problem is not None:
        bad, kind = problem
        if bad == path:
            raise StoreError(
                f"{path} is {kind}, not a database file (the {name} store). leon keeps its "
                f"databases as plain files in its home: move it aside (mv '{path}' "
                f"'{path}.bad') and leon will create a new one; it was not changed.")
        raise StoreError(
            f"{bad} is {kind}; SQLite would write through it. If no leon is running, "
            f"remove it (rm '{bad}'); {path.name} was not changed.")
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _in_use(path: Path) -> bool:
    """Both ``-wal`` and ``-shm`` exist: some process may have the database open (or
    died with it open). A connection in WAL mode always has both."""
    return all(os.path.lexists(f"{path}{s}") for s in ("-wal", "-shm"))


def readonly_uri(path: Path) -> str:
    """A URI that reads ``path`` without changing anything beside it. Unless the
    database may be in use, ``immutable=1``: no locks, no side files — a plain ``mode=ro``
    open of a WAL database would create ``-wal`` and ``-shm``. When it may be in use,
    ``mode=ro`` with the usual locking, reading what the WAL holds."""
    quoted = urllib.parse.quote(str(path))
    extra = "" if _in_use(path) else "&immutable=1"
    return f"file:{quoted}?mode=ro&nofollow=1{extra}"


def _stamp(path: Path) -> tuple[int, int, bool]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1, False)
    return (st.st_size, st.st_mtime_ns, _in_use(path))


def damaged_message(path: Path, why: str) -> str:
    return (f"{path} is damaged ({why}). Run `leon doctor`; to start afresh move it aside "
            f"(mv '{path}' '{path}.bad'). It was not changed.")


def newer_message(path: Path, version: int, known: int) -> str:
    return (f"{path} has schema version {version}, newer than this leon understands "
            f"({known}). Upgrade leon (pip install -U leon); the file was not changed.")


def _read_version(path: Path) -> int:
    conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return version
    finally:
        conn.close()


def probe(path: Path, name: str, known_version: int) -> int:
    """Check an existing file without modifying it; return its schema version (0 for a
    missing or empty file). Raises :class:`StoreError` to refuse it, or SQLite's busy
    error when another process holds it locked (the caller retries)."""
    st = check_plain_files(path, name)
    if st is None or st.st_size == 0:
        return 0
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        raise StoreError(f"{path} cannot be read ({exc.strerror}); leon wants it 0600 and "
                         "yours. It was not changed.") from None
    if header != SQLITE_HEADER:
        raise StoreError(
            f"{path} is not a SQLite database (the {name} store). Move it aside "
            f"(e.g. mv '{path}' '{path}.bad') and leon will create a new one; it was not changed."
        )
    for attempt in range(3):
        before = _stamp(path)
        try:
            version = _read_version(path)
            break
        except sqlite3.DatabaseError as exc:
            if is_busy(exc):
                raise
            # Read while another process wrote it (a foreign writer without a WAL):
            # look again rather than call a healthy file damaged.
            if attempt < 2 and _stamp(path) != before:
                continue
            raise StoreError(damaged_message(path, str(exc))) from None
    if version > known_version:
        raise StoreError(newer_message(path, version, known_version))
    return version


def _create_private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does: SQLite gives its -wal and -shm
    files the same mode as the main file, so the whole set stays private."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # it exists (perhaps another process just made it)
        if (os.lstat(path).st_mode & 0o777) != 0o600:
            os.chmod(path, 0o600)  # a plain file: check_plain_files ran first
        return
    os.close(fd)


@contextlib.asynccontextmanager
async def _opening(directory: Path, limit: float, notify: Notify | None) -> AsyncIterator[None]:
    """Hold an exclusive ``flock`` on the databases' directory while one is created,
    switched to WAL and migrated, so leons started together take turns (a few ms each).
    The lock goes with the process if it dies; where ``flock`` is not supported leon goes
    on without it (the migration's own re-check still keeps that safe)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        yield
        return
    try:
        start = time.monotonic()
        delay, noted = 0.01, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            except OSError:
                break  # no flock on this file system
            waited = time.monotonic() - start
            if waited >= limit:
                raise DatabaseLocked(
                    f"another leon has been opening the databases in {directory} for "
                    f"{limit:g} s (store.lock_wait)")
            if waited > 2 and not noted and notify is not None:
                noted = True
                notify(f"waiting for another leon that is opening the databases in {directory}…")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        yield
    finally:
        os.close(fd)  # releases the flock


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script, one at a time (``executescript`` would
    commit the transaction the migration must run in). ``sqlite3.complete_statement``
    knows about strings and ``CREATE TRIGGER … BEGIN … END``."""
    pieces = script.split(";")
    buf = ""
    for i, piece in enumerate(pieces):
        buf += piece
        if i == len(pieces) - 1 or not sqlite3.complete_statement(buf + ";"):
            buf += ";" if i < len(pieces) - 1 else ""
            continue
        yield from _unless_empty(buf + ";")
        buf = ""
    yield from _unless_empty(buf)


def _unless_empty(text: str) -> Iterator[str]:
    """``text`` stripped, unless it holds nothing but comments and semicolons."""
    code = [line.split("--", 1)[0] for line in text.splitlines()]
    if "".join(code).replace(";", "").strip():
        yield text.strip()


async def open_database(
    path: Path, name: str, migrations: Sequence[str], *,
    lock_wait: float = LOCK_WAIT_SECONDS, notify: Notify | None = None,
) -> aiosqlite.Connection:
    """Open (creating if needed) and migrate one database. Raises :class:`StoreError`
    (:class:`DatabaseLocked` when another process kept it locked past ``lock_wait``)."""
    make_private_dir(path.parent)
    wait = LockWait(path, lock_wait, notify)
    async with _opening(path.parent, lock_wait, notify):
        await wait.run(lambda: asyncio.to_thread(probe, path, name, len(migrations)))
        _create_private_file(path)
        uri = f"file:{urllib.parse.quote(str(path))}?nofollow=1"
        conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA foreign_keys = ON")
            await wait.run(lambda: _use_wal(conn))
            # NORMAL is durable across application crashes in WAL mode; only an OS crash
            # can lose the last transactions, never corrupt the file.
            await conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint every 32 pages and truncate the WAL afterwards: the default
            # (1000 pages, never shrunk) left a WAL of 1-4 MiB beside a small database —
            # 4x its content at 100 messages. Measured cost: a median append of ~2 ms
            # instead of ~1.
            await conn.execute("PRAGMA wal_autocheckpoint = 32")
            await conn.execute("PRAGMA journal_size_limit = 0")
            await _migrate(conn, path, migrations, wait)
        except StoreError:
            await conn.close()
            raise
        except sqlite3.OperationalError as exc:
            await conn.close()
            raise StoreError(f"{path}: cannot open the {name} store: {exc}") from None
        except sqlite3.DatabaseError as exc:
            await conn.close()
            raise StoreError(damaged_message(path, str(exc))) from None
        except BaseException:
            await conn.close()
            raise
    return conn


async def _use_wal(conn: aiosqlite.Connection) -> None:
    # 1 KiB pages (new files only; must precede WAL mode): most tables stay small, and
    # with 4 KiB pages the empty pages of every table and index, plus the slack in leaf
    # pages of 1-4 KB messages, made a 100-message database 1.6x its content
    # (bench/storage.py). Reads of long threads were unaffected in that benchmark.
    # Every leon asks for the same size, so two racing to create a file agree.
    await conn.execute("PRAGMA page_size = 1024")
    await conn.execute("PRAGMA journal_mode = WAL")


async def _user_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _migrate(conn: aiosqlite.Connection, path: Path, migrations: Sequence[str],
                   wait: LockWait) -> None:
    """Apply the missing migrations, each in its own ``BEGIN IMMEDIATE`` transaction
    that re-reads ``user_version`` once it holds the write lock: a process that started
    at the same time may have migrated meanwhile, and must not run a step twice."""
    target = len(migrations)
    version = await _user_version(conn)  # the WAL's view; the probe read the file
    if version > target:
        raise StoreError(newer_message(path, version, target))
    while version < target:
        await wait.run(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            version = await _user_version(conn)
            if version > target:
                raise StoreError(newer_message(path, version, target))
            if version < target:
                for statement in _statements(migrations[version]):
                    await conn.execute(statement)
                version += 1
                await conn.execute(f"PRAGMA user_version = {version}")
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("ROLLBACK")
            raise


class Database:
    """One open connection with a write lock: aiosqlite serialises calls on one thread,
    but a multi-statement write must not interleave with another task's.

    Every statement that can meet another process's lock — ``BEGIN IMMEDIATE``, a
    single-statement write, a read — is retried through a :class:`LockWait` (``lock_wait``
    seconds, ``notify`` told once per wait). Statements inside a transaction need no
    retry: ``BEGIN IMMEDIATE`` already holds the write lock."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, *,
                 lock_wait: float = LOCK_WAIT_SECONDS, notify: Notify | None = None):
        self.conn = conn
        self.path = path
        self.waiter = LockWait(path, lock_wait, notify)
        self._lock = asyncio.Lock()

    @property
    def notify(self) -> Notify | None:
        return self.waiter.notify

    @notify.setter
    def notify(self, notify: Notify | None) -> None:
        self.waiter.notify = notify

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error or cancellation).

        The lock is held until the connection is out of the transaction again, even when
        the task is cancelled meanwhile: a cancelled ``await`` does not stop a statement
        already queued on aiosqlite's thread, so letting go at once left the connection
        inside a transaction that the next ``BEGIN`` failed on."""
        async with self._lock:
            try:
                await self.waiter.run(lambda: self._run_through("BEGIN IMMEDIATE"))
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
        async def once() -> list[aiosqlite.Row]:
            async with self.conn.execute(sql, params) as cur:
                return list(await cur.fetchall())

        return await self.waiter.run(once, ends_spell=False)

    async def fetchone(self, sql: str, params: Sequence[object] = ()) -> aiosqlite.Row | None:
        async def once() -> aiosqlite.Row | None:
            async with self.conn.execute(sql, params) as cur:
                return await cur.fetchone()

        return await self.waiter.run(once, ends_spell=False)

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        """One statement, in its own (implicit) transaction; retried while the database
        is locked (a refused statement changed nothing)."""
        async with self._lock:
            await self.waiter.run(lambda: self.conn.execute(sql, params))

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
    async def open(cls, path: Path, *, lock_wait: float = LOCK_WAIT_SECONDS,
                   notify: Notify | None = None):  # type: ignore[no-untyped-def]
        """Open ``path`` (see :func:`open_database`); ``lock_wait`` and ``notify`` also
        govern every later wait for another process's lock."""
        conn = await open_database(path, cls.NAME, cls.MIGRATIONS, lock_wait=lock_wait,
                                   notify=notify)
        return cls(Database(conn, path, lock_wait=lock_wait, notify=notify))

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
