"""Random conversations for the fit property (tests/test_memory_fit_property.py) and its
bigger run (bench/fit_property.py).

One conversation runs through leon's real :class:`~leon.agent.turn.Agent` and
:class:`~leon.memory.context.ContextManager` (real store, real tools reading real files)
with :class:`ScriptedModel` as the provider. The model follows a script drawn at random
(text replies, tool calls whose results are 0-60 KB, failed calls, interrupted streams;
summaries that are good, fail, leave identifiers out, are empty or too long), and between
turns the user rolls back, pins, compacts by hand and changes memory settings.

Every request the model receives is checked:

* valid for the Messages API (:func:`fakeapi.validate_messages_request`, the strict
  server's own checks: first message from the user, roles alternate, every tool_result
  answers a tool_use of the message before);
* within the window by the local API server's count (:func:`fakeapi.count_input_tokens`,
  bytes / 3.6 — a different tokenizer from leon's, which the model reports as its usage,
  so leon's calibration has to learn it);
* within ``window - reserve_tokens`` by leon's own count (the view's calibrated
  estimate, and a recount from scratch).

``Draw`` hides where the randomness comes from: hypothesis (the property test, which
shrinks a failure to a small script) or ``random.Random`` (the benchmark).
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakeapi import count_input_tokens, tokens_for_bytes, validate_messages_request

from leon.agent import events as ev
from leon.agent.tools import ToolRegistry, read_only_tools
from leon.agent.turn import Agent, TurnError
from leon.config import ConfigError, Settings
from leon.llm.base import (
    Completed,
    ModelResponse,
    ProviderError,
    StreamInterrupted,
    TextDelta,
    ToolUseStarted,
    Usage,
)
from leon.llm.demo_summary import summarise as demo_summary
from leon.memory.count import (
    count_content,
    count_messages,
    count_system,
    count_tools,
    text_bytes,
)

# Files the model reads: sizes from nothing to 60 KB, and three kinds of text that
# tokenize differently (code-like lines, English prose, random hex).
SIZES = {"empty.txt": 0, "tiny.txt": 120, "small.py": 1_000, "mid.log": 5_000,
         "nine.py": 9_000, "twelve.log": 12_000, "thirty.py": 30_000, "sixty.log": 60_000,
         "prose.md": 15_000, "hex.txt": 20_000, "prose_big.md": 45_000}
WORDS = ("the cache keeps the order of entries because reading the file again is slow and "
         "the test fails when the schema version is newer than this build expects so we "
         "check the migration path before the release").split()


def make_files(root: Path, seed: int = 5) -> Path:
    """The workspace the conversations read (made once, read-only afterwards)."""
    rng = random.Random(seed)
    ws = root / "ws"
    ws.mkdir(parents=True, exist_ok=True)
    for name, size in SIZES.items():
        out: list[str] = []
        total = 0
        while total < size:
            if name.startswith("hex"):
                line = "".join(rng.choice("0123456789abcdef") for _ in range(64))
            elif name.startswith("prose"):
                line = " ".join(rng.choice(WORDS) for _ in range(14)).capitalize() + "."
            else:
                fn = f"{rng.choice(['load', 'parse', 'store'])}_{rng.choice(['a', 'b', 'c'])}"
                line = rng.choice((f"def {fn}(value, limit=None):", "    return value",
                                   f"    x = {fn}(value)  # see src/{fn}.py:{rng.randint(1, 99)}"))
            out.append(line)
            total += len(line) + 1
        (ws / name).write_text("\n".join(out)[:size])
    return ws


class Draw:
    """Random choices; subclasses say where they come from."""

    def int(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def choice(self, options: list[Any]) -> Any:
        return options[self.int(0, len(options) - 1)]

    def chance(self, percent: int) -> bool:
        return self.int(0, 99) < percent


class RandomDraw(Draw):
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


class HypothesisDraw(Draw):
    def __init__(self, data: Any):
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def int(self, lo: int, hi: int) -> int:
        return int(self.data.draw(self.st.integers(lo, hi)))


@dataclass
class Stats:
    """What the conversations did, and the largest requests they made."""

    conversations: int = 0
    requests: int = 0
    summary_requests: int = 0
    largest_ratio: float = 0.0          # fake API count / window, over every request
    largest_estimate_ratio: float = 0.0  # leon's estimate / (window - reserve)
    compactions: int = 0
    repaired: int = 0
    identifiers_repaired: int = 0
    compactions_failed: int = 0
    fits: int = 0                       # requests fit left something out of
    messages_dropped: int = 0           # summed over fit events
    results_cleared: int = 0
    refused: int = 0                    # sends refused before the API (too large)
    model_failures: int = 0             # injected failed calls
    rollbacks: int = 0
    turns: int = 0
    largest: dict[str, Any] = field(default_factory=dict)

    def add(self, other: Stats) -> None:
        for name in ("conversations", "requests", "summary_requests", "compactions",
                     "repaired", "identifiers_repaired", "compactions_failed", "fits",
                     "messages_dropped", "results_cleared", "refused", "model_failures",
                     "rollbacks", "turns"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.largest_ratio > self.largest_ratio:
            self.largest_ratio, self.largest = other.largest_ratio, other.largest
        self.largest_estimate_ratio = max(self.largest_estimate_ratio,
                                          other.largest_estimate_ratio)


class ScriptedModel:
    """A provider that answers from a script and checks every request it is sent."""

    name = "scripted"
    is_demo = False

    def __init__(self, rig: Conversation):
        self.rig = rig
        self.calls: list[tuple[str, Any]] = []   # this turn's replies, in order
        self.summary_mode = "good"
        self._n = 0

    async def stream(self, request: Any) -> Any:
        self.rig.check(request)
        body = {"model": request.model, "max_tokens": request.max_tokens,
                "system": request.system, "tools": request.tools,
                "messages": request.messages}
        if not request.tools:
            text = self._summary(request)
            yield Completed(ModelResponse([{"type": "text", "text": text}] if text else [],
                                          "end_turn", self._usage(body, text), request.model))
            return
        kind, arg = self.calls.pop(0) if self.calls else ("text", 40)
        if kind == "fail":
            self.rig.stats.model_failures += 1
            raise ProviderError("overloaded (529)", status=529)
        if kind == "interrupt":
            self.rig.stats.model_failures += 1
            yield TextDelta("I was saying")
            raise StreamInterrupted("the connection dropped",
                                    [{"type": "text", "text": "I was saying"}])
        if kind == "text":
            text = " ".join(WORDS[i % len(WORDS)] for i in range(arg)) or "ok"
            yield TextDelta(text)
            yield Completed(ModelResponse([{"type": "text", "text": text}], "end_turn",
                                          self._usage(body, text), request.model))
            return
        blocks: list[dict[str, Any]] = [{"type": "text", "text": "Reading."}]
        for name in arg:
            self._n += 1
            block = {"type": "tool_use", "id": f"toolu_fit_{self._n:06d}",
                     "name": "read_file", "input": {"path": name}}
            yield ToolUseStarted(block["id"], "read_file")
            blocks.append(block)
        yield Completed(ModelResponse(blocks, "tool_use",
                                      self._usage(body, json.dumps(blocks)), request.model))

    def _summary(self, request: Any) -> str:
        mode = self.summary_mode
        if mode == "fail":
            raise ProviderError("upstream connect error (503)", status=503)
        if mode == "empty":
            return ""
        if mode == "missing":  # a summariser that keeps nothing verbatim
            return "## Goal\nThe user read some files.\n\n## Next step\nContinue.\n"
        prompt = request.messages[0]["content"][0]["text"]
        if mode == "long":
            return prompt * 2
        return demo_summary([{"role": "user", "content": prompt}])

    @staticmethod
    def _usage(body: dict[str, Any], output: str) -> Usage:
        # What the local API server would report: its own tokenizer, not leon's.
        return Usage(input_tokens=count_input_tokens(body),
                     output_tokens=max(1, tokens_for_bytes(len(output.encode()))))


SUMMARY_MODES = ["good", "good", "good", "missing", "missing", "fail", "empty", "long"]


class Conversation:
    """One random conversation, run and checked."""

    def __init__(self, draw: Draw, workspace: Path, max_steps: int = 12, min_steps: int = 6):
        self.draw = draw
        self.workspace = workspace
        self.max_steps = max_steps
        self.min_steps = min(min_steps, max_steps)
        self.stats = Stats(conversations=1)
        self.agent: Agent | None = None
        self.views: list[Any] = []
        self.violations: list[str] = []

    # -- what every request must satisfy ---------------------------------------------------
    def check(self, request: Any) -> None:
        agent = self.agent
        assert agent is not None
        s = agent.memory.snapshot()
        body = {"model": request.model, "max_tokens": request.max_tokens,
                "system": request.system, "tools": request.tools,
                "messages": request.messages}
        try:
            validate_messages_request(body)
        except Exception as exc:  # the strict server's 400, worded like the real API
            self._require(False, f"invalid request: {exc}")
        fake = count_input_tokens(body)
        ratio = fake / s.window
        if ratio > self.stats.largest_ratio:
            self.stats.largest_ratio = ratio
            self.stats.largest = {"tokens": fake, "window": s.window,
                                  "reserve": s.reserve_tokens,
                                  "summary": not request.tools}
        self._require(fake <= s.window, f"request of {fake} tokens (server count) > {s.window}")
        room = s.window - s.reserve_tokens
        if request.tools:
            self.stats.requests += 1
            view = self.views[-1]
            self._require(view.messages == request.messages, "the request is not the view")
            self._require(view.estimate <= view.limit, f"estimate {view.estimate} > limit "
                                                       f"{view.limit}")
            raw = (count_system(request.system) + count_tools(request.tools)
                   + count_messages(request.messages))
            estimate = raw * view.factor
        else:
            self.stats.summary_requests += 1
            text = request.messages[0]["content"][0]["text"]
            raw_parts = {"system": count_system(request.system),
                         "tool_results": count_content([{"type": "text", "text": text}]),
                         "bytes": text_bytes(request.system) + text_bytes(text)}
            estimate = agent.memory.calibration().estimate(raw_parts)
        self.stats.largest_estimate_ratio = max(self.stats.largest_estimate_ratio,
                                                estimate / room)
        self._require(estimate <= room, f"leon's count {estimate:.0f} > window - reserve "
                                        f"{room}{' (a summary call)' if not request.tools else ''}")

    def _require(self, ok: bool, problem: str) -> None:
        """Record a violation and stop the call. Recorded too because leon catches what a
        summary call raises (the compaction fails, as it should), and that must not hide
        it: :meth:`run` fails on any."""
        if not ok:
            self.violations.append(problem)
            raise AssertionError(problem)

    # -- the conversation ------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        d = self.draw
        window = d.choice([6_000, 9_000, 12_000, 20_000, 40_000])
        reserve = d.choice([200, 1_000, 2_000])
        threshold = int(0.7 * (window - reserve))
        hard = d.choice([2_000, 10_000, 60_000])
        return {
            "memory.context_window": window,
            "memory.compaction.reserve_tokens": reserve,
            "memory.compaction.keep_recent_tokens": d.choice(
                [200, threshold // 3, threshold - 1]),
            "memory.compaction.min_messages": d.choice([2, 6, 20]),
            "memory.compaction.enabled": d.chance(75),
            "memory.pruning.trim_tool_results": d.chance(75),
            "memory.pruning.protect_recent": d.choice([0, 1, 3]),
            "memory.pruning.min_prune_tokens": d.choice([0, 500, 5_000]),
            "memory.pruning.soft_trim_chars": min(hard, 3_000),
            "memory.pruning.hard_clear_threshold": hard,
            "memory.spill.threshold_chars": d.choice([h for h in (2_000, 10_000, 60_000)
                                                      if h <= hard]),
        }

    async def run(self, root: Path) -> Stats:
        from leon.paths import Paths
        from leon.store import Stores

        stores = await Stores.open(Paths(home=root / "home", cache=root / "cache"))
        try:
            thread = await stores.leon.create_thread("scoped")
            model = ScriptedModel(self)
            agent = Agent(store=stores.leon, provider=model,
                          tools=ToolRegistry(read_only_tools()),
                          settings=Settings(self._settings()), thread=thread,
                          workspace=self.workspace, model="claude-sonnet-4-6",
                          spill_root=root / "spill")
            self.agent = agent
            await agent.load()
            self._spy(agent)
            agent.subscribe(self._event)
            for _ in range(self.draw.int(self.min_steps, self.max_steps)):
                await self._step(agent, model, stores)
        finally:
            await stores.close()
        assert not self.violations, self.violations[0]
        return self.stats

    def _spy(self, agent: Agent) -> None:
        prepare = agent.memory.prepare

        async def spy(*args: Any, **kwargs: Any) -> Any:
            view = await prepare(*args, **kwargs)
            self.views.append(view)
            return view

        agent.memory.prepare = spy  # type: ignore[method-assign]

    def _event(self, event: Any) -> None:
        if not isinstance(event, ev.MemoryEvent):
            return
        d, st = event.data, self.stats
        if event.event == "compact":
            st.compactions += 1
            if d.get("identifiers_repaired"):
                st.repaired += 1
                st.identifiers_repaired += d["identifiers_repaired"]
        elif event.event == "compact_rejected":
            st.compactions_failed += 1
        elif event.event == "fit":
            st.fits += 1
            st.messages_dropped += d.get("messages_dropped", 0)
            st.results_cleared += d.get("results_cleared", 0)

    async def _step(self, agent: Agent, model: ScriptedModel, stores: Any) -> None:
        d = self.draw
        action = d.choice(["send"] * 6 + ["rollback", "pin", "compact", "set"])
        model.summary_mode = d.choice(SUMMARY_MODES)
        if action == "rollback":
            checkpoints = await stores.leon.checkpoints(agent.thread.id)
            if checkpoints:
                self.stats.rollbacks += 1
                await agent.rollback(d.choice(checkpoints).id)
            return
        if action == "pin":
            if agent.branch:
                await agent.pin(d.choice(agent.branch).id, d.chance(80))
            return
        if action == "compact":
            await agent.compact()  # may fail (the summary call): history stays
            return
        if action == "set":
            key, values = d.choice([
                ("memory.context_window", [6_000, 9_000, 12_000, 40_000]),
                ("memory.compaction.enabled", [True, False]),
                ("memory.compaction.min_messages", [2, 20]),
                ("memory.pruning.trim_tool_results", [True, False]),
                ("memory.compaction.reserve_tokens", [200, 2_000])])
            try:
                agent.settings.set(key, d.choice(values))
            except ConfigError:
                pass  # a combination the rules refuse: leon said so, nothing changed
            return
        self.stats.turns += 1
        calls: list[tuple[str, Any]] = []
        for _ in range(d.int(0, 3)):
            calls.append(("tools", [d.choice(list(SIZES)) for _ in range(d.int(1, 3))]))
        if d.chance(10):
            calls.insert(d.int(0, len(calls)), (d.choice(["fail", "interrupt"]), None))
        calls.append(("text", d.int(0, 400)))
        model.calls = calls
        size = d.choice([5, 40, 400, 4_000, 30_000])
        text = " ".join(WORDS[i % len(WORDS)] for i in range(size // 5 + 1)) + \
            f" (see src/pkg_{d.int(0, 99)}/mod.py)"
        try:
            await agent.send(text)
        except TurnError as exc:
            message = str(exc)
            refused = ("does not fit" in message or "too big" in message
                       or "alone take" in message)
            assert refused or "overloaded" in message or "cut off" in message, message
            self.stats.refused += refused


async def run_one(draw: Draw, workspace: Path, max_steps: int = 12) -> Stats:
    """One conversation in a fresh home (removed afterwards)."""
    root = Path(tempfile.mkdtemp(prefix="leon-fit-"))
    try:
        return await Conversation(draw, workspace, max_steps).run(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
