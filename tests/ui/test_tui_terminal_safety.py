"""Attacks on the terminal through the TUI: titles, messages, tool calls and their output,
events, spilled files and notifications carrying escape sequences (and markup) are drawn
inert. The oracle is what Textual would write: every segment of every widget on the
screen, and the screenshot."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from pilot_helpers import running, send, settle, wait_for
from textual.geometry import Region

from leon.store import Stores

# Nothing a terminal would obey: C0 but newline and tab, DEL, C1.
FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HOSTILE = ("\x1b]0;pwned\x07\x1b]2;pwned2\x1b\\\x1b[2J\x1bc\x1bP1$qm\x1b\\"
           "\u009b6n\u009d0;c1\u009c\x1b[?1049h\rover\x08\x07")
# Markup a str would be read as by Textual: a link to an action, and a bare close tag.
MARKUP = "[@click=app.quit]quit[/] [/]"
TITLE = f"{HOSTILE}Evil title {MARKUP}"


def drawn(app: Any) -> str:
    """The text of every segment every widget of the active screen renders (its whole
    area, scrolled out of view or not)."""
    lines = []
    for widget in app.screen.walk_children(with_self=True):
        width, height = widget.outer_size  # padding and border included
        if not widget.display or not width or not height:
            continue
        for strip in widget.render_lines(Region(0, 0, width, min(height, 400))):
            lines.append("".join(segment.text for segment in strip))
    return "\n".join(lines)


def assert_inert(app: Any, *expected: str) -> str:
    text = drawn(app)
    bad = FORBIDDEN.search(text)
    around = text[max(0, bad.start() - 80):bad.end() + 80] if bad else ""
    assert bad is None, f"{bad.group()!r} drawn: ...{around!r}"
    screenshot = app.export_screenshot()
    assert FORBIDDEN.search(screenshot.replace("\n", "")) is None
    flat = " ".join(text.split())
    for piece in expected:  # the harmless text around the sequences is there
        assert piece in flat, f"{piece!r} not drawn in {flat}"
    return text


class ChunkyProvider:
    """A model whose reply repeats the prompt and adds escape sequences, streamed in
    3-character fragments, so the sequences arrive cut in pieces, as a real stream can
    cut them."""

    name = "chunky"
    is_demo = False

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        from leon.llm.base import Completed, ModelResponse, TextDelta, Usage

        said = "".join(b.get("text", "") for b in request.messages[-1]["content"]
                       if b.get("type") == "text")
        reply = f"you said: {said} and {HOSTILE} tail {MARKUP} (done)"
        for i in range(0, len(reply), 3):
            yield TextDelta(reply[i:i + 3])
        yield Completed(ModelResponse(
            content=[{"type": "text", "text": reply}], stop_reason="end_turn",
            usage=Usage(input_tokens=10, output_tokens=5), model="chunky"))


@contextlib.asynccontextmanager
async def running_with_toasts(app: Any) -> AsyncIterator[Any]:
    """:func:`running`, with notifications shown (``run_test`` leaves them out)."""
    try:
        async with app.run_test(size=(120, 36), notifications=True) as pilot:
            await wait_for(pilot, lambda: app.chat.agent is not None, what="the agent")
            await settle(pilot)
            yield pilot
    finally:
        await app.close()


def use_chunky(app: Any) -> Any:
    from leon.runtime import ProviderChoice

    app.choice = ProviderChoice(ChunkyProvider(), "chunky", None)
    return app


async def hostile_thread(leon_paths: Any) -> str:
    """A scoped thread "evil" whose title, messages, tool call, tool output, checkpoint
    label and events all carry escape sequences."""
    stores = await Stores.open(leon_paths)
    try:
        store = stores.leon
        thread = await store.create_thread("scoped", name="evil", title=TITLE)
        text = lambda t: [{"type": "text", "text": t}]  # noqa: E731
        await store.append_message(thread.id, "user", text(f"plain question {HOSTILE} end"))
        await store.append_message(thread.id, "assistant", [
            {"type": "text", "text": f"**Markdown** reply {HOSTILE} with `code{HOSTILE}`"},
            {"type": "tool_use", "id": "toolu_1", "name": "bash",
             "input": {"command": f"printf 'x' # {HOSTILE}"}}])
        _, checkpoint = await store.append_message(thread.id, "user", [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": f"tool said {HOSTILE} then\r\nmore lines\x1b[31m red\x1b[0m"}])
        await store.label_checkpoint(thread.id, checkpoint.id, f"label {HOSTILE}")
        await store.append_message(thread.id, "assistant", text(f"final answer {HOSTILE}"))
        await store.add_event(thread.id, "error", {"message": f"server said {HOSTILE}"})
        spill = leon_paths.spill_dir(thread.id)
        spill.mkdir(parents=True, exist_ok=True)
        (spill / "out.txt").write_text(f"spilled line {HOSTILE}\nsecond \x9b2J line\n")
        return thread.id
    finally:
        await stores.close()


async def test_stored_thread_is_drawn_inert(make_app, leon_paths):
    await hostile_thread(leon_paths)
    app = use_chunky(make_app(thread="evil"))
    async with running(app) as pilot:
        from leon.ui.widgets.tool_block import ToolBlock

        for tool in app.chat.transcript.query(ToolBlock):
            tool.action_toggle()  # expanded: the command and the output are drawn too
        await settle(pilot)
        text = assert_inert(app, "Evil title", "plain question", "end", "Markdown reply",
                            "tool said", "more lines red", "final answer", "printf")
        assert "quit" in text and "[/]" in text       # the markup is shown as text
        assert app.return_code is None and app.is_running


async def test_streamed_reply_cut_inside_sequences_is_drawn_inert(make_app):
    app = use_chunky(make_app())
    async with running(app) as pilot:
        # (the prompt cleans what is loaded into it: the sequences come from the model)
        await send(pilot, "question")
        text = assert_inert(app, "you said: question and", "tail", "(done)")
        # sequences cut between fragments are removed whole: no remnant of one is drawn
        for remnant in ("pwned", "0;c1", "[2J", "1049h", "1$qm"):
            assert remnant not in text
        # the stored reply is exactly what the model sent
        reply = app.chat.agent.branch[-1]
        assert HOSTILE in reply.text


async def test_panes_draw_hostile_text_inert(make_app, leon_paths):
    thread_id = await hostile_thread(leon_paths)
    app = use_chunky(make_app(thread="evil"))
    async with running_with_toasts(app) as pilot:
        from leon.ui.screens.spill import SpillScreen
        from leon.ui.screens.threads import ThreadBrowserScreen
        from leon.ui.screens.timeline import TimelineScreen

        app.action_threads()
        await wait_for(pilot, lambda: isinstance(app.screen, ThreadBrowserScreen)
                       and app.screen.threads, what="the thread browser")
        await settle(pilot)
        assert_inert(app, "Evil title", "[@click=app.quit]quit[/]")
        await pilot.press("a")  # archive: the notification names the title
        await wait_for(pilot, lambda: any("Archived" in n.message for n in app._notifications),
                       what="the archive notice")
        await settle(pilot)
        assert_inert(app, "Archived", "Evil title")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.chat, what="the chat")

        app.action_timeline()
        await wait_for(pilot, lambda: isinstance(app.screen, TimelineScreen)
                       and app.screen.rows, what="the timeline")
        await settle(pilot)
        assert_inert(app, "Timeline", "Evil title", "label", "final answer")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.chat, what="the chat")

        spill = SpillScreen(app.stores.leon, app.paths, thread_id)
        app.push_screen(spill)
        await wait_for(pilot, lambda: spill.is_mounted and spill.query("#spill-view")
                       and spill.view.plain, what="the spill pane")
        await settle(pilot)
        assert_inert(app, "spilled line", "second", "line", "out.txt")
        assert app.is_running


async def test_notifications_and_palette_take_no_markup_and_no_escapes(make_app, leon_paths):
    await hostile_thread(leon_paths)
    app = use_chunky(make_app(thread="evil"))
    async with running_with_toasts(app) as pilot:
        app.notify(f"note {HOSTILE} {MARKUP}", title=f"title {HOSTILE}")
        app.chat.notify(f"from a widget {MARKUP}")  # Widget.notify asks for markup
        await wait_for(pilot, lambda: "from a widget" in drawn(app), what="the toasts")
        assert_inert(app, "note", "[@click=app.quit]quit[/]", "from a widget")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CommandPalette",
                       what="the palette")
        await pilot.press(*"Evil")
        await wait_for(pilot, lambda: "Open thread" in drawn(app), what="a thread hit")
        assert_inert(app, "Open thread", "Evil title")
        assert app.is_running


async def test_permission_prompt_spells_hidden_characters_out(make_app):
    from leon.agent.permissions import PermissionRequest
    from leon.ui.modals.permission import PermissionScreen

    app = use_chunky(make_app())
    async with running(app) as pilot:
        request = PermissionRequest(thread_id="t1", tool="bash", input={},
                                    title=f"Run {HOSTILE}",
                                    detail="echo safe\x1b[2K\rrm -rf ~ \u009b2J")
        app.push_screen(PermissionScreen(request))
        await wait_for(pilot, lambda: isinstance(app.screen, PermissionScreen),
                       what="the permission prompt")
        await settle(pilot)
        text = assert_inert(app, "leon wants to", "Run")
        # what would have been hidden is visible, so the user knows what they allow
        flat = "".join(text.split())
        assert "echosafe\\x1b[2K\\rrm-rf~\\x9b2J" in flat


async def test_prompt_recall_and_paste_are_drawn_inert(make_app, leon_paths):
    from textual import events

    await hostile_thread(leon_paths)
    app = use_chunky(make_app(thread="evil"))
    async with running(app) as pilot:
        prompt = app.chat.prompt
        prompt.focus()
        await pilot.press("up")  # recalls the stored "plain question <escapes> end"
        await wait_for(pilot, lambda: "plain question" in prompt.text, what="the recall")
        assert_inert(app, "plain question", "end")
        prompt.load_text("")
        prompt.post_message(events.Paste(f"pasted {HOSTILE} text"))
        await wait_for(pilot, lambda: "pasted" in prompt.text, what="the paste")
        assert_inert(app, "pasted", "text")
        assert not FORBIDDEN.search(prompt.text)
