"""The cache guard: a huge cache write or a run of rate-limited calls starts a fresh
segment before the next call, with a ``guard`` event that says why."""

from __future__ import annotations

from dataclasses import replace

from leon.agent import events as ev
from leon.agent.tools import ToolRegistry, read_only_tools
from leon.agent.turn import Agent, TurnError
from leon.config import Settings
from leon.llm.base import Completed, ProviderError, Retrying
from leon.llm.demo import DemoProvider


class Scripted(DemoProvider):
    """The demo model, with scripted usage and 429 retries for the chat calls (those that
    offer tools); summary calls (no tools) are plain demo calls."""

    def __init__(self):
        super().__init__()
        self.cache_creation: list[int] = []   # per chat call, in order
        self.rate_limited: list[str] = []     # per chat call: "" | "retry" | "fail"
        self.requests = []

    async def stream(self, request):
        if not request.tools:
            async for e in super().stream(request):
                yield e
            return
        self.requests.append(request)
        n = len(self.requests) - 1
        limited = self.rate_limited[n] if n < len(self.rate_limited) else ""
        if limited == "fail":
            raise ProviderError("rate limited (429): slow down", status=429)
        if limited == "retry":
            yield Retrying(1, 0.0, "rate limited (429)", 429)
        async for e in super().stream(request):
            if isinstance(e, Completed):
                created = self.cache_creation[n] if n < len(self.cache_creation) else 0
                usage = replace(e.response.usage, cache_creation_input_tokens=created)
                e = Completed(replace(e.response, usage=usage))
            yield e


async def _agent(stores, tmp_path, provider, **values):
    thread = await stores.leon.create_thread("scoped")
    agent = Agent(store=stores.leon, provider=provider, tools=ToolRegistry(read_only_tools()),
                  settings=Settings(values), thread=thread, workspace=tmp_path, model="demo")
    seen: list[ev.AgentEvent] = []
    agent.subscribe(seen.append)
    await agent.load()
    return agent, seen


def _guards(seen):
    return [e for e in seen if isinstance(e, ev.MemoryEvent) and e.event == "guard"]


async def test_a_huge_cache_write_starts_a_fresh_segment_with_a_handoff(stores, tmp_path):
    from leon.memory.context import CompactOutcome

    p = Scripted()
    p.cache_creation = [0, 0, 150_000]
    agent, seen = await _agent(stores, tmp_path, p)

    async def cannot_cut():
        return CompactOutcome(False, "nothing to compact yet")

    agent.compact = cannot_cut  # the handoff is the fallback when compaction cannot cut
    for text in ("We decided to use Postgres for the ledger.", "Is the schema in db/ledger.sql?",
                 "hello again"):
        await agent.send(text)
    assert not _guards(seen)
    before = len(p.requests[-1].messages)
    await agent.send("next step please")
    guard = _guards(seen)
    assert len(guard) == 1
    data = guard[0].data
    assert data["trigger"] == "cache_creation" and data["cache_creation_input_tokens"] == 150_000
    assert "100,000" in data["reason"] and "fresh segment" in data["reason"]
    assert data["action"] == "handoff" and data["detail"] == "nothing to compact yet"
    sent = p.requests[-1].messages
    assert len(sent) < before + 2
    assert "Handoff" in str(sent[0]["content"]) and "next step please" in str(sent[-1]["content"])
    stored = await stores.leon.events(agent.thread.id, kinds=["guard"])
    assert len(stored) == 1 and stored[0].data["reason"] == data["reason"]


async def test_the_guard_compacts_when_compaction_can_cut(stores, tmp_path):
    p = Scripted()
    p.cache_creation = [0, 0, 0, 150_000]
    agent, seen = await _agent(stores, tmp_path, p, **{
        "memory.compaction.keep_recent_tokens": 0, "memory.compaction.min_messages": 2})
    for text in ("first topic", "second topic", "third topic", "fourth topic", "fifth"):
        await agent.send(text)
    (guard,) = _guards(seen)
    assert guard.data["action"] == "compacted"
    assert await stores.leon.summaries(agent.thread.id)


async def test_cache_creation_threshold_is_read_from_the_settings(stores, tmp_path):
    p = Scripted()
    p.cache_creation = [150_000, 0]
    agent, seen = await _agent(stores, tmp_path, p,
                               **{"lifecycle.cache_creation_threshold": 200_000})
    await agent.send("one")
    await agent.send("two")
    assert not _guards(seen)
    agent.settings.set("lifecycle.cache_creation_threshold", 1_000)
    p.cache_creation += [5_000, 0]
    await agent.send("three")
    await agent.send("four")
    assert len(_guards(seen)) == 1


async def test_rate_limit_strikes_in_a_row_start_a_fresh_segment(stores, tmp_path):
    p = Scripted()
    p.rate_limited = ["retry", "", "retry", "retry", "retry", ""]
    agent, seen = await _agent(stores, tmp_path, p)
    for text in ("a", "b", "c", "d"):   # a streak broken by a clean call, then two
        await agent.send(text)
    assert not _guards(seen) and agent.guard.strikes == 2
    await agent.send("e")               # the third rate-limited call in a row
    assert not _guards(seen) and agent.guard.pending is not None
    await agent.send("f")               # acted on before the next call
    (guard,) = _guards(seen)
    assert guard.data["trigger"] == "rate_limits" and guard.data["strikes"] == 3
    assert "rate-limited" in guard.data["reason"]
    assert agent.guard.strikes == 0


async def test_rate_limit_strikes_setting_and_failed_calls_count(stores, tmp_path):
    p = Scripted()
    p.rate_limited = ["fail", "retry", ""]
    agent, seen = await _agent(stores, tmp_path, p, **{"lifecycle.rate_limit_strikes": 2})
    try:
        await agent.send("a")
    except TurnError:
        pass
    await agent.send("b")               # two in a row: the limit of 2
    assert agent.guard.pending is not None and agent.guard.pending["strikes"] == 2
    await agent.send("c")
    assert len(_guards(seen)) == 1


async def test_a_guard_with_nothing_to_cut_says_so(stores, tmp_path):
    from leon.memory.context import CompactOutcome

    p = Scripted()
    agent, seen = await _agent(stores, tmp_path, p)
    await agent.send("the only turn")

    async def cannot_cut():
        return CompactOutcome(False, "nothing to compact yet")

    agent.compact = cannot_cut
    agent.branch = agent.branch[:1]  # only the current turn's message
    agent.guard.pending = {"trigger": "cache_creation", "reason": "test"}
    data = await agent.guard.before_call()
    assert data["action"] == "none" and "nothing could be cut" in data["reason"]
