"""leon's three SQLite stores. No Textual here: the UI and the benchmarks use the same API."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from leon.paths import Paths
from leon.store.chat_store import ChatStore
from leon.store.db import LOCK_WAIT_SECONDS, DatabaseLocked, LockWait, Notify, StoreError, probe
from leon.store.leon_store import LeonStore, NotFound
from leon.store.sandbox_store import SandboxStore

__all__ = ["Stores", "LeonStore", "SandboxStore", "ChatStore", "StoreError", "DatabaseLocked",
           "NotFound"]


async def _check(path: Path, name: str, known: int, lock_wait: float,
                 notify: Notify | None) -> None:
    """:func:`leon.store.db.probe` in a thread, retried while the file is locked."""
    await LockWait(path, lock_wait, notify).run(lambda: asyncio.to_thread(probe, path, name,
                                                                           known))


@dataclass
class Stores:
    """The three databases of one LEON_HOME, opened together."""

    leon: LeonStore
    sandbox: SandboxStore
    chat: ChatStore

    @classmethod
    async def open(cls, paths: Paths, *, lock_wait: float = LOCK_WAIT_SECONDS,
                   notify: Notify | None = None) -> Stores:
        """Open all three, or none: each is checked (without being changed) before any is
        opened for writing, so a damaged ``chat.db`` does not leave a freshly opened
        ``leon.db`` behind. ``lock_wait``/``notify``: see :class:`leon.store.db.LockWait`."""
        paths.ensure()
        kinds = ((LeonStore, paths.leon_db), (SandboxStore, paths.sandbox_db),
                 (ChatStore, paths.chat_db))
        for store_cls, path in kinds:
            await _check(path, store_cls.NAME, len(store_cls.MIGRATIONS), lock_wait, notify)
        opened: list = []
        try:
            for store_cls, path in kinds:
                opened.append(await store_cls.open(path, lock_wait=lock_wait, notify=notify))
        except BaseException:
            for s in opened:
                with contextlib.suppress(Exception):
                    await s.close()
            raise
        return cls(*opened)

    def set_notify(self, notify: Notify | None) -> None:
        """Who hears "leon.db is locked by another process; retrying…" from now on."""
        for s in (self.leon, self.sandbox, self.chat):
            s.db.notify = notify

    async def close(self) -> None:
        for s in (self.leon, self.sandbox, self.chat):
            with contextlib.suppress(Exception):
                await s.close()
