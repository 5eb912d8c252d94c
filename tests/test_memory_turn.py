"""The memory middleware in the turn loop, end to end: a 300-message conversation
through the real SDK against the local API server, live settings, the gauge, events,
and the CLI (`leon run --json`, `leon compact`)."""

from __future__ import annotations

import json
import statistics

from memory_helpers import (
    SMALL,
    DemoBrainAPI,
    make_agent,
    make_workspace,
    prefix_share,
    recording_agent,
)

from leon.agent import events as ev
from leon.config import Settings
from leon.memory.view import SUMMARY_PREFIX, validate


async def test_300_message_conversation_compacts_and_stays_valid_and_cacheable(
        stores, tmp_path):
    ws = make_workspace(tmp_path)
    seen: list[ev.MemoryEvent] = []
    with DemoBrainAPI() as api:
        agent = await make_agent(stores, api, ws, settings=Settings(dict(SMALL)),
                                 spill_root=tmp_path / "spill")
        agent.subscribe(lambda e: seen.append(e) if isinstance(e, ev.MemoryEvent) else None)
        turn = 0
        while agent.thread.message_count < 300:
            await agent.send(f"read src/mod_{turn % 24}.py" if turn % 5 else
                             "grep merge_index in src")
            agent.thread = await stores.leon.get_thread(agent.thread.id)
            turn += 1
        bodies = [r["body"] for r in api.message_requests()]
        usage = await stores.leon.usage(agent.thread.id, limit=10_000)
    turns = [b for b in bodies if b.get("tools")]
    summaries = [b for b in bodies if not b.get("tools")]
    threshold = agent.memory.snapshot().threshold
    kinds = [e.event for e in seen]
    assert agent.thread.message_count >= 300
    assert kinds.count("compact") >= 2 and "prune" in kinds and "spill" in kinds
    assert "compact_rejected" not in kinds
    # no request was ever invalid (the server would have refused it: every call answered)
    assert len(usage) == len(bodies)
    assert all(validate(b["messages"]) == [] for b in turns)
    # after the first compaction every request starts with the summary and fits
    first = bodies.index(summaries[0])
    later = [b for b in bodies[first + 1:] if b.get("tools")]
    assert later and all(
        b["messages"][0]["content"][0]["text"].startswith(SUMMARY_PREFIX) for b in later)
    reported = {id(b): api.count_tokens(b) for b in turns}
    assert max(reported[id(b)] for b in turns) <= threshold
    # estimates: within 5% of what the server counted, never more than 5% under
    errors = [(u.estimated_tokens - p) / p for u in usage
              for p in [u.input_tokens + u.cache_creation_tokens + u.cache_read_tokens]]
    assert all(-0.05 <= e <= 0.05 for e in errors[1:]), [round(e, 3) for e in errors]
    # the prompt cache: share of each request's bytes repeating the previous one's prefix
    shares = [prefix_share(a, b) for a, b in zip(turns, turns[1:], strict=False)]
    share = statistics.mean(shares)
    print(f"\nprefix stability over {len(turns)} requests: {share:.1%} "
          f"({kinds.count('compact')} compactions, {kinds.count('prune')} pruning batches, "
          f"{kinds.count('spill')} spills)")
    assert share >= 0.90


async def test_settings_changed_between_two_calls_change_the_second_request(stores, tmp_path):
    ws = make_workspace(tmp_path)
    mid_file(ws)
    agent, rec = await recording_agent(stores, ws, settings={
        "memory.compaction.enabled": False, "memory.pruning.min_prune_tokens": 0,
        "memory.pruning.protect_recent": 1})
    await agent.send("read mid.txt")   # ~7,000 chars: trimmed at 3,000 ...
    await agent.send("read notes.txt")  # ... once it is not the newest result
    trimmed = rec.turn_requests[-1].messages[2]["content"][0]["content"]
    assert "characters cut here" in trimmed and len(trimmed) < 3_300
    agent.settings.set("memory.pruning.soft_trim_chars", 1_000)
    await agent.send("hello again")
    shorter = rec.turn_requests[-1].messages[2]["content"][0]["content"]
    assert len(shorter) < 1_300 < len(trimmed)
    agent.settings.set("memory.pruning.trim_tool_results", False)
    await agent.send("and again")
    whole = rec.turn_requests[-1].messages[2]["content"][0]["content"]
    assert whole == agent.branch[2].content[0]["content"]
    # a settings change re-decides pruning at once and says so
    events = await stores.leon.events(agent.thread.id, kinds=["prune"])
    assert events[-1].data["settings_changed"] is True


