"""The TUI when another leon is answering on the same thread: a notice and a status line
say it waits (and for whom), the message goes once the other is done, and Esc stops the
wait with the message back in the prompt and nothing stored."""

from __future__ import annotations

import asyncio
import os

from pilot_helpers import running, settle, use_echo


async def _until(pilot, predicate, what, rounds=3000):
    """Let the app run until ``predicate()``; the lock is polled on a timer, so pause a
    little between rounds (a generous deadline, no fixed waits)."""
    for _ in range(rounds):
        if predicate():
            return
        await pilot.pause()
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _waiting(chat) -> bool:
    return any("waiting for the other leon" in n for n in chat.transcript.notices)


async def test_a_message_waits_for_the_other_leon_then_goes(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        chat = app.chat
        tid = chat.agent.thread.id
        other = app.stores.leon.turn_lock(tid)  # another leon, as far as the lock can tell
        assert other.try_acquire()
        try:
            # what the other leon says meanwhile
            await app.stores.leon.append_message(tid, "user", [{"type": "text",
                                                                "text": "theirs"}])
            await app.stores.leon.append_message(tid, "assistant", [{"type": "text",
                                                                     "text": "their answer"}])
            chat.prompt.focus()
            chat.prompt.load_text("after you")
            await pilot.press("enter")
            await _until(pilot, lambda: _waiting(chat), "the waiting notice")
            notice = next(n for n in chat.transcript.notices if "waiting for the other" in n)
            assert f"(pid {os.getpid()})" in notice and "up to 10 min" in notice
            assert "Esc stops waiting" in str(chat.query_one("#turn-status").content)
            assert "after you" not in [m.text for m in await app.stores.leon.branch(tid)]
        finally:
            other.release()
        await _until(pilot, lambda: not chat.turn_running, "the turn to end")
        await settle(pilot)
        texts = [m.text for m in await app.stores.leon.branch(tid)]
        assert texts[-4:-1] == ["theirs", "their answer", "after you"]
        assert texts[-1].startswith("echo: after you")
        # the request carried the other leon's turn, and the transcript shows it in order
        assert [m.text for m in chat.agent.branch] == texts
        shown = [m.text for m in chat.transcript.messages]
        assert shown[-4:-1] == ["theirs", "their answer", "after you"]


async def test_escape_stops_waiting_and_gives_the_message_back(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        chat = app.chat
        tid = chat.agent.thread.id
        other = app.stores.leon.turn_lock(tid)
        assert other.try_acquire()
        try:
            chat.prompt.focus()
            chat.prompt.load_text("never mind")
            await pilot.press("enter")
            await _until(pilot, lambda: _waiting(chat), "the waiting notice")
            await pilot.press("escape")
            await _until(pilot, lambda: not chat.turn_running, "the wait to stop")
            await settle(pilot)
            assert chat.prompt.text == "never mind"
            assert any("stopped waiting; your message was not sent" in n
                       for n in chat.transcript.notices)
            assert "never mind" not in [m.text for m in await app.stores.leon.branch(tid)]
        finally:
            other.release()


async def test_turns_another_leon_added_while_idle_are_sent_and_shown(make_app):
    """`leon run` on the thread the TUI shows, between two of its turns: the next
    request carries those turns and the transcript shows them, in order."""
    app = use_echo(make_app())
    async with running(app) as pilot:
        chat = app.chat
        tid = chat.agent.thread.id
        store = app.stores.leon
        await store.append_message(tid, "user", [{"type": "text", "text": "from a script"}])
        await store.append_message(tid, "assistant", [{"type": "text", "text": "scripted"}])
        chat.prompt.focus()
        chat.prompt.load_text("and me")
        await pilot.press("enter")
        await _until(pilot, lambda: not chat.turn_running, "the turn to end")
        await settle(pilot)
        texts = [m.text for m in await store.branch(tid)]
        assert texts[-4:-1] == ["from a script", "scripted", "and me"]
        assert [m.text for m in chat.agent.branch] == texts
        assert [m.text for m in chat.transcript.messages][-4:-1] == texts[-4:-1]


async def test_a_wait_that_runs_out_gives_the_message_back(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        chat = app.chat
        app.settings.set("store.turn_wait", 0.5)
        tid = chat.agent.thread.id
        other = app.stores.leon.turn_lock(tid)
        assert other.try_acquire()
        try:
            chat.prompt.focus()
            chat.prompt.load_text("too late")
            await pilot.press("enter")
            await _until(pilot, lambda: not chat.turn_running, "the wait to run out")
            await settle(pilot)
            assert chat.prompt.text == "too late"
            notices = " ".join(chat.transcript.notices)
            assert f"another leon (pid {os.getpid()}) was still answering on this thread " \
                   "after 0.5 s (store.turn_wait)" in notices
            assert "back in the prompt" in notices and "Traceback" not in notices
            assert "too late" not in [m.text for m in await app.stores.leon.branch(tid)]
        finally:
            other.release()
