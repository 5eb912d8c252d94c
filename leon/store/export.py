"""Export a thread (markdown of the active branch, or JSON of the whole tree) and import
a JSON export back exactly: same ids when they are free, same branches, checkpoints,
summaries and head pointer. An export is outside input: it is checked against
:mod:`leon.store.export_schema` before anything is written."""

from __future__ import annotations

import json
import os
import secrets
import sys
from typing import Any

from leon.store.export_schema import EXPORT_FORMAT, MAX_BYTES, REFS, validate_export
from leon.store.leon_store import LeonStore, NotFound
from leon.store.models import Message
from leon.store.validate import Invalid, load_json

__all__ = ["EXPORT_FORMAT", "export_json", "export_markdown", "import_json", "insert_export",
           "load_export", "read_export"]

_THREAD_COLS = ("id", "title", "kind", "status", "parent_id", "name", "day", "agent", "model",
                "system_hash", "tools_hash", "head_checkpoint_id", "message_count",
                "created_at", "updated_at", "completed_at")
_TABLES = {
    "messages": ("id", "parent_id", "role", "content", "status", "tokens", "pinned", "created_at",
                 "unsent", "model", "stop_reason"),
    "checkpoints": ("id", "parent_id", "message_id", "summary_id", "kind", "label", "created_at"),
    "summaries": ("id", "upto_message_id", "previous_id", "text", "model", "messages_replaced",
                  "tokens_before", "tokens_after", "created_at"),
    "events": ("id", "kind", "data", "created_at"),
    "usage": ("id", "model", "input_tokens", "output_tokens", "cache_creation_tokens",
              "cache_read_tokens", "estimated_tokens", "latency_ms", "retries", "created_at"),
}
_JSON_COLS = {"content", "data"}
# Columns added after the format was first written, with the value older exports imply.
_ADDED_COLS: dict[str, dict[str, Any]] = {
    "messages": {"unsent": 0, "model": None, "stop_reason": None}}


async def export_json(store: LeonStore, thread_id: str) -> dict[str, Any]:
    """Everything leon.db holds for one thread: every branch, checkpoint, summary, event
    and usage record, plus the blobs the thread references."""
    row = await store.db.fetchone("SELECT * FROM threads WHERE id = ?", (thread_id,))
    if row is None:
        raise NotFound(f"no thread {thread_id!r}")
    out: dict[str, Any] = {"format": EXPORT_FORMAT,
                           "thread": {c: row[c] for c in _THREAD_COLS}}
    for table, cols in _TABLES.items():
        rows = await store.db.fetchall(
            f"SELECT {', '.join(cols)} FROM {table} WHERE thread_id = ? ORDER BY id", (thread_id,)
        )
        out[table] = [
            {c: (json.loads(r[c]) if c in _JSON_COLS else r[c]) for c in cols} for r in rows
        ]
    blobs = {}
    for key in ("system_hash", "tools_hash"):
        digest = row[key]
        if digest:
            blob = await store.db.fetchone("SELECT kind, data FROM blobs WHERE hash = ?", (digest,))
            if blob:
                blobs[digest] = {"kind": blob["kind"],
                                 "data": bytes(blob["data"]).decode("utf-8", "replace")}
    out["blobs"] = blobs
    return out


def load_export(raw: bytes) -> dict[str, Any]:
    """An export file's bytes (at most :data:`~leon.store.export_schema.MAX_BYTES`) as a
    checked export. Raises :class:`~leon.store.validate.Invalid` with one line."""
    data = load_json(raw, MAX_BYTES, "the file")
    validate_export(data)
    return data


def read_export(source: str) -> dict[str, Any]:
    """:func:`load_export` of a file, or of stdin for ``-``; reads at most one byte more
    than the cap, so a huge file is refused without being read whole. Raises
    :class:`~leon.store.validate.Invalid` or :class:`OSError`."""
    if source == "-":
        return load_export(sys.stdin.buffer.read(MAX_BYTES + 1))
    with open(source, "rb") as fh:
        if os.fstat(fh.fileno()).st_size > MAX_BYTES:  # a regular file: refused unread
            raise Invalid("", f"the file is larger than {MAX_BYTES // 2**20} MiB")
        return load_export(fh.read(MAX_BYTES + 1))


async def import_json(store: LeonStore, data: dict[str, Any]) -> str:
    """Restore an export. Every id that is still free is kept (the thread's id, and each
    table's row ids), so an export → delete → import round trip gives back the very same
    rows; where ids are taken, that table's rows get new ids with the same structure, and
    a thread id that is taken gets a new one (never a merge into the existing thread).
    The export is checked first (:func:`~leon.store.export_schema.validate_export`):
    anything else raises :class:`~leon.store.validate.Invalid` and nothing is written.
    Returns the thread id."""
    validate_export(data)
    async with store.db.transaction() as conn:
        tid, _ = await insert_export(conn, data)
    return tid


