"""What start-up puts off until the thread is on screen: Claude's provider (the SDK import),
the lifecycle housekeeping and the gauge's counting — and that each still happens."""

from __future__ import annotations

import os
import time
from typing import Any

from fakeapi import text
from pilot_helpers import long_thread, running, send, settle, use_echo, wait_for

from leon.llm.deferred import DeferredProvider


async def test_claude_provider_is_built_after_the_thread_is_shown(make_app, fake_api):
    fake_api.script(text("Hello from the fake Claude."))
    painted: list[Any] = []
    app = make_app(model="claude-test", env={"ANTHROPIC_API_KEY": fake_api.api_key,
                                             "ANTHROPIC_BASE_URL": fake_api.base_url})

    original = app.thread_painted

    def spy() -> None:  # what the provider was when the thread had been painted
        provider = app.choice.provider
        painted.append(provider._built is not None if isinstance(provider, DeferredProvider)
                       else "not deferred")
        original()

    app.thread_painted = spy  # type: ignore[method-assign]
    async with running(app) as pilot:
        assert painted == [False]  # not even started before the thread was drawn
        provider = app.chat.agent.provider
        assert isinstance(provider, DeferredProvider)
        real = await provider.get()  # started after the paint: it is being built or built
        assert type(real).__name__ == "AnthropicProvider"
        assert not app.chat.query_one("#demo-notice").display  # Claude, not the demo
        await send(pilot, "hello there")
        replies = [m.text for m in app.chat.agent.branch if m.role == "assistant"]
        assert replies == ["Hello from the fake Claude."]
        assert fake_api.requests[-1]["body"]["messages"][-1]["content"][-1]["text"] == \
            "hello there"


async def test_a_provider_that_cannot_be_built_fails_the_turn_not_the_app(make_app):
    def broken() -> Any:
        raise RuntimeError("the SDK is not installed")

    app = make_app()
    async with running(app) as pilot:
        app.chat.agent.provider = DeferredProvider(broken)
        await send(pilot, "hello")
        notices = " ".join(app.chat.transcript.notices)
        assert "the SDK is not installed" in notices
        assert app.chat.prompt.text == "hello"  # the text is back in the prompt
        assert app.is_running


async def test_housekeeping_runs_once_the_thread_is_shown(make_app, leon_paths):
    orphan = leon_paths.spill / "no-such-thread"
    orphan.mkdir(parents=True)
    (orphan / "toolu_1.txt").write_text("left behind by a thread that is gone")
    old = time.time() - 3600  # untouched for an hour (younger entries may be in use)
    for path in (orphan / "toolu_1.txt", orphan):
        os.utime(path, (old, old))
    app = make_app()
    async with running(app) as pilot:
        await wait_for(pilot, lambda: not orphan.exists(), what="the orphan sweep")
        await settle(pilot)
        feed = " ".join(app.chat.feed.lines)
        assert "orphan" in feed
        events = await app.stores.leon.db.fetchall("SELECT kind FROM events WHERE kind = 'orphans'")
        assert len(events) == 1


async def test_the_gauge_saves_the_counts_it_made(make_app, stores):
    thread = await long_thread(stores, "counted", 30)
    app = make_app(thread="counted")
    async with running(app):
        assert app.chat.gauge.gauge is not None
    rows = await stores.leon.db.fetchall(
        "SELECT tokens FROM messages WHERE thread_id = ?", (thread.id,))
    assert len(rows) == 60 and all(r["tokens"] for r in rows)


async def test_the_first_sight_of_a_long_thread_is_kept_when_its_agent_arrives(make_app,
                                                                                stores):
    from leon.ui.widgets.message import UserMessage
    from leon.ui.widgets.transcript import FIRST, PAGE

    await long_thread(stores, "long", 60)
    app = use_echo(make_app(thread="long"))
    seen: dict[str, Any] = {}
    original = app.chat.preview

    async def spy(*args: Any, **kwargs: Any) -> None:
        await original(*args, **kwargs)  # returns once painted; the agent is not loaded
        seen["agent"] = app.chat.agent
        seen["newest"] = app.chat.transcript.query(UserMessage).last()
        seen["messages"] = len(app.chat.transcript.messages)

    app.chat.preview = spy  # type: ignore[method-assign]
    async with running(app) as pilot:
        transcript = app.chat.transcript
        assert seen["agent"] is None and seen["newest"].text == "question 59"
        assert seen["messages"] == FIRST + PAGE  # only the end of the branch was read
        # the agent's whole branch was adopted: the same widget, at its branch index
        assert transcript.query(UserMessage).last() is seen["newest"]
        assert seen["newest"].message_index == 118
        assert transcript.messages is not None and len(transcript.messages) == 120
        assert transcript.first == 120 - FIRST - PAGE
        first = transcript.first
        await transcript.load_older()
        await settle(pilot)
        assert transcript.first == first - PAGE
        assert transcript.query(UserMessage).first().text == f"question {(first - PAGE) // 2}"


