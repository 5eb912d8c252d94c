"""chat.db: entities, chats, read markers, unread counts, the mirror of each turn, and
`leon inbox`."""

from __future__ import annotations

import pytest
from fakeapi import text
from toolrig import make_agent

from leon.store.chat_store import USER


async def test_chat_store_read_markers_and_unread(stores):
    chat = stores.chat
    await chat.ensure_entity(USER, "user", "you")
    await chat.ensure_entity("agent:default", "agent", "default")
    room = await chat.chat_for_thread("t1", "First", [USER, "agent:default"])
    assert (await chat.chat_for_thread("t1")).id == room.id  # one chat per thread
    mine = await chat.post(room.id, USER, "hello")
    reply = await chat.post(room.id, "agent:default", "hi @you", mentions=[USER, USER])
    assert reply.mentions == [USER]
    unread = await chat.unread()
    assert [m.text for m in unread] == ["hi @you"]  # your own messages are read
    assert unread[0].sender_name == "default" and unread[0].chat_title == "First"
    assert unread[0].thread_id == "t1"
    assert await chat.unread_counts() == {room.id: 1}
    await chat.mark_read(room.id, USER)
    assert await chat.unread() == []
    await chat.mark_read(room.id, USER, upto_id=mine.id)  # never moves backwards
    assert await chat.unread() == []
    assert (await chat.members(room.id))["agent:default"] == reply.id
    other = await chat.chat_for_thread("t2", "Second", [USER])
    await chat.post(other.id, "agent:default", "muted news")
    await chat.db.execute("UPDATE chat_members SET muted = 1 WHERE chat_id = ?", (other.id,))
    assert await chat.unread() == []
    assert [m.text for m in await chat.messages(other.id)] == ["muted news"]


@pytest.mark.parametrize("present", [False, True])
async def test_turns_are_mirrored_into_the_threads_chat(stores, leon_paths, tmp_path, fake_api,
                                                        present):
    fake_api.script(text("Hello from Claude."))
    agent = await make_agent(stores, leon_paths, tmp_path, fake_api=fake_api,
                             user_present=present)
    await agent.send("hi there")
    [room] = await stores.chat.chats()
    assert room.thread_id == agent.thread.id and room.title == "hi there"
    messages = await stores.chat.messages(room.id)
    assert [(m.sender_id, m.text) for m in messages] == [
        (USER, "hi there"), ("agent:default", "Hello from Claude.")]
    assert [m.text for m in await stores.chat.unread()] == ([] if present
                                                            else ["Hello from Claude."])
    await agent.close()


def test_leon_run_outcome_reaches_the_inbox(leon_paths, tmp_path, capsys, monkeypatch):
    from leon.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["inbox"]) == 0
    assert "nothing unread" in capsys.readouterr().out
    assert main(["run", "hello"]) == 0
    capsys.readouterr()
    assert main(["inbox"]) == 0
    out = capsys.readouterr().out
    assert "== hello (thread " in out and "default: Hello!" in out and "1 unread" in out
    assert main(["inbox", "--mark-read"]) == 0
    assert "marked 1 message(s) read" in capsys.readouterr().out
    assert main(["inbox"]) == 0
    assert "nothing unread" in capsys.readouterr().out
