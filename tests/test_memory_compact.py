"""Compaction through the real turn loop (offline demo model): when it fires, where it
cuts, what a summary must keep, the circuit breaker, pins, rollback, and every key."""

from __future__ import annotations

import pytest
from memory_helpers import fill, make_workspace, recording_agent

from leon.agent import events as ev
from leon.memory import compact as cp
from leon.memory.view import SUMMARY_PREFIX, validate


@pytest.fixture
def ws(tmp_path):
    return make_workspace(tmp_path)


def memory_events(agent):
    seen: list[ev.MemoryEvent] = []
    agent.subscribe(lambda e: seen.append(e) if isinstance(e, ev.MemoryEvent) else None)
    return seen


# -- where to cut ------------------------------------------------------------------------
def _conv():
    """user, [assistant tool_use, user tool_result] x2, assistant, user, ..."""
    roles, contents = [], []

    def add(role, *blocks):
        roles.append(role)
        contents.append(list(blocks))

    for i in range(4):
        add("user", {"type": "text", "text": f"question {i}"})
        add("assistant", {"type": "tool_use", "id": f"a{i}", "name": "x", "input": {}})
        add("user", {"type": "tool_result", "tool_use_id": f"a{i}", "content": "r"})
        add("assistant", {"type": "text", "text": "answer"})
    return roles, contents


def test_cut_starts_the_kept_part_on_a_user_turn_and_never_splits_a_tool_call():
    roles, contents = _conv()
    for keep in range(0, 17):
        cut = cp.find_cut(roles, contents, [1] * len(roles), keep)
        assert cut is not None and cut >= 1
        assert roles[cut] == "user" and contents[cut][0]["type"] == "text"
        kept = len(roles) - cut
        assert kept >= min(keep, 12) or cut == 4  # as much as a safe cut allows


def test_keep_recent_tokens_moves_the_cut():
    roles, contents = _conv()
    assert cp.find_cut(roles, contents, [1] * 16, 3) == 12
    assert cp.find_cut(roles, contents, [1] * 16, 7) == 8


def test_a_long_tool_loop_is_cut_after_a_complete_call_and_result():
    roles = ["user"] + ["assistant", "user"] * 6
    contents = [[{"type": "text", "text": "go"}]]
    for i in range(6):
        contents += [[{"type": "tool_use", "id": f"a{i}", "name": "x", "input": {}}],
                     [{"type": "tool_result", "tool_use_id": f"a{i}", "content": "r"}]]
    cut = cp.find_cut(roles, contents, [1] * 13, 4)
    assert roles[cut] == "assistant" and roles[cut - 1] == "user"
    assert contents[cut - 1][0]["type"] == "tool_result"
    assert cp.find_cut(["user"], [[{"type": "text", "text": "x"}]], [1], 0) is None


# -- compaction in the turn loop ---------------------------------------------------------
async def test_compaction_fires_and_later_requests_start_from_the_summary(stores, ws):
    agent, rec = await recording_agent(stores, ws)
    seen = memory_events(agent)
    await fill(agent, 8)
    compacts = [e for e in seen if e.event == "compact"]
    assert len(compacts) == 1
    data = compacts[0].data
    assert data["tokens_after"] < data["threshold"] < data["tokens_before"]
    assert data["messages_after"] < data["messages_before"] and data["duration_ms"] >= 0
    # stored: the summary, a compaction checkpoint, an event
    summaries = await stores.leon.summaries(agent.thread.id)
    assert len(summaries) == 1 and summaries[0].messages_replaced == data["messages_replaced"]
    kinds = [c.kind for c in await stores.leon.checkpoints(agent.thread.id)]
    assert "compaction" in kinds
    assert [e.kind for e in await stores.leon.events(agent.thread.id, kinds=["compact"])] == \
        ["compact"]
    # the summary was asked for without tools, as a structured summary
    ask = rec.summary_requests[0]
    assert ask.tools == [] and "Files and identifiers" in ask.messages[0]["content"][0]["text"]
    for section in cp.SECTIONS:
        assert f"## {section}" in summaries[0].text
    # every later request starts with it, is valid, and stays under the threshold
    index = rec.requests.index(ask)
    later = [r for r in rec.requests[index + 1:] if r.tools]
    assert later
    for r in later:
        assert r.messages[0]["content"][0]["text"].startswith(SUMMARY_PREFIX)
        assert validate(r.messages) == []
    gauge = await agent.gauge()
    assert gauge.summary > 0 and gauge.total < gauge.threshold
    # the estimate is taken over the view sent: one more turn does not compact again
    await fill(agent, 1, start=8)
    assert len([e for e in seen if e.event == "compact"]) == 1


