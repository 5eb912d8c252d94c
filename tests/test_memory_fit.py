"""No request exceeds the window, and compaction cannot get stuck (issue 12, items 1-3).

When compaction cannot run (off, blocked by failed calls, too few messages) the request
builder leaves the oldest tool results and then the oldest whole turns out of the
request — never out of storage — and says so; when even the newest turn cannot fit, the
send is refused before anything reaches the API. Summaries that leave identifiers out
are repaired, never rejected; only failed calls count towards the circuit breaker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from fakeapi import FakeAnthropic, Reply, count_input_tokens, validate_messages_request
from memory_helpers import MODEL, DemoBrainAPI, fill, make_agent, make_workspace, recording_agent

from leon.agent import events as ev
from leon.agent.turn import TurnError
from leon.config import Settings
from leon.memory import fit as ft
from leon.memory.count import count_messages, count_system, count_tools
from leon.memory.prune import CLEARED_PREFIX


@pytest.fixture
def ws(tmp_path):
    return make_workspace(tmp_path)


def memory_events(agent):
    seen: list[ev.MemoryEvent] = []
    agent.subscribe(lambda e: seen.append(e) if isinstance(e, ev.MemoryEvent) else None)
    return seen


def sent_views(agent):
    """Every view the memory layer decided to send (a spy on the agent's own manager)."""
    views = []
    prepare = agent.memory.prepare

    async def spy(*args, **kwargs):
        view = await prepare(*args, **kwargs)
        views.append(view)
        return view

    agent.memory.prepare = spy
    return views


def body_of(request):
    return {"model": request.model, "max_tokens": request.max_tokens, "system": request.system,
            "tools": request.tools, "messages": request.messages}


def assert_fits_and_valid(agent, rec, views):
    """Every request sent: leon's estimate within its limit, a recount from scratch
    within window - reserve, and valid for the Messages API."""
    s = agent.memory.snapshot()
    assert views and len(rec.turn_requests) == len(views)
    for view, request in zip(views, rec.turn_requests, strict=True):
        assert view.messages == request.messages
        assert view.estimate <= view.limit <= s.window - s.reserve_tokens - view.margin
        raw = (count_system(request.system) + count_tools(request.tools)
               + count_messages(request.messages))
        assert raw * view.factor <= s.window - s.reserve_tokens
        validate_messages_request(body_of(request))


# -- fit: what is left out, and what never is ------------------------------------------------
OFF_8K = {"memory.compaction.enabled": False, "memory.context_window": 8_000}


async def test_with_compaction_off_the_oldest_turns_are_left_out_not_deleted(stores, ws):
    agent, rec = await recording_agent(stores, ws, settings=OFF_8K)
    views = sent_views(agent)
    seen = memory_events(agent)
    await fill(agent, 16)
    assert_fits_and_valid(agent, rec, views)
    fits = [e.data for e in seen if e.event == "fit"]
    assert fits, [e.event for e in seen]
    assert "compaction is disabled" in fits[0]["reason"]
    last = fits[-1]
    assert last["messages_dropped"] > 0 and last["tokens_dropped"] > 0
    first_id = (await stores.leon.branch(agent.thread.id))[0].id
    assert last["dropped_ids"][0][0] == first_id  # the oldest go first
    assert last["estimate_after"] <= last["limit"] < last["estimate_before"]
    # history is kept whole: only the request left things out
    stored = await stores.leon.branch(agent.thread.id)
    assert len(stored) == 64 and len(agent.branch) == 64
    final = rec.turn_requests[-1].messages
    assert final[0]["content"][0]["text"].startswith("read src/mod_")  # a whole turn
    assert final[0]["content"][0]["text"] != "read src/mod_0.py"
    assert any(b["type"] == "tool_use" for b in final[-2]["content"])  # the newest turn
    assert final[-1]["content"][0]["type"] == "tool_result"              # is whole
    # each message left out is out entirely: no orphan result, no half turn
    texts = json.dumps(final)
    for a, b in last["dropped_ids"]:
        for m in stored:
            if a <= m.id <= b and m.role == "user" and m.content[0]["type"] == "tool_result":
                assert m.content[0]["tool_use_id"] not in texts


async def test_old_tool_results_are_cleared_before_any_turn_is_left_out(stores, ws):
    # Large results (below the spill threshold, never trimmed): clearing is enough.
    for i in range(5):
        (ws / f"data_{i}.txt").write_text("".join(f"{i}-{n:05d} value {n * 7}\n"
                                                  for n in range(330)))
    agent, rec = await recording_agent(stores, ws, settings={
        "memory.compaction.enabled": False, "memory.pruning.trim_tool_results": False})
    views = sent_views(agent)
    seen = memory_events(agent)
    for i in range(5):
        await agent.send(f"read data_{i}.txt")
    assert_fits_and_valid(agent, rec, views)
    fits = [e.data for e in seen if e.event == "fit"]
    assert fits and fits[0]["results_cleared"] > 0
    assert all(f["messages_dropped"] == 0 for f in fits)
    final = rec.turn_requests[-1].messages
    cleared = [b["content"] for m in final for b in m["content"]
               if b.get("type") == "tool_result" and b["content"].startswith(CLEARED_PREFIX)]
    assert cleared and all("characters" in c and "run the tool again" in c for c in cleared)
    assert final[0]["content"][0]["text"] == "read data_0.txt"  # every turn is still there
    assert not final[-1]["content"][0]["content"].startswith(CLEARED_PREFIX)  # the newest


async def test_with_the_breaker_open_requests_still_fit(stores, ws):
    agent, rec = await recording_agent(stores, ws, summary=RuntimeError("overloaded (529)"))
    views = sent_views(agent)
    seen = memory_events(agent)
    await fill(agent, 18)
    assert agent.memory.blocked
    assert_fits_and_valid(agent, rec, views)
    fits = [e.data for e in seen if e.event == "fit"]
    assert fits and "blocked after 3 failed calls" in fits[-1]["reason"]
    # the gauge says the same
    g = await agent.gauge()
    assert g.compaction_blocked and "blocked after 3 failed calls" in g.why


async def test_too_few_messages_for_compaction_still_fits(stores, ws):
    agent, rec = await recording_agent(stores, ws, settings={
        "memory.compaction.min_messages": 200})
    views = sent_views(agent)
    seen = memory_events(agent)
    await fill(agent, 14)
    assert_fits_and_valid(agent, rec, views)
    fits = [e.data for e in seen if e.event == "fit"]
    assert fits and re.search(r"too few messages \(\d+ of min_messages 200\)", fits[0]["reason"])


async def test_a_failed_summary_call_leaves_the_request_fitting(stores, ws):
    calls = []

    def flaky(request):
        calls.append(1)
        return RuntimeError("upstream connect error (503)") if len(calls) == 1 else \
            "## Goal\nRead files.\n"

    agent, rec = await recording_agent(stores, ws, summary=flaky)
    views = sent_views(agent)
    seen = memory_events(agent)
    await fill(agent, 10)
    assert_fits_and_valid(agent, rec, views)
    kinds = [e.event for e in seen]
    assert "compact_rejected" in kinds and "compact" in kinds  # failed once, then worked
    assert agent.memory.failures == 0


async def test_a_pinned_message_is_never_left_out(stores, ws):
    agent, rec = await recording_agent(stores, ws, settings=OFF_8K)
    await agent.send("Remember: the deploy key lives in vault path secret/ops/deploy-7731.")
    await agent.pin(agent.branch[0].id)
    seen = memory_events(agent)
    await fill(agent, 14)
    assert any(e.event == "fit" and e.data["messages_dropped"] for e in seen)
    for request in rec.turn_requests:
        assert "secret/ops/deploy-7731" in json.dumps(request.messages)


async def test_consecutive_requests_leave_out_the_same_turns(stores, ws):
    # Fit goes a little below its limit, so the next requests keep the same start (the
    # prompt cache keeps its prefix) instead of moving it on every call.
    agent, rec = await recording_agent(stores, ws, settings=OFF_8K)
    seen = memory_events(agent)
    views = sent_views(agent)
    await fill(agent, 24)
    fitted = [v for v in views if v.fit is not None and v.fit.dropped]
    firsts = [json.dumps(v.messages[0]) for v in fitted]
    assert len(fitted) >= 6
    assert len(set(firsts)) < len(fitted) / 2  # most requests repeat the previous start
    assert len([e for e in seen if e.event == "fit"]) < len([v for v in views if v.fit])


async def test_a_message_too_big_for_the_window_is_refused_before_the_api(stores, ws):
    agent, rec = await recording_agent(stores, ws)
    await agent.send("hello")
    asked = len(rec.requests)
    huge = "a line of pasted log output that goes on and on\n" * 1500  # ~15,000 tokens
    with pytest.raises(TurnError) as info:
        await agent.send(huge)
    message = str(info.value)
    assert "message is too big" in message and "tokens" in message
    assert "context_window" in message and "\n" not in message
    assert len(rec.requests) == asked  # nothing was sent
    failed = await stores.leon.events(agent.thread.id, kinds=["fit_failed"])
    assert failed and failed[0].data["message"] > failed[0].data["limit"]
    # the thread is not stuck: the next message leaves the huge one out and is answered
    result = await agent.send("read notes.txt")
    assert "alpha" in json.dumps(rec.turn_requests[-1].messages)
    assert huge[:40] not in json.dumps(rec.turn_requests[-1].messages)
    assert result.stop_reason == "end_turn"


async def test_a_system_prompt_too_big_for_the_window_says_so(stores, ws):
    agent, rec = await recording_agent(stores, ws)
    agent.settings.set("memory.compaction.keep_recent_tokens", 1_000)
    agent.settings.set("memory.context_window", 4_000)
    agent.settings.set("system_prompt", "Always answer politely and in full sentences. " * 400)
    with pytest.raises(TurnError) as info:
        await agent.send("hello")
    assert "system prompt" in str(info.value) and "context_window" in str(info.value)
    assert rec.requests == []


# -- the limit and its margin -------------------------------------------------------------------
def test_the_limit_keeps_a_margin_for_the_estimate(tmp_path):
    from leon.memory.settings import MemorySettings

    s = MemorySettings.of(Settings({"memory.context_window": 100_000,
                                    "memory.compaction.reserve_tokens": 10_000}), "x")
    assert ft.limit(s, calibrated=True) == (85_500, 4_500)
    assert ft.limit(s, calibrated=False) == (76_500, 13_500)


def test_plan_clears_then_drops_whole_turns_oldest_first():
    r = ft.Result
    items = [ft.Item(1, True, False, 200), ft.Item(2, False, False, 10, (r("a", 500, 20, True),)),
             ft.Item(3, False, False, 200), ft.Item(4, True, False, 200),
             ft.Item(5, False, False, 200), ft.Item(6, True, False, 10),
             ft.Item(7, False, False, 300)]
    base = {"system": 100}

    def est(raw):
        return sum(raw.values())

    p = ft.plan(items, base, est, 1400)      # 1,720 tokens: clearing is enough
    assert p.cleared == ["a"] and p.dropped == [] and p.estimate == 1240 and p.fits
    p = ft.plan(items, base, est, 1000)      # then the oldest whole turn
    assert p.dropped == [0, 1, 2] and p.cleared == [] and p.estimate == 810 and p.fits
    assert p.dropped_tokens == 910  # as the request would have sent them
    p = ft.plan(items, base, est, 400)       # the newest turn alone is 410
    assert not p.fits and p.dropped == [0, 1, 2, 3, 4] and p.newest == 410
    # what the previous request left out stays out while the limit is the same
    p = ft.plan(items, base, est, 1400, sticky=([1, 2, 3], []))
    assert p.dropped == [0, 1, 2] and p.cleared == []
    # ... and a result in a message already left out is not cleared again (that counted
    # its tokens twice: the plan said 330 for a request of 810, over its limit)
    p = ft.plan(items, base, est, 800, sticky=([1, 2, 3], []))
    assert p.cleared == [] and p.dropped == [0, 1, 2, 3, 4] and p.estimate == 410
    # a turn holding a pinned message is skipped, the next one goes instead
    pinned = [ft.Item(1, True, True, 200), *items[1:]]
    p = ft.plan(pinned, base, est, 1000)
    assert p.dropped == [3, 4] and p.cleared == ["a"]
    assert ft.ranges([0, 1, 2, 4], [10, 11, 15, 16, 20]) == [[10, 15], [20, 20]]


# -- the real API path: the strict server accepts every request ---------------------------------
async def test_through_the_sdk_every_request_is_accepted_and_within_the_window(
        stores, ws, tmp_path):
    window = 14_000
    settings = Settings({"memory.context_window": window, "memory.compaction.enabled": False,
                         "memory.compaction.reserve_tokens": 1_000,
                         "memory.compaction.keep_recent_tokens": 2_000})
    with DemoBrainAPI() as api:
        agent = await make_agent(stores, api, ws, settings=settings,
                                 spill_root=tmp_path / "spill")
        seen = memory_events(agent)
        for i in range(14):
            await agent.send(f"read src/mod_{i}.py")
        bodies = [r["body"] for r in api.message_requests()]
        usage = await stores.leon.usage(agent.thread.id, limit=1000)
    assert len(usage) == len(bodies) == 28  # every call answered: none refused
    assert max(count_input_tokens(b) for b in bodies) <= window
    assert any(e.event == "fit" for e in seen)
    assert agent.model == MODEL


# -- compaction cannot get stuck ------------------------------------------------------------------
class NumberDroppingSummariser(FakeAnthropic):
    """A Messages API whose summaries keep the first two notes without their numbers
    (the summariser of the bug report) and lose the names of the later notes; every
    other call gets a long acknowledgement."""

    def _next_spec(self, body):
        if body.get("tools"):
            return Reply([{"type": "text", "text": "Noted. " + "I will keep that in mind. " * 40}])
        prompt = body["messages"][0]["content"][0]["text"]
        notes = [line for line in prompt.splitlines() if line.startswith("User: note")][:2]
        text = "## Goal\nKeep notes.\n\n## Decisions\n" + "\n".join(
            re.sub(r"\b\d+\b", "", n) for n in notes)
        return Reply([{"type": "text", "text": text + "\n\n## Next step\nMore notes.\n"}])


def _leon(env, *args):
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def _run_inprocess(argv, capsys):
    from leon.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_summariser_that_drops_numbers_never_blocks_compaction(
        leon_paths, monkeypatch, capsys):
    """Bug A, through the real `leon`: a summary without "11" and "13" was rejected, three
    rejections blocked compaction, `leon compact` failed the same way, and requests grew
    to ~21,000 tokens in a 12,000-token window."""
    leon_paths.home.mkdir(parents=True, exist_ok=True)
    (leon_paths.home / "config.toml").write_text(
        "[memory]\ncontext_window = 12000\n[memory.compaction]\nreserve_tokens = 1000\n"
        "keep_recent_tokens = 2500\nmin_messages = 6\n")
    with NumberDroppingSummariser() as api:
        monkeypatch.setenv("ANTHROPIC_API_KEY", api.api_key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        err = ""
        for i in range(11, 25):
            code, _, out_err = _run_inprocess([
                "run", "-m", MODEL, "--thread", "notes",
                f"note {i}: module pkg_{i} built in {i * 7} seconds, log in logs/build_{i}.log; "
                + "it needs another careful look before the release. " * 60], capsys)
            assert code == 0, out_err
            err += out_err
        env = dict(os.environ)
        done = _leon(env, "compact", "notes")
        bodies = [r["body"] for r in api.message_requests()]
    assert "rejected" not in err and "stopped" not in err, err
    assert "were appended verbatim" in err  # the later notes' names: repaired
    turns = [b for b in bodies if b.get("tools")]
    assert max(count_input_tokens(b) for b in turns) <= 12_000
    assert done.returncode == 0, done.stderr
    assert "compacted" in done.stdout


async def test_old_identifier_rejections_no_longer_keep_a_thread_blocked(stores, ws):
    agent, _ = await recording_agent(stores, ws)
    for _ in range(3):  # stored by leon before summaries were repaired
        await stores.leon.add_event(agent.thread.id, "compact_rejected", {
            "reason": "the summary lost 15 identifier(s), even when asked again",
            "manual": False})
    again, _ = await recording_agent(stores, ws, thread=agent.thread)
    assert not again.memory.blocked and again.memory.failures == 0
    for _ in range(3):
        await stores.leon.add_event(agent.thread.id, "compact_rejected", {
            "reason": "the summary call failed: overloaded", "manual": False})
    third, _ = await recording_agent(stores, ws, thread=agent.thread)
    assert third.memory.blocked


async def test_manual_compaction_far_behind_summarises_in_parts_that_fit(stores, ws):
    agent, rec = await recording_agent(stores, ws, settings=dict(
        OFF_8K, **{"memory.pruning.trim_tool_results": False}))
    await fill(agent, 14)  # several windows' worth, left out by fit so far
    full = agent.memory.view(agent.view_inputs())
    assert full.estimate > 1.5 * full.limit
    agent.settings.set("memory.compaction.enabled", True)
    outcome = await agent.compact()
    assert outcome.ok and outcome.data.get("parts", 1) > 1
    for request in rec.summary_requests:  # each summary call fits the window itself
        raw = count_system(request.system) + count_messages(request.messages)
        assert raw * full.factor <= full.limit
    view = agent.memory.view(agent.view_inputs())
    assert view.estimate <= view.limit and agent.summary_text


# -- the gauge tells the truth --------------------------------------------------------------------
async def test_the_gauge_says_what_the_next_send_will_do_and_why(stores, ws):
    agent, rec = await recording_agent(stores, ws, settings={
        "memory.compaction.min_messages": 200})
    await fill(agent, 8)
    g = await agent.gauge()
    assert g.parts["estimate"] > g.threshold
    assert g.status == "fits" and g.why == "too few messages (32 of min_messages 200)"
    assert "compacts on the next send" not in g.note and "still fits" in g.note
    agent.settings.set("memory.compaction.min_messages", 20)
    g = await agent.gauge()
    assert g.status == "compacts" and g.why == "" and "compacts on the next send" in g.note
    agent.settings.set("memory.compaction.enabled", False)
    g = await agent.gauge()
    assert g.status == "fits" and "compaction is disabled" in g.why
    # past the limit: the gauge names what the request builder will leave out, and the
    # next send does exactly that
    seen = memory_events(agent)
    while (await agent.gauge()).status != "leaves_out":
        await agent.send("read notes.txt")
    g = await agent.gauge()
    assert re.search(r"clears \d+ old tool result|leaves out the \d+ oldest", g.note), g.note
    assert f"to fit {g.limit:,} tokens" in g.note
    n = int(re.search(r"clears (\d+)", g.note).group(1)) if "clears" in g.note else 0
    await agent.send("read notes.txt")
    fit = [e.data for e in seen if e.event == "fit"][-1]
    assert fit["results_cleared"] >= n > 0 or fit["messages_dropped"] > 0


async def test_the_gauge_warns_when_the_next_send_will_be_refused(stores, ws):
    agent, _ = await recording_agent(stores, ws)
    await agent.send("hello")
    agent.settings.set("memory.compaction.keep_recent_tokens", 1_000)
    agent.settings.set("memory.context_window", 4_000)
    agent.settings.set("system_prompt", "Always answer politely and in full sentences. " * 400)
    g = await agent.gauge()
    assert g.status == "too_large" and "refused" in g.note


def test_leon_run_json_gauge_line_says_why_compaction_will_not_run(leon_paths, tmp_path):
    leon_paths.home.mkdir(parents=True, exist_ok=True)
    (leon_paths.home / "config.toml").write_text(
        "[memory]\ncontext_window = 12000\n[memory.compaction]\nreserve_tokens = 1000\n"
        "keep_recent_tokens = 500\ntrigger_ratio = 0.1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    env.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache))
    out = _leon(env, "run", "--json", "--model", "demo", "-w", str(tmp_path), "hello there")
    assert out.returncode == 0, out.stderr
    gauge = [json.loads(line) for line in out.stdout.splitlines()
             if json.loads(line)["kind"] == "gauge"][0]
    assert gauge["total"] > gauge["threshold"] and gauge["status"] == "fits"
    assert gauge["why"] == "too few messages (2 of min_messages 20)"
    assert "compacts on the next send" not in gauge["note"]
    assert gauge["limit"] < gauge["window"] - gauge["reserve"]


def test_leon_run_refuses_a_prompt_too_big_for_the_window_before_calling_the_api(
        leon_paths, fake_api, tmp_path):
    leon_paths.home.mkdir(parents=True, exist_ok=True)
    (leon_paths.home / "config.toml").write_text(
        "[memory]\ncontext_window = 12000\n[memory.compaction]\nreserve_tokens = 1000\n"
        "keep_recent_tokens = 2500\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    env.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache),
               ANTHROPIC_API_KEY=fake_api.api_key, ANTHROPIC_BASE_URL=fake_api.base_url)
    pasted = "2024-05-01 12:00:00 worker-7 ERROR job failed, retrying in 30s\n" * 1000
    out = subprocess.run([sys.executable, "-m", "leon", "run", "-m", MODEL, "-w",
                          str(tmp_path), "-"], env=env, input=pasted, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("leon: the message is too big: ~") and "Traceback" not in out.stderr
    assert "context_window 12,000" in lines[-1]
    assert fake_api.message_requests() == []  # nothing reached the API
