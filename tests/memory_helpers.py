"""Shared set-up for the memory tests: an agent on the real SDK against the local API
server, whose replies (when nothing is scripted) come from the offline demo model, so a
long conversation calls real tools and gets real compaction summaries."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from fakeapi import FakeAnthropic, Reply, prompt_units

from leon.agent.tools import ToolRegistry, read_only_tools
from leon.agent.turn import Agent
from leon.config import Settings
from leon.llm.anthropic_provider import AnthropicProvider
from leon.llm.base import ModelRequest
from leon.llm.demo import plan_reply

MODEL = "claude-sonnet-4-6"

# Small numbers so compaction fires within a test; they satisfy every cross-key rule.
SMALL = {
    "memory.context_window": 45_000,
    "memory.compaction.reserve_tokens": 4_000,
    "memory.compaction.keep_recent_tokens": 8000,
    "memory.pruning.min_prune_tokens": 3000,
}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


class DemoBrainAPI(FakeAnthropic):
    """The local Messages API server; unscripted calls are answered by the demo model."""

    def _next_spec(self, body: dict[str, Any]) -> Any:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        system = body.get("system") or ""
        if isinstance(system, list):
            system = "\n".join(b.get("text", "") for b in system)
        request = ModelRequest(model=body["model"], system=system,
                               messages=_strip(body["messages"]), tools=_strip(body.get("tools")
                                                                                or []))
        text, calls, stop = plan_reply(request)
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        blocks += [{"type": "tool_use", "id": None, "name": c.name, "input": c.input}
                   for c in calls]
        return Reply(blocks or [{"type": "text", "text": "ok"}], stop_reason=stop)


def make_workspace(root: Path, *, files: int = 24, seed: int = 7) -> Path:
    """Python-like files of mixed sizes: small, a few thousand chars (trimmed later),
    and large (spilled), with a bounded vocabulary of names."""
    rng = random.Random(seed)
    names = [f"{a}_{b}" for a in ("load", "parse", "render", "store", "check", "merge")
             for b in ("config", "thread", "message", "summary", "index")]
    ws = root / "ws"
    (ws / "src").mkdir(parents=True, exist_ok=True)
    sizes = [rng.choice((1_500, 4_000, 7_000, 14_000, 30_000)) for _ in range(files)]
    for i, size in enumerate(sizes):
        lines, total = [], 0
        while total < size:
            fn = rng.choice(names)
            line = rng.choice((
                f"def {fn}(value, limit=None):",
                f"    result = {rng.choice(names)}(value)  # keeps the order of entries",
                "    if not value:",
                "        return None",
                f"    return {fn}(result)",
                "",
                "    # the cache is checked first because reading the file again is slow",
            ))
            lines.append(line)
            total += len(line) + 1
        (ws / "src" / f"mod_{i}.py").write_text("\n".join(lines) + "\n")
    (ws / "notes.txt").write_text("alpha\nbeta\ngamma\n")
    return ws


async def make_agent(stores: Any, api: FakeAnthropic, workspace: Path, *,
                     settings: Settings | None = None, spill_root: Path | None = None,
                     kind: str = "scoped") -> Agent:
    provider = AnthropicProvider(api_key=api.api_key, base_url=api.base_url,
                                 base_delay=0.01, max_delay=0.05)
    thread = await stores.leon.create_thread(kind)
    agent = Agent(store=stores.leon, provider=provider, tools=ToolRegistry(read_only_tools()),
                  settings=settings or Settings(), thread=thread, workspace=workspace,
                  model=MODEL, spill_root=spill_root)
    await agent.load()
    return agent


def reported(api: FakeAnthropic, index: int) -> int:
    """Total prompt tokens the server counted for request ``index``."""
    return api.count_tokens(api.message_requests()[index]["body"])


def prefix_share(previous: dict[str, Any], current: dict[str, Any]) -> float:
    """The share of ``current``'s prompt bytes that repeat ``previous``'s prefix (the
    part a prompt cache could serve)."""
    a, b = prompt_units(previous), prompt_units(current)
    same = 0
    for x, y in zip(a, b, strict=False):
        if x.digest != y.digest:
            break
        same += y.size
    total = sum(u.size for u in b)
    return same / total if total else 1.0


async def demo_agent(stores: Any, workspace: Path, *, settings: Settings | None = None,
                     spill_root: Path | None = None, thread: Any = None) -> Agent:
    """An agent on the offline demo model (fast: no HTTP)."""
    from leon.llm.demo import DemoProvider

    thread = thread or await stores.leon.create_thread("scoped")
    agent = Agent(store=stores.leon, provider=DemoProvider(), tools=ToolRegistry(
        read_only_tools()), settings=settings or Settings(), thread=thread,
        workspace=workspace, model="demo", spill_root=spill_root)
    await agent.load()
    return agent


# Numbers for the offline compaction tests: a few demo turns fill this window.
TINY = {
    "memory.context_window": 12_000,
    "memory.compaction.reserve_tokens": 1_000,
    "memory.compaction.keep_recent_tokens": 2_500,
    "memory.pruning.min_prune_tokens": 500,
}


class Recording:
    """A provider wrapper that records every request; ``summary`` (when given) answers
    the tool-less compaction calls instead of the wrapped model."""

    name = "recording"
    is_demo = True

    def __init__(self, inner: Any = None, summary: Any = None):
        from leon.llm.demo import DemoProvider

        self.inner = inner or DemoProvider()
        self.summary = summary
        self.requests: list[ModelRequest] = []

    @property
    def summary_requests(self) -> list[ModelRequest]:
        return [r for r in self.requests if not r.tools]

    @property
    def turn_requests(self) -> list[ModelRequest]:
        return [r for r in self.requests if r.tools]

    async def stream(self, request: ModelRequest) -> Any:
        from leon.llm.base import Completed, ModelResponse, Usage

        self.requests.append(request)
        if self.summary is not None and not request.tools:
            text = self.summary(request) if callable(self.summary) else self.summary
            if isinstance(text, Exception):
                raise text
            yield Completed(ModelResponse([{"type": "text", "text": text}], "end_turn",
                                          Usage(1000, len(text) // 4), request.model))
            return
        async for event in self.inner.stream(request):
            yield event


async def recording_agent(stores: Any, workspace: Path, *, settings: dict[str, Any] | None = None,
                          summary: Any = None, spill_root: Path | None = None,
                          thread: Any = None) -> tuple[Agent, Recording]:
    """A demo-model agent whose requests are recorded (offline, fast)."""
    provider = Recording(summary=summary)
    thread = thread or await stores.leon.create_thread("scoped")
    agent = Agent(store=stores.leon, provider=provider, tools=ToolRegistry(read_only_tools()),
                  settings=Settings(dict(TINY, **(settings or {}))), thread=thread,
                  workspace=workspace, model="demo",
                  spill_root=spill_root or workspace.parent / "spill")
    await agent.load()
    return agent, provider


async def fill(agent: Agent, turns: int, start: int = 0) -> None:
    """``turns`` demo turns that each read a workspace file (4 messages per turn)."""
    for i in range(start, start + turns):
        await agent.send(f"read src/mod_{i % 24}.py")
