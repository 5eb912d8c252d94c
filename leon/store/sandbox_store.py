"""sandbox.db: the working directories tools run in, their leases and command metrics."""

from __future__ import annotations

from leon.store.db import BaseStore
from leon.store.schema import SANDBOX_MIGRATIONS


class SandboxStore(BaseStore):
    NAME = "sandbox"
    MIGRATIONS = SANDBOX_MIGRATIONS

    async def count_sandboxes(self) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM sandboxes WHERE state != 'removed'")
        return int(row[0]) if row else 0
