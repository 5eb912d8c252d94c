"""Read-only queries behind the checkpoint timeline and the spill pane.

They return plain dataclasses, so the panes never see a row or SQL. The timeline reads
every checkpoint of a thread with a one-line gist of its message in a single query (a
thread of 5,000 steps is one round trip, not 5,000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leon.store.db import Database
from leon.store.models import Checkpoint

_TEXT = "json_extract(j.value, '$.type')"
_CONTENT = "CASE WHEN json_valid(m.content) THEN m.content ELSE '[]' END"


@dataclass
class TimelineEntry:
    """One checkpoint and what happened at it."""

    checkpoint: Checkpoint
    role: str | None            # role of its head message (None: empty thread)
    status: str | None          # complete | interrupted | streaming
    text: str                   # the start of the message's text blocks
    tools: str                  # names of the tools it called, comma separated
    results: int                # number of tool results it holds
    summary_replaced: int | None = None   # compaction: messages the summary replaces
    summary_tokens: tuple[int, int] | None = None  # compaction: tokens before, after

    @property
    def id(self) -> int:
        return self.checkpoint.id


async def timeline_entries(db: Database, thread_id: str, *, gist_chars: int = 160
                           ) -> list[TimelineEntry]:
    """Every checkpoint of the thread, oldest first, with the gist of its message."""
    rows = await db.fetchall(
        f"""SELECT c.id, c.thread_id, c.parent_id, c.message_id, c.summary_id, c.kind,
                   c.label, c.created_at, m.role, m.status,
                   (SELECT substr(group_concat(json_extract(j.value, '$.text'), ' '), 1, ?)
                      FROM json_each({_CONTENT}) AS j WHERE {_TEXT} = 'text') AS gist,
                   (SELECT group_concat(json_extract(j.value, '$.name'), ', ')
                      FROM json_each({_CONTENT}) AS j WHERE {_TEXT} = 'tool_use') AS tools,
                   (SELECT count(*)
                      FROM json_each({_CONTENT}) AS j WHERE {_TEXT} = 'tool_result') AS results,
                   s.messages_replaced, s.tokens_before, s.tokens_after
            FROM checkpoints c
            LEFT JOIN messages m ON m.id = c.message_id
            LEFT JOIN summaries s ON s.id = c.summary_id AND c.kind = 'compaction'
            WHERE c.thread_id = ? ORDER BY c.id""",
        (gist_chars, thread_id),
    )
    out = []
    for r in rows:
        ck = Checkpoint(r["id"], r["thread_id"], r["parent_id"], r["message_id"],
                        r["summary_id"], r["kind"], r["label"], r["created_at"])
        compaction = r["messages_replaced"] is not None
        out.append(TimelineEntry(
            ck, r["role"], r["status"], " ".join((r["gist"] or "").split()), r["tools"] or "",
            int(r["results"] or 0),
            summary_replaced=r["messages_replaced"] if compaction else None,
            summary_tokens=(r["tokens_before"], r["tokens_after"]) if compaction else None,
        ))
    return out


@dataclass
class SpillRecord:
    """What the database knows about one spilled output (the memory layer's ``spills``
    table, when it exists)."""

    path: str
    tool: str = ""
    size: int | None = None
    created_at: float | None = None
    note: str = ""


# Column names the spills table may use for each field, in order of preference.
_SPILL_FIELDS = {
    "path": ("path", "file_path", "file"),
    "tool": ("tool", "tool_name", "name"),
    "size": ("bytes", "size", "size_bytes", "chars"),
    "created_at": ("created_at", "created", "at"),
    "note": ("preview", "summary", "note", "command"),
}


async def spill_records(db: Database, thread_id: str) -> list[SpillRecord]:
    """The thread's rows in the ``spills`` table, newest first; [] when there is no such
    table (an older database) or it has no path column."""
    cols_rows = await db.fetchall("PRAGMA table_info(spills)")
    cols = {r["name"] for r in cols_rows}
    if not cols or "thread_id" not in cols:
        return []
    pick: dict[str, str] = {}
    for field, names in _SPILL_FIELDS.items():
        for name in names:
            if name in cols:
                pick[field] = name
                break
    if "path" not in pick:
        return []
    order = "id DESC" if "id" in cols else "rowid DESC"
    rows = await db.fetchall(f"SELECT * FROM spills WHERE thread_id = ? ORDER BY {order}",
                             (thread_id,))
    out = []
    for r in rows:
        values: dict[str, Any] = {f: r[c] for f, c in pick.items()}
        values["path"] = str(values["path"])
        if values.get("note") is not None:
            values["note"] = " ".join(str(values["note"]).split())[:120]
        out.append(SpillRecord(**{k: v for k, v in values.items() if v is not None}))
    return out
