"""leon.db: threads, append-only messages and checkpoints, summaries, events, usage, blobs.

History is append-only. A thread's *head checkpoint* is the active pointer: rolling back
moves it to an earlier checkpoint; the next message then gets the checkpoint's head
message as its parent, which starts a branch. Nothing is deleted or overwritten, so the
abandoned branch can be rolled forward to again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from typing import Any

import aiosqlite

from leon.paths import check
from leon.store.db import BaseStore
from leon.store.models import (
    THREAD_KINDS,
    THREAD_STATUSES,
    Checkpoint,
    Event,
    Message,
    Summary,
    Thread,
    UsageRecord,
)
from leon.store.schema import LEON_MIGRATIONS


class NotFound(LookupError):
    """No thread, checkpoint or message by that name."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _thread(row: aiosqlite.Row) -> Thread:
    return Thread(**{k: row[k] for k in row.keys()})


def _message(row: aiosqlite.Row) -> Message:
    return Message(
        id=row["id"],
        thread_id=row["thread_id"],
        parent_id=row["parent_id"],
        role=row["role"],
        content=json.loads(row["content"]),
        status=row["status"],
        tokens=row["tokens"],
        pinned=bool(row["pinned"]),
        created_at=row["created_at"],
        unsent=bool(row["unsent"]),
        model=row["model"],
        stop_reason=row["stop_reason"],
    )


def _checkpoint(row: aiosqlite.Row) -> Checkpoint:
    return Checkpoint(**{k: row[k] for k in row.keys()})


def _summary(row: aiosqlite.Row) -> Summary:
    return Summary(**{k: row[k] for k in row.keys()})


MIN_ID_PREFIX = 6  # the shortest id prefix find_thread accepts

_MSG_COLS = ("id, thread_id, parent_id, role, content, status, tokens, pinned, created_at,"
             " unsent, model, stop_reason")


