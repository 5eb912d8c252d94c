"""chat.db: the human-facing layer — entities, chats, members with read markers, messages.

Each leon thread has a chat (made on first use). The user's messages and the agents'
final replies are mirrored there; a finished sub-agent or ``leon run`` posts its outcome
as a message from its entity, so the outcome outlives its ephemeral thread. A member's
``last_read_id`` is the newest message it has seen; posting advances the sender's own
marker, so nobody is notified of what they said themselves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import aiosqlite

from leon.store.db import BaseStore
from leon.store.schema import CHAT_MIGRATIONS

USER = "user"


@dataclass
class Entity:
    id: str               # 'user', 'agent:default', 'subagent:reviewer'
    kind: str             # user | agent | subagent
    name: str
    created_at: float


@dataclass
class Chat:
    id: int
    thread_id: str | None
    title: str
    created_at: float


@dataclass
class ChatMessage:
    id: int
    chat_id: int
    sender_id: str
    text: str
    mentions: list[str] = field(default_factory=list)
    created_at: float = 0.0
    # Filled by the inbox queries, for display:
    sender_name: str = ""
    chat_title: str = ""
    thread_id: str | None = None


def _message(row: aiosqlite.Row) -> ChatMessage:
    keys = row.keys()
    return ChatMessage(
        id=row["id"], chat_id=row["chat_id"], sender_id=row["sender_id"], text=row["text"],
        mentions=json.loads(row["mentions"] or "[]"), created_at=row["created_at"],
        sender_name=row["sender_name"] if "sender_name" in keys else "",
        chat_title=row["chat_title"] if "chat_title" in keys else "",
        thread_id=row["thread_id"] if "thread_id" in keys else None,
    )


_INBOX_SELECT = """
    SELECT m.*, coalesce(e.name, m.sender_id) AS sender_name, c.title AS chat_title,
           c.thread_id AS thread_id
    FROM chat_messages m
    JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.entity_id = ?
    JOIN chats c ON c.id = m.chat_id
    LEFT JOIN entities e ON e.id = m.sender_id
    WHERE m.id > cm.last_read_id AND m.sender_id != cm.entity_id AND cm.muted = 0