async def test_a_message_sent_before_the_agent_arrives_is_sent_once(make_app, stores):
    from leon.ui.messages import PromptSubmitted
    from leon.ui.widgets.message import UserMessage

    await long_thread(stores, "early", 3)
    app = use_echo(make_app(thread="early"))
    original = app.chat.preview

    async def spy(*args: Any, **kwargs: Any) -> None:
        await original(*args, **kwargs)
        app.chat.post_message(PromptSubmitted("typed at once"))  # before AgentLoaded

    app.chat.preview = spy  # type: ignore[method-assign]
    async with running(app) as pilot:
        await settle(pilot)
        shown = [w.text for w in app.chat.transcript.query(UserMessage)]
        assert shown.count("typed at once") == 1
        stored = [m.text for m in app.chat.agent.branch]
        assert stored[-2:] == ["typed at once", "echo: typed at once "]


async def test_switching_threads_draws_the_new_end_first_and_keeps_it(make_app, stores):
    from leon.ui.widgets.message import UserMessage

    await long_thread(stores, "other", 40)
    app = use_echo(make_app())
    async with running(app) as pilot:
        home = app.chat.agent
        other = await app.stores.leon.thread_by_name("other")
        app.chat.open_thread(other.id)
        await wait_for(pilot, lambda: app.chat.agent not in (None, home), what="the switch")
        await settle(pilot)
        assert app.chat.agent.thread.id == other.id
        assert app.chat.header.title == "other"
        newest = app.chat.transcript.query(UserMessage).last()
        assert newest.text == "question 39" and newest.message_index == 78
        assert len(app.chat.transcript.messages) == 80


async def test_a_failed_switch_brings_the_open_thread_back(make_app, stores):
    await long_thread(stores, "broken", 3)
    app = use_echo(make_app())
    async with running(app) as pilot:
        home = app.chat.agent
        await send(pilot, "still here")

        async def fail(**_: Any) -> Any:
            raise RuntimeError("database is locked")

        app.build_agent = fail  # type: ignore[method-assign]
        broken = await app.stores.leon.thread_by_name("broken")
        app.chat.open_thread(broken.id)
        await settle(pilot)
        assert app.chat.agent is home
        assert app.chat.header.title == home.thread.display_title
        texts = [w.text for w in app.chat.transcript.query("UserMessage")]
        assert texts[-1] == "still here"
        assert any("database is locked" in n.message for n in app._notifications)


async def test_renaming_the_open_thread_in_the_browser_renames_the_header(make_app):
    from textual.widgets import Input

    app = use_echo(make_app(thread="notes"))
    async with running(app) as pilot:
        app.chat.action_threads()
        await settle(pilot)
        screen = app.screen
        screen.option_list.focus()
        await pilot.press("r")
        box = screen.query_one("#threads-rename", Input)
        box.value = ""
        await pilot.press(*"Release plan", "enter")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.chat.agent.thread.title == "Release plan"
        assert app.chat.header.title == "Release plan"
        assert app.sub_title == "Release plan"


async def test_a_tool_call_that_never_got_its_result_is_shown_cut_off(make_app, stores):
    from leon.ui.widgets.tool_block import ToolBlock

    thread = await stores.leon.create_thread("scoped", name="crashed", title="crashed")
    await stores.leon.append_message(thread.id, "user", [{"type": "text", "text": "run it"}])
    await stores.leon.append_message(thread.id, "assistant", [
        {"type": "text", "text": "Running the tests."},
        {"type": "tool_use", "id": "toolu_x", "name": "bash", "input": {"command": "pytest"}}])
    app = use_echo(make_app(thread="crashed"))  # leon died while pytest ran
    async with running(app):
        block = app.chat.transcript.query_one(ToolBlock)
        assert block.status == "cancelled"
        assert "running" not in str(block.render_lines(block.region.reset_offset)[0].text)
