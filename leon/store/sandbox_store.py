"""sandbox.db: the working directories tools run in, their leases and command metrics.

A *sandbox* is a thread's working directory (provider ``local``). A *lease* says which
process may use it: ``holder`` is ``pid@host``, ``expires_at`` moves forward with each
heartbeat, and ``released_at`` closes it. A lease is *open* while ``released_at`` is
NULL. At most one open lease per sandbox is live; an open lease that has expired, or
whose holder is known to be dead, is *stale* and is closed (``observed_state``
``expired``) by whoever finds it — the next acquirer, startup reaping or ``leon sandbox
gc``. Every state change of a lease is logged in ``lease_events``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import aiosqlite

from leon.store.db import BaseStore
from leon.store.schema import SANDBOX_MIGRATIONS


@dataclass
class Sandbox:
    id: str
    thread_id: str
    provider: str
    path: str
    state: str            # ready | removed
    created_at: float
    removed_at: float | None = None


@dataclass
class Lease:
    id: int
    sandbox_id: str
    holder: str           # pid@host
    acquired_at: float
    expires_at: float
    heartbeat_at: float
    released_at: float | None
    desired_state: str    # held | released
    observed_state: str   # held | released | expired

    @property
    def is_open(self) -> bool:
        return self.released_at is None


@dataclass
class LeaseEvent:
    id: int
    lease_id: int
    from_state: str | None
    to_state: str
    note: str
    created_at: float


@dataclass
class CommandRecord:
    id: int
    sandbox_id: str
    command: str
    exit_code: int | None
    duration_ms: float
    bytes_out: int
    spill_path: str | None
    created_at: float


class LeaseHeld(Exception):
    """Another live process holds the sandbox's lease."""

    def __init__(self, lease: Lease):
        remaining = max(0, int(lease.expires_at - time.time()))
        super().__init__(
            f"sandbox {lease.sandbox_id} is in use by {lease.holder} "
            f"(lease {lease.id}, expires in {remaining} s unless renewed)")
        self.lease = lease


StaleCheck = Callable[[Lease, float], str | None]
"""Given an open lease and the time, the reason it is stale (expired, holder dead), or
None when it is live."""


def _sandbox(row: aiosqlite.Row) -> Sandbox:
    return Sandbox(**{k: row[k] for k in row.keys()})


def _lease(row: aiosqlite.Row) -> Lease:
    return Lease(**{k: row[k] for k in row.keys()})


def _command(row: aiosqlite.Row) -> CommandRecord:
    return CommandRecord(**{k: row[k] for k in row.keys()})


async def _log(conn: aiosqlite.Connection, lease_id: int, from_state: str | None, to_state: str,
               note: str, now: float) -> None:
    await conn.execute(
        "INSERT INTO lease_events (lease_id, from_state, to_state, note, created_at)"
        " VALUES (?,?,?,?,?)", (lease_id, from_state, to_state, note, now))


