"""The spill pane: listing a thread's spilled outputs, highlighting, search inside one,
the pager, and a preselected file."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from pilot_helpers import drain_workers
from textual.app import App
from textual.widgets import Input, Static

from leon.paths import Paths
from leon.store.browse import spill_records
from leon.store.db import Database, open_database
from leon.store.leon_store import LeonStore
from leon.ui.screens import spill as spill_mod
from leon.ui.screens.spill import SpillScreen, pager_command
from leon.ui.screens.spill_view import clean_text, find_matches

T0 = 1_780_000_000.0

PY = "import os\n\n\ndef where():\n    # the working directory\n    return os.getcwd()\n"
LOG = "".join(f"step {i}: {'ERROR disk full' if i % 50 == 7 else 'ok'}\n" for i in range(400))


class Host(App):
    def __init__(self, make_screen):
        super().__init__()
        self.make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen())


def spill_files(paths: Paths, thread_id: str) -> dict[str, Path]:
    d = paths.spill_dir(thread_id)
    d.mkdir(parents=True, exist_ok=True)
    files = {"py": d / "toolu_01-read_file.py", "log": d / "toolu_02-bash.txt"}
    files["py"].write_text(PY * 40)
    files["log"].write_text(LOG)
    os.utime(files["py"], (T0, T0))
    os.utime(files["log"], (T0 + 60, T0 + 60))
    return files


async def add_spill_row(store: LeonStore, thread_id: str, path: Path, tool: str) -> bool:
    """Record the file in the memory layer's spills table, when this database has one."""
    cols = {r["name"] for r in await store.db.fetchall("PRAGMA table_info(spills)")}
    if not cols:
        return False
    values = {"thread_id": thread_id, "tool_use_id": path.stem, "tool_name": tool,
              "path": str(path), "bytes": path.stat().st_size, "chars": path.stat().st_size,
              "lines": 1, "created_at": T0}
    use = {k: v for k, v in values.items() if k in cols}
    await store.db.execute(
        f"INSERT INTO spills ({', '.join(use)}) VALUES ({', '.join('?' * len(use))})",
        tuple(use.values()))
    return True


# -- pieces ---------------------------------------------------------------------------------
def test_clean_text_and_matches():
    # the whole colour sequence goes (not just its ESC); a bare CR is a line end
    assert clean_text("a\r\nb\tc\x1b[31mred\x1b[0m\rx\x07") == "a\nb   cred\nx\ufffd"
    lines = ["Error here", "no", "an error and ERROR"]
    assert [(m.line, m.start) for m in find_matches(lines, "error")] == [(0, 0), (2, 3), (2, 13)]
    assert find_matches(lines, "") == []
    assert find_matches(lines, "(") == []        # taken literally, not as a regex


def test_pager_command_uses_pager_env(tmp_path):
    f = tmp_path / "out.txt"
    assert pager_command(f, {"PAGER": "less -R"}) == ["less", "-R", str(f)]
    assert pager_command(f, {}) == ["less", str(f)]


async def test_spill_records_map_whatever_columns_the_table_has(tmp_path):
    conn = await open_database(tmp_path / "x.db", "x", [
        "CREATE TABLE spills (id INTEGER PRIMARY KEY, thread_id TEXT, file_path TEXT,"
        " name TEXT, size INTEGER, created_at REAL, preview TEXT);"])
    db = Database(conn, tmp_path / "x.db")
    await db.execute("INSERT INTO spills (thread_id, file_path, name, size, created_at, preview)"
                     " VALUES ('t', '/a/b.txt', 'grep', 12, 1.0, 'line one\nline two')")
    recs = await spill_records(db, "t")
    assert [(r.path, r.tool, r.size, r.note) for r in recs] == [
        ("/a/b.txt", "grep", 12, "line one line two")]
    assert await spill_records(db, "other") == []
    await db.close()
    conn = await open_database(tmp_path / "y.db", "y", ["CREATE TABLE unrelated (x);"])
    db = Database(conn, tmp_path / "y.db")
    assert await spill_records(db, "t") == []     # no spills table: nothing, no error
    await db.close()


