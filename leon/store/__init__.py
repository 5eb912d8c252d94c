"""leon's three SQLite stores. No Textual here: the UI and the benchmarks use the same API."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from leon.paths import Paths
from leon.store.chat_store import ChatStore
from leon.store.db import StoreError
from leon.store.leon_store import LeonStore, NotFound
from leon.store.sandbox_store import SandboxStore

__all__ = ["Stores", "LeonStore", "SandboxStore", "ChatStore", "StoreError", "NotFound"]


@dataclass
class Stores:
    """The three databases of one LEON_HOME, opened together."""

    leon: LeonStore
    sandbox: SandboxStore
    chat: ChatStore

    @classmethod
    async def open(cls, paths: Paths) -> Stores:
        paths.ensure()
        opened: list = []
        try:
            for store_cls, path in ((LeonStore, paths.leon_db), (SandboxStore, paths.sandbox_db),
                                    (ChatStore, paths.chat_db)):
                opened.append(await store_cls.open(path))
        except BaseException:
            for s in opened:
                with contextlib.suppress(Exception):
                    await s.close()
            raise
        return cls(*opened)

    async def close(self) -> None:
        for s in (self.leon, self.sandbox, self.chat):
            with contextlib.suppress(Exception):
                await s.close()