class SandboxStore(BaseStore):
    NAME = "sandbox"
    MIGRATIONS = SANDBOX_MIGRATIONS

    async def count_sandboxes(self) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM sandboxes WHERE state != 'removed'")
        return int(row[0]) if row else 0

    # -- sandboxes ---------------------------------------------------------------------
    async def create_sandbox(self, sandbox_id: str, thread_id: str, path: str,
                             provider: str = "local") -> Sandbox:
        now = time.time()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO sandboxes (id, thread_id, provider, path, created_at)"
                " VALUES (?,?,?,?,?)", (sandbox_id, thread_id, provider, path, now))
        return Sandbox(sandbox_id, thread_id, provider, path, "ready", now)

    async def sandbox_for_thread(self, thread_id: str) -> Sandbox | None:
        """The thread's sandbox that is not removed (the newest, should there be two)."""
        row = await self.db.fetchone(
            "SELECT * FROM sandboxes WHERE thread_id = ? AND state != 'removed'"
            " ORDER BY created_at DESC LIMIT 1", (thread_id,))
        return _sandbox(row) if row else None

    async def get_sandbox(self, sandbox_id: str) -> Sandbox | None:
        row = await self.db.fetchone("SELECT * FROM sandboxes WHERE id = ?", (sandbox_id,))
        return _sandbox(row) if row else None

    async def find_sandbox(self, ref: str) -> list[Sandbox]:
        """Sandboxes matching ``ref``: an id, a thread id, or a unique prefix of either;
        live ones first."""
        like = ref.replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self.db.fetchall(
            "SELECT * FROM sandboxes WHERE id = ? OR thread_id = ?"
            " ORDER BY state = 'removed', created_at DESC", (ref, ref))
        if not rows:
            rows = await self.db.fetchall(
                "SELECT * FROM sandboxes WHERE id LIKE ? ESCAPE '\\'"
                " OR thread_id LIKE ? ESCAPE '\\'"
                " ORDER BY state = 'removed', created_at DESC", (like, like))
        return [_sandbox(r) for r in rows]

    async def list_sandboxes(self, *, include_removed: bool = False) -> list[Sandbox]:
        sql = "SELECT * FROM sandboxes"
        if not include_removed:
            sql += " WHERE state != 'removed'"
        rows = await self.db.fetchall(sql + " ORDER BY created_at DESC")
        return [_sandbox(r) for r in rows]

    async def mark_removed(self, sandbox_id: str) -> None:
        await self.db.execute(
            "UPDATE sandboxes SET state = 'removed', removed_at = ? WHERE id = ?",
            (time.time(), sandbox_id))

    # -- leases ------------------------------------------------------------------------
    async def open_lease(self, sandbox_id: str) -> Lease | None:
        row = await self.db.fetchone(
            "SELECT * FROM leases WHERE sandbox_id = ? AND released_at IS NULL"
            " ORDER BY id DESC LIMIT 1", (sandbox_id,))
        return _lease(row) if row else None

    async def get_lease(self, lease_id: int) -> Lease | None:
        row = await self.db.fetchone("SELECT * FROM leases WHERE id = ?", (lease_id,))
        return _lease(row) if row else None

    async def leases(self, sandbox_id: str, limit: int = 20) -> list[Lease]:
        rows = await self.db.fetchall(
            "SELECT * FROM leases WHERE sandbox_id = ? ORDER BY id DESC LIMIT ?",
            (sandbox_id, limit))
        return [_lease(r) for r in rows]

    async def open_leases(self) -> list[Lease]:
        rows = await self.db.fetchall("SELECT * FROM leases WHERE released_at IS NULL")
        return [_lease(r) for r in rows]

    async def acquire_lease(self, sandbox_id: str, holder: str, ttl: float,
                            stale: StaleCheck, *, reuse: Callable[[Lease], bool] | None = None
                            ) -> tuple[Lease, bool]:
        """Take the sandbox's lease for ``holder``; returns ``(lease, reused)``.

        An open lease that ``reuse`` accepts (this process's own) is returned as is;
        one that ``stale`` condemns is closed as ``expired`` first; any other open lease
        raises :class:`LeaseHeld`. Check and insert happen in one write transaction, so
        two processes racing for a sandbox cannot both win.
        """
        now = time.time()
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT * FROM leases WHERE sandbox_id = ? AND released_at IS NULL", (sandbox_id,))
            for row in await cur.fetchall():
                current = _lease(row)
                if reuse is not None and reuse(current):
                    return current, True
                reason = stale(current, now)
                if reason is None:
                    raise LeaseHeld(current)
                await self._expire(conn, current, reason, now)
            cur = await conn.execute(
                "INSERT INTO leases (sandbox_id, holder, acquired_at, expires_at, heartbeat_at)"
                " VALUES (?,?,?,?,?)", (sandbox_id, holder, now, now + ttl, now))
            lease_id = int(cur.lastrowid or 0)
            await _log(conn, lease_id, None, "held", f"acquired by {holder}", now)
        return Lease(lease_id, sandbox_id, holder, now, now + ttl, now, None, "held", "held"), False

    async def heartbeat(self, lease_id: int, ttl: float) -> bool:
        """Push the lease's expiry ``ttl`` seconds ahead. False when the lease is no longer
        open (reaped by someone who thought its holder gone): the holder must re-acquire."""
        now = time.time()
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE leases SET heartbeat_at = ?, expires_at = ?"
                " WHERE id = ? AND released_at IS NULL", (now, now + ttl, lease_id))
            return cur.rowcount == 1

    async def release_lease(self, lease_id: int, note: str = "released by its holder") -> bool:
        """Close the lease (desired, then observed, state ``released``). False if it was
        already closed."""
        now = time.time()
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE leases SET desired_state = 'released', observed_state = 'released',"
                " released_at = ? WHERE id = ? AND released_at IS NULL", (now, lease_id))
            if cur.rowcount != 1:
                return False
            await _log(conn, lease_id, "held", "released", note, now)
        return True

    async def reap_leases(self, stale: StaleCheck) -> list[tuple[Lease, str]]:
        """Close every open lease that ``stale`` condemns; returns them with the reason."""
        now = time.time()
        reaped: list[tuple[Lease, str]] = []
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT * FROM leases WHERE released_at IS NULL")
            for row in await cur.fetchall():
                lease = _lease(row)
                reason = stale(lease, now)
                if reason is not None:
                    await self._expire(conn, lease, reason, now)
                    reaped.append((lease, reason))
        return reaped

    @staticmethod
    async def _expire(conn: aiosqlite.Connection, lease: Lease, reason: str, now: float) -> None:
        await conn.execute(
            "UPDATE leases SET desired_state = 'released', observed_state = 'expired',"
            " released_at = ? WHERE id = ?", (now, lease.id))
        await _log(conn, lease.id, lease.observed_state, "expired", reason, now)

    async def lease_events(self, lease_id: int) -> list[LeaseEvent]:
        rows = await self.db.fetchall(
            "SELECT * FROM lease_events WHERE lease_id = ? ORDER BY id", (lease_id,))
        return [LeaseEvent(**{k: r[k] for k in r.keys()}) for r in rows]

    # -- commands ----------------------------------------------------------------------
    async def add_command(self, sandbox_id: str, command: str, *, exit_code: int | None,
                          duration_ms: float, bytes_out: int, spill_path: str | None = None) -> int:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO commands (sandbox_id, command, exit_code, duration_ms, bytes_out,"
                " spill_path, created_at) VALUES (?,?,?,?,?,?,?)",
                (sandbox_id, command, exit_code, duration_ms, bytes_out, spill_path, time.time()))
            return int(cur.lastrowid or 0)

    async def set_spill_path(self, command_id: int, spill_path: str) -> None:
        """The memory layer spilled this command's output to ``spill_path``."""
        await self.db.execute("UPDATE commands SET spill_path = ? WHERE id = ?",
                              (spill_path, command_id))

    async def commands(self, sandbox_id: str, limit: int = 20) -> list[CommandRecord]:
        rows = await self.db.fetchall(
            "SELECT * FROM commands WHERE sandbox_id = ? ORDER BY id DESC LIMIT ?",
            (sandbox_id, limit))
        return [_command(r) for r in reversed(rows)]

    async def command_counts(self) -> dict[str, int]:
        rows = await self.db.fetchall(
            "SELECT sandbox_id, count(*) AS n FROM commands GROUP BY sandbox_id")
        return {r["sandbox_id"]: r["n"] for r in rows}
