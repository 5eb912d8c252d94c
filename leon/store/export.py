"""Export a thread (markdown of the active branch, or JSON of the whole tree) and import
a JSON export back exactly: same ids when they are free, same branches, checkpoints,
summaries and head pointer."""

from __future__ import annotations

import json
from typing import Any

from leon.store.leon_store import LeonStore, NotFound
from leon.store.models import Message

EXPORT_FORMAT = "leon-thread/1"

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


async def import_json(store: LeonStore, data: dict[str, Any]) -> str:
    """Restore an export. Every id that is still free is kept (the thread's id, and each
    table's row ids), so an export → delete → import round trip gives back the very same
    rows; where ids are taken, that table's rows get new ids with the same structure.
    Returns the thread id."""
    if data.get("format") != EXPORT_FORMAT:
        raise ValueError(f"not a leon thread export (format {data.get('format')!r})")
    thread = dict(data["thread"])
    remap = {table: await _ids_taken(store, table, data) for table in _TABLES}
    ids: dict[str, dict[int, int]] = {t: {} for t in _TABLES}
    async with store.db.transaction() as conn:
        cur = await conn.execute("SELECT 1 FROM threads WHERE id = ?", (thread["id"],))
        if await cur.fetchone():
            import secrets

            thread["id"] = secrets.token_hex(5)
        if thread.get("name"):
            cur = await conn.execute("SELECT 1 FROM threads WHERE name = ?", (thread["name"],))
            if await cur.fetchone():
                thread["name"] = f"{thread['name']}-restored-{thread['id'][:4]}"
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
        ref = {  # columns that point at rows of another table
            "messages": {"parent_id": "messages"},
            "summaries": {"upto_message_id": "messages", "previous_id": "summaries"},
            "checkpoints": {"parent_id": "checkpoints", "message_id": "messages",
                            "summary_id": "summaries"},
        }
        for table in ("messages", "summaries", "checkpoints", "events", "usage"):
            cols = _TABLES[table]
            for r in data.get(table, []):
                values = dict(r)
                for col, target in ref.get(table, {}).items():
                    if values.get(col) is not None:
                        values[col] = ids[target].get(values[col], values[col])
                old_id = values.pop("id")
                ins_cols = [c for c in cols if c != "id"]
                for c, default in _ADDED_COLS.get(table, {}).items():
                    values.setdefault(c, default)  # an export from before the column
                params = [json.dumps(values[c], ensure_ascii=False, separators=(",", ":"))
                          if c in _JSON_COLS else values.get(c) for c in ins_cols]
                if not remap[table]:
                    ins_cols = ["id", *ins_cols]
                    params = [old_id, *params]
                cur = await conn.execute(
                    f"INSERT INTO {table} (thread_id, {', '.join(ins_cols)})"
                    f" VALUES (?, {', '.join('?' * len(ins_cols))})",
                    [tid, *params],
                )
                ids[table][old_id] = int(cur.lastrowid or 0) if remap[table] else old_id
        if head is not None:
            head = ids["checkpoints"].get(head, head)
        await conn.execute("UPDATE threads SET head_checkpoint_id = ? WHERE id = ?", (head, tid))
    return tid


async def _ids_taken(store: LeonStore, table: str, data: dict[str, Any]) -> bool:
    """Whether any of the export's row ids for ``table`` is used by another row now."""
    ids = [r["id"] for r in data.get(table, [])]
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        taken = await store.db.fetchone(
            f"SELECT 1 FROM {table} WHERE id IN ({','.join('?' * len(chunk))}) LIMIT 1", chunk
        )
        if taken:
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
