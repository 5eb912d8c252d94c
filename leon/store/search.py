"""Thread search for the browser and the command palette: SQLite FTS5 over thread titles and
names (``thread_fts``) and the text of user and assistant messages (``message_fts``, which
leaves tool calls and tool results out). The tables and the triggers that keep them in
step with ``threads`` and ``messages`` are a migration in :mod:`leon.store.schema`.

Results are threads, newest first, one page at a time, like
:meth:`leon.store.leon_store.LeonStore.list_threads`.
"""

from __future__ import annotations

import re
from typing import Any

from leon.store.db import Database
from leon.store.models import THREAD_KINDS, THREAD_STATUSES, Thread

# Words as the unicode61 tokenizer sees them: letters and digits; everything else separates.
_WORD = re.compile(r"\w+", re.UNICODE)
# A one-letter prefix (``a*``) matches a large part of the vocabulary and makes the first
# keystroke the slowest query of all; below this length a word must match whole.
MIN_PREFIX = 2


def fts_query(text: str) -> str | None:
    """The FTS5 query for what a user typed: every word must occur (AND), and the last one
    may be the start of a word (search as you type). None when nothing searchable was typed.

    Words are quoted, so FTS5 syntax (``OR``, ``NEAR``, ``-``, ``:``) in the input is taken
    literally and can never make the query fail.
    """
    words = _WORD.findall(text)
    if not words:
        return None
    parts = [f'"{w}"' for w in words]
    if len(words[-1]) >= MIN_PREFIX and not text[-1:].isspace():
        parts[-1] += "*"
    return " ".join(parts)


def _thread(row: Any) -> Thread:
    return Thread(**{k: row[k] for k in row.keys()})


async def search_threads(
    db: Database,
    query: str = "",
    kind: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Thread]:
    """One page of threads whose title, name or message text matches ``query``, filtered by
    ``kind`` and ``status``, newest first. An empty query lists every thread."""
    if kind is not None and kind not in THREAD_KINDS:
        raise ValueError(f"thread kind must be one of {', '.join(THREAD_KINDS)}")
    if status is not None and status not in THREAD_STATUSES:
        raise ValueError(f"status must be one of {', '.join(THREAD_STATUSES)}")
    # Threads being deleted (leon/lifecycle/deletion.py) are hidden until they are gone.
    where: list[str] = ["t.id NOT IN (SELECT thread_id FROM deletions)"]
    params: list[Any] = []
    match = fts_query(query)
    if match is not None:
        # A common word matches tens of thousands of messages; the covering index
        # messages_id_thread maps each to its thread without reading the message rows.
        where.append(
            "t.id IN (SELECT thread_id FROM thread_fts WHERE thread_fts MATCH ?"
            " UNION SELECT m.thread_id FROM message_fts f"
            " JOIN messages m INDEXED BY messages_id_thread ON m.id = f.rowid"
            " WHERE message_fts MATCH ?)"
        )
        params += [match, match]
    if kind:
        where.append("t.kind = ?")
        params.append(kind)
    if status:
        where.append("t.status = ?")
        params.append(status)
    sql = "SELECT t.* FROM threads t WHERE " + " AND ".join(where)
    sql += " ORDER BY t.updated_at DESC, t.id LIMIT ? OFFSET ?"
    rows = await db.fetchall(sql, (*params, limit, offset))
    return [_thread(r) for r in rows]