async def test_summary_that_loses_identifiers_is_retried_once_then_repaired(stores, ws):
    agent, rec = await recording_agent(stores, ws, summary="## Goal\nRead some files.")
    seen = memory_events(agent)
    await fill(agent, 8)
    assert not [e for e in seen if e.event == "compact_rejected"]
    done = [e for e in seen if e.event == "compact"]
    assert done and done[0].data["identifiers_repaired"] > 0
    assert done[0].data["identifiers_left_out"] == 0
    first, second = rec.summary_requests[:2]
    retry_text = second.messages[0]["content"][0]["text"]
    assert "left out" in retry_text and "`src/mod_0.py`" in retry_text
    assert "left out" not in first.messages[0]["content"][0]["text"]
    # the summary is the model's text, then the identifiers it dropped, verbatim
    text = (await stores.leon.summaries(agent.thread.id))[0].text
    assert text.startswith("## Goal\nRead some files.")
    assert cp.REPAIR_HEADING in text and "`src/mod_0.py`" in text
    assert "read src/mod_0.py" not in text  # not the transcript: only the identifiers
    # later requests start from it
    assert rec.turn_requests[-1].messages[0]["content"][0]["text"].startswith(SUMMARY_PREFIX)
    # a repaired summary is not a failure: the breaker never moves
    assert agent.memory.failures == 0


def test_repair_appends_what_is_missing_within_its_budget():
    from leon.memory.count import count_text

    material = "Edit src/app.py and lib/util.rs, then run make_release() on host-42a."
    missing = cp.check(material, "## Goal\nRelease.", "Edit src/app.py")
    assert missing[0] == "src/app.py"  # what was said comes first
    text, n = cp.repair("## Goal\nRelease.", missing, 1000, count_text)
    assert n == len(missing) == 4 and cp.check(material, text) == []
    assert text.index(cp.REPAIR_HEADING) > text.index("Release.")
    small, k = cp.repair("## Goal\nRelease.", missing, count_text(cp.REPAIR_HEADING) + 40,
                         count_text)
    assert 0 < k < 4 and "`src/app.py`" in small and "host-42a" not in small
    assert cp.repair("x", [], 1000, count_text) == ("x", 0)
    assert cp.repair("x", missing, 0, count_text) == ("x", 0)


async def test_three_failures_stop_auto_compaction_until_a_manual_one(stores, ws):
    agent, rec = await recording_agent(stores, ws, summary=RuntimeError("overloaded (529)"))
    seen = memory_events(agent)
    await fill(agent, 12)
    rejected = [e for e in seen if e.event == "compact_rejected"]
    blocked = [e for e in seen if e.event == "compact_blocked"]
    assert len(rejected) == 3 and "529" in rejected[0].data["reason"]
    assert len(blocked) == 1 and "leon compact" in blocked[0].data["hint"]
    asked = len(rec.summary_requests)
    await fill(agent, 2, start=12)
    assert len(rec.summary_requests) == asked  # no more automatic attempts
    assert (await agent.gauge()).compaction_blocked
    # the breaker survives a restart (it is read back from the events)
    again, _ = await recording_agent(stores, ws, thread=agent.thread)
    assert again.memory.blocked
    # a manual compaction re-arms it
    rec.summary = None  # the demo model writes a good summary
    outcome = await agent.compact()
    assert outcome.ok and not agent.memory.blocked
    assert not (await agent.gauge()).compaction_blocked


async def test_manual_compaction_with_too_little_history_says_why(stores, ws):
    agent, _ = await recording_agent(stores, ws)
    await agent.send("hello")
    outcome = await agent.compact()
    assert not outcome.ok and "nothing to compact" in outcome.reason


