"""What the tools that change things remember in leon.db, per thread: the files a thread
has read (with the hash it saw), its file changes (``file_ops``, contents in ``blobs``),
and the "always allow" answers given in it.

A thin layer over :class:`LeonStore`'s connection, so the SQL stays in the store package
and the agent layer sees dataclasses only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from leon.store.leon_store import LeonStore


@dataclass
class FileOp:
    id: int
    thread_id: str
    checkpoint_id: int | None
    path: str
    before_hash: str | None   # None: the file did not exist
    after_hash: str | None    # None: the file was deleted
    kind: str                 # tool | subagent | restore
    tool: str | None
    created_at: float
    workspace: str | None = None  # the root the change was confined to (None: unknown)


class ToolState:
    """leon.db tables for file history, read tracking and permission grants."""

    def __init__(self, store: LeonStore):
        self.store = store
        self.db = store.db

    # -- reads -------------------------------------------------------------------------
    async def record_read(self, thread_id: str, path: str, digest: str) -> None:
        """The thread has seen ``path`` with content ``digest`` (read it, or wrote it)."""
        await self.db.execute(
            "INSERT INTO file_reads (thread_id, path, hash, read_at) VALUES (?,?,?,?)"
            " ON CONFLICT (thread_id, path) DO UPDATE SET hash = excluded.hash,"
            " read_at = excluded.read_at", (thread_id, path, digest, time.time()))

    async def read_hash(self, thread_id: str, path: str) -> str | None:
        row = await self.db.fetchone(
            "SELECT hash FROM file_reads WHERE thread_id = ? AND path = ?", (thread_id, path))
        return row["hash"] if row else None

    # -- file history ----------------------------------------------------------------------
    async def put_content(self, data: bytes | None) -> str | None:
        """Store file content as a blob (kind ``file``); None stays None (no file)."""
        return None if data is None else await self.store.put_blob("file", data)

    async def add_file_op(self, thread_id: str, path: str, before_hash: str | None,
                          after_hash: str | None, *, kind: str = "tool", tool: str | None = None,
                          checkpoint_id: int | None = None, workspace: str | None = None) -> int:
        """Record one change of ``path`` (absolute) made inside ``workspace``."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO file_ops (thread_id, checkpoint_id, path, before_hash, after_hash,"
                " kind, tool, created_at, workspace) VALUES (?,?,?,?,?,?,?,?,?)",
                (thread_id, checkpoint_id, path, before_hash, after_hash, kind, tool, time.time(),
                 workspace))
            return int(cur.lastrowid or 0)

    async def attach_file_ops(self, op_ids: Iterable[int], checkpoint_id: int) -> None:
        """Tie changes made while a tool round ran to the checkpoint of its results."""
        ids = list(op_ids)
        if not ids:
            return
        async with self.db.transaction() as conn:
            await conn.executemany("UPDATE file_ops SET checkpoint_id = ? WHERE id = ?",
                                   [(checkpoint_id, i) for i in ids])

    async def file_ops(self, thread_id: str) -> list[FileOp]:
        rows = await self.db.fetchall(
            "SELECT id, thread_id, checkpoint_id, path, before_hash, after_hash, kind, tool,"
            " created_at, workspace FROM file_ops WHERE thread_id = ? ORDER BY id", (thread_id,))
        return [FileOp(**{k: r[k] for k in r.keys()}) for r in rows]

    # -- permission grants -------------------------------------------------------------------
    async def grants(self, thread_id: str) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT rule FROM permission_grants WHERE thread_id = ? ORDER BY created_at",
            (thread_id,))
        return [r["rule"] for r in rows]

    async def add_grant(self, thread_id: str, rule: str) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO permission_grants (thread_id, rule, created_at)"
            " VALUES (?,?,?)", (thread_id, rule, time.time()))
