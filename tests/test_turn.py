"""The turn loop through the real SDK against the local Messages API server: messages
stored before the call, tools run and answered, interruptions kept, every request valid."""

from __future__ import annotations

import asyncio

import pytest
from fakeapi import drop_after, error, text, tool_use

from leon.agent import events as ev
from leon.agent.tools import ToolRegistry, read_only_tools
from leon.agent.turn import Agent, TurnError
from leon.config import Settings
from leon.llm.anthropic_provider import AnthropicProvider
from leon.memory.view import validate

MODEL = "claude-sonnet-4-6"


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("alpha\nbeta\ngamma\n")
    return ws


async def make_agent(stores, fake_api, workspace, *, kind="scoped"):
    provider = AnthropicProvider(api_key=fake_api.api_key, base_url=fake_api.base_url,
                                 base_delay=0.01, max_delay=0.05)
    thread = await stores.leon.create_thread(kind)
    agent = Agent(store=stores.leon, provider=provider, tools=ToolRegistry(read_only_tools()),
                  settings=Settings(), thread=thread, workspace=workspace, model=MODEL)
    seen: list[ev.AgentEvent] = []
    agent.subscribe(seen.append)
    await agent.load()
    return agent, seen


async def stored(stores, agent):
    return [(m.role, m.status, m.content) for m in await stores.leon.branch(agent.thread.id)]


async def test_text_reply_streams_and_is_stored_with_usage(stores, fake_api, workspace):
    fake_api.script(text("Hello there, friend.", chunks=4))
    agent, seen = await make_agent(stores, fake_api, workspace)
    result = await agent.send("hi")
    assert result.text == "Hello there, friend."
    deltas = [e.text for e in seen if isinstance(e, ev.TextStreamed)]
    assert len(deltas) == 4 and "".join(deltas) == result.text
    rows = await stored(stores, agent)
    assert [(r, s) for r, s, _ in rows] == [("user", "complete"), ("assistant", "complete")]
    usage = await stores.leon.usage(agent.thread.id)
    assert usage[0].input_tokens + usage[0].cache_creation_tokens + usage[0].cache_read_tokens > 0
    assert usage[0].output_tokens > 0
    assert (await stores.leon.get_thread(agent.thread.id)).title == "hi"


async def test_user_message_is_stored_even_when_the_api_refuses(stores, fake_api, workspace):
    fake_api.script(error(401, message="invalid x-api-key"))
    agent, seen = await make_agent(stores, fake_api, workspace)
    with pytest.raises(TurnError, match="401"):
        await agent.send("are you there?")
    rows = await stored(stores, agent)
    assert rows == [("user", "complete", [{"type": "text", "text": "are you there?"}])]
    assert any(isinstance(e, ev.TurnFailed) for e in seen)
    # the next turn still sends a valid request (two user turns are merged in the view)
    fake_api.script(text("yes"))
    assert (await agent.send("hello?")).text == "yes"
    last = fake_api.message_requests()[-1]["body"]["messages"]
    assert validate(last) == [] and len(last) == 1


async def test_tool_round_trip_runs_the_tool_and_sends_the_result(stores, fake_api, workspace):
    fake_api.script(tool_use("read_file", {"path": "notes.txt"}, text_before="Looking."),
                    text("The file lists alpha, beta and gamma."))
    agent, seen = await make_agent(stores, fake_api, workspace)
    result = await agent.send("what is in notes.txt?")
    assert result.rounds == 2
    roles = [(r, c[0]["type"]) for r, _, c in await stored(stores, agent)]
    assert roles == [("user", "text"), ("assistant", "text"), ("user", "tool_result"),
                     ("assistant", "text")]
    second = fake_api.message_requests()[1]["body"]["messages"]
    result_block = second[2]["content"][0]
    assert result_block["type"] == "tool_result"
    assert "beta" in str(result_block["content"])
    kinds = [c.kind for c in await stores.leon.checkpoints(agent.thread.id)]
    assert kinds == ["user", "reply", "tool", "reply"]
    finished = [e for e in seen if isinstance(e, ev.ToolCallFinished)]
    assert finished[0].name == "read_file" and not finished[0].is_error


