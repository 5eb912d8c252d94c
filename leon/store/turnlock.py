"""One turn at a time per thread, across processes: an exclusive ``flock`` on a lock
file under ``LEON_HOME/locks/``.

Why a file lock rather than a lease row in leon.db (as sandboxes have): the kernel
releases an ``flock`` the moment its holder dies, even by ``kill -9``, so there is no
heartbeat to keep, no expiry to tune and no pid to test for liveness (pids are reused);
taking or waiting for it never writes to leon.db, so it keeps working while the
database is locked; and leon's databases are confined to one machine anyway (SQLite's
WAL needs shared memory), which is exactly the reach of ``flock``. Within one process,
two holders conflict too (``flock`` belongs to the open file, not the process).

The holder writes ``pid@host`` into the file so a waiter can say whom it waits for; the
file is removed on release (under the lock; a waiter that locked the removed file sees
its inode is gone and tries again), so ``locks/`` holds only the threads being answered.
Lock files are named by a hash of the thread id: no id, however odd, becomes a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from leon.paths import make_private_dir
from leon.store.db import StoreError


class ThreadBusy(Exception):
    """Another leon is answering on the thread; ``str()`` is one line for the user."""

    def __init__(self, message: str, holder: str | None):
        super().__init__(message)
        self.holder = holder


def holder_label(holder: str | None) -> str:
    """``"pid 4242"`` (``"pid 4242 on otherhost"``) from a lock file's ``pid@host``."""
    if not holder:
        return "pid unknown"
    pid, _, host = holder.partition("@")
    return f"pid {pid}" if host in ("", socket.gethostname()) else f"pid {pid} on {host}"


class TurnLock:
    """The lock of one thread's turns for this process; :meth:`acquire`, then
    :meth:`release`. Not re-entrant: acquiring twice waits for yourself."""

    def __init__(self, locks_dir: Path, thread_id: str):
        self.dir = locks_dir
        self.thread_id = thread_id
        digest = hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        self.path = locks_dir / f"{digest}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never blocks."""
        if self._fd is not None:
            raise RuntimeError("turn lock already held by this object")
        if os.path.islink(self.dir):  # making it private would chmod the link's target
            raise StoreError(f"{self.dir} is a symbolic link; leon keeps its locks in a "
                             f"directory of its own: remove it (rm '{self.dir}')")
        make_private_dir(self.dir)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed it as we locked it: again
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}@{socket.gethostname()}\n".encode(), 0)
            self._fd = fd
            return True

    def holder(self) -> str | None:
        """``pid@host`` of the current holder, as it wrote it (None when unknown)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            text = os.read(fd, 256).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
        pid, _, host = text.partition("@")
        return text if pid.isdigit() and host.isprintable() else None

    async def acquire(self, wait: float, on_wait: Callable[[str | None], None] | None = None
                      ) -> None:
        """Take the lock, waiting up to ``wait`` seconds (polling, so a cancelled task
        stops waiting at once); ``on_wait(holder)`` is called once if it has to wait.
        Raises :class:`ThreadBusy` when the wait runs out (at once for ``wait=0``)."""
        start = time.monotonic()
        delay, told = 0.02, False
        while not self.try_acquire():
            holder = self.holder()
            if time.monotonic() - start >= wait:
                who = holder_label(holder)
                if wait <= 0:
                    raise ThreadBusy(f"another leon ({who}) is answering on this thread",
                                     holder)
                raise ThreadBusy(f"another leon ({who}) was still answering on this thread "
                                 f"after {wait:g} s (store.turn_wait)", holder)
            if not told and on_wait is not None:
                told = True
                on_wait(holder)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def release(self) -> None:
        """Let the next leon in. Safe to call when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == os.lstat(self.path).st_ino:
                os.unlink(self.path)  # still ours: nobody else can be holding it
        os.close(fd)
