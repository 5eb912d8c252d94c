"""The checkpoint timeline: layout of the checkpoint tree, preview, rollback and roll
forward through the agent, switching to a branch, naming a checkpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pilot_helpers import drain_workers
from textual.app import App
from textual.widgets import Input, Static

from leon.agent.tools import ToolRegistry
from leon.agent.turn import Agent
from leon.config import Settings
from leon.llm.demo import DemoProvider
from leon.store.browse import TimelineEntry
from leon.store.leon_store import LeonStore
from leon.store.models import Checkpoint
from leon.ui.screens.timeline import CheckpointNamed, HeadMoved, TimelineScreen, layout

T0 = 1_780_000_000.0


def text(t: str) -> list[dict]:
    return [{"type": "text", "text": t}]


class Host(App):
    def __init__(self, make_screen):
        super().__init__()
        self.make_screen = make_screen
        self.results: list = []
        self.posted: list = []

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(), self.results.append)

    def on_head_moved(self, m: HeadMoved) -> None:
        self.posted.append(m)

    def on_checkpoint_named(self, m: CheckpointNamed) -> None:
        self.posted.append(m)


async def make_agent(store: LeonStore, thread, tmp: Path) -> Agent:
    """An agent of ``thread`` with its branch loaded, as the chat screen hands over."""
    agent = Agent(store=store, provider=DemoProvider(), tools=ToolRegistry([]),
                  settings=Settings(), thread=thread, workspace=tmp, model="demo")
    await agent.load()
    return agent


async def conversation(store: LeonStore) -> tuple[object, dict[str, int]]:
    """q1, a1 (calls a tool), tool result, a2, q2, a3; then a rollback to a1's tool
    result and a new reply there: a side branch."""
    t = await store.create_thread("scoped", title="Timeline demo", thread_id="tl")
    ck: dict[str, int] = {}
    ck["q1"] = (await store.append_message(t.id, "user", text("How big is the repo?")))[1].id
    ck["a1"] = (await store.append_message(t.id, "assistant", [
        {"type": "text", "text": "Let me count."},
        {"type": "tool_use", "id": "tu1", "name": "bash", "input": {"cmd": "du -sh"}}]))[1].id
    ck["r1"] = (await store.append_message(t.id, "user", [
        {"type": "tool_result", "tool_use_id": "tu1", "content": "12M ."}]))[1].id
    ck["a2"] = (await store.append_message(t.id, "assistant", text("About 12 MB.")))[1].id
    ck["q2"] = (await store.append_message(t.id, "user", text("And the tests?")))[1].id
    ck["a3"] = (await store.append_message(t.id, "assistant", text("Two hundred.")))[1].id
    await store.rollback(t.id, ck["r1"])
    ck["b1"] = (await store.append_message(t.id, "assistant", text("Twelve megabytes.")))[1].id
    await store.rollback(t.id, ck["a3"])   # back on the main line
    for i, cid in enumerate(sorted(ck.values())):
        await store.db.execute("UPDATE checkpoints SET created_at = ? WHERE id = ?",
                               (T0 + 30 * i, cid))
    return await store.get_thread(t.id), ck


def entry(cid: int, parent: int | None) -> TimelineEntry:
    return TimelineEntry(Checkpoint(cid, "t", parent, cid, None, "user", None, 0.0),
                         "user", "complete", f"m{cid}", "", 0)


def test_layout_puts_side_branches_under_their_fork_and_marks_the_head():
    #   1 - 2 - 3 - 4          (head at 3; 4 ahead of it)
    #        \- 5 - 7          (a branch off 2; 7 is its newest step)
    #             \- 6         (an older branch off 5)
    entries = [entry(1, None), entry(2, 1), entry(3, 2), entry(4, 3), entry(5, 2), entry(6, 5),
               entry(7, 5)]
    rows = layout(entries, head_id=3)
    assert [(r.entry.id, r.depth) for r in rows] == [
        (1, 0), (2, 0), (5, 1), (6, 2), (7, 1), (3, 0), (4, 0)]
    assert [r.entry.id for r in rows if r.on_branch] == [1, 2, 3]
    assert [r.entry.id for r in rows if r.head] == [3]
    assert {r.entry.id for r in rows if r.tip} == {4, 6, 7}
    assert {r.entry.id for r in rows if r.fork} == {5, 6}
    # The end of each line: where "go to branch tip" goes.
    ends = {r.entry.id: r.line_end for r in rows}
    assert ends[5] == 7 and ends[6] == 6 and ends[2] == 4 and ends[1] == 4


def test_layout_of_a_long_chain_is_not_recursive():
    entries = [entry(1, None)] + [entry(i, i - 1) for i in range(2, 6001)]
    rows = layout(entries, head_id=6000)
    assert len(rows) == 6000 and rows[-1].head and all(r.depth == 0 for r in rows)


async def test_rollback_and_rollforward_move_the_agents_branch(stores, tmp_path):
    store = stores.leon
    thread, ck = await conversation(store)
    agent = await make_agent(store, thread, tmp_path)
    full = [m.text for m in agent.branch]
    assert full[-1] == "Two hundred."
    app = Host(lambda: TimelineScreen(agent))
    async with app.run_test(size=(130, 32)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        assert screen.rows[screen.option_list.highlighted].head   # starts on the head
        # Select q2 and roll back to it with one key.
        screen.option_list.highlighted = [r.entry.id for r in screen.rows].index(ck["q2"])
        await drain_workers(pilot)
        await pilot.press("enter")
        await drain_workers(pilot)
        assert [m.text for m in agent.branch] == full[:-1]
        assert (await store.head(thread.id)).id == ck["q2"]
        assert screen.rows[screen.option_list.highlighted].head
        # Roll forward with one key.
        await pilot.press("f")
        await drain_workers(pilot)
        assert [m.text for m in agent.branch] == full
        await pilot.press("f")                       # nothing ahead: says so, no move
        await drain_workers(pilot)
        assert (await store.head(thread.id)).id == ck["a3"]
        await pilot.press("escape")
        await drain_workers(pilot)
    assert app.results == [True]
    assert [(m.how, m.checkpoint_id) for m in app.posted] == [
        ("rollback", ck["q2"]), ("rollforward", ck["a3"])]


async def test_a_branch_after_rollback_is_visible_and_can_be_switched_to(stores, tmp_path):
    store = stores.leon
    thread, ck = await conversation(store)
    agent = await make_agent(store, thread, tmp_path)
    app = Host(lambda: TimelineScreen(agent))
    async with app.run_test(size=(130, 32)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        side = next(r for r in screen.rows if r.entry.id == ck["b1"])
        assert side.fork and side.tip and not side.on_branch and side.depth == 1
        assert "branch tip" in str(screen.option_list.get_option(str(ck["b1"])).prompt)
        screen.option_list.highlighted = screen.rows.index(side)
        await drain_workers(pilot)
        await pilot.press("t")
        await drain_workers(pilot)
        assert [m.text for m in agent.branch][-1] == "Twelve megabytes."
        assert (await store.head(thread.id)).id == ck["b1"]
        # Now the old main line is the side branch; its tip is a3.
        old = next(r for r in screen.rows if r.entry.id == ck["a3"])
        assert old.tip and not old.on_branch
        screen.option_list.highlighted = screen.rows.index(
            next(r for r in screen.rows if r.entry.id == ck["a2"]))
        await drain_workers(pilot)
        await pilot.press("t")
        await drain_workers(pilot)
        assert [m.text for m in agent.branch][-1] == "Two hundred."
        await pilot.press("escape")
    assert app.results == [True]


async def test_preview_shows_the_conversation_at_the_checkpoint(stores, tmp_path):
    store = stores.leon
    thread, ck = await conversation(store)
    agent = await make_agent(store, thread, tmp_path)
    app = Host(lambda: TimelineScreen(agent))
    async with app.run_test(size=(130, 32)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        screen.option_list.highlighted = [r.entry.id for r in screen.rows].index(ck["b1"])
        await drain_workers(pilot)
        body = str(screen.query_one("#timeline-preview-body", Static).render())
        assert "Twelve megabytes." in body and "Let me count." in body
        assert "About 12 MB." not in body
        title = str(screen.query_one("#timeline-preview-title", Static).render())
        assert "off the active branch" in title and "4 messages" in title
        await pilot.press("escape")
    assert app.results == [False]          # looked, did not move


async def test_name_a_checkpoint(stores, tmp_path):
    store = stores.leon
    thread, ck = await conversation(store)
    agent = await make_agent(store, thread, tmp_path)
    app = Host(lambda: TimelineScreen(agent))
    async with app.run_test(size=(130, 32)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        screen.option_list.highlighted = [r.entry.id for r in screen.rows].index(ck["a2"])
        await drain_workers(pilot)
        await pilot.press("n")
        box = screen.query_one("#timeline-name", Input)
        assert box.display and box.has_focus
        await pilot.press(*"sized it", "enter")
        await drain_workers(pilot)
        assert (await store.get_checkpoint(thread.id, ck["a2"])).label == "sized it"
        assert "» sized it" in str(screen.option_list.get_option(str(ck["a2"])).prompt)
        assert screen.rows[screen.option_list.highlighted].entry.id == ck["a2"]
        # Escape while naming cancels the naming, not the pane.
        await pilot.press("n", "escape")
        await drain_workers(pilot)
        assert app.screen is screen
    assert [(m.checkpoint_id, m.label) for m in app.posted] == [(ck["a2"], "sized it")]


# -- snapshot -------------------------------------------------------------------------------
class SnapHost(App):
    def __init__(self, path: Path, workspace: Path):
        super().__init__()
        self.path = path
        self.workspace = workspace
        self.store: LeonStore | None = None

    async def on_mount(self) -> None:
        self.store = await LeonStore.open(self.path)
        agent = await make_agent(self.store, await self.store.get_thread("tl"), self.workspace)
        await self.store.label_checkpoint("tl", 2, "counted")
        self.push_screen(TimelineScreen(agent))

    async def on_unmount(self) -> None:
        if self.store is not None:
            await self.store.close()


def test_snapshot_timeline(snap_compare, tmp_path, utc):
    path = tmp_path / "leon.db"

    async def build() -> None:
        store = await LeonStore.open(path)
        await conversation(store)
        await store.close()

    asyncio.run(build())

    async def ready(pilot) -> None:
        await drain_workers(pilot)

    assert snap_compare(SnapHost(path, tmp_path), terminal_size=(120, 24), run_before=ready)


async def test_a_long_timeline_pages_earlier_checkpoints_in(stores, tmp_path, monkeypatch):
    from leon.ui.screens import timeline

    monkeypatch.setattr(timeline, "WINDOW", 10)  # a long thread, in miniature
    store = stores.leon
    t = await store.create_thread("scoped", title="long", thread_id="long")
    ids = [(await store.append_message(t.id, "user" if i % 2 == 0 else "assistant",
                                       text(f"step {i}")))[1].id for i in range(25)]
    agent = await make_agent(store, t, tmp_path)
    app = Host(lambda: TimelineScreen(agent))
    async with app.run_test(size=(130, 32)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        ol = screen.option_list
        assert ol.option_count == 11                  # a marker, then the newest 10 rows
        assert "15 earlier checkpoints" in str(ol.get_option_at_index(0).prompt)
        assert screen._selected().entry.id == ids[-1] and screen._selected().head
        for _ in range(10):                            # up to the marker: 10 more come in
            await pilot.press("up")
        await drain_workers(pilot)
        assert ol.option_count == 21 and "5 earlier" in str(ol.get_option_at_index(0).prompt)
        assert screen._selected().entry.id == ids[14]  # the row just above the old window
        await pilot.press("enter")                     # roll back to it, as anywhere else
        await drain_workers(pilot)
        assert (await store.head(t.id)).id == ids[14]
        assert [m.text for m in agent.branch][-1] == "step 14"
        await pilot.press("escape")
    assert app.results == [True]
