"""Sandbox sessions: a working directory per thread (provider ``local``) under
``Paths.sandboxes``, used under a lease recorded in ``sandbox.db``.

* A lease is taken on a thread's first tool call that changes something, renewed by a
  heartbeat every third of ``sandbox.lease_ttl`` while leon runs, and released when the
  agent closes.
* A lease is *stale* when it expired (no heartbeat for a TTL), or when its holder
  (``pid@host``) is on this host and no longer running. A stale lease never blocks:
  whoever meets it closes it (``expired``, with the reason in the event log) — the next
  acquirer, the reaping at startup, or ``leon sandbox gc``. So a leon killed with SIGKILL
  leaves a lease that the next start on the same host closes at once.
* Garbage: sandboxes whose thread is gone, or is an ephemeral thread (``oneshot``,
  ``subagent``) that completed, and directories no sandbox owns. Removed at startup
  within a time budget, and by ``leon sandbox gc``.

The sandbox directory is where commands *start*. It confines nothing: see
:mod:`leon.agent.tools.bash`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from leon.paths import PathError, Paths, private_dir, remove_tree, same_path
from leon.store.leon_store import LeonStore, NotFound
from leon.store.models import EPHEMERAL_KINDS
from leon.store.sandbox_store import Lease, LeaseHeld, Sandbox, SandboxStore

__all__ = ["LeaseHeld", "SandboxLease", "CleanupReport", "collect_garbage", "holder_id",
           "startup_cleanup", "remove_sandbox"]

HOST = socket.gethostname()
STARTUP_BUDGET = 0.5  # seconds startup cleanup may spend

# Leases this process holds: (sandbox.db path, lease id) -> number of sessions using it.
_HELD: dict[tuple[str, int], int] = {}
_STARTUP_DONE: set[str] = set()


def holder_id() -> str:
    return f"{os.getpid()}@{HOST}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def stale_check(store: SandboxStore):  # type: ignore[no-untyped-def]
    """The :data:`~leon.store.sandbox_store.StaleCheck` for leases in ``store``."""
    db = str(store.path)

    def check(lease: Lease, now: float) -> str | None:
        pid_text, _, host = lease.holder.partition("@")
        if host == HOST and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                if (db, lease.id) in _HELD:
                    return None
                return f"holder {lease.holder} is this process, which does not hold it (left " \
                       "by an earlier process with the same pid)"
            if not pid_alive(pid):
                return f"holder {lease.holder} is no longer running"
        if lease.expires_at <= now:
            return f"expired {now - lease.expires_at:.0f} s ago without a heartbeat " \
                   f"(holder {lease.holder})"
        return None

    return check


class SandboxLease:
    """One agent's hold on its thread's sandbox: made and leased on first use."""

    def __init__(self, store: SandboxStore, paths: Paths, thread_id: str, ttl: float):
        self.store = store
        self.paths = paths
        self.thread_id = thread_id
        self.ttl = ttl
        self.sandbox: Sandbox | None = None
        self.lease: Lease | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def _key(self) -> tuple[str, int]:
        assert self.lease is not None
        return (str(self.store.path), self.lease.id)

    async def acquire(self) -> Sandbox:
        """The sandbox, leased to this process. Raises :class:`LeaseHeld` when another
        live process holds it, and :class:`~leon.paths.PathError` when its directory
        would not be ``LEON_CACHE/sandboxes/THREAD`` (checked before anything is made)."""
        async with self._lock:
            if self.lease is not None and self.sandbox is not None:
                self._make_dir(self.sandbox)
                return self.sandbox
            path = self.paths.sandbox_dir(self.thread_id)  # refuses an id leon did not make
            sandbox = await self.store.sandbox_for_thread(self.thread_id)
            if sandbox is not None and not same_path(Path(sandbox.path), path):
                # A row naming another place (LEON_CACHE moved, or sandbox.db edited):
                # leon never works in a directory it did not derive; the row is retired.
                await self.store.mark_removed(sandbox.id)
                sandbox = None
            if sandbox is None:
                # The row first: a directory without a row is an orphan to the collector.
                sandbox = await self.store.create_sandbox(secrets.token_hex(5), self.thread_id,
                                                          str(path))
            self._make_dir(sandbox)
            db = str(self.store.path)
            holder = holder_id()
            lease, reused = await self.store.acquire_lease(
                sandbox.id, holder, self.ttl, stale_check(self.store),
                reuse=lambda lease: lease.holder == holder and (db, lease.id) in _HELD)
            self.sandbox, self.lease = sandbox, lease
            _HELD[self._key] = _HELD.get(self._key, 0) + 1
            self._heartbeat = asyncio.create_task(self._beat(), name=f"lease-{lease.id}")
            return sandbox

    def _make_dir(self, sandbox: Sandbox) -> None:
        """Create the sandbox directory (0700) — only where leon derives it: a row naming
        anywhere else (sandbox.db is a file like any other) is refused."""
        expected = self.paths.sandbox_dir(self.thread_id)
        if not same_path(Path(sandbox.path), expected):
            raise PathError(f"sandbox {sandbox.id} names {sandbox.path}, not {expected}")
        private_dir(self.paths.cache, "sandboxes", self.thread_id)

    async def _beat(self) -> None:
        interval = max(0.5, self.ttl / 3)
        while self.lease is not None:
            await asyncio.sleep(interval)
            lease = self.lease
            if lease is None:
                return
            try:
                alive = await self.store.heartbeat(lease.id, self.ttl)
            except sqlite3.Error:
                continue  # busy or locked: the next beat tries again
            except ValueError:
                return  # the store was closed under us: nothing left to renew
            if not alive:  # reaped by someone who thought us gone: take it again next use
                self._forget()
                return

    def _forget(self) -> None:
        if self.lease is not None:
            key = self._key
            _HELD[key] = _HELD.get(key, 1) - 1
            if _HELD[key] <= 0:
                _HELD.pop(key, None)
        self.lease = None

    async def release(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        lease = self.lease
        if lease is None:
            return
        key = self._key
        last = _HELD.get(key, 1) <= 1
        self._forget()
        if last:
            with contextlib.suppress(sqlite3.Error):
                await self.store.release_lease(lease.id)


@dataclass
class CleanupReport:
    leases_reaped: list[tuple[Lease, str]] = field(default_factory=list)
    sandboxes_removed: list[Sandbox] = field(default_factory=list)
    orphans_removed: list[Path] = field(default_factory=list)
    left_for_later: int = 0   # items the time budget did not reach
    dry_run: bool = False

    @property
    def anything(self) -> bool:
        return bool(self.leases_reaped or self.sandboxes_removed or self.orphans_removed)

    def summary(self) -> str:
        verb = "would reap" if self.dry_run else "reaped"
        parts = [f"{len(self.leases_reaped)} stale lease(s)",
                 f"{len(self.sandboxes_removed)} finished sandbox(es)",
                 f"{len(self.orphans_removed)} orphan director(y/ies)"]
        text = f"{verb} " + ", ".join(parts)
        if self.left_for_later:
            text += f"; {self.left_for_later} left for later (time budget)"
        return text


def _rmtree(paths: Paths, path: Path) -> bool:
    """Remove a sandbox directory, but only ``LEON_CACHE/sandboxes/NAME`` itself, checked
    by :func:`leon.paths.remove_tree` (a row could name anything)."""
    if not same_path(path.parent, paths.sandboxes):
        return False
    try:
        return remove_tree(paths.cache, "sandboxes", path.name)
    except PathError:
        return False


async def _removable(leon: LeonStore, sandbox: Sandbox) -> bool:
    try:
        thread = await leon.get_thread(sandbox.thread_id)
    except NotFound:
        return True
    return thread.kind in EPHEMERAL_KINDS and thread.status == "completed"


async def remove_sandbox(store: SandboxStore, paths: Paths, sandbox: Sandbox) -> bool:
    """Delete the sandbox's directory and mark it removed. The caller checks the lease."""
    ok = await asyncio.to_thread(_rmtree, paths, Path(sandbox.path))
    await store.mark_removed(sandbox.id)
    return ok