async def test_gauge_parts_measured_flag_and_settings(stores, tmp_path):
    ws = make_workspace(tmp_path)
    mid_file(ws)
    agent, rec = await recording_agent(stores, ws)
    empty = await agent.gauge()
    assert empty.history == 0 and empty.tool_results == 0 and empty.system > 0
    assert empty.tools > 0 and not empty.measured
    await agent.send("read mid.txt")
    g = await agent.gauge()
    usage = (await stores.leon.usage(agent.thread.id))[-1]
    assert g.measured
    assert g.total == usage.input_tokens + usage.cache_creation_tokens + \
        usage.cache_read_tokens + usage.output_tokens
    assert g.tool_results > 0 and g.history > 0 and g.summary == 0
    assert g.window == 12_000 and g.reserve == 1_000 and g.threshold == int(0.7 * 11_000)
    assert g.messages == 4 and g.calibration > 0
    # the gauge recomputes at once when a setting changes; it is then an estimate
    agent.settings.set("memory.compaction.reserve_tokens", 2_000)
    g2 = await agent.gauge()
    assert g2.threshold == int(0.7 * 10_000) and g2.reserve == 2_000
    agent.settings.set("memory.pruning.protect_recent", 0)
    agent.settings.set("memory.pruning.min_prune_tokens", 0)
    g3 = await agent.gauge()
    assert not g3.measured and g3.pruning_saved > 0 and g3.tool_results < g.tool_results
    data = g3.to_json()
    assert data["total"] == g3.total and "fraction" in data


async def test_memory_events_are_stored_and_delivered_as_they_happen(stores, tmp_path):
    ws = make_workspace(tmp_path)
    agent, _ = await recording_agent(stores, ws)
    seen: list[ev.MemoryEvent] = []
    agent.subscribe(lambda e: seen.append(e) if isinstance(e, ev.MemoryEvent) else None)
    for i in range(8):
        await agent.send(f"read src/mod_{i}.py")
    stored = await stores.leon.events(agent.thread.id,
                                      kinds=["prune", "compact", "spill", "compact_rejected"])
    assert [e.event for e in seen] == [e.kind for e in stored]
    assert {"prune", "compact", "spill"} <= {e.event for e in seen}
    prune = next(e for e in seen if e.event == "prune")
    assert prune.data["tokens_saved"] > 0 and prune.data["results"] >= 1
    assert json.loads(json.dumps(seen[0].to_json()))["kind"] == "memory"


def mid_file(ws):
    """A file whose numbered read_file output is about 7,000 characters."""
    (ws / "mid.txt").write_text("".join(f"row {i:03d} " + "y" * 36 + "\n" for i in range(150)))


def _run_cli(argv, capsys):
    from leon.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_leon_run_json_prints_memory_events_and_a_final_gauge(leon_paths, tmp_path, capsys):
    ws = make_workspace(tmp_path)
    (ws / "big.txt").write_text("".join(f"{i:05d} a line of the log\n" for i in range(2000)))
    code, out, err = _run_cli(["run", "--model", "demo", "--json", "-w", str(ws),
                               "read big.txt"], capsys)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    memory = [x for x in lines if x["kind"] == "memory"]
    assert memory and memory[0]["event"] == "spill" and memory[0]["data"]["path"]
    gauge = [x for x in lines if x["kind"] == "gauge"]
    assert len(gauge) == 1 and lines[-2]["kind"] == "gauge" and lines[-1]["kind"] == "done"
    for field in ("system", "tools", "summary", "history", "tool_results", "pruning_saved",
                  "window", "reserve", "threshold", "measured", "total"):
        assert field in gauge[0], field


def test_leon_compact_cli(leon_paths, tmp_path, capsys):
    ws = make_workspace(tmp_path)
    for i in range(6):
        code, _, err = _run_cli(["run", "--model", "demo", "--thread", "work", "-w", str(ws),
                                 f"read src/mod_{i}.py"], capsys)
        assert code == 0, err
    code, out, err = _run_cli(["compact", "work"], capsys)
    assert code == 0, err
    assert "compacted" in out and "tokens" in out
    code, out, err = _run_cli(["run", "--model", "demo", "--thread", "short", "-w", str(ws),
                               "hello"], capsys)
    code, out, err = _run_cli(["compact", "short"], capsys)
    assert code == 1 and "not compacted: nothing to compact" in err
    code, out, err = _run_cli(["compact", "nope"], capsys)
    assert code == 1
