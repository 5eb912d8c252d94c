"""The thread browser: paging from the database, FTS search as you type, filters, rename,
archive, delete with confirmation, open; and the search SQL under it."""

from __future__ import annotations

import asyncio

import pytest
from pilot_helpers import drain_workers
from textual.app import App
from textual.widgets import Input, Select

from leon.store.leon_store import LeonStore
from leon.store.search import fts_query
from leon.ui.screens.confirm import ConfirmScreen
from leon.ui.screens.threads import (
    ThreadArchived,
    ThreadBrowserScreen,
    ThreadDeleted,
    ThreadRenamed,
)

T0 = 1_780_000_000.0  # a fixed moment (2026-05-28 UTC), so snapshots never change


def text(t: str) -> list[dict]:
    return [{"type": "text", "text": t}]


class Host(App):
    """Pushes one screen and records what it dismisses with and what it posts."""

    def __init__(self, make_screen):
        super().__init__()
        self.make_screen = make_screen
        self.results: list = []
        self.posted: list = []

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(), self.results.append)

    def on_thread_renamed(self, m: ThreadRenamed) -> None:
        self.posted.append(m)

    def on_thread_archived(self, m: ThreadArchived) -> None:
        self.posted.append(m)

    def on_thread_deleted(self, m: ThreadDeleted) -> None:
        self.posted.append(m)


@pytest.fixture(autouse=True)
def no_debounce(monkeypatch):
    monkeypatch.setattr(ThreadBrowserScreen, "DEBOUNCE", 0)


async def bulk_threads(store: LeonStore, n: int, *, kind: str = "scoped") -> None:
    rows = [(f"t{i:05d}", f"Bulk thread {i}", kind, "active", T0 + i, T0 + i) for i in range(n)]
    async with store.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO threads (id, title, kind, status, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?)", rows)


async def sample(store: LeonStore) -> dict[str, str]:
    """A few threads with known titles, texts, kinds and times."""
    ids = {}
    specs = [
        ("parser", "Refactor the parser", "scoped", "Split tokens before parsing", None),
        ("zoo", "Groceries", "general", "an elephant walked in", "zebra in a tool result"),
        ("old", "Archived musings", "scoped", "nothing much", None),
        ("sub", "Reviewer run", "subagent", "checked the diff", None),
    ]
    for i, (tid, title, kind, said, tool_out) in enumerate(specs):
        t = await store.create_thread(kind, title=title, thread_id=tid)
        await store.append_message(t.id, "user", text(said))
        if tool_out:
            await store.append_message(t.id, "assistant", [
                {"type": "tool_use", "id": "tu1", "name": "bash", "input": {"cmd": "ls"}}])
            await store.append_message(t.id, "user", [
                {"type": "tool_result", "tool_use_id": "tu1", "content": tool_out}])
        ids[tid] = t.id
        await store.db.execute("UPDATE threads SET created_at = ?, updated_at = ? WHERE id = ?",
                               (T0 + 60 * i, T0 + 60 * i, t.id))
    await store.update_thread("old", status="archived")
    await store.db.execute("UPDATE threads SET updated_at = ? WHERE id = 'old'", (T0 + 120,))
    return ids


# -- the search SQL -------------------------------------------------------------------------
def test_fts_query_quotes_words_and_prefixes_the_last():
    assert fts_query("") is None
    assert fts_query("  !! ") is None
    assert fts_query("pars") == '"pars"*'
    assert fts_query("refactor pars") == '"refactor" "pars"*'
    assert fts_query("done ") == '"done"'          # a finished word matches whole
    assert fts_query("a") == '"a"'                  # one letter never as a prefix
    assert fts_query('NEAR(x y) OR "-z') == '"NEAR" "x" "y" "OR" "z"'


async def test_search_finds_titles_and_message_text_but_not_tool_results(stores):
    store = stores.leon
    await sample(store)
    assert [t.id for t in await store.search_threads("parser")] == ["parser"]
    assert [t.id for t in await store.search_threads("eleph")] == ["zoo"]
    assert [t.id for t in await store.search_threads("zebra")] == []   # tool output
    assert [t.id for t in await store.search_threads("split tok")] == ["parser"]
    assert await store.search_threads("NEAR(") == []   # FTS syntax is taken literally
    assert [t.id for t in await store.search_threads("", kind="subagent")] == ["sub"]
    assert [t.id for t in await store.search_threads("", status="archived")] == ["old"]
    with pytest.raises(ValueError):
        await store.search_threads("", kind="nope")


async def test_search_index_follows_renames_edits_and_deletes(stores):
    store = stores.leon
    await sample(store)
    await store.update_thread("parser", title="Lexer work")
    assert await store.search_threads("parser") == []
    assert [t.id for t in await store.search_threads("lexer")] == ["parser"]
    draft = await store.start_draft("zoo")
    await store.update_draft(draft, text("a giraffe appears"))
    await store.finish_draft(draft, text("a giraffe appeared"))
    assert [t.id for t in await store.search_threads("giraffe")] == ["zoo"]
    await store.delete_thread("zoo")
    assert await store.search_threads("eleph") == []
    await store.db.execute("INSERT INTO message_fts (message_fts) VALUES ('integrity-check')")