async def insert_export(conn: Any, data: dict[str, Any]) -> tuple[str, dict[str, dict[int, int]]]:
    """Write a *checked* export inside the caller's transaction; returns the thread id and,
    per table, each exported row id's id in the database."""
    thread = dict(data["thread"])
    thread["id"] = await _free_id(conn, thread["id"])
    if thread.get("name"):
        thread["name"] = await _free_name(conn, thread["name"], thread["id"])
    if thread.get("parent_id") and not await _exists(conn, "threads", "id", thread["parent_id"]):
        thread["parent_id"] = None  # the parent thread is not here (deleted, or elsewhere)
    tid = thread["id"]
    head = thread.pop("head_checkpoint_id")
    cols = [c for c in _THREAD_COLS if c != "head_checkpoint_id"]
    await conn.execute(
        f"INSERT INTO threads ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [thread[c] for c in cols],
    )
    for digest, blob in data.get("blobs", {}).items():
        raw = blob["data"].encode()
        await conn.execute(
            "INSERT OR IGNORE INTO blobs (hash, kind, size, data, created_at)"
            " VALUES (?,?,?,?,?)", (digest, blob["kind"], len(raw), raw, thread["created_at"]),
        )
    ids: dict[str, dict[int, int]] = {t: {} for t in _TABLES}
    for table in ("messages", "summaries", "checkpoints", "events", "usage"):
        table_cols = _TABLES[table]
        # In id order: a parent is always written before its children, so with new ids
        # the order (and the store's "parents have smaller ids") is kept.
        rows = sorted(data.get(table, []), key=lambda r: r["id"])
        remap = await _ids_taken(conn, table, [r["id"] for r in rows])
        for r in rows:
            values = dict(r)
            for col, target in REFS.get(table, {}).items():
                if values.get(col) is not None:
                    values[col] = ids[target][values[col]]
            old_id = values.pop("id")
            ins_cols = [c for c in table_cols if c != "id"]
            for c, default in _ADDED_COLS.get(table, {}).items():
                values.setdefault(c, default)  # an export from before the column
            params = [json.dumps(values[c], ensure_ascii=False, separators=(",", ":"))
                      if c in _JSON_COLS else values[c] for c in ins_cols]
            if not remap:
                ins_cols = ["id", *ins_cols]
                params = [old_id, *params]
            cur = await conn.execute(
                f"INSERT INTO {table} (thread_id, {', '.join(ins_cols)})"
                f" VALUES (?, {', '.join('?' * len(ins_cols))})",
                [tid, *params],
            )
            ids[table][old_id] = int(cur.lastrowid or 0) if remap else old_id
    if head is not None:
        head = ids["checkpoints"][head]
    await conn.execute("UPDATE threads SET head_checkpoint_id = ? WHERE id = ?", (head, tid))
    return tid, ids


async def _exists(conn: Any, table: str, col: str, value: Any) -> bool:
    cur = await conn.execute(f"SELECT 1 FROM {table} WHERE {col} = ? LIMIT 1", (value,))
    return await cur.fetchone() is not None


async def _free_id(conn: Any, wanted: str) -> str:
    """``wanted`` if no thread has it, else a new id as leon makes them."""
    tid = wanted
    while await _exists(conn, "threads", "id", tid):
        tid = secrets.token_hex(5)
    return tid


async def _free_name(conn: Any, wanted: str, tid: str) -> str:
    """``wanted`` if no thread has that name, else ``wanted-restored-xxxx`` (free)."""
    name, n = wanted, 0
    while await _exists(conn, "threads", "name", name):
        n += 1
        name = f"{wanted}-restored-{tid[:4]}" + (f"-{n}" if n > 1 else "")
    return name


async def _ids_taken(conn: Any, table: str, ids: list[int]) -> bool:
    """Whether any of the export's row ids for ``table`` is used by another row now."""
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        cur = await conn.execute(
            f"SELECT 1 FROM {table} WHERE id IN ({','.join('?' * len(chunk))}) LIMIT 1", chunk
        )
        if await cur.fetchone():
            return True
    return False


def _block_markdown(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return block.get("text", "")
    if kind == "tool_use":
        args = json.dumps(block.get("input", {}), ensure_ascii=False, indent=2)
        return f"**tool call** `{block.get('name')}`\n\n```json\n{args}\n```"
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            content = "\n".join(c.get("text", "") for c in content if isinstance(c, dict))
        label = "tool error" if block.get("is_error") else "tool result"
        return f"**{label}**\n\n```\n{content}\n```"
    return f"*({kind} block)*"


def export_markdown(title: str, messages: list[Message], summary_text: str | None = None) -> str:
    """The active branch as a readable markdown document."""
    parts = [f"# {title}\n"]
    if summary_text:
        parts.append("> **Summary of earlier conversation**\n>\n> "
                     + summary_text.replace("\n", "\n> ") + "\n")
    for m in messages:
        who = "You" if m.role == "user" else "Claude"
        if m.role == "assistant" and m.model:
            who = f"Claude ({m.model})"
        if m.role == "user" and all(b.get("type") == "tool_result" for b in m.content):
            who = "Tools"
        mark = " *(interrupted)*" if m.status == "interrupted" else ""
        if m.unsent:
            mark = " *(not sent: the call failed before a reply; not part of the conversation)*"
        if not mark and m.stop_mark:  # cut off at the output limit, declined, ...
            mark = f" *({m.stop_mark})*"
        body = "\n\n".join(_block_markdown(b) for b in m.content)
        parts.append(f"## {who}{mark}\n\n{body}\n")
    return "\n".join(parts)
