"""Sub-agents end to end through the local API: their own thread and context, a tool
subset, depth and count limits, profiles, the outcome in chat.db, and their file changes
rolled back with the parent."""

from __future__ import annotations

import pytest
from fakeapi import error, text, tool_use
from toolrig import make_agent, result_text, results_of, tool_calls

from leon.agent.profiles import load_profiles
from leon.agent.subagent import SUBAGENT_NOTE
from leon.config import Settings
from leon.store.chat_store import USER
from leon.store.tool_state import ToolState


@pytest.fixture
def ws(tmp_path):
    w = tmp_path / "ws"
    w.mkdir()
    (w / "notes.txt").write_text("alpha\n")
    return w


def tool_names(request) -> list[str]:
    return [t["name"] for t in request["body"].get("tools", [])]


async def test_task_runs_a_subagent_to_completion(stores, leon_paths, ws, fake_api):
    fake_api.script(
        tool_use("task", {"description": "Write the report", "prompt": "Write report.txt "
                          "saying done, then say what you did."}),          # parent
        tool_use("write_file", {"path": "report.txt", "content": "done\n"}),  # child
        text("Wrote report.txt containing 'done'."),                           # child, final
        text("The sub-agent wrote the report."),                               # parent, final
    )
    parent = await make_agent(stores, leon_paths, ws, fake_api=fake_api)
    result = await parent.send("delegate the report")
    assert result.text == "The sub-agent wrote the report."
    assert (ws / "report.txt").read_text() == "done\n"

    requests = fake_api.message_requests()
    child_first = requests[1]["body"]
    assert [(m["role"], [b["text"] for b in m["content"]]) for m in child_first["messages"]] \
        == [("user", ["Write report.txt saying done, then say what you did."])]
    system = child_first["system"]
    system_text = system if isinstance(system, str) else "".join(b["text"] for b in system)
    assert SUBAGENT_NOTE.split(".")[0] in system_text
    assert "task" in tool_names(requests[0]) and "task" in tool_names(requests[1])
    block = results_of(requests[3])[0]
    assert not block.get("is_error") and result_text(block) == "Wrote report.txt containing " \
                                                                "'done'."

    [child] = [t for t in await stores.leon.list_threads(kind="subagent")]
    assert child.parent_id == parent.thread.id and child.status == "completed"
    assert child.title == "Write the report" and child.agent == "default"
    assert [m.role for m in await stores.leon.branch(child.id)] == [
        "user", "assistant", "user", "assistant"]

    # the outcome is in chat.db, from the sub-agent's entity, unread for the user
    unread = await stores.chat.unread()
    outcome = [m for m in unread if m.sender_id == "subagent:default"]
    assert [m.text for m in outcome] == ["Wrote report.txt containing 'done'."]
    assert outcome[0].mentions == [USER] and outcome[0].thread_id == child.id

    # the child's change is in the parent's history: rolling the parent back removes it
    ops = await ToolState(stores.leon).file_ops(parent.thread.id)
    assert [(o.kind, o.before_hash) for o in ops] == [("subagent", None)]
    first = (await stores.leon.checkpoints(parent.thread.id))[0].id
    plan = await parent.rollback(first, files=True)
    assert [f.action for f in plan.changes] == ["deleted"]
    assert not (ws / "report.txt").exists()
    await parent.close()


async def test_depth_limit_removes_task_and_refuses(stores, leon_paths, ws, fake_api):
    fake_api.script(
        tool_use("task", {"description": "d", "prompt": "look around"}),
        text("nothing to see"),
        text("done"),
    )
    settings = Settings({"agents.max_depth": 1})
    parent = await make_agent(stores, leon_paths, ws, fake_api=fake_api, settings=settings)
    await parent.send("go")
    requests = fake_api.message_requests()
    assert "task" in tool_names(requests[0])
    assert "task" not in tool_names(requests[1])  # the child may not nest further
    assert {"read_file", "bash", "edit_file"} <= set(tool_names(requests[1]))
    parent.session.depth = 1  # an agent already at the limit
    from leon.agent.tools.base import ToolError

    with pytest.raises(ToolError, match="nest 1 deep"):
        await parent.session.run_subagent("x", "y", "default")
    await parent.close()


async def test_count_limit_per_turn(stores, leon_paths, ws, fake_api):
    fake_api.script(
        tool_calls(("task", {"description": "one", "prompt": "first"}),
                   ("task", {"description": "two", "prompt": "second"})),
        text("first done"),
        text("both asked"),
    )
    settings = Settings({"agents.max_per_turn": 1})
    parent = await make_agent(stores, leon_paths, ws, fake_api=fake_api, settings=settings)
    await parent.send("do two things")
    first, second = results_of(fake_api.message_requests()[2])
    assert result_text(first) == "first done"
    assert second["is_error"] and "agents.max_per_turn" in result_text(second)
    await parent.close()


async def test_profiles_choose_tools_prompt_and_model(stores, leon_paths, ws, fake_api):
    leon_paths.agents.mkdir(parents=True)
    (leon_paths.agents / "reviewer.toml").write_text(
        'description = "reviews code"\nmodel = "claude-haiku-4-5"\n'
        'system_prompt = "Be a strict reviewer."\ntools = ["read_file", "grep"]\n')
    (leon_paths.agents / "broken.toml").write_text('tools = "all"\n')
    profiles, problems = load_profiles(leon_paths.agents)
    assert set(profiles) == {"default", "reviewer"}
    assert len(problems) == 1 and "broken.toml" in problems[0]
    fake_api.script(
        tool_use("task", {"description": "review", "prompt": "review notes.txt",
                          "agent": "reviewer"}),
        text("Looks fine."),
        text("Reviewed."),
    )
    from leon.runtime import default_tools

    parent = await make_agent(stores, leon_paths, ws, fake_api=fake_api, profiles=profiles,
                              tools=default_tools(profiles))
    await parent.send("get a review")
    parent_req, child_req = fake_api.message_requests()[:2]
    task = next(t for t in parent_req["body"]["tools"] if t["name"] == "task")
    assert "'reviewer': reviews code" in task["description"]
    assert tool_names(child_req) == ["read_file", "grep"]
    assert child_req["body"]["model"] == "claude-haiku-4-5"
    system = child_req["body"]["system"]
    system_text = system if isinstance(system, str) else "".join(b["text"] for b in system)
    assert system_text.rstrip().endswith("Be a strict reviewer.")
    [child] = await stores.leon.list_threads(kind="subagent")
    assert child.agent == "reviewer"
    unknown = await parent.session.call_tool(parent.tools, "task", {
        "description": "x", "prompt": "y", "agent": "nobody"}, parent.tool_context())
    assert unknown.is_error and "available: default, reviewer" in unknown.content
    await parent.close()


async def test_a_failing_subagent_is_an_error_result_and_is_completed(stores, leon_paths, ws,
                                                                     fake_api):
    fake_api.script(
        tool_use("task", {"description": "fails", "prompt": "try"}),
        error(400, message="prompt is too long"),
        text("The sub-agent failed; I'll do it myself."),
    )
    parent = await make_agent(stores, leon_paths, ws, fake_api=fake_api)
    assert (await parent.send("go")).text == "The sub-agent failed; I'll do it myself."
    block = results_of(fake_api.message_requests()[-1])[0]
    assert block["is_error"] and "prompt is too long" in result_text(block)
    [child] = await stores.leon.list_threads(kind="subagent")
    assert child.status == "completed"
    texts = [m.text for m in await stores.chat.unread() if m.sender_id == "subagent:default"]
    assert texts and texts[0].startswith("failed:")
    await parent.close()