class LeonStore(BaseStore):
    """The async API over ``leon.db``. Open with :meth:`open`; close with :meth:`close`."""

    NAME = "leon"
    MIGRATIONS = LEON_MIGRATIONS

    # -- threads -------------------------------------------------------------------
    async def create_thread(
        self,
        kind: str = "scoped",
        *,
        title: str = "",
        name: str | None = None,
        day: str | None = None,
        parent_id: str | None = None,
        agent: str = "default",
        model: str = "",
        thread_id: str | None = None,
    ) -> Thread:
        if kind not in THREAD_KINDS:
            raise ValueError(f"thread kind must be one of {', '.join(THREAD_KINDS)}")
        now = time.time()
        # Thread ids become directory names (spill, sandbox, archive): only leon's format.
        tid = check("thread id", thread_id) if thread_id is not None else secrets.token_hex(5)
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO threads (id, title, kind, parent_id, name, day, agent, model,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (tid, title, kind, parent_id, name, day, agent, model, now, now),
            )
        return await self.get_thread(tid)

    async def get_thread(self, thread_id: str) -> Thread:
        row = await self.db.fetchone("SELECT * FROM threads WHERE id = ?", (thread_id,))
        if row is None:
            raise NotFound(f"no thread {thread_id!r}")
        return _thread(row)

    async def find_thread(self, ref: str) -> Thread:
        """A thread as users name it: its exact id, its name, its exact title (when only
        one thread has it), or an unambiguous id prefix of at least
        :data:`MIN_ID_PREFIX` characters — so a short word never lands in an unrelated
        thread whose id happens to start with it."""
        if not ref.strip():
            raise NotFound("the thread name is empty")
        row = await self.db.fetchone(
            "SELECT * FROM threads WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1",
            (ref, ref, ref),
        )
        if row is not None:
            return _thread(row)
        rows = await self.db.fetchall("SELECT * FROM threads WHERE title = ? LIMIT 6", (ref,))
        if len(rows) == 1:
            return _thread(rows[0])
        if len(rows) > 1:
            raise NotFound(f"{len(rows)} threads are titled {ref!r}; use an id: "
                           + ", ".join(r["id"] for r in rows[:5]))
        if len(ref) >= MIN_ID_PREFIX:
            rows = await self.db.fetchall(
                "SELECT * FROM threads WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                (ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
            )
            if len(rows) == 1:
                return _thread(rows[0])
            if len(rows) > 1:
                raise NotFound(f"{ref!r} matches several threads; type more of the id")
        raise NotFound(f"no thread {ref!r} (see `leon threads ls`)")

    async def thread_by_name(self, name: str) -> Thread | None:
        row = await self.db.fetchone("SELECT * FROM threads WHERE name = ?", (name,))
        return _thread(row) if row else None

    async def general_thread(self, day: str, agent: str = "default") -> Thread | None:
        row = await self.db.fetchone(
            "SELECT * FROM threads WHERE kind = 'general' AND day = ? AND agent = ?"
            " ORDER BY created_at DESC LIMIT 1",
            (day, agent),
        )
        return _thread(row) if row else None

    async def list_threads(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        kind: str | None = None,
        status: str | None = None,
        title_like: str | None = None,
    ) -> list[Thread]:
        """Newest first, one page. Reads thread rows only; threads being deleted
        (:mod:`leon.lifecycle.deletion`) are left out."""
        where, params = ["id NOT IN (SELECT thread_id FROM deletions)"], []
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if status:
            where.append("status = ?")
            params.append(status)
        if title_like:
            where.append("(title LIKE ? OR name LIKE ?)")
            params += [f"%{title_like}%"] * 2
        sql = "SELECT * FROM threads"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at DESC, id LIMIT ? OFFSET ?"
        rows = await self.db.fetchall(sql, (*params, limit, offset))
        return [_thread(r) for r in rows]

    async def search_threads(
        self,
        query: str = "",
        kind: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Thread]:
        """Newest first, one page, of the threads whose title, name or message text matches
        ``query`` (FTS5; see :mod:`leon.store.search`). An empty query lists them all."""
        from leon.store.search import search_threads

        return await search_threads(self.db, query, kind, status, limit, offset)

    async def timeline(self, thread_id: str) -> list[Any]:
        """Every checkpoint with the gist of its message
        (:class:`leon.store.browse.TimelineEntry`), oldest first."""
        from leon.store.browse import timeline_entries

        return await timeline_entries(self.db, thread_id)

    async def spill_records(self, thread_id: str) -> list[Any]:
        """The thread's spilled outputs the database knows of
        (:class:`leon.store.browse.SpillRecord`), newest first."""
        from leon.store.browse import spill_records

        return await spill_records(self.db, thread_id)

    async def latest_thread(self) -> Thread | None:
        """The thread worked on last (``-c``); a sub-agent's thread is its parent's work."""
        row = await self.db.fetchone(
            "SELECT * FROM threads WHERE kind != 'subagent'"
            " AND id NOT IN (SELECT thread_id FROM deletions)"
            " ORDER BY updated_at DESC LIMIT 1")
        return _thread(row) if row else None

    async def count_threads(self) -> dict[tuple[str, str], int]:
        rows = await self.db.fetchall(
            "SELECT kind, status, count(*) AS n FROM threads GROUP BY kind, status"
        )
        return {(r["kind"], r["status"]): r["n"] for r in rows}

    async def update_thread(self, thread_id: str, **fields: Any) -> Thread:
        """Change title, status, model, agent, name, system/tools hashes."""
        allowed = {"title", "status", "model", "agent", "name", "system_hash", "tools_hash",
                   "skills_hash"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update {', '.join(sorted(bad))}")
        if "status" in fields and fields["status"] not in THREAD_STATUSES:
            raise ValueError(f"status must be one of {', '.join(THREAD_STATUSES)}")
        if not fields:
            return await self.get_thread(thread_id)
        sets = ", ".join(f"{k} = ?" for k in fields)
        extra = ""
        if fields.get("status") == "completed":
            extra = ", completed_at = coalesce(completed_at, ?)"
        params: list[Any] = [*fields.values(), time.time()]
        if extra:
            params.append(time.time())
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE threads SET {sets}, updated_at = ?{extra} WHERE id = ?",
                (*params, thread_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no thread {thread_id!r}")
        return await self.get_thread(thread_id)

    async def delete_thread(self, thread_id: str) -> None:
        """Remove a thread and everything that belongs to it in leon.db, in one transaction."""
        async with self.db.transaction() as conn:
            cur = await conn.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
            if cur.rowcount == 0:
                raise NotFound(f"no thread {thread_id!r}")

    # -- messages and checkpoints -----------------------------------------------------
    def turn_lock(self, thread_id: str) -> Any:
        """The cross-process lock that lets one leon at a time add a turn to the thread
        (:class:`leon.store.turnlock.TurnLock`, under ``locks/`` beside leon.db)."""
        from leon.store.turnlock import TurnLock

        return TurnLock(self.path.parent / "locks", thread_id)

    async def head(self, thread_id: str) -> Checkpoint | None:
        row = await self.db.fetchone(
            "SELECT c.* FROM checkpoints c JOIN threads t ON t.head_checkpoint_id = c.id"
            " WHERE t.id = ?",
            (thread_id,),
        )
        return _checkpoint(row) if row else None

    async def append_message(
        self,
        thread_id: str,
        role: str,
        content: list[dict[str, Any]],
        *,
        kind: str | None = None,
        status: str = "complete",
        tokens: int | None = None,
        unsent: bool = False,
    ) -> tuple[Message, Checkpoint]:
        """Append a message after the thread's head and make a checkpoint at it, atomically.
        ``unsent``: a user message not yet answered (:meth:`mark_sent` clears it once a
        reply starts; if the call fails first, it stays unsent)."""
        now = time.time()
        body = _dumps(content)
        async with self.db.transaction() as conn:
            head = await self._head_row(conn, thread_id)
            parent_msg = head["message_id"] if head else None
            cur = await conn.execute(
                "INSERT INTO messages (thread_id, parent_id, role, content, status, tokens,"
                " created_at, unsent) VALUES (?,?,?,?,?,?,?,?)",
                (thread_id, parent_msg, role, body, status, tokens, now, int(unsent)),
            )
            msg_id = cur.lastrowid
            ckpt = await self._add_checkpoint(
                conn, thread_id, head, msg_id, kind or _default_kind(role, content, status), now
            )
        message = Message(msg_id, thread_id, parent_msg, role, content, status, tokens, False, now,
                          unsent=unsent)
        return message, ckpt

    async def mark_sent(self, message_id: int) -> None:
        """A reply to this user message has started: it is part of the conversation."""
        await self.db.execute("UPDATE messages SET unsent = 0 WHERE id = ? AND unsent = 1",
                              (message_id,))

    async def start_draft(self, thread_id: str, role: str = "assistant") -> int:
        """A message row that is still streaming. It is not on the branch until
        :meth:`finish_draft`; if the process dies first, :meth:`recover_drafts` keeps it."""
        async with self.db.transaction() as conn:
            head = await self._head_row(conn, thread_id)
            cur = await conn.execute(
                "INSERT INTO messages (thread_id, parent_id, role, content, status, created_at)"
                " VALUES (?,?,?,?, 'streaming', ?)",
                (thread_id, head["message_id"] if head else None, role, "[]", time.time()),
            )
            return int(cur.lastrowid or 0)

    async def update_draft(self, message_id: int, content: list[dict[str, Any]]) -> None:
        await self.db.execute(
            "UPDATE messages SET content = ? WHERE id = ? AND status = 'streaming'",
            (_dumps(content), message_id),
        )

    async def finish_draft(
        self,
        message_id: int,
        content: list[dict[str, Any]],
        *,
        status: str = "complete",
        kind: str | None = None,
        tokens: int | None = None,
        model: str | None = None,
        stop_reason: str | None = None,
    ) -> tuple[Message, Checkpoint]:
        """Seal a draft with its final content and put it on the branch with a checkpoint.
        ``model``: the model that wrote it (shown with the reply). ``stop_reason``: why the
        API ended the reply, when the user must know (cut off, declined); None for an
        ordinary end.

        The reply goes after the thread's head as it is *now*, read inside the write
        transaction, not after the head it started from: had another writer stored a
        message meanwhile, the reply would otherwise become that message's sibling and
        drop it from the active branch. A draft that is older than the head's message
        is stored as a new row (parents always have smaller ids than their children).
        A draft that is on a checkpoint already is returned as it is."""
        now = time.time()
        async with self.db.transaction() as conn:
            row = await (
                await conn.execute(f"SELECT {_MSG_COLS} FROM messages WHERE id = ?", (message_id,))
            ).fetchone()
            if row is None:
                raise NotFound(f"no message {message_id}")
            thread_id = row["thread_id"]
            if row["status"] != "streaming":
                sealed = await self._checkpoint_of(conn, thread_id, message_id)
                if sealed is not None:
                    return _message(row), sealed
            head = await self._head_row(conn, thread_id)
            parent = head["message_id"] if head else None
            model = model or row["model"]
            if parent is None or parent < message_id:
                await conn.execute(
                    "UPDATE messages SET content = ?, status = ?, tokens = ?, parent_id = ?,"
                    " model = ?, stop_reason = ? WHERE id = ?",
                    (_dumps(content), status, tokens, parent, model, stop_reason, message_id))
            else:  # overtaken by a writer that slipped past the turn lock
                await conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
                cur = await conn.execute(
                    "INSERT INTO messages (thread_id, parent_id, role, content, status, tokens,"
                    " created_at, model, stop_reason) VALUES (?,?,?,?,?,?,?,?,?)",
                    (thread_id, parent, row["role"], _dumps(content), status, tokens,
                     row["created_at"], model, stop_reason))
                message_id = int(cur.lastrowid or 0)
            ckpt = await self._add_checkpoint(
                conn, thread_id, head, message_id,
                kind or _default_kind(row["role"], content, status), now,
            )
        msg = Message(message_id, thread_id, parent, row["role"], content, status,
                      tokens, False, row["created_at"], model=model, stop_reason=stop_reason)
        return msg, ckpt

    async def _checkpoint_of(self, conn: aiosqlite.Connection, thread_id: str,
                             message_id: int) -> Checkpoint | None:
        cur = await conn.execute(
            "SELECT * FROM checkpoints WHERE thread_id = ? AND message_id = ?"
            " ORDER BY id DESC LIMIT 1", (thread_id, message_id))
        row = await cur.fetchone()
        return _checkpoint(row) if row else None

    async def drafts(self, thread_id: str) -> list[Message]:
        """Replies still marked streaming: in progress in another process, or left by one
        that died. Read-only; :meth:`recover_drafts` seals them."""
        rows = await self.db.fetchall(
            f"SELECT {_MSG_COLS} FROM messages WHERE thread_id = ? AND status = 'streaming'",
            (thread_id,),
        )
        return [_message(r) for r in rows]

    async def recover_drafts(self, thread_id: str) -> list[Message]:
        """Drafts left by a process that died mid-stream: keep what they hold, marked
        ``interrupted``, and put those that continue the head on the branch."""
        rows = await self.db.fetchall(
            f"SELECT {_MSG_COLS} FROM messages WHERE thread_id = ? AND status = 'streaming'",
            (thread_id,),
        )
        recovered: list[Message] = []
        for row in rows:
            content = json.loads(row["content"]) or [{"type": "text", "text": "(no output)"}]
            head = await self.head(thread_id)
            if head is not None and head.message_id == row["parent_id"]:
                msg, _ = await self.finish_draft(
                    row["id"], content, status="interrupted", kind="interrupted"
                )
            else:
                await self.db.execute(
                    "UPDATE messages SET status = 'interrupted', content = ? WHERE id = ?",
                    (_dumps(content), row["id"]),
                )
                msg = _message(row)
                msg.status = "interrupted"
            recovered.append(msg)
        return recovered

    async def _head_row(self, conn: aiosqlite.Connection, thread_id: str) -> aiosqlite.Row | None:
        cur = await conn.execute(
            "SELECT t.head_checkpoint_id AS id, c.message_id, c.summary_id"
            " FROM threads t LEFT JOIN checkpoints c ON c.id = t.head_checkpoint_id"
            " WHERE t.id = ?",
            (thread_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no thread {thread_id!r}")
        return row if row["id"] is not None else None

    async def _add_checkpoint(
        self,
        conn: aiosqlite.Connection,
        thread_id: str,
        head: aiosqlite.Row | None,
        message_id: int | None,
        kind: str,
        now: float,
        *,
        summary_id: int | None = None,
        keep_summary: bool = True,
    ) -> Checkpoint:
        parent = head["id"] if head else None
        if keep_summary and summary_id is None and head is not None:
            summary_id = head["summary_id"]
        cur = await conn.execute(
            "INSERT INTO checkpoints (thread_id, parent_id, message_id, summary_id, kind,"
            " created_at) VALUES (?,?,?,?,?,?)",
            (thread_id, parent, message_id, summary_id, kind, now),
        )
        ckpt_id = int(cur.lastrowid or 0)
        await conn.execute(
            "UPDATE threads SET head_checkpoint_id = ?, updated_at = ?,"
            " message_count = message_count + ? WHERE id = ?",
            (ckpt_id, now, 1 if message_id is not None and kind != "compaction" else 0, thread_id),
        )
        return Checkpoint(ckpt_id, thread_id, parent, message_id, summary_id, kind, None, now)

    async def branch(
        self, thread_id: str, *, checkpoint_id: int | None = None, after_message_id: int | None = None
    ) -> list[Message]:
        """The messages of the active branch (or of the branch ending at ``checkpoint_id``),
        oldest first; with ``after_message_id``, only those newer than it."""
        start = await self._branch_end(thread_id, checkpoint_id)
        if start is None:
            return []
        stop = after_message_id or 0
        # Parents always have smaller ids than their children, so the walk can stop as
        # soon as it passes ``stop`` and the result sorts by id.
        rows = await self.db.fetchall(
            # The parent is read with a correlated subquery (a rowid lookup) rather than a
            # join: with ANALYZE statistics SQLite 3.40 plans the join as a scan of every
            # message (0.55 s for a 50-message branch in a 500,000-message home).
            f"""WITH RECURSIVE chain(id) AS (
                    SELECT ?
                    UNION ALL
                    SELECT (SELECT parent_id FROM messages WHERE id = chain.id) AS pid
                    FROM chain WHERE pid IS NOT NULL AND pid > ?
                )
                SELECT {_MSG_COLS} FROM messages WHERE id IN (SELECT id FROM chain)
                AND id > ? ORDER BY id""",
            (start, stop, stop),
        )
        return [_message(r) for r in rows]

    async def branch_tail(self, thread_id: str, limit: int, *,
                          checkpoint_id: int | None = None) -> list[Message]:
        """The newest ``limit`` messages of the active branch (or of the branch ending at
        ``checkpoint_id``), oldest first: what a transcript or a preview shows first, read
        without walking (or decoding) the whole branch."""
        end = await self._branch_end(thread_id, checkpoint_id)
        if end is None or limit <= 0:
            return []
        rows = await self.db.fetchall(
            f"""WITH RECURSIVE chain(id, n) AS (
                    SELECT ?, 1
                    UNION ALL
                    SELECT (SELECT parent_id FROM messages WHERE id = chain.id) AS pid, n + 1
                    FROM chain WHERE pid IS NOT NULL AND n < ?
                )
                SELECT {_MSG_COLS} FROM messages WHERE id IN (SELECT id FROM chain)
                ORDER BY id""",
            (end, limit),
        )
        return [_message(r) for r in rows]

    async def branch_length(self, thread_id: str, *, checkpoint_id: int | None = None) -> int:
        """How many messages the active branch (or the one ending at ``checkpoint_id``)
        has: a walk of ids only (~6 ms for 5,000)."""
        end = await self._branch_end(thread_id, checkpoint_id)
        if end is None:
            return 0
        row = await self.db.fetchone(
            """WITH RECURSIVE chain(id) AS (
                    SELECT ?
                    UNION ALL
                    SELECT (SELECT parent_id FROM messages WHERE id = chain.id) AS pid
                    FROM chain WHERE pid IS NOT NULL
                )
                SELECT count(*) FROM chain""",
            (end,),
        )
        return int(row[0]) if row else 0

    async def _branch_end(self, thread_id: str, checkpoint_id: int | None) -> int | None:
        """The message the active branch (or the one at ``checkpoint_id``) ends with;
        None for an empty branch."""
        end = await self.head(thread_id) if checkpoint_id is None else \
            await self.get_checkpoint(thread_id, checkpoint_id)
        return None if end is None else end.message_id

    async def get_message(self, message_id: int) -> Message:
        row = await self.db.fetchone(f"SELECT {_MSG_COLS} FROM messages WHERE id = ?", (message_id,))
        if row is None:
            raise NotFound(f"no message {message_id}")
        return _message(row)

    async def set_message_tokens(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Cache token counts: ``[(message_id, tokens), ...]``."""
        pairs = list(pairs)
        if not pairs:
            return
        async with self.db.transaction() as conn:
            await conn.executemany(
                "UPDATE messages SET tokens = ? WHERE id = ?", [(t, m) for m, t in pairs]
            )

    async def set_pinned(self, message_id: int, pinned: bool) -> None:
        await self.db.execute(
            "UPDATE messages SET pinned = ? WHERE id = ?", (1 if pinned else 0, message_id)
        )

    # -- memory middleware: spills and token calibration (leon/store/memory_store.py) ------
    async def add_spill(self, thread_id: str, **fields: Any) -> Any:
        """Record a tool output saved to a spill file (:class:`memory_store.Spill`)."""
        from leon.store import memory_store

        return await memory_store.add_spill(self.db, thread_id, **fields)

    async def spills(self, thread_id: str) -> list[Any]:
        from leon.store import memory_store

        return await memory_store.spills(self.db, thread_id)

    async def link_spills(self, pairs: list[tuple[int, int]]) -> None:
        from leon.store import memory_store

        await memory_store.link_spills(self.db, pairs)

    async def calibration(self, model: str) -> list[float]:
        """Recent ratios of API-reported to estimated prompt tokens for ``model``."""
        from leon.store import memory_store

        return await memory_store.calibration(self.db, model)

    async def save_calibration(self, model: str, observations: list[float]) -> None:
        from leon.store import memory_store

        await memory_store.save_calibration(self.db, model, observations)

    async def checkpoints(self, thread_id: str) -> list[Checkpoint]:
        rows = await self.db.fetchall(
            "SELECT * FROM checkpoints WHERE thread_id = ? ORDER BY id", (thread_id,)
        )
        return [_checkpoint(r) for r in rows]

    async def get_checkpoint(self, thread_id: str, checkpoint_id: int) -> Checkpoint:
        row = await self.db.fetchone(
            "SELECT * FROM checkpoints WHERE id = ? AND thread_id = ?", (checkpoint_id, thread_id)
        )
        if row is None:
            raise NotFound(f"thread {thread_id} has no checkpoint {checkpoint_id}")
        return _checkpoint(row)

    async def label_checkpoint(self, thread_id: str, checkpoint_id: int, label: str | None) -> None:
        await self.get_checkpoint(thread_id, checkpoint_id)
        await self.db.execute(
            "UPDATE checkpoints SET label = ? WHERE id = ?", (label or None, checkpoint_id)
        )

    async def rollback(self, thread_id: str, checkpoint_id: int) -> Checkpoint:
        """Move the head pointer to any checkpoint of the thread. Deletes nothing."""
        target = await self.get_checkpoint(thread_id, checkpoint_id)
        old = await self.head(thread_id)
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE threads SET head_checkpoint_id = ?, updated_at = ? WHERE id = ?",
                (target.id, time.time(), thread_id),
            )
            await conn.execute(
                "INSERT INTO events (thread_id, kind, data, created_at) VALUES (?,?,?,?)",
                (thread_id, "rollback",
                 _dumps({"from": old.id if old else None, "to": target.id}), time.time()),
            )
        return target

    async def set_aside(self, thread_id: str, message_id: int) -> None:
        """Move the head back past the checkpoints of ``message_id`` (the unsent message
        at the end of the branch that the user replaced), so the next message takes its
        place; it stays on a side branch. Deletes nothing."""
        async with self.db.transaction() as conn:
            head = await self._head_row(conn, thread_id)
            target = head["id"] if head else None
            while target is not None:
                cur = await conn.execute(
                    "SELECT parent_id, message_id FROM checkpoints WHERE id = ?", (target,))
                row = await cur.fetchone()
                if row is None or row["message_id"] != message_id:
                    break
                target = row["parent_id"]
            await conn.execute(
                "UPDATE threads SET head_checkpoint_id = ?, updated_at = ? WHERE id = ?",
                (target, time.time(), thread_id))
            await conn.execute(
                "INSERT INTO events (thread_id, kind, data, created_at) VALUES (?,?,?,?)",
                (thread_id, "unsent_replaced",
                 _dumps({"message_id": message_id, "head": target}), time.time()))

    async def save_guard_state(self, thread_id: str, *, cache_creation: int,
                               rate_strikes: int) -> None:
        """The cache guard's figures after a call (not a change of the thread: its
        ``updated_at`` stays)."""
        await self.db.execute(
            "UPDATE threads SET guard_cache_creation = ?, guard_rate_strikes = ? WHERE id = ?",
            (cache_creation, rate_strikes, thread_id))

    async def rollforward(self, thread_id: str) -> Checkpoint | None:
        """Move the head one step towards the newest checkpoint below it (the branch most
        recently worked on). Returns None when the head has no later checkpoint."""
        head = await self.head(thread_id)
        if head is None:
            return None
        row = await self.db.fetchone(
            """WITH RECURSIVE below(id, first) AS (
                   SELECT id, id FROM checkpoints WHERE parent_id = ?
                   UNION ALL
                   SELECT c.id, below.first FROM checkpoints c JOIN below ON c.parent_id = below.id
               )
               SELECT first FROM below ORDER BY id DESC LIMIT 1""",
            (head.id,),
        )
        if row is None:
            return None
        return await self.rollback(thread_id, row["first"])

    # -- summaries -----------------------------------------------------------------
    async def add_summary(
        self,
        thread_id: str,
        *,
        upto_message_id: int,
        text: str,
        model: str,
        messages_replaced: int,
        tokens_before: int,
        tokens_after: int,
    ) -> tuple[Summary, Checkpoint]:
        """Store a compaction summary and make it active with a ``compaction`` checkpoint."""
        now = time.time()
        async with self.db.transaction() as conn:
            head = await self._head_row(conn, thread_id)
            cur = await conn.execute(
                "INSERT INTO summaries (thread_id, upto_message_id, previous_id, text, model,"
                " messages_replaced, tokens_before, tokens_after, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (thread_id, upto_message_id, head["summary_id"] if head else None, text, model,
                 messages_replaced, tokens_before, tokens_after, now),
            )
            sid = int(cur.lastrowid or 0)
            ckpt = await self._add_checkpoint(
                conn, thread_id, head, head["message_id"] if head else None, "compaction", now,
                summary_id=sid,
            )
        summary = Summary(sid, thread_id, upto_message_id, head["summary_id"] if head else None,
                          text, model, messages_replaced, tokens_before, tokens_after, now)
        return summary, ckpt

    async def get_summary(self, summary_id: int) -> Summary:
        row = await self.db.fetchone("SELECT * FROM summaries WHERE id = ?", (summary_id,))
        if row is None:
            raise NotFound(f"no summary {summary_id}")
        return _summary(row)

    async def summaries(self, thread_id: str) -> list[Summary]:
        rows = await self.db.fetchall(
            "SELECT * FROM summaries WHERE thread_id = ? ORDER BY id", (thread_id,)
        )
        return [_summary(r) for r in rows]

    # -- events and usage ---------------------------------------------------------------
    async def add_event(self, thread_id: str | None, kind: str, data: dict[str, Any]) -> Event:
        now = time.time()
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO events (thread_id, kind, data, created_at) VALUES (?,?,?,?)",
                (thread_id, kind, _dumps(data), now),
            )
        return Event(int(cur.lastrowid or 0), thread_id, kind, data, now)

    async def events(self, thread_id: str, *, kinds: Iterable[str] | None = None,
                     limit: int = 1000) -> list[Event]:
        sql = "SELECT * FROM events WHERE thread_id = ?"
        params: list[Any] = [thread_id]
        if kinds:
            kinds = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params += kinds
        rows = await self.db.fetchall(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [Event(r["id"], r["thread_id"], r["kind"], json.loads(r["data"]), r["created_at"])
                for r in reversed(rows)]

    async def add_usage(
        self, thread_id: str | None, model: str, *, input_tokens: int, output_tokens: int,
        cache_creation_tokens: int, cache_read_tokens: int, latency_ms: float, retries: int,
        estimated_tokens: int | None = None,
    ) -> UsageRecord:
        now = time.time()
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO usage (thread_id, model, input_tokens, output_tokens,"
                " cache_creation_tokens, cache_read_tokens, estimated_tokens, latency_ms,"
                " retries, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (thread_id, model, input_tokens, output_tokens, cache_creation_tokens,
                 cache_read_tokens, estimated_tokens, latency_ms, retries, now),
            )
        return UsageRecord(int(cur.lastrowid or 0), thread_id, model, input_tokens, output_tokens,
                           cache_creation_tokens, cache_read_tokens, estimated_tokens,
                           latency_ms, retries, now)

    async def usage(self, thread_id: str, limit: int = 100) -> list[UsageRecord]:
        rows = await self.db.fetchall(
            "SELECT * FROM usage WHERE thread_id = ? ORDER BY id DESC LIMIT ?", (thread_id, limit)
        )
        return [UsageRecord(**{k: r[k] for k in r.keys()}) for r in reversed(rows)]

    # -- blobs ---------------------------------------------------------------------
    async def put_blob(self, kind: str, data: bytes | str) -> str:
        """Store content once by its sha256; return the hash."""
        raw = data.encode() if isinstance(data, str) else data
        digest = hashlib.sha256(raw).hexdigest()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO blobs (hash, kind, size, data, created_at)"
                " VALUES (?,?,?,?,?)",
                (digest, kind, len(raw), raw, time.time()),
            )
        return digest

    async def get_blob(self, digest: str) -> bytes:
        row = await self.db.fetchone("SELECT data FROM blobs WHERE hash = ?", (digest,))
        if row is None:
            raise NotFound(f"no blob {digest[:12]}")
        return bytes(row["data"])


def _default_kind(role: str, content: list[dict[str, Any]], status: str) -> str:
    if status == "interrupted":
        return "interrupted"
    if role == "assistant":
        return "reply"
    if any(b.get("type") == "tool_result" for b in content):
        return "tool"
    return "user"