async def test_rollback_before_a_compaction_restores_the_uncompacted_view(stores, ws):
    agent, rec = await recording_agent(stores, ws)
    seen = memory_events(agent)
    await fill(agent, 8)
    assert any(e.event == "compact" for e in seen)
    assert agent.summary_text
    checkpoints = await stores.leon.checkpoints(agent.thread.id)
    compaction = next(c for c in checkpoints if c.kind == "compaction")
    before = next(c for c in checkpoints if c.id == compaction.parent_id)
    await agent.rollback(before.id)
    assert agent.summary_text is None
    view = agent.memory.view(agent.view_inputs())
    everything = await stores.leon.branch(agent.thread.id, checkpoint_id=before.id)
    assert len(view.messages) == len(everything) > 20
    assert view.messages[0]["content"][0]["text"] == "read src/mod_0.py"
    # ... and rolling forward again brings the summary back
    await agent.rollforward()
    assert agent.summary_text


async def test_pinned_messages_are_carried_verbatim_past_compaction(stores, ws):
    agent, rec = await recording_agent(stores, ws)
    await agent.send("Remember: the deploy key is in vault path secret/ops/deploy-7731.")
    first = agent.branch[0]
    await agent.pin(first.id)
    await fill(agent, 8)
    assert await stores.leon.summaries(agent.thread.id)
    text = rec.turn_requests[-1].messages[0]["content"][0]["text"]
    assert text.startswith(SUMMARY_PREFIX)
    assert "the deploy key is in vault path secret/ops/deploy-7731." in text
    assert (await agent.gauge()).parts["pinned"] > 0
    # unpinning stops carrying it
    await agent.pin(first.id, False)
    view = agent.memory.view(agent.view_inputs())
    assert "[Pinned messages" not in view.messages[0]["content"][0]["text"]


async def test_pinned_tool_result_is_never_pruned(stores, ws):
    agent, rec = await recording_agent(stores, ws, settings={
        "memory.compaction.enabled": False, "memory.pruning.min_prune_tokens": 0})
    await agent.send("read src/mod_2.py")  # 7,000 chars: would be trimmed
    result_msg = agent.branch[2]
    await agent.pin(result_msg.id)
    await fill(agent, 4, start=3)
    sent = rec.turn_requests[-1].messages[2]["content"][0]["content"]
    assert sent == result_msg.content[0]["content"]


# -- every compaction key changes behaviour -----------------------------------------------
async def _due_after(stores, ws, settings, turns=8):
    agent, _ = await recording_agent(stores, ws, settings=dict(
        settings, **{"memory.compaction.enabled": False}))
    await fill(agent, turns)
    agent.settings.set("memory.compaction.enabled", settings.get(
        "memory.compaction.enabled", True))
    for name, value in settings.items():
        agent.settings.set(name, value)
    return agent, agent.memory.view(agent.view_inputs())


async def test_compaction_enabled_key(stores, ws):
    _, view = await _due_after(stores, ws, {})
    assert view.due
    _, view = await _due_after(stores, ws, {"memory.compaction.enabled": False})
    assert not view.due


async def test_min_messages_key(stores, ws):
    _, view = await _due_after(stores, ws, {"memory.compaction.min_messages": 200})
    assert not view.due


async def test_trigger_ratio_key(stores, ws):
    agent, view = await _due_after(stores, ws, {"memory.compaction.trigger_ratio": 0.95})
    assert not view.due and view.settings.threshold == int(0.95 * (12_000 - 1_000))


async def test_reserve_tokens_key(stores, ws):
    agent, view = await _due_after(stores, ws, {}, turns=5)
    assert not view.due
    agent.settings.set("memory.compaction.reserve_tokens", 4_000)
    view = agent.memory.view(agent.view_inputs())
    assert view.settings.threshold == int(0.7 * 8_000) and view.due


async def test_context_window_key(stores, ws):
    agent, view = await _due_after(stores, ws, {})
    assert view.due
    agent.settings.set("memory.context_window", 0)  # the model's own 200k window
    view = agent.memory.view(agent.view_inputs())
    assert not view.due and (await agent.gauge()).window == 200_000


async def test_keep_recent_tokens_key(stores, ws):
    replaced = []
    for keep in (1_000, 4_000):
        agent, _ = await recording_agent(stores, ws, settings={
            "memory.compaction.keep_recent_tokens": keep})
        seen = memory_events(agent)
        await fill(agent, 8)
        replaced.append([e.data for e in seen if e.event == "compact"][0]["messages_replaced"])
    assert replaced[0] > replaced[1]
