"""Token counting: every part of the request is counted, counts are cached per stored
message (a turn does not recount history), and the calibration learned from the API's
reported usage keeps the next estimate within 5% (never more than 5% under)."""

from __future__ import annotations

import pytest
from memory_helpers import DemoBrainAPI, demo_agent, make_agent, make_workspace

from leon.config import Settings
from leon.memory import tokens as tokens_mod
from leon.memory.count import Calibration, count_block, count_content, count_text


def test_blocks_of_every_kind_are_counted():
    assert count_text("") == 0
    text = count_block({"type": "text", "text": "hello world"})
    call = count_block({"type": "tool_use", "id": "toolu_1", "name": "read_file",
                        "input": {"path": "src/app.py", "limit": 200}})
    small = count_block({"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {}})
    result = count_block({"type": "tool_result", "tool_use_id": "toolu_1",
                          "content": "alpha beta gamma " * 50})
    nested = count_block({"type": "tool_result", "tool_use_id": "toolu_1",
                          "content": [{"type": "text", "text": "alpha beta gamma " * 50}]})
    assert text > 0 and call > small and result > 100 and abs(nested - result) <= 5
    # "<|endoftext|>" in a conversation is text, not a special token
    assert count_text("<|endoftext|>") > 1
    assert count_content("hi") == count_content([{"type": "text", "text": "hi"}])


async def test_view_counts_system_tools_summary_history_and_results(stores, tmp_path):
    ws = make_workspace(tmp_path, files=2)
    agent = await demo_agent(stores, ws)
    await agent.send("read src/mod_0.py")
    agent.summary_text = "## Goal\nkeep `src/mod_0.py` small"
    view = agent.memory.view(agent.view_inputs())
    for part in ("system", "tools", "summary", "history", "tool_results"):
        assert view.raw[part] > 0, part
    assert view.raw_total == sum(view.raw[k] for k in
                                 ("system", "tools", "summary", "pinned", "history",
                                  "tool_results"))


async def test_counts_are_cached_per_message_and_history_is_not_recounted(
        stores, tmp_path, monkeypatch):
    ws = make_workspace(tmp_path, files=4)
    agent = await demo_agent(stores, ws)
    for i in range(3):
        await agent.send(f"read src/mod_{i}.py")
    rows = await stores.leon.branch(agent.thread.id)
    assert all(m.tokens is not None and m.tokens > 0 for m in rows[:-1])
    counted: list[int] = []
    real = tokens_mod.split_content
    monkeypatch.setattr(tokens_mod, "split_content",
                        lambda content: counted.append(1) or real(content))
    await agent.send("read src/mod_3.py")
    # Only the new messages (user, call, result, reply) were counted.
    assert len(counted) == 4
    # A fresh process reads the counts from the database instead of tokenizing.
    counted.clear()
    again = await demo_agent(stores, ws, thread=agent.thread)
    again.memory.view(again.view_inputs())
    assert counted == []


def test_calibration_learns_per_kind_and_errs_high():
    cal = Calibration()
    parts = {"system": 1000, "tools": 1000, "history": 500, "tool_results": 3000}
    assert not cal.learned
    cal.observe(6000, parts)
    assert cal.learned
    est = cal.estimate(parts)
    assert 6000 <= est <= 6000 * 1.05
    cal.seed("summary", 0.7)
    assert cal.theta[1] == 0.7
    assert cal.observe(0, parts) is False and cal.observe(10**9, parts) is False


async def test_estimate_is_within_5_percent_of_what_the_api_reports(stores, tmp_path):
    """Against the local API server (which counts tokens its own way), over many turns
    with tool output of every size: after the first call every estimate is within 5%
    of the reported prompt tokens and never more than 5% under."""
    ws = make_workspace(tmp_path, files=12)
    settings = Settings({"memory.pruning.min_prune_tokens": 1000,
                         "memory.pruning.soft_trim_chars": 2000})
    with DemoBrainAPI() as api:
        agent = await make_agent(stores, api, ws, settings=settings,
                                 spill_root=tmp_path / "spill")
        for i in range(14):
            await agent.send(f"read src/mod_{i % 12}.py" if i % 4 else "grep check_index")
        usage = await stores.leon.usage(agent.thread.id, limit=1000)
    errors = [(u.estimated_tokens - (u.input_tokens + u.cache_creation_tokens
                                     + u.cache_read_tokens))
              / (u.input_tokens + u.cache_creation_tokens + u.cache_read_tokens)
              for u in usage]
    assert len(errors) >= 28
    assert all(-0.05 <= e <= 0.05 for e in errors[1:]), [round(e, 3) for e in errors]
    # calibration is kept per model, for the next thread and the next process
    saved = await stores.leon.calibration(agent.model)
    assert saved == pytest.approx(agent.memory.calibration().state, rel=1e-4)  # + per byte
