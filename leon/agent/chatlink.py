"""Mirroring a thread into chat.db: the messages that started each turn and the final
replies, each from its entity. Mirroring is a side record: a chat.db problem is logged
as an event and never stops a turn."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from leon.store.chat_store import USER, Chat, ChatStore
from leon.store.leon_store import LeonStore
from leon.store.models import Thread


@dataclass(frozen=True)
class EntityRef:
    id: str
    kind: str
    name: str


USER_ENTITY = EntityRef(USER, "user", "you")


def agent_entity(profile: str) -> EntityRef:
    return EntityRef(f"agent:{profile}", "agent", profile)


def subagent_entity(profile: str) -> EntityRef:
    return EntityRef(f"subagent:{profile}", "subagent", f"{profile} (sub-agent)")


class ChatLink:
    """``requester`` says the messages that start turns (the user, or the agent that
    delegated); ``speaker`` posts the final replies. ``user_present``: the user watches
    the replies arrive (the TUI), so they are marked read for the user at once."""

    def __init__(self, chat: ChatStore, leon: LeonStore, *, speaker: EntityRef,
                 requester: EntityRef = USER_ENTITY, user_present: bool = False,
                 mention_user: bool = False):
        self.chat = chat
        self.leon = leon
        self.speaker = speaker
        self.requester = requester
        self.user_present = user_present
        self.mention_user = mention_user
        self._chat: Chat | None = None

    async def _ensure(self, thread: Thread) -> Chat:
        if self._chat is None:
            for e in {USER_ENTITY, self.requester, self.speaker}:
                await self.chat.ensure_entity(e.id, e.kind, e.name)
            members = dict.fromkeys([USER, self.requester.id, self.speaker.id])
            self._chat = await self.chat.chat_for_thread(thread.id, thread.display_title,
                                                         members)
        return self._chat

    async def _post(self, thread: Thread, sender: EntityRef, text: str,
                    mentions: list[str]) -> None:
        if not text.strip():
            return
        try:
            chat = await self._ensure(thread)
            await self.chat.post(chat.id, sender.id, text, mentions)
            if self.user_present:
                await self.chat.mark_read(chat.id, USER)
        except (sqlite3.Error, OSError) as exc:
            await self.leon.add_event(thread.id, "error", {"message": f"chat.db: {exc}"})

    async def request(self, thread: Thread, text: str) -> None:
        await self._post(thread, self.requester, text, [])

    async def reply(self, thread: Thread, text: str) -> None:
        await self._post(thread, self.speaker, text, [USER] if self.mention_user else [])

    async def chat_id(self, thread: Thread) -> int:
        return (await self._ensure(thread)).id
