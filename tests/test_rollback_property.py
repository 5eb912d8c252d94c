"""Property: whatever sequence of edits and rollbacks (with or without files, to earlier,
later or other-branch checkpoints) came before, restoring the files of any checkpoint
gives exactly the files as they were recorded at that checkpoint.

The edits are real write_file calls in real turns (the agent, the real SDK, the local API
server); the expected state is kept by a model of the conversation tree. Deterministic
(derandomized); LEON_PROPERTY_EXAMPLES raises the number of examples for a longer run."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from fakeapi import FakeAnthropic, text, tool_use
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toolrig import make_agent

from leon.paths import Paths
from leon.store import Stores

FILES = ["a.txt", "sub/dir/b.txt", "c.txt"]
INITIAL = {"a.txt": "a0\n"}  # the others do not exist before leon touches them
CONTENTS = ["x\n", "y\n", "z\n", ""]

edit = st.tuples(st.just("edit"), st.lists(st.tuples(st.sampled_from(FILES),
                                                     st.sampled_from(CONTENTS)),
                                           min_size=1, max_size=3))
rollback = st.tuples(st.just("rollback"), st.integers(0, 1000), st.booleans())
scenarios = st.tuples(edit, st.lists(st.one_of(edit, rollback), max_size=6),
                      st.integers(0, 1000))


def on_disk(ws: Path) -> dict[str, str]:
    return {f: (ws / f).read_text() for f in FILES if (ws / f).exists()}


async def play(steps, final: int, root: Path, api: FakeAnthropic) -> None:
    ws = root / "ws"
    ws.mkdir()
    for name, content in INITIAL.items():
        (ws / name).write_text(content)
    paths = Paths(home=root / "home", cache=root / "cache")
    stores = await Stores.open(paths)
    agent = await make_agent(stores, paths, ws, fake_api=api)
    state: dict[int, dict[str, str]] = {}  # checkpoint -> the files as recorded there
    try:
        for step in steps:
            if step[0] == "edit":
                writes = step[1]
                head = await stores.leon.head(agent.thread.id)
                files = dict(state[head.id]) if head else dict(INITIAL)
                newest = max(state, default=0)
                api.script(*[tool_use("write_file", {"path": p, "content": c})
                             for p, c in writes], text("done"))
                await agent.send("write")
                pending = iter(writes)
                for cp in await stores.leon.checkpoints(agent.thread.id):
                    if cp.id <= newest:
                        continue
                    if cp.kind == "tool":  # the results of the next write
                        p, c = next(pending)
                        files[p] = c
                    state[cp.id] = dict(files)
                assert next(pending, None) is None
            else:
                _, pick, with_files = step
                target = sorted(state)[pick % len(state)]
                await agent.rollback(target, files=with_files)
                if with_files:
                    assert on_disk(ws) == state[target], (steps, target)
        target = sorted(state)[final % len(state)]
        plan = await agent.rollback(target, files=True)  # never a conflict: no outside edits
        assert on_disk(ws) == state[target], (steps, target)
        assert not plan.conflicts
        again = await agent.rollback(target, files=True)
        assert again.changes == []
    finally:
        await agent.close()
        await agent.provider.aclose()
        await stores.close()


@settings(max_examples=int(os.environ.get("LEON_PROPERTY_EXAMPLES", "15")), deadline=None,
          derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios)
def test_restore_from_any_head_gives_the_recorded_state(scenario):
    first, steps, final = scenario
    steps = [first, *steps]
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic() as api:
        asyncio.run(play(steps, final, Path(tmp), api))
