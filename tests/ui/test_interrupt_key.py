"""ctrl+c in the TUI: with text selected in the prompt it copies (Textual's binding), with
nothing selected it stops the reply — kept, marked interrupted — and quits with 130.
ctrl+q does the same with 0 (quitting mid-reply used to crash: the interrupted-reply
notice was mounted into a transcript already removed)."""

from __future__ import annotations

import pytest
from pilot_helpers import running, wait_for


async def test_ctrl_c_with_a_selection_copies_and_stays(make_app):
    app = make_app()
    async with running(app) as pilot:
        chat = app.chat
        chat.prompt.focus()
        chat.prompt.load_text("keep me")
        chat.prompt.select_all()
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.clipboard == "keep me"
        assert app.is_running and app.return_code is None


@pytest.mark.parametrize(("key", "status"), [("ctrl+c", 130), ("ctrl+q", 0)])
async def test_quitting_mid_reply_keeps_it_and_exits_with_status(make_app, key, status):
    app = make_app(demo_delay=0.05)
    async with running(app) as pilot:
        chat = app.chat
        chat.prompt.load_text("hello")
        await pilot.press("enter")
        await wait_for(pilot, lambda: chat._reply is not None and len(chat._reply.text) > 5,
                       what="the reply to start streaming")
        agent = chat.agent
        await pilot.press(key)
        await wait_for(pilot, lambda: not app.is_running or app.return_code is not None,
                       what="the app to quit")
    assert app.return_code == status
    stored = agent.branch[-1]
    assert stored.role == "assistant" and stored.status == "interrupted" and stored.text