"""


class ChatStore(BaseStore):
    NAME = "chat"
    MIGRATIONS = CHAT_MIGRATIONS

    async def count_messages(self) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM chat_messages")
        return int(row[0]) if row else 0

    # -- entities --------------------------------------------------------------------
    async def ensure_entity(self, entity_id: str, kind: str, name: str) -> Entity:
        now = time.time()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO entities (id, kind, name, created_at) VALUES (?,?,?,?)",
                (entity_id, kind, name, now))
        return await self.get_entity(entity_id)  # type: ignore[return-value]

    async def get_entity(self, entity_id: str) -> Entity | None:
        row = await self.db.fetchone("SELECT * FROM entities WHERE id = ?", (entity_id,))
        return Entity(**{k: row[k] for k in row.keys()}) if row else None

    async def entities(self) -> list[Entity]:
        rows = await self.db.fetchall("SELECT * FROM entities ORDER BY created_at, id")
        return [Entity(**{k: r[k] for k in r.keys()}) for r in rows]

    # -- chats ---------------------------------------------------------------------
    async def chat_for_thread(self, thread_id: str, title: str = "",
                              members: Iterable[str] = ()) -> Chat:
        """The thread's chat, made on first use; ``members`` (entity ids, which must
        exist) are added if missing. A new member has read nothing yet."""
        now = time.time()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO chats (thread_id, title, created_at) VALUES (?,?,?)",
                (thread_id, title, now))
            if title:
                await conn.execute("UPDATE chats SET title = ? WHERE thread_id = ? AND title = ''",
                                   (title, thread_id))
            cur = await conn.execute("SELECT * FROM chats WHERE thread_id = ?", (thread_id,))
            row = await cur.fetchone()
            for entity_id in members:
                await conn.execute(
                    "INSERT OR IGNORE INTO chat_members (chat_id, entity_id) VALUES (?,?)",
                    (row["id"], entity_id))
        return Chat(**{k: row[k] for k in row.keys()})

    async def get_chat(self, chat_id: int) -> Chat | None:
        row = await self.db.fetchone("SELECT * FROM chats WHERE id = ?", (chat_id,))
        return Chat(**{k: row[k] for k in row.keys()}) if row else None

    async def chats(self, limit: int = 100) -> list[Chat]:
        rows = await self.db.fetchall("SELECT * FROM chats ORDER BY id DESC LIMIT ?", (limit,))
        return [Chat(**{k: r[k] for k in r.keys()}) for r in rows]

    async def members(self, chat_id: int) -> dict[str, int]:
        """Entity id → last read message id."""
        rows = await self.db.fetchall(
            "SELECT entity_id, last_read_id FROM chat_members WHERE chat_id = ?", (chat_id,))
        return {r["entity_id"]: r["last_read_id"] for r in rows}

    # -- messages --------------------------------------------------------------------
    async def post(self, chat_id: int, sender_id: str, text: str,
                   mentions: Iterable[str] = ()) -> ChatMessage:
        """Add a message; the sender becomes a member (if not yet) and has read it."""
        now = time.time()
        mentioned = list(dict.fromkeys(mentions))
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO chat_messages (chat_id, sender_id, text, mentions, created_at)"
                " VALUES (?,?,?,?,?)", (chat_id, sender_id, text, json.dumps(mentioned), now))
            msg_id = int(cur.lastrowid or 0)
            await conn.execute(
                "INSERT INTO chat_members (chat_id, entity_id, last_read_id) VALUES (?,?,?)"
                " ON CONFLICT (chat_id, entity_id) DO UPDATE SET"
                " last_read_id = max(last_read_id, excluded.last_read_id)",
                (chat_id, sender_id, msg_id))
        return ChatMessage(msg_id, chat_id, sender_id, text, mentioned, now)

    async def messages(self, chat_id: int, *, after_id: int = 0,
                       limit: int = 200) -> list[ChatMessage]:
        rows = await self.db.fetchall(
            "SELECT m.*, coalesce(e.name, m.sender_id) AS sender_name FROM chat_messages m"
            " LEFT JOIN entities e ON e.id = m.sender_id"
            " WHERE m.chat_id = ? AND m.id > ? ORDER BY m.id LIMIT ?", (chat_id, after_id, limit))
        return [_message(r) for r in rows]

    async def unread(self, entity_id: str = USER, limit: int = 100) -> list[ChatMessage]:
        """Messages others posted in ``entity_id``'s (unmuted) chats since it last read
        them, oldest first."""
        rows = await self.db.fetchall(_INBOX_SELECT + " ORDER BY m.id LIMIT ?",
                                      (entity_id, limit))
        return [_message(r) for r in rows]

    async def unread_counts(self, entity_id: str = USER) -> dict[int, int]:
        """Chat id → number of unread messages (only chats that have some)."""
        rows = await self.db.fetchall(
            f"SELECT chat_id, count(*) AS n FROM ({_INBOX_SELECT}) GROUP BY chat_id",
            (entity_id,))
        return {r["chat_id"]: r["n"] for r in rows}

    async def mark_read(self, chat_id: int, entity_id: str = USER,
                        upto_id: int | None = None) -> None:
        """Move the member's read marker to ``upto_id`` (default: the newest message).
        Never moves it backwards."""
        if upto_id is None:
            row = await self.db.fetchone(
                "SELECT coalesce(max(id), 0) FROM chat_messages WHERE chat_id = ?", (chat_id,))
            upto_id = int(row[0]) if row else 0
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO chat_members (chat_id, entity_id, last_read_id) VALUES (?,?,?)"
                " ON CONFLICT (chat_id, entity_id) DO UPDATE SET"
                " last_read_id = max(last_read_id, excluded.last_read_id)",
                (chat_id, entity_id, upto_id))

    async def mark_messages_read(self, messages: Iterable[ChatMessage],
                                 entity_id: str = USER) -> None:
        """Mark exactly these messages (and anything older in their chats) read."""
        newest: dict[int, int] = {}
        for m in messages:
            newest[m.chat_id] = max(newest.get(m.chat_id, 0), m.id)
        for chat_id, upto in newest.items():
            await self.mark_read(chat_id, entity_id, upto)
