"""The TUI shows what the API did: a reply cut off at the output limit or declined is
marked in the transcript (live, and when the thread is opened again), with a line in the
feed; a retry after a silent server says the attempt and the time left."""

from __future__ import annotations

from fakeapi import stall, text
from pilot_helpers import running, send, settle

from leon.config import Settings
from leon.ui.widgets.message import AssistantMessage

MODEL = "claude-test"


def marks(app) -> list[tuple[str, str | None]]:
    return [(w.text.strip(), w.stopped) for w in app.chat.transcript.query(AssistantMessage)]


async def test_cut_off_and_declined_replies_are_marked(make_app, fake_api):
    fake_api.script(text("The first half of", stop_reason="max_tokens"),
                    text("I can't help with that.", stop_reason="refusal"),
                    text("Sure."))
    app = make_app(model=MODEL, env={"ANTHROPIC_API_KEY": fake_api.api_key,
                                     "ANTHROPIC_BASE_URL": fake_api.base_url})
    async with running(app) as pilot:
        for prompt in ("write an essay", "something bad", "something fine"):
            await send(pilot, prompt)
        want = [("The first half of", "cut off at the output limit"),
                ("I can't help with that.", "declined"), ("Sure.", None)]
        assert marks(app) == want
        replies = list(app.chat.transcript.query(AssistantMessage))
        assert [r.has_class("-stopped") for r in replies] == [True, True, False]
        feed = " ".join(app.chat.feed.lines)
        assert "the reply was cut off at the output limit (max_tokens = 8,192)" in feed
        assert "Claude declined to answer (stop reason: refusal)" in feed
        notices = " ".join(app.chat.transcript.notices)
        assert "Claude declined to answer" in notices
        await app.chat.reload()  # from the store, as when the thread is opened again
        await settle(pilot)
        assert marks(app) == want
        assert "Claude declined to answer" in " ".join(app.chat.feed.lines)


async def test_a_retry_in_the_feed_says_the_attempt_and_the_time_left(make_app, fake_api):
    fake_api.script(stall(), text("back again"))
    settings = Settings({"api.first_event_timeout": 0.5, "api.idle_timeout": 0.5,
                         "api.total_deadline": 30.0})
    app = make_app(model=MODEL, settings=settings,
                   env={"ANTHROPIC_API_KEY": fake_api.api_key,
                        "ANTHROPIC_BASE_URL": fake_api.base_url})
    async with running(app) as pilot:
        await send(pilot, "are you there?")
        lines = [line for line in app.chat.feed.lines if "retrying" in line]
        assert len(lines) == 1
        assert lines[0].startswith("no answer from the API for 0.5 s; retrying in ")
        assert "(attempt 2, " in lines[0] and lines[0].endswith(" left)")
        assert [m for m, _ in marks(app)] == ["back again"]
