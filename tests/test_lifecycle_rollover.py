"""Daily rollover of the general thread: the day boundary, the handoff (four sections,
bounded), the new day's request view starting from it, scoped threads and 'off'."""

from __future__ import annotations

import datetime as dt

from lifecycle_helpers import settings

from leon.agent.tools import ToolRegistry, read_only_tools
from leon.agent.turn import Agent
from leon.lifecycle.handoff import MAX_CHARS, SECTIONS, shape
from leon.lifecycle.rollover import current_day, ensure_handoff, general_thread
from leon.llm.base import ProviderError
from leon.llm.demo import DemoProvider
from leon.runtime import ProviderChoice, make_agent, resolve_thread

DAY1 = dt.datetime(2026, 3, 9, 15, 0)
DAY2 = dt.datetime(2026, 3, 10, 9, 30)

CONVERSATION = [
    ("user", "I want to migrate the ledger service to Postgres. Should we keep the old "
             "sqlite exporter around for a while?"),
    ("assistant", "We decided to use Postgres 16 with the schema in db/ledger.sql. The "
                  "exporter stays until the March audit. Next step: write the migration."),
    ("user", "Careful: the test suite fails when TZ is not UTC, that bit us twice."),
    ("assistant", "Noted. The error was in tests/test_dates.py; the fix is to set TZ=UTC "
                  "in conftest. TODO: port ledger_export.py to the new schema."),
]


async def _day_one(stores, s, n=1):
    old = await general_thread(stores, s, now=DAY1)
    for _ in range(n):
        for role, text in CONVERSATION:
            await stores.leon.append_message(old.id, role, [{"type": "text", "text": text}])
    return old


def test_the_day_starts_at_the_boundary_hour():
    night = dt.datetime(2026, 3, 10, 2, 0)
    assert current_day(settings(), night) == "2026-03-09"          # default boundary: 4 a.m.
    assert current_day(settings(lifecycle__day_boundary_hour=0), night) == "2026-03-10"
    assert current_day(settings(), DAY2) == "2026-03-10"


async def test_a_new_day_starts_from_a_handoff_of_the_previous_one(stores, tmp_path):
    s = settings()
    old = await _day_one(stores, s)
    assert (await general_thread(stores, s, now=DAY1)).id == old.id  # same day: same thread
    new = await general_thread(stores, s, now=DAY2)
    assert new.id != old.id and new.day == "2026-03-10"
    data = await ensure_handoff(stores, s, DemoProvider(), "demo", new, now=DAY2)
    assert data["from_thread"] == old.id and data["messages"] == 4
    summaries = await stores.leon.summaries(new.id)
    assert len(summaries) == 1
    text = summaries[0].text
    positions = [text.index(f"## {name}") for name in SECTIONS]
    assert positions == sorted(positions) and len(text) <= MAX_CHARS
    assert "db/ledger.sql" in text and "Postgres" in text
    assert "sqlite exporter" in text.split("## Open questions")[1]   # the user's question
    assert (await stores.leon.get_thread(old.id)).status == "completed"
    assert [e.kind for e in await stores.leon.events(new.id)] == ["rollover"]
    # opening it again does not write another
    again = await stores.leon.get_thread(new.id)
    assert await ensure_handoff(stores, s, DemoProvider(), "demo", again, now=DAY2) is None
    # the agent's request starts from the handoff, not from yesterday's messages
    agent = Agent(store=stores.leon, provider=DemoProvider(), tools=ToolRegistry(read_only_tools()),
                  settings=s, thread=again, workspace=tmp_path, model="demo")
    sent = []
    stream = agent.provider.stream
    agent.provider.stream = lambda request: (sent.append(request), stream(request))[1]
    await agent.load()
    assert agent.summary_text == text and agent.branch == []
    await agent.send("good morning")
    first = str(sent[0].messages[0]["content"])
    assert "Handoff" in first and "db/ledger.sql" in first
    # the handoff, then today's message: none of yesterday's four turns is resent
    blocks = [b for m in sent[0].messages for b in m["content"]]
    assert len(blocks) == 2 and blocks[-1]["text"] == "good morning"
    assert blocks[0]["text"].count("Handoff") >= 1


async def test_the_handoff_is_bounded(stores):
    s = settings()
    await _day_one(stores, s, n=60)
    new = await general_thread(stores, s, now=DAY2)
    await ensure_handoff(stores, s, DemoProvider(), "demo", new, now=DAY2)
    (summary,) = await stores.leon.summaries(new.id)
    assert len(summary.text) <= MAX_CHARS


def test_shape_folds_synonyms_and_fills_every_section():
    text = shape("Intro line\n## Goal\n- ship it\n## Errors and fixes\n- TZ must be UTC\n"
                 "## Files and identifiers\n- db/ledger.sql\n", fallback_questions=["Why?"])
    assert text.index("## Open threads") < text.index("- ship it")
    assert "- TZ must be UTC" in text.split("## Traps to avoid")[1]
    assert "## Decisions\n- none recorded" in text
    assert "- Why?" in text and "db/ledger.sql" in text
    assert len(shape("x " * 10_000)) <= MAX_CHARS


async def test_scoped_threads_never_roll_over(stores):
    s = settings()
    await _day_one(stores, s)
    scoped = await stores.leon.create_thread("scoped", name="proj")
    assert await ensure_handoff(stores, s, DemoProvider(), "demo", scoped, now=DAY2) is None
    assert not await stores.leon.summaries(scoped.id)


async def test_rollover_off_keeps_one_general_thread(stores):
    s = settings(lifecycle__general_rollover="off")
    old = await _day_one(stores, s)
    same = await general_thread(stores, s, now=DAY2 + dt.timedelta(days=30))
    assert same.id == old.id
    assert await ensure_handoff(stores, s, DemoProvider(), "demo", same, now=DAY2) is None


async def test_a_failed_handoff_is_an_event_and_is_retried(stores):
    class Down(DemoProvider):
        async def stream(self, request):
            raise ProviderError("connection refused")
            yield  # pragma: no cover

    s = settings()
    await _day_one(stores, s)
    new = await general_thread(stores, s, now=DAY2)
    assert await ensure_handoff(stores, s, Down(), "demo", new, now=DAY2) is None
    (error,) = await stores.leon.events(new.id, kinds=["error"])
    assert "rollover" in error.data["message"]
    assert await ensure_handoff(stores, s, DemoProvider(), "demo", new, now=DAY2) is not None


async def test_leon_with_no_thread_rolls_over_through_make_agent(stores, leon_paths, tmp_path):
    s = settings()
    old = await stores.leon.create_thread("general", day="2020-01-01", title="General 2020-01-01")
    for role, text in CONVERSATION:
        await stores.leon.append_message(old.id, role, [{"type": "text", "text": text}])
    thread = await resolve_thread(stores, settings=s, model="demo")
    assert thread.kind == "general" and thread.day == current_day(s)
    choice = ProviderChoice(DemoProvider(), "demo", None)
    agent = await make_agent(stores, leon_paths, s, choice, thread, tmp_path)
    try:
        assert agent.summary_text and "db/ledger.sql" in agent.summary_text
    finally:
        await agent.close()