# -- the pane -------------------------------------------------------------------------------
async def test_lists_the_threads_spills_newest_first_with_metadata(stores, leon_paths):
    store = stores.leon
    t = await store.create_thread("scoped", thread_id="sp")
    files = spill_files(leon_paths, t.id)
    has_table = await add_spill_row(store, t.id, files["log"], "bash")
    other = leon_paths.spill_dir("elsewhere")
    other.mkdir(parents=True)
    (other / "not-mine.txt").write_text("x")
    app = Host(lambda: SpillScreen(store, leon_paths, t.id))
    async with app.run_test(size=(120, 30)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        assert [f.path.name for f in screen.files] == [files["log"].name, files["py"].name]
        if has_table:
            assert screen.files[0].tool == "bash"
            assert "bash" in str(screen.option_list.get_option_at_index(0).prompt)
        # The newest is shown first, as plain text.
        assert screen.shown.path == files["log"]
        assert screen.view.plain[7] == "step 7: ERROR disk full"
        info = str(screen.query_one("#spill-info", Static).render())
        assert info.startswith("2 spilled outputs")


async def test_preselected_path_opens_highlighted(stores, leon_paths):
    store = stores.leon
    t = await store.create_thread("scoped", thread_id="sp")
    files = spill_files(leon_paths, t.id)
    app = Host(lambda: SpillScreen(store, leon_paths, t.id, path=str(files["py"])))
    async with app.run_test(size=(120, 30)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        assert screen.shown.path == files["py"]
        assert screen.language == "python"
        assert app.focused is screen.view
        assert screen.view.lines[0].spans            # highlighted, not plain
        title = str(screen.query_one("#spill-title", Static).render())
        assert "python" in title and "240 lines" in title


async def test_search_inside_with_next_and_previous(stores, leon_paths):
    store = stores.leon
    t = await store.create_thread("scoped", thread_id="sp")
    files = spill_files(leon_paths, t.id)
    app = Host(lambda: SpillScreen(store, leon_paths, t.id, path=str(files["log"])))
    async with app.run_test(size=(120, 20)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        view = screen.view
        await pilot.press("slash", *"error")
        await drain_workers(pilot)
        assert [m.line for m in view.matches] == [7, 57, 107, 157, 207, 257, 307, 357]
        assert view.current == 0
        info = screen.query_one("#spill-info", Static)
        assert "match 1 of 8" in str(info.render())
        await pilot.press("enter")                    # Enter in the box: next match
        await drain_workers(pilot)
        assert view.current == 1
        assert view.scroll_offset.y <= 57 < view.scroll_offset.y + view.size.height
        view.focus()
        await pilot.press("n", "n")
        await drain_workers(pilot)
        assert view.current == 3 and "match 4 of 8" in str(info.render())
        await pilot.press("N")
        assert view.current == 2
        for _ in range(3):
            await pilot.press("N")
        assert view.current == 7                       # wraps around
        assert view.scroll_offset.y <= 357 < view.scroll_offset.y + view.size.height
        screen.query_one("#spill-search", Input).value = "nothing like this"
        await drain_workers(pilot)
        assert view.matches == [] and "not found" in str(info.render())


async def test_pager_hands_over_the_terminal(stores, leon_paths, monkeypatch):
    store = stores.leon
    t = await store.create_thread("scoped", thread_id="sp")
    files = spill_files(leon_paths, t.id)
    ran: list[list[str]] = []
    monkeypatch.setenv("PAGER", "most -s")
    monkeypatch.setattr(spill_mod.subprocess, "run", lambda cmd, check: ran.append(cmd))
    app = Host(lambda: SpillScreen(store, leon_paths, t.id, path=str(files["py"])))
    async with app.run_test(size=(120, 30)) as pilot:
        await drain_workers(pilot)
        # Headless, the app cannot suspend: the user is told where the file is.
        await pilot.press("p")
        await drain_workers(pilot)
        assert ran == []
        assert any("cannot hand over" in n.message for n in app._notifications)
        # Where it can, the pager gets the file.
        monkeypatch.setattr(app, "suspend", contextlib.nullcontext)
        await pilot.press("p")
        await drain_workers(pilot)
        assert ran == [["most", "-s", str(files["py"])]]


async def test_a_thread_without_spills_says_so(stores, leon_paths):
    store = stores.leon
    t = await store.create_thread("scoped", thread_id="sp")
    app = Host(lambda: SpillScreen(store, leon_paths, t.id, path="/nonexistent/file.txt"))
    async with app.run_test(size=(120, 30)) as pilot:
        await drain_workers(pilot)
        screen = app.screen
        assert screen.files == []
        assert "No spilled outputs" in str(screen.query_one("#spill-info", Static).render())
        await pilot.press("p", "n", "N")              # nothing shown: no error
        await pilot.press("escape")
        await drain_workers(pilot)
        assert not isinstance(app.screen, SpillScreen)


# -- snapshot -------------------------------------------------------------------------------
class SnapHost(App):
    def __init__(self, paths: Paths, path: Path):
        super().__init__()
        self.paths = paths
        self.path = path
        self.store: LeonStore | None = None

    async def on_mount(self) -> None:
        self.store = await LeonStore.open(self.paths.leon_db)
        self.push_screen(SpillScreen(self.store, self.paths, "sp", path=str(self.path)))

    async def on_unmount(self) -> None:
        if self.store is not None:
            await self.store.close()


def test_snapshot_spill_pane(snap_compare, tmp_path, utc):
    paths = Paths(home=tmp_path / "home", cache=tmp_path / "cache")
    paths.ensure()

    async def build() -> None:
        store = await LeonStore.open(paths.leon_db)
        await store.create_thread("scoped", thread_id="sp")
        await store.close()

    asyncio.run(build())
    files = spill_files(paths, "sp")

    async def ready(pilot) -> None:
        await drain_workers(pilot)
        screen = pilot.app.screen
        for box in screen.query(Input):
            box.cursor_blink = False
        screen.query_one("#spill-search", Input).value = "getcwd"
        await drain_workers(pilot)
        # The directory differs per run; the info line would too.
        screen.query_one("#spill-info", Static).update("search: getcwd")
        await pilot.pause()

    app = SnapHost(paths, files["py"])
    assert snap_compare(app, terminal_size=(110, 24), run_before=ready)
