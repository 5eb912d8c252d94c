"""Snapshots of the chat screen and the help screen at a fixed size (120x36).

Everything that could differ between runs or machines is pinned: the demo model with no
delay (its replies are byte-for-byte deterministic), fixed LEON_HOME and cache paths
(spill paths are part of what the model sees, so they move the gauge's numbers), a fixed
workspace, a named thread (no date in its title), a fixed clock for the event feed, and
no cursor blink. Update with ``pytest tests/ui/test_chat_snapshots.py --snapshot-update``
after checking the new pictures."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from pilot_helpers import settle, wait_for

SIZE = (120, 36)
ROOT = Path("/tmp/leon-snapshot-tests")
BIG_README = "# snapshot project\n\n" + "".join(
    f"{i:04d}. a line of the project's long README, long enough to be spilled\n"
    for i in range(160))


@pytest.fixture
def snapshot_app(monkeypatch):
    from leon.config import Settings
    from leon.paths import Paths
    from leon.ui.app import make_app

    shutil.rmtree(ROOT, ignore_errors=True)
    workspace = ROOT / "ws"
    workspace.mkdir(parents=True)
    (workspace / "README.md").write_text(BIG_README)
    paths = Paths(home=ROOT / "home", cache=ROOT / "cache")
    monkeypatch.setenv("LEON_HOME", str(paths.home))
    monkeypatch.setenv("LEON_CACHE", str(paths.cache))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    asyncio.run(_thread_with_fixed_id(paths))
    app = make_app(paths, Settings(path=paths.config), thread="snapshot", model="demo",
                   demo_delay=0.0, env={}, workspace=workspace,
                   time_format=lambda ts: "12:00", cursor_blink=False)
    yield app
    shutil.rmtree(ROOT, ignore_errors=True)


async def _thread_with_fixed_id(paths) -> None:
    """The thread id is part of spill paths (and so of token counts): pin it."""
    from leon.store import Stores

    stores = await Stores.open(paths)
    try:
        await stores.leon.create_thread("scoped", name="snapshot", title="snapshot",
                                        model="demo", thread_id="5a5a5a5a5a")
    finally:
        await stores.close()


async def _ready(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.chat.agent is not None, what="the agent")
    await settle(pilot)


async def _chat(pilot) -> None:
    await _ready(pilot)
    chat = pilot.app.chat
    for text in ("read README.md", "hello"):
        chat.prompt.load_text(text)
        await pilot.press("enter")
        await settle(pilot)
    await settle(pilot)


def test_chat_screen(snap_compare, snapshot_app):
    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=_chat)


def test_help_screen(snap_compare, snapshot_app):
    async def open_help(pilot) -> None:
        await _ready(pilot)
        await pilot.press("f1")
        await settle(pilot)

    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=open_help)