async def collect_garbage(leon: LeonStore, store: SandboxStore, paths: Paths, *,
                          budget: float | None = None, dry_run: bool = False) -> CleanupReport:
    """Reap stale leases, remove finished sandboxes and orphan directories, stopping when
    ``budget`` seconds have passed (the rest waits for the next start or gc)."""
    deadline = None if budget is None else time.monotonic() + budget
    report = CleanupReport(dry_run=dry_run)
    check = stale_check(store)
    if dry_run:
        now = time.time()
        report.leases_reaped = [(lease, reason) for lease in await store.open_leases()
                                if (reason := check(lease, now)) is not None]
    else:
        report.leases_reaped = await store.reap_leases(check)
    reaped = {lease.id for lease, _ in report.leases_reaped}
    held = {lease.sandbox_id for lease in await store.open_leases() if lease.id not in reaped}
    live = await store.list_sandboxes()
    todo: list[Sandbox | Path] = [s for s in live if s.id not in held]
    owned = {Path(s.path).name for s in live}
    if paths.sandboxes.is_dir():
        todo += [p for p in sorted(paths.sandboxes.iterdir())
                 if p.name not in owned and p.is_dir() and not p.is_symlink()]
    for i, item in enumerate(todo):
        if deadline is not None and time.monotonic() > deadline:
            report.left_for_later = len(todo) - i
            break
        if isinstance(item, Path):
            if dry_run or await asyncio.to_thread(_rmtree, paths, item):
                report.orphans_removed.append(item)
        elif await _removable(leon, item):
            if not dry_run:
                await remove_sandbox(store, paths, item)
            report.sandboxes_removed.append(item)
    return report


async def startup_cleanup(leon: LeonStore, store: SandboxStore, paths: Paths,
                          budget: float = STARTUP_BUDGET) -> CleanupReport | None:
    """Once per process and sandbox.db: :func:`collect_garbage` within ``budget``."""
    key = str(store.path)
    if key in _STARTUP_DONE:
        return None
    _STARTUP_DONE.add(key)
    try:
        report = await collect_garbage(leon, store, paths, budget=budget)
        if report.anything:  # one summary line, never one per file
            await leon.add_event(None, "cleanup", {"sandboxes": report.summary()})
        return report
    except (sqlite3.Error, OSError):
        return None  # cleanup is housekeeping: it must never stop leon from starting
