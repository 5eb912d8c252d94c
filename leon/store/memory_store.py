"""leon.db tables of the memory middleware: spilled tool outputs and the per-model token
calibration. Reached through :class:`leon.store.leon_store.LeonStore`'s methods."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from leon.store.db import Database


@dataclass
class Spill:
    """One tool output saved to a file instead of the context."""

    id: int
    thread_id: str
    message_id: int | None      # the stored tool_result message (set once it is stored)
    tool_use_id: str
    tool_name: str
    path: str
    bytes: int
    chars: int
    lines: int
    created_at: float


async def add_spill(db: Database, thread_id: str, *, tool_use_id: str, tool_name: str,
                    path: str, bytes: int, chars: int, lines: int,
                    message_id: int | None = None) -> Spill:
    now = time.time()
    async with db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO spills (thread_id, message_id, tool_use_id, tool_name, path, bytes,"
            " chars, lines, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (thread_id, message_id, tool_use_id, tool_name, path, bytes, chars, lines, now),
        )
    return Spill(int(cur.lastrowid or 0), thread_id, message_id, tool_use_id, tool_name, path,
                 bytes, chars, lines, now)


async def spills(db: Database, thread_id: str) -> list[Spill]:
    rows = await db.fetchall(
        "SELECT id, thread_id, message_id, tool_use_id, tool_name, path, bytes, chars, lines,"
        " created_at FROM spills WHERE thread_id = ? ORDER BY id", (thread_id,))
    return [Spill(*tuple(r)) for r in rows]


async def link_spills(db: Database, pairs: list[tuple[int, int]]) -> None:
    """Record the message that holds each spilled result: ``[(spill_id, message_id)]``."""
    if not pairs:
        return
    async with db.transaction() as conn:
        await conn.executemany("UPDATE spills SET message_id = ? WHERE id = ?",
                               [(m, s) for s, m in pairs])


async def calibration(db: Database, model: str) -> list[float]:
    row = await db.fetchone("SELECT observations FROM calibration WHERE model = ?", (model,))
    if row is None:
        return []
    try:
        return [float(x) for x in json.loads(row["observations"])]
    except (ValueError, TypeError):
        return []


async def save_calibration(db: Database, model: str, observations: list[float]) -> None:
    await db.execute(
        "INSERT INTO calibration (model, observations, updated_at) VALUES (?,?,?)"
        " ON CONFLICT(model) DO UPDATE SET observations = excluded.observations,"
        " updated_at = excluded.updated_at",
        (model, json.dumps([round(x, 6) for x in observations]), time.time()),
    )