# -- the screen -----------------------------------------------------------------------------
async def test_pages_from_the_database_not_all_threads(stores):
    store = stores.leon
    await bulk_threads(store, 620)
    fetched: list[int] = []
    real = store.search_threads

    async def spy(*args, **kwargs):
        page = await real(*args, **kwargs)
        fetched.append(len(page))
        return page

    store.search_threads = spy  # type: ignore[method-assign]
    app = Host(lambda: ThreadBrowserScreen(store))
    async with app.run_test(size=(110, 30)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        assert isinstance(screen, ThreadBrowserScreen)
        page = ThreadBrowserScreen.PAGE_SIZE
        assert fetched == [page] and screen.rows_fetched == page
        assert screen.option_list.option_count == page
        assert screen.threads[0].title == "Bulk thread 619"      # newest first
        assert "100 of 620 threads loaded" in str(screen.query_one("#threads-info").render())
        # Moving near the end of what is loaded fetches exactly one more page.
        await pilot.press("end")
        await drain_workers(pilot)
        assert fetched == [page, page]
        assert screen.option_list.option_count == 2 * page
        for _ in range(10):
            await pilot.press("end")
            await drain_workers(pilot)
        assert screen.exhausted and screen.option_list.option_count == 620
        assert screen.threads[-1].title == "Bulk thread 0"


async def test_search_as_you_type_filters_the_list(stores):
    store = stores.leon
    await sample(store)
    app = Host(lambda: ThreadBrowserScreen(store))
    async with app.run_test(size=(110, 30)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        assert [t.id for t in screen.threads] == ["sub", "old", "zoo", "parser"]
        await pilot.press("slash", *"eleph")
        await drain_workers(pilot)
        assert [t.id for t in screen.threads] == ["zoo"]
        await pilot.press(*["backspace"] * 5, *"refactor")
        await drain_workers(pilot)
        assert [t.id for t in screen.threads] == ["parser"]
        await pilot.press(*["backspace"] * 8, *"zebra")
        await drain_workers(pilot)
        assert screen.threads == []
        assert "No thread matches" in str(screen.query_one("#threads-info").render())
        # Enter in the search box opens the first match.
        await pilot.press(*["backspace"] * 5, *"groceries")
        await drain_workers(pilot)
        await pilot.press("enter")
        await drain_workers(pilot)
    assert app.results == ["zoo"]


async def test_kind_and_status_filters(stores):
    store = stores.leon
    await sample(store)
    app = Host(lambda: ThreadBrowserScreen(store))
    async with app.run_test(size=(110, 30)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        screen.query_one("#threads-kind", Select).value = "scoped"
        await drain_workers(pilot)
        assert [t.id for t in screen.threads] == ["old", "parser"]
        screen.query_one("#threads-status", Select).value = "active"
        await drain_workers(pilot)
        assert [t.id for t in screen.threads] == ["parser"]
        # The k key cycles the kind filter from the list.
        screen.query_one("#threads-status", Select).value = ""
        screen.option_list.focus()
        await pilot.press("k")
        await drain_workers(pilot)
        assert screen.kind == "subagent"
        assert [t.id for t in screen.threads] == ["sub"]


async def test_rename_inline(stores):
    store = stores.leon
    await sample(store)
    app = Host(lambda: ThreadBrowserScreen(store))
    async with app.run_test(size=(110, 30)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        await pilot.press("down", "down", "r")     # "zoo" (Groceries)
        box = screen.query_one("#threads-rename", Input)
        assert box.display and box.has_focus and box.value == "Groceries"
        box.value = ""
        await pilot.press(*"Shopping list", "enter")
        await drain_workers(pilot)
        assert (await store.get_thread("zoo")).title == "Shopping list"
        assert not box.display
        assert "Shopping list" in str(screen.option_list.get_option("zoo").prompt)
        assert [t.id for t in await store.search_threads("shopping")] == ["zoo"]
        # Escape cancels a rename without closing the browser.
        await pilot.press("r", "x", "escape")
        await drain_workers(pilot)
        assert (await store.get_thread("zoo")).title == "Shopping list"
        assert app.screen is screen
    assert [type(m) for m in app.posted] == [ThreadRenamed]
    assert app.posted[0].title == "Shopping list"


async def test_archive_and_restore(stores):
    store = stores.leon
    await sample(store)
    app = Host(lambda: ThreadBrowserScreen(store))
    async with app.run_test(size=(110, 30)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        await pilot.press("down", "down", "a")      # archive "zoo"
        await drain_workers(pilot)
        assert (await store.get_thread("zoo")).status == "archived"
        await pilot.press("a")                      # and restore it
        await drain_workers(pilot)
        assert (await store.get_thread("zoo")).status == "active"
        # With the "active" filter on, archiving removes the row.
        screen.query_one("#threads-status", Select).value = "active"
        await drain_workers(pilot)
        before = [t.id for t in screen.threads]
        screen.option_list.focus()
        screen.option_list.highlighted = before.index("zoo")
        await pilot.press("a")
        await drain_workers(pilot)
        assert [t.id for t in screen.threads] == [i for i in before if i != "zoo"]
    assert [(m.thread_id, m.archived) for m in app.posted] == [
        ("zoo", True), ("zoo", False), ("zoo", True)]


async def test_delete_asks_first_and_never_deletes_the_open_thread(stores):
    store = stores.leon
    await sample(store)
    app = Host(lambda: ThreadBrowserScreen(store, current_thread_id="sub"))
    async with app.run_test(size=(110, 30)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        await pilot.press("d")                      # "sub" is the open thread
        await drain_workers(pilot)
        assert app.screen is screen
        await pilot.press("down", "d")              # "old"
        await drain_workers(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await drain_workers(pilot)
        assert app.screen is screen
        assert (await store.get_thread("old")).id == "old"
        await pilot.press("d")
        await drain_workers(pilot)
        await pilot.press("y")
        await drain_workers(pilot)
        assert app.screen is screen
        assert [t.id for t in await store.search_threads("")] == ["sub", "zoo", "parser"]
        assert [t.id for t in screen.threads] == ["sub", "zoo", "parser"]
        # Enter on the confirmation's focused button is the safe answer.
        await pilot.press("d")
        await drain_workers(pilot)
        await pilot.press("enter")
        await drain_workers(pilot)
        assert len(await store.search_threads("")) == 3
    assert [m.thread_id for m in app.posted] == ["old"]


async def test_delete_in_the_app_archives_and_removes_everywhere(stores, leon_paths):
    store = stores.leon
    await sample(store)
    spill = leon_paths.spill_dir("old")
    spill.mkdir(parents=True)
    (spill / "out.txt").write_text("big output")
    app = Host(lambda: ThreadBrowserScreen(store))
    app.stores, app.paths = stores, leon_paths      # what the real app has
    async with app.run_test(size=(110, 30)) as pilot:
        await drain_workers(pilot)
        await pilot.press("down", "d")              # "old"
        await drain_workers(pilot)
        assert "leon threads restore old" in str(
            app.screen.query_one("#confirm-question").render())
        await pilot.press("y")
        await drain_workers(pilot)
        assert [t.id for t in app.screen.threads] == ["sub", "zoo", "parser"]
    assert [t.id for t in await store.search_threads("")] == ["sub", "zoo", "parser"]
    assert not spill.exists()
    assert list(leon_paths.archive.glob("*old*"))
    gc = await store.db.fetchall("SELECT data FROM events WHERE kind = 'gc'")
    assert len(gc) == 1 and "thread browser" in gc[0]["data"]


async def test_open_and_close(stores):
    store = stores.leon
    await sample(store)
    app = Host(lambda: ThreadBrowserScreen(store))
    async with app.run_test(size=(110, 30)) as pilot:
        await drain_workers(pilot)
        await pilot.press("down", "enter")
        await drain_workers(pilot)
        app.push_screen(ThreadBrowserScreen(store), app.results.append)
        await drain_workers(pilot)
        await pilot.press("escape")
        await drain_workers(pilot)
    assert app.results == ["old", None]


async def test_empty_home_says_so(stores):
    app = Host(lambda: ThreadBrowserScreen(stores.leon))
    async with app.run_test(size=(110, 30)) as pilot:
        await drain_workers(pilot)
        assert "No threads yet" in str(app.screen.query_one("#threads-info").render())
        await pilot.press("r", "a", "d", "enter")   # nothing to act on: no error
        await drain_workers(pilot)
        assert isinstance(app.screen, ThreadBrowserScreen)


# -- snapshot -------------------------------------------------------------------------------
class SnapHost(App):
    """Opens the store inside the app's own loop (snap_compare runs its own)."""

    def __init__(self, path, make_screen):
        super().__init__()
        self.path = path
        self.make_screen = make_screen
        self.store: LeonStore | None = None

    async def on_mount(self) -> None:
        self.store = await LeonStore.open(self.path)
        self.push_screen(self.make_screen(self.store))

    async def on_unmount(self) -> None:
        if self.store is not None:
            await self.store.close()


def test_snapshot_thread_browser(snap_compare, tmp_path, utc):
    path = tmp_path / "leon.db"

    async def build() -> None:
        store = await LeonStore.open(path)
        await sample(store)
        await store.close()

    asyncio.run(build())

    async def ready(pilot) -> None:
        await drain_workers(pilot)
        for box in pilot.app.screen.query(Input):
            box.cursor_blink = False
        await pilot.pause()

    app = SnapHost(path, lambda store: ThreadBrowserScreen(store, current_thread_id="zoo"))
    assert snap_compare(app, terminal_size=(100, 24), run_before=ready)
