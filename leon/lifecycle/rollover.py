"""Daily rollover of the general thread.

``leon`` with no thread opens the general thread of the current *day*, where a day starts
at ``[lifecycle] day_boundary_hour``. The first time a day's general thread is opened
and an earlier general thread has content, the previous one gets a handoff summary
(:mod:`.handoff`), stored as the new thread's first summary (a ``compaction``
checkpoint over no messages): the agent's request view then starts from the handoff,
not from the old history. The old thread is marked ``completed``; a ``rollover`` event
in the new thread records where it came from. Scoped threads never roll over; with
``general_rollover = "off"`` the general thread is one thread that goes on.

The handoff is written when the agent is made (:func:`leon.runtime.make_agent`), since
it needs the provider: if that fails (no network), the day starts empty, the failure is
an ``error`` event, and the next start tries again while the new thread is still empty.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from leon.config import Settings
from leon.lifecycle.handoff import write_handoff
from leon.llm.base import ProviderError
from leon.store import Stores
from leon.store.models import Thread


def current_day(settings: Settings, now: dt.datetime | None = None) -> str:
    """The general thread's day: the date, where a day starts at ``day_boundary_hour``."""
    now = now or dt.datetime.now()
    shifted = now - dt.timedelta(hours=settings["lifecycle.day_boundary_hour"])
    return shifted.strftime("%Y-%m-%d")


def _thread(row: Any) -> Thread:
    return Thread(**{k: row[k] for k in row.keys()})


async def general_thread(stores: Stores, settings: Settings, *, model: str = "",
                         agent: str = "default", now: dt.datetime | None = None) -> Thread:
    """The general thread ``leon`` opens now (made when missing)."""
    store = stores.leon
    day = current_day(settings, now)
    if settings["lifecycle.general_rollover"] == "off":
        row = await store.db.fetchone(
            "SELECT * FROM threads WHERE kind = 'general' AND agent = ?"
            " AND id NOT IN (SELECT thread_id FROM deletions)"
            " ORDER BY created_at DESC LIMIT 1", (agent,))
        if row is not None:
            return _thread(row)
    else:
        found = await store.general_thread(day, agent)
        if found is not None:
            return found
    return await store.create_thread("general", day=day, title=f"General {day}", model=model,
                                     agent=agent)


async def previous_general(stores: Stores, thread: Thread) -> Thread | None:
    """The newest general thread of an earlier day with content (same agent profile)."""
    row = await stores.leon.db.fetchone(
        "SELECT * FROM threads WHERE kind = 'general' AND agent = ? AND day < ?"
        " AND message_count > 0 AND id NOT IN (SELECT thread_id FROM deletions)"
        " ORDER BY day DESC, created_at DESC LIMIT 1", (thread.agent, thread.day or ""))
    return _thread(row) if row else None


async def ensure_handoff(stores: Stores, settings: Settings, provider: Any, model: str,
                         thread: Thread, *,
                         now: dt.datetime | None = None) -> dict[str, Any] | None:
    """Start today's fresh general thread from a handoff of the previous one; returns the
    ``rollover`` event data, or None when there is nothing to do."""
    if thread.kind != "general" or settings["lifecycle.general_rollover"] != "daily":
        return None
    if thread.day != current_day(settings, now) or thread.head_checkpoint_id is not None:
        return None  # not today's, or it already has its handoff or messages
    prev = await previous_general(stores, thread)
    if prev is None:
        return None
    store = stores.leon
    head = await store.head(prev.id)
    summary = await store.get_summary(head.summary_id) if head and head.summary_id else None
    messages = [m for m in await store.branch(prev.id, after_message_id=summary.upto_message_id
                                              if summary else None)
                if not m.unsent]  # a message whose call failed was never part of the day

    async def on_usage(response: Any) -> None:
        u = response.usage
        await store.add_usage(thread.id, response.model, input_tokens=u.input_tokens,
                              output_tokens=u.output_tokens,
                              cache_creation_tokens=u.cache_creation_input_tokens,
                              cache_read_tokens=u.cache_read_input_tokens,
                              latency_ms=response.latency_ms, retries=response.retries)

    try:
        text = await write_handoff(provider, model, messages=messages,
                                   summary=summary.text if summary else None,
                                   title=f"{prev.display_title} ({prev.day})", on_usage=on_usage)
    except ProviderError as exc:
        await store.add_event(thread.id, "error", {
            "message": f"rollover: the handoff from {prev.id} could not be written: "
                       f"{exc.message}; this day starts empty (retried at the next start)"})
        return None
    if (await store.get_thread(thread.id)).head_checkpoint_id is not None:
        return None  # another leon wrote it meanwhile
    from leon.memory.count import count_content, count_text

    before = sum(m.tokens or count_content(m.content) for m in messages)
    after = count_text(text)
    await store.add_summary(thread.id, upto_message_id=0, text=text, model=model,
                            messages_replaced=prev.message_count, tokens_before=before,
                            tokens_after=after)
    data = {"from_thread": prev.id, "from_day": prev.day, "day": thread.day,
            "messages": prev.message_count, "tokens_before": before, "tokens_after": after,
            "chars": len(text)}
    await store.add_event(thread.id, "rollover", data)
    if prev.status == "active":
        await store.update_thread(prev.id, status="completed")
    return data
