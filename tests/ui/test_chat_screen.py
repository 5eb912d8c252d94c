"""The chat screen driven with Pilot: send, stream, interrupt, tool blocks, permission
prompts, the gauge following settings, slash commands, prompt recall, failed sends,
copying, start-up errors, themes and keys. Demo model, no delays, no sleeps."""

from __future__ import annotations

import asyncio

from pilot_helpers import long_thread, running, send, settle, use_echo, wait_for

from leon.agent import events as ev
from leon.agent.permissions import Decision, PermissionRequest
from leon.llm.base import ProviderError
from leon.ui.messages import AgentReported
from leon.ui.widgets.message import AssistantMessage, Notice, UserMessage
from leon.ui.widgets.tool_block import ToolBlock


def _plain(renderable) -> str:
    """A widget's content as plain text (rich tables included)."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


class FailingProvider:
    """A provider whose every call fails, as an overloaded API would."""

    name = "failing"
    is_demo = False

    async def stream(self, request):
        raise ProviderError("the API is overloaded (529); try again in a moment", status=529)
        yield  # pragma: no cover - makes this an async generator


# -- start-up ------------------------------------------------------------------------------
async def test_demo_badge_and_header(make_app):
    app = make_app(model=None)  # no API key in env: the demo model, said plainly
    async with running(app) as pilot:
        chat = app.chat
        assert chat.header.demo
        assert "DEMO" in chat.header.plain
        assert chat.header.title.startswith("General ")
        banner = chat.query_one("#demo-notice")
        assert banner.display
        assert "no ANTHROPIC_API_KEY" in str(banner.content)
        assert chat.prompt.has_focus
        await settle(pilot)
        assert chat.gauge.gauge is not None  # drawn before anything was sent


async def test_corrupt_database_shows_error_screen_and_quits(make_app, leon_paths):
    from leon.ui.screens.error import StartupErrorScreen

    leon_paths.home.mkdir(parents=True)
    leon_paths.leon_db.write_bytes(b"this is not a sqlite database, just text" * 100)
    app = make_app()
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, StartupErrorScreen),
                           what="the error screen")
            message = str(app.screen.query_one("#startup-error-message").content)
            assert "leon.db" in message
            assert "Traceback" not in message
            await pilot.press("q")
        assert app.return_code == 1
    finally:
        await app.close()


# -- sending and streaming -----------------------------------------------------------------
async def test_send_streams_reply_into_markdown(make_app):
    seen: list[type] = []

    def hook(message):
        if isinstance(message, AgentReported):
            seen.append(type(message.event))

    app = make_app()
    async with running(app, message_hook=hook) as pilot:
        await send(pilot, "hello")
        chat = app.chat
        assert seen.count(ev.TextStreamed) > 10  # fragments, not one block
        assert ev.TurnFinished in seen
        users = chat.transcript.query(UserMessage)
        assert [u.text for u in users] == ["hello"]
        reply = chat.transcript.last_reply()
        assert reply is not None and not reply.streaming
        stored = chat.agent.branch[-1]
        assert stored.role == "assistant" and reply.text == stored.text
        assert reply.message_id == stored.id
        assert "offline demo model" in reply.text
        assert chat.gauge.gauge.history > 0
        assert chat.header.title == chat.agent.thread.display_title
        assert chat.prompt.text == ""


async def test_newline_key_and_multiline_send(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        prompt = app.chat.prompt
        prompt.focus()
        await pilot.press("l", "i", "n", "e", "ctrl+j", "t", "w", "o")
        assert prompt.text == "line\ntwo"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.chat.turn_running)
        await settle(pilot)
        assert [u.text for u in app.chat.transcript.query(UserMessage)] == ["line\ntwo"]


async def test_escape_stops_streaming_reply_and_keeps_partial(make_app):
    app = make_app(demo_delay=0.05)
    async with running(app) as pilot:
        chat = app.chat
        chat.prompt.load_text("hello")
        await pilot.press("enter")
        await wait_for(pilot, lambda: chat._reply is not None and len(chat._reply.text) > 5,
                       what="the reply to start streaming")
        assert chat.check_action("stop", ()) is True
        # the gauge counts the reply while it streams
        await wait_for(pilot, lambda: chat.gauge.streaming_tokens > 0, what="a live gauge")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not chat.turn_running, what="the turn to stop")
        await settle(pilot)
        reply = chat.transcript.last_reply()
        assert reply is not None and reply.has_class("-interrupted")
        assert reply.query(".interrupted-note")
        stored = chat.agent.branch[-1]
        assert stored.status == "interrupted"
        assert stored.text and stored.text in reply.text
        assert "reply stopped" in " ".join(chat.transcript.notices)
        assert chat.check_action("stop", ()) is False


async def test_tool_block_appears_with_result_and_expands(make_app):
    app = make_app()
    async with running(app) as pilot:
        await send(pilot, "read README.md")
        blocks = list(app.chat.transcript.query(ToolBlock))
        assert len(blocks) == 1
        block = blocks[0]
        assert block.tool_name == "read_file" and block.status == "ok"
        assert "demo project" in block.output
        assert block.output_size and block.output_size > 0
        body = block.query_one(".tool-body")
        assert not body.display
        await pilot.click(block.query_one(".tool-header"))
        assert block.expanded and body.display
        block.focus()
        await pilot.press("enter")
        assert not block.expanded


async def test_spilled_output_gets_badge_and_event(make_app, workspace):
    (workspace / "big.txt").write_text("".join(f"line {i} of a long file\n"
                                               for i in range(2000)))
    app = make_app()
    async with running(app) as pilot:
        await send(pilot, "read big.txt")
        block = app.chat.transcript.query_one(ToolBlock)
        assert block.spill_path and block.spill_path.endswith(".txt")
        assert "spilled" in block.badges
        assert any("spilled read_file output" in line for line in app.chat.feed.lines)
        assert any("spilled" in n for n in app.chat.transcript.notices)


# -- permission prompts ----------------------------------------------------------------------
async def test_permission_modal_answers(make_app):
    from leon.ui.modals.permission import PermissionScreen

    app = make_app()
    async with running(app) as pilot:
        request = PermissionRequest(thread_id="t1", tool="bash", input={"command": "rm -rf build"},
                                    title="Run `rm -rf build`", detail="rm -rf build")
        for key, decision in (("a", Decision.ALLOW_ONCE), ("A", Decision.ALLOW_ALWAYS),
                              ("d", Decision.DENY), ("escape", Decision.DENY)):
            task = asyncio.create_task(app.ask_permission(request))
            await wait_for(pilot, lambda: isinstance(app.screen, PermissionScreen),
                           what="the permission prompt")
            text = str(app.screen.query_one("#permission-title").content)
            assert "rm -rf build" in text
            await pilot.press(key)
            await wait_for(pilot, task.done)
            assert task.result() == decision, key
            assert app.screen is app.chat


async def test_write_tool_asks_and_allow_writes_file(make_app, workspace):
    from leon.ui.modals.permission import PermissionScreen

    app = make_app()
    async with running(app) as pilot:
        chat = app.chat
        chat.prompt.load_text("write notes.txt with hello from the test")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PermissionScreen),
                       what="the permission prompt")
        assert "notes.txt" in app.screen.request.title + app.screen.request.detail
        await pilot.press("a")
        await wait_for(pilot, lambda: not chat.turn_running)
        await settle(pilot)
        assert (workspace / "notes.txt").read_text().startswith("hello from the test")
        block = chat.transcript.query_one(ToolBlock)
        assert block.tool_name == "write_file" and block.status == "ok"


async def test_write_tool_denied_leaves_no_file(make_app, workspace):
    from leon.ui.modals.permission import PermissionScreen

    app = make_app()
    async with running(app) as pilot:
        chat = app.chat
        chat.prompt.load_text("write notes.txt with nope")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PermissionScreen),
                       what="the permission prompt")
        await pilot.press("d")
        await wait_for(pilot, lambda: not chat.turn_running)
        await settle(pilot)
        assert not (workspace / "notes.txt").exists()
        block = chat.transcript.query_one(ToolBlock)
        assert block.status == "error"


# -- the gauge follows settings at once -------------------------------------------------------
async def test_settings_change_moves_gauge(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        await send(pilot, "hello")
        gauge = app.chat.gauge
        before = gauge.gauge
        app.settings.set("memory.compaction.reserve_tokens", 40000)
        await settle(pilot)
        assert gauge.gauge.reserve == 40000
        assert gauge.gauge.threshold < before.threshold
        app.settings.set("system_prompt", "Always answer in haiku. " * 40)
        await settle(pilot)
        assert gauge.gauge.system > before.system + 100
        assert gauge.gauge.total > before.total


async def test_bad_setting_from_ui_is_shown_not_raised(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        assert app.set_setting("max_tokens", "lots") is False
        await settle(pilot)
        assert any("max_tokens" in n.message for n in app._notifications)


# -- slash commands ----------------------------------------------------------------------------
async def test_help_from_key_and_slash_lists_every_binding(make_app):
    from leon.ui.bindings import TABLE
    from leon.ui.screens.help import HelpScreen, all_keys

    app = make_app()
    async with running(app) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        shown = " ".join(_plain(s.content) for s in app.screen.query("Static"))
        for key in all_keys():
            assert key.id in shown, key.id
        assert len(all_keys()) >= len(TABLE)
        assert "/rollback" in shown
        await pilot.press("escape")
        assert app.screen is app.chat
        await send(pilot, "/help")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await send(pilot, "/frobnicate")
        assert any("unknown command /frobnicate" in n.message for n in app._notifications)
        assert not app.chat.transcript.query(UserMessage)  # nothing was sent to the model


async def test_slash_new_and_model_and_theme(make_app, leon_paths):
    app = use_echo(make_app())
    async with running(app) as pilot:
        chat = app.chat
        first = chat.agent.thread.id
        await send(pilot, "hello")
        await send(pilot, "/new side quest")
        await wait_for(pilot, lambda: chat.agent is not None and chat.agent.thread.id != first)
        await settle(pilot)
        assert chat.header.title == "side quest"
        assert not chat.transcript.query(UserMessage)
        await send(pilot, "/theme leon-light")
        assert app.theme == "leon-light"
        assert 'theme = "leon-light"' in leon_paths.config.read_text()
        await send(pilot, "/model")
        assert any("model: echo" in n.message for n in app._notifications)
        await send(pilot, "/model demo")  # saved like any setting; the agent switches now
        await wait_for(pilot, lambda: chat.header.demo, what="the demo model")
        assert chat.agent.model == "demo" and chat.header.model == "demo"
        assert 'model = "demo"' in leon_paths.config.read_text()


async def test_slash_rollback_to_checkpoint(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        chat = app.chat
        await send(pilot, "hello")
        first_user = chat.agent.branch[0]
        checkpoints = await chat.agent.store.checkpoints(chat.agent.thread.id)
        target = next(c for c in checkpoints if c.message_id == first_user.id)
        await send(pilot, "second message")
        assert len(chat.transcript.query(UserMessage)) == 2
        await send(pilot, f"/rollback {target.id}")
        await settle(pilot)
        assert [u.text for u in chat.transcript.query(UserMessage)] == ["hello"]
        assert not chat.transcript.query(AssistantMessage)


async def test_panes_open_from_slash_commands(make_app):
    """The contract with the panes: each slash command pushes its screen (built with the
    store, the agent or the settings), and Escape comes back to the chat."""
    app = use_echo(make_app())
    async with running(app) as pilot:
        await send(pilot, "hello")
        for command, screen_name in (("/threads", "ThreadBrowserScreen"),
                                     ("/rollback", "TimelineScreen"),
                                     ("/spill", "SpillScreen"),
                                     ("/settings", "SettingsScreen")):
            app.chat.prompt.load_text(command)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen is not app.chat or any(
                "not in this build" in n.message for n in app._notifications),
                what=command)
            if app.screen is app.chat:  # that pane is not in this build: a notice said so
                continue
            assert type(app.screen).__name__ == screen_name
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.chat, what="the chat again")
        await settle(pilot)


async def test_compact_slash_command_shows_summary_block(make_app):
    from leon.llm.demo import DemoProvider
    from leon.ui.widgets.message import SummaryBlock

    app = use_echo(make_app())
    async with running(app) as pilot:
        app.settings.set("memory.compaction.keep_recent_tokens", 10)
        for i in range(2):
            await send(pilot, f"message number {i} about the file src/app_{i}.py: "
                              + "the parser there needs a rewrite before the release. " * 30)
        app.chat.agent.provider = DemoProvider()  # the demo model writes real summaries
        assert app.chat.gauge.compact_frees  # the gauge says what /compact would replace
        await send(pilot, "/compact")
        await settle(pilot)
        feed = " ".join(app.chat.feed.lines)
        assert "compacted" in feed, feed
        summary = app.chat.transcript.query_one(SummaryBlock)
        assert "src/app_0.py" in summary.text
        assert app.chat.gauge.gauge.summary > 0
        summary.focus()
        await pilot.press("enter")
        assert summary.expanded


# -- the prompt ----------------------------------------------------------------------------
async def test_up_recalls_earlier_prompts(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        await send(pilot, "first")
        await send(pilot, "second")
        prompt = app.chat.prompt
        prompt.focus()
        await pilot.press("d", "r", "a", "f", "t")
        await pilot.press("up")
        assert prompt.text == "second"
        await pilot.press("up")
        assert prompt.text == "first"
        await pilot.press("down")
        assert prompt.text == "second"
        await pilot.press("down")
        assert prompt.text == "draft"


async def test_history_survives_reopening_the_thread(make_app):
    app = use_echo(make_app(thread="recall"))
    async with running(app) as pilot:
        await send(pilot, "remember me")
    app2 = use_echo(make_app(thread="recall"))
    async with running(app2) as pilot:
        assert [u.text for u in app2.chat.transcript.query(UserMessage)] == ["remember me"]
        app2.chat.prompt.focus()
        await pilot.press("up")
        assert app2.chat.prompt.text == "remember me"


async def test_failed_send_keeps_text_and_retry_does_not_duplicate(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        chat = app.chat
        demo = chat.agent.provider
        chat.agent.provider = FailingProvider()
        await send(pilot, "please answer this")
        assert chat.prompt.text == "please answer this"
        notices = " ".join(chat.transcript.notices)
        assert "overloaded" in notices and "back in the prompt" in notices
        assert "Traceback" not in notices
        chat.agent.provider = demo
        await pilot.press("enter")
        await wait_for(pilot, lambda: not chat.turn_running)
        await settle(pilot)
        users = [m for m in chat.agent.branch if m.role == "user"]
        assert [m.text for m in users] == ["please answer this"]  # stored once, answered
        assert not users[0].unsent
        assert chat.agent.branch[-1].role == "assistant"
        assert chat.prompt.text == ""
        blocks = list(chat.transcript.query(UserMessage))
        assert [b.text for b in blocks] == ["please answer this"] and not blocks[0].unsent


class RecordingProvider:
    """Fails the first ``fail`` calls like an overloaded API, then answers as the demo
    model does; keeps every request it was sent."""

    name = "recording"
    is_demo = False

    def __init__(self, demo, fail: int):
        self.demo, self.fail, self.requests = demo, fail, []

    async def stream(self, request):
        self.requests.append(request)
        if len(self.requests) <= self.fail:
            raise ProviderError("the API is overloaded (529); try again in a moment",
                                status=529)
        async for event in self.demo.stream(request):
            yield event


async def test_an_edited_failed_message_replaces_it_and_is_sent_alone(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        chat = app.chat
        provider = RecordingProvider(chat.agent.provider, fail=1)
        chat.agent.provider = provider
        await send(pilot, "first wording")
        block = chat.transcript.query(UserMessage).last()
        assert block.unsent and "not sent" in " ".join(chat.transcript.notices)
        assert chat.prompt.text == "first wording"
        chat.prompt.clear()  # the user deletes the restored text and types something else
        await send(pilot, "second wording")
        texts = [b["text"] for m in provider.requests[-1].messages if m["role"] == "user"
                 for b in m["content"] if b.get("type") == "text"]
        assert texts == ["second wording"]
        assert [b.text for b in chat.transcript.query(UserMessage)] == ["second wording"]
        assert [m.text for m in chat.agent.branch if m.role == "user"] == ["second wording"]
        # Kept, not deleted: the replaced message is on a side branch of the timeline.
        everything = await chat.agent.store.db.fetchall(
            "SELECT unsent FROM messages WHERE thread_id = ? AND role = 'user' ORDER BY id",
            (chat.agent.thread.id,))
        assert [r["unsent"] for r in everything] == [1, 0]


class SilentProvider:
    """An API that accepted the request and has not answered yet."""

    name = "silent"
    is_demo = False

    def __init__(self):
        self.asked = asyncio.Event()

    async def stream(self, request):
        self.asked.set()
        await asyncio.Event().wait()
        yield  # pragma: no cover - makes this an async generator


async def test_a_stopped_send_before_any_reply_is_not_sent_either(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        chat = app.chat
        chat.agent.provider = provider = SilentProvider()
        chat.prompt.load_text("never mind")
        await pilot.press("enter")
        await wait_for(pilot, provider.asked.is_set, what="the call")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not chat.turn_running, what="the stop")
        await settle(pilot)
        assert chat.agent.unsent is not None and chat.agent.unsent.text == "never mind"
        assert chat.prompt.text == "never mind"
        assert chat.transcript.query(UserMessage).last().unsent


# -- copy, help, themes, keys ----------------------------------------------------------------
async def test_copy_focused_message_and_last_reply(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        await send(pilot, "hello")
        user = app.chat.transcript.query_one(UserMessage)
        user.focus()
        await pilot.press("c")
        assert app.clipboard == "hello"
        await pilot.press("f8")
        assert app.clipboard == app.chat.transcript.last_reply().text
        assert any("copied" in n.message for n in app._notifications)


def test_every_binding_has_id_description_and_group():
    from leon.ui.screens.help import all_keys

    ids = [k.id for k in all_keys()]
    assert len(ids) == len(set(ids))
    for key in all_keys():
        assert key.id and key.description and key.group


async def test_keymap_setting_remaps_a_key(make_app, leon_paths):
    from leon.config import load_settings
    from leon.ui.screens.help import HelpScreen

    leon_paths.home.mkdir(parents=True, exist_ok=True)
    leon_paths.config.write_text('[ui]\nkeymap = ["app.help=f10"]\n')
    app = use_echo(make_app(settings=load_settings(leon_paths.config)))
    async with running(app) as pilot:
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_theme_files_load_and_bad_one_is_skipped(make_app, leon_paths):
    themes = leon_paths.themes
    themes.mkdir(parents=True)
    (themes / "mine.toml").write_text('name = "mine"\ndark = false\nprimary = "#336699"\n')
    (themes / "broken.toml").write_text('primary = "not-a-colour"\n')
    (themes / "garbage.toml").write_text("this is = = not toml")
    app = make_app()
    async with running(app) as pilot:
        assert {"leon-dark", "leon-light", "leon-midnight", "mine"} <= set(app.available_themes)
        messages = " ".join(n.message for n in app._notifications)
        assert "broken.toml" in messages and "garbage.toml" in messages
        assert app.theme == "leon-dark"
        app.theme = "mine"
        await settle(pilot)
        assert 'theme = "mine"' in leon_paths.config.read_text()


async def test_unknown_theme_in_config_falls_back_with_notice(make_app, leon_paths):
    from leon.config import load_settings

    leon_paths.home.mkdir(parents=True, exist_ok=True)
    leon_paths.config.write_text('[ui]\ntheme = "no-such-theme"\n')
    app = make_app(settings=load_settings(leon_paths.config))
    async with running(app):
        assert app.theme == "leon-dark"
        assert any("no-such-theme" in n.message for n in app._notifications)


# -- long threads -----------------------------------------------------------------------------
async def test_long_thread_opens_with_its_tail_and_pages_older_in(make_app, stores):
    from leon.ui.widgets.transcript import FIRST, PAGE

    await long_thread(stores, "long", 60)
    app = use_echo(make_app(thread="long"))
    async with running(app) as pilot:
        transcript = app.chat.transcript
        # the tail first, then one page above it (not the 120 messages)
        assert transcript.first == 120 - FIRST - PAGE
        assert len(transcript.children) == FIRST + PAGE
        assert transcript.query(UserMessage).last().text == "question 59"
        assert not transcript.is_scrolled_up  # still showing the newest message
        first = transcript.first
        await transcript.load_older()
        await settle(pilot)
        assert transcript.first == first - PAGE
        # scrolling to the top asks for the next page by itself
        transcript.scroll_home(animate=False)
        await wait_for(pilot, lambda: transcript.first < first - PAGE, what="paging")
        assert len(transcript.children) <= 120 - transcript.first


async def test_notices_are_placed_where_events_happened(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        await send(pilot, "hello")
        await app.chat.agent.store.add_event(app.chat.agent.thread.id, "prune", {
            "results": 4, "tokens_saved": 18240})
        await send(pilot, "again")
        await app.chat.reload()
        await settle(pilot)
        children = list(app.chat.transcript.children)
        texts = [getattr(c, "plain", None) for c in children]
        assert "pruned 4 tool results, −18,240 tokens" in texts
        index = texts.index("pruned 4 tool results, −18,240 tokens")
        assert isinstance(children[index - 1], AssistantMessage)  # after the first reply
        assert isinstance(children[index + 1], UserMessage)        # before "again"
        assert isinstance(children[index], Notice)


async def test_internal_error_is_one_line_and_logged(make_app, monkeypatch, capsys, leon_paths):
    """A bug in a handler: the terminal gets one line, the traceback goes to leon.log."""
    import pytest

    from leon.ui.app import LeonApp

    monkeypatch.setattr(LeonApp, "is_headless", property(lambda self: False))
    app = use_echo(make_app())
    with pytest.raises(ZeroDivisionError):
        async with running(app) as pilot:
            app.call_later(lambda: 1 / 0)
            await pilot.pause()
            await pilot.pause()
    err = capsys.readouterr().err
    assert "internal error" in err and "leon.log" in err
    assert "Traceback" not in err
    assert "ZeroDivisionError" in (leon_paths.home / "leon.log").read_text()
