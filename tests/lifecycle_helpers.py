"""Builders for the session-lifecycle tests: threads of a given kind, status and age with
rows in all three databases and a spill file."""

from __future__ import annotations

import time
from typing import Any

from leon.config import Settings
from leon.paths import Paths
from leon.store import Stores

DAY = 86400.0


def settings(**values: Any) -> Settings:
    """Settings with dotted keys given as ``retention__max_threads=5``."""
    return Settings({k.replace("__", "."): v for k, v in values.items()})


async def make_thread(stores: Stores, paths: Paths, kind: str = "oneshot", *,
                      status: str = "completed", age: float = 2 * DAY, messages: int = 4,
                      size: int = 200, title: str = "", full: bool = False,
                      name: str | None = None) -> str:
    """A thread ``age`` seconds old (updated and completed then). ``full`` adds a spill
    file, a sandbox with a released lease and a command, and a chat with two messages."""
    leon = stores.leon
    t = await leon.create_thread(kind, title=title or f"{kind} thread", name=name,
                                 day="2020-01-01" if kind == "general" else None)
    for i in range(messages):
        role = "user" if i % 2 == 0 else "assistant"
        await leon.append_message(t.id, role, [{"type": "text", "text": f"{i} " + "x" * size}])
    await leon.add_event(t.id, "prune", {"n": 1})
    await leon.add_usage(t.id, "demo", input_tokens=10, output_tokens=5, cache_creation_tokens=0,
                         cache_read_tokens=0, latency_ms=1.0, retries=0)
    if full:
        spill_dir = paths.spill_dir(t.id)
        spill_dir.mkdir(parents=True, exist_ok=True)
        f = spill_dir / "toolu_1.txt"
        f.write_text("spilled output\n" * 100)
        await leon.add_spill(t.id, tool_use_id="toolu_1", tool_name="bash", path=str(f),
                             bytes=f.stat().st_size, chars=f.stat().st_size, lines=100)
        box = paths.sandboxes / t.id
        box.mkdir(parents=True, exist_ok=True)
        (box / "scratch.txt").write_text("scratch")
        sb = await stores.sandbox.create_sandbox(f"sb{t.id}", t.id, str(box))
        lease, _ = await stores.sandbox.acquire_lease(sb.id, "1@elsewhere", 60,
                                                      lambda lease, now: "stale")
        await stores.sandbox.add_command(sb.id, "echo hi", exit_code=0, duration_ms=1.0,
                                         bytes_out=3)
        await stores.sandbox.release_lease(lease.id)
        await stores.chat.ensure_entity("user", "user", "you")
        await stores.chat.ensure_entity("agent:default", "agent", "default")
        chat = await stores.chat.chat_for_thread(t.id, t.title, ["user", "agent:default"])
        await stores.chat.post(chat.id, "user", "do the thing")
        await stores.chat.post(chat.id, "agent:default", "the outcome: done", ["user"])
    when = time.time() - age
    await leon.db.execute(
        "UPDATE threads SET status = ?, updated_at = ?, created_at = ?,"
        " completed_at = CASE WHEN ? = 'completed' THEN ? END WHERE id = ?",
        (status, when, when, status, when, t.id))
    return t.id


async def counts(stores: Stores, thread_id: str) -> dict[str, int]:
    """Rows that belong to ``thread_id`` in each table of the three databases."""
    out: dict[str, int] = {}
    for table in ("threads", "messages", "checkpoints", "events", "usage", "spills",
                  "deletions"):
        col = "id" if table == "threads" else "thread_id"
        row = await stores.leon.db.fetchone(f"SELECT count(*) FROM {table} WHERE {col} = ?",
                                            (thread_id,))
        out[table] = row[0]
    row = await stores.sandbox.db.fetchone("SELECT count(*) FROM sandboxes WHERE thread_id = ?",
                                           (thread_id,))
    out["sandboxes"] = row[0]
    row = await stores.sandbox.db.fetchone(
        "SELECT count(*) FROM leases l JOIN sandboxes s ON s.id = l.sandbox_id"
        " WHERE s.thread_id = ?", (thread_id,))
    out["leases"] = row[0]
    row = await stores.chat.db.fetchone(
        "SELECT count(*) FROM chat_messages m JOIN chats c ON c.id = m.chat_id"
        " WHERE c.thread_id = ?", (thread_id,))
    out["chat_messages"] = row[0]
    return out