async def test_tool_errors_go_back_to_the_model_as_error_results(stores, fake_api, workspace):
    fake_api.script(tool_use("read_file", {"path": "../../etc/passwd"}), text("Understood."))
    agent, _ = await make_agent(stores, fake_api, workspace)
    await agent.send("read the password file")
    block = fake_api.message_requests()[1]["body"]["messages"][2]["content"][0]
    assert block["is_error"] is True and "outside the workspace" in str(block["content"])


async def test_stream_cut_mid_reply_keeps_partial_marked_and_next_turn_is_valid(
        stores, fake_api, workspace):
    fake_api.script(drop_after(5, text("one two three four five six seven", chunks=7)))
    agent, seen = await make_agent(stores, fake_api, workspace)
    with pytest.raises(TurnError, match="cut off"):
        await agent.send("count")
    rows = await stored(stores, agent)
    assert rows[-1][0:2] == ("assistant", "interrupted")
    assert rows[-1][2][0]["text"].startswith("one")
    assert any(isinstance(e, ev.ReplyInterrupted) for e in seen)
    fake_api.script(text("continuing"))
    await agent.send("go on")
    assert validate(fake_api.message_requests()[-1]["body"]["messages"]) == []


async def test_cancel_mid_stream_keeps_partial(stores, fake_api, workspace):
    fake_api.script(text("slow words arrive one by one until cancelled", chunks=8, delay=0.2))
    agent, seen = await make_agent(stores, fake_api, workspace)
    task = asyncio.create_task(agent.send("talk slowly"))
    for _ in range(200):
        if any(isinstance(e, ev.TextStreamed) for e in seen):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await stored(stores, agent)
    assert rows[-1][0:2] == ("assistant", "interrupted")
    assert rows[-1][2][0]["text"].startswith("slow")


async def test_rate_limit_is_retried_and_reported(stores, fake_api, workspace):
    fake_api.script(error(429, retry_after="0"), text("after the wait"))
    agent, seen = await make_agent(stores, fake_api, workspace)
    assert (await agent.send("hi")).text == "after the wait"
    retries = [e for e in seen if isinstance(e, ev.Retried)]
    assert len(retries) == 1 and retries[0].status == 429
    assert [e.kind for e in await stores.leon.events(agent.thread.id)] == ["retry"]
    assert (await stores.leon.usage(agent.thread.id))[0].retries == 1


async def test_rollback_then_new_turn_sends_the_rolled_back_branch(stores, fake_api, workspace):
    fake_api.script(text("A1"), text("A2"), text("B2"))
    agent, _ = await make_agent(stores, fake_api, workspace)
    await agent.send("Q1")
    ck_after_a1 = (await stores.leon.head(agent.thread.id)).id
    await agent.send("Q2")
    await agent.rollback(ck_after_a1)
    await agent.send("Q2 again")
    sent = fake_api.message_requests()[-1]["body"]["messages"]
    texts = [b["text"] for m in sent for b in m["content"]]
    assert texts == ["Q1", "A1", "Q2 again"]
    assert await agent.rollforward() is False  # the new branch is the newest


async def test_system_prompt_and_tools_are_stored_once_by_hash(stores, fake_api, workspace):
    fake_api.script(text("a"), text("b"))
    a1, _ = await make_agent(stores, fake_api, workspace)
    a2, _ = await make_agent(stores, fake_api, workspace)
    await a1.send("x")
    await a2.send("y")
    rows = await stores.leon.db.fetchall("SELECT kind, count(*) AS n FROM blobs GROUP BY kind")
    assert {r["kind"]: r["n"] for r in rows} == {"system_prompt": 1, "tools": 1}
    t1 = await stores.leon.get_thread(a1.thread.id)
    t2 = await stores.leon.get_thread(a2.thread.id)
    assert t1.system_hash == t2.system_hash and t1.tools_hash == t2.tools_hash
