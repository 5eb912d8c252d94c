"""chat.db: the human-facing layer — entities, chats, members with read markers, messages."""

from __future__ import annotations

from leon.store.db import BaseStore
from leon.store.schema import CHAT_MIGRATIONS


class ChatStore(BaseStore):
    NAME = "chat"
    MIGRATIONS = CHAT_MIGRATIONS

    async def count_messages(self) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM chat_messages")
        return int(row[0]) if row else 0
