"""Command palette providers: threads found by title or message text, and commands (the
key bindings in force)."""

from __future__ import annotations

from dataclasses import dataclass

from pilot_helpers import drain_workers
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import CommandPalette
from textual.widgets import Static

from leon.ui.messages import ThreadChosen
from leon.ui.palette import BindingCommands, ThreadCommands


def text(t: str) -> list[dict]:
    return [{"type": "text", "text": t}]


@dataclass
class FakeStores:
    leon: object


class Host(App):
    COMMANDS = App.COMMANDS | {ThreadCommands, BindingCommands}
    BINDINGS = [Binding("ctrl+o", "threads", "Threads", id="chat.threads")]

    def __init__(self, stores):
        super().__init__()
        self.stores = stores
        self.opened: list[str] = []
        self.actions: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("chat")

    async def open_thread(self, thread_id: str) -> None:
        self.opened.append(thread_id)

    def action_threads(self) -> None:
        self.actions.append("threads")


async def sample(store) -> None:
    a = await store.create_thread("scoped", title="Refactor the parser", thread_id="parser")
    await store.append_message(a.id, "user", text("split tokens first"))
    b = await store.create_thread("general", title="Groceries", thread_id="zoo")
    await store.append_message(b.id, "user", text("an elephant walked in"))


async def hits(provider, query: str) -> list:
    return [h async for h in provider.search(query)]


async def test_thread_hits_by_title_rank_above_hits_by_text(stores):
    await sample(stores.leon)
    app = Host(FakeStores(stores.leon))
    async with app.run_test() as pilot:
        provider = ThreadCommands(app.screen)
        found = await hits(provider, "eleph")
        assert [h.text for h in found] == ["Open thread: Groceries"]
        assert found[0].help.startswith("general · active · 1 messages")
        found = await hits(provider, "parser")
        assert found[0].text == "Open thread: Refactor the parser" and found[0].score > 0.3
        await found[0].command()
        assert app.opened == ["parser"]
        recent = [h async for h in provider.discover()]
        assert [h.text for h in recent] == ["Open thread: Groceries",
                                            "Open thread: Refactor the parser"]
        await pilot.pause()


async def test_no_stores_yet_finds_nothing(stores):
    app = Host(FakeStores(None))
    app.stores = None
    async with app.run_test():
        provider = ThreadCommands(app.screen)
        assert await hits(provider, "anything") == []
        assert [h async for h in provider.discover()] == []


async def test_without_open_thread_the_app_gets_a_message(stores):
    await sample(stores.leon)

    class Plain(App):
        def __init__(self):
            super().__init__()
            self.stores = FakeStores(stores.leon)
            self.chosen: list[str] = []

        def on_thread_chosen(self, m: ThreadChosen) -> None:
            self.chosen.append(m.thread_id)

    app = Plain()
    async with app.run_test() as pilot:
        found = await hits(ThreadCommands(app.screen), "groceries")
        await found[0].command()
        await pilot.pause()
    assert app.chosen == ["zoo"]


async def test_commands_are_the_bindings_in_force(stores):
    app = Host(FakeStores(stores.leon))
    async with app.run_test() as pilot:
        provider = BindingCommands(app.screen)
        found = await hits(provider, "thre")
        assert [h.text for h in found] == ["Threads"]
        assert found[0].help == "key: ^o"
        await found[0].command()
        assert app.actions == ["threads"]
        await pilot.pause()


async def test_palette_opens_a_thread_end_to_end(stores):
    await sample(stores.leon)
    app = Host(FakeStores(stores.leon))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await drain_workers(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"groceries")
        await drain_workers(pilot)
        await pilot.press("down", "enter")
        await drain_workers(pilot)
    assert app.opened == ["zoo"]
