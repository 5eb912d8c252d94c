"""The spill pane: the tool outputs of a thread that were too large for the context and
went to files, listed, shown with syntax highlighting, searched, and opened in ``$PAGER``.

The files are those under ``paths.spill_dir(thread_id)``; where the memory layer's
``spills`` table knows a file, its tool and size are shown with it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.containers import Horizontal, Vertical
from textual.highlight import guess_language, highlight
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from leon.paths import PathError, Paths, confine, same_path
from leon.store.leon_store import LeonStore
from leon.textsafe import clean, one_line
from leon.ui.pane_keys import pane_bindings
from leon.ui.screens.spill_view import SpillView, clean_text
from leon.units import human_size

MAX_BYTES = 8 * 1024 * 1024         # larger files show their start; the pager shows all
MAX_HIGHLIGHT_BYTES = 1024 * 1024   # larger files are shown plain (Pygments is ~1 MB/s)


@dataclass
class SpillFile:
    """One spilled output as the pane lists it."""

    path: Path
    size: int
    modified: float
    tool: str = ""
    note: str = ""


async def list_spills(store: LeonStore, paths: Paths, thread_id: str) -> list[SpillFile]:
    """The thread's spill files, newest first, with what the database knows of each."""
    import asyncio

    root = paths.spill_dir(thread_id)
    try:
        # A row may name its file absolutely or relative to the thread's spill directory.
        records = {str((root / r.path).resolve()): r
                   for r in await store.spill_records(thread_id)}
    except Exception:  # an older database without the table, or a damaged one
        records = {}

    def scan() -> list[SpillFile]:
        found: list[SpillFile] = []
        if root.is_dir():
            for p in root.rglob("*"):
                try:
                    if p.is_symlink() or not p.is_file():  # a link is not leon's: not read
                        continue
                    st = p.stat()
                except OSError:
                    continue
                rec = records.get(str(p.resolve()))
                found.append(SpillFile(p, st.st_size, st.st_mtime,
                                       rec.tool if rec else "", rec.note if rec else ""))
        found.sort(key=lambda f: (f.modified, str(f.path)), reverse=True)
        return found

    return await asyncio.to_thread(scan)


def spill_prompt(f: SpillFile) -> str:
    when = time.strftime("%m-%d %H:%M", time.localtime(f.modified))
    first = one_line(f.path.name)
    second = f"  {human_size(f.size)} · {when}" + (f" · {one_line(f.tool)}" if f.tool else "")
    return f"{first}\n{second}"


def pager_command(path: Path, env: dict[str, str] | None = None) -> list[str]:
    """``$PAGER`` (default ``less``) with the file as its last argument."""
    env = dict(os.environ) if env is None else env
    pager = env.get("PAGER", "").strip() or "less"
    return [*shlex.split(pager), str(path)]


def run_pager(app: App[Any], path: Path) -> str | None:
    """Hand the terminal to the pager and take it back. Returns a problem to show, or None."""
    command = pager_command(path)
    try:
        with app.suspend():
            subprocess.run(command, check=False)
    except SuspendNotSupported:
        return "This terminal cannot hand over to a pager; the file is at " + str(path)
    except FileNotFoundError:
        return f"Pager {command[0]!r} not found (set $PAGER); the file is at {path}"
    except OSError as exc:
        return f"Could not run {command[0]!r}: {exc}"
    return None


def own_spill_file(paths: Paths, thread_id: str, path: str | None) -> Path | None:
    """``path`` if it names a file directly in this thread's spill directory, checked by
    :mod:`leon.paths`; else None. (It may come from a tool output in the transcript —
    outside input in an imported thread — which can name anything.)"""
    if not path:
        return None
    p = Path(path).expanduser()
    try:
        mine = confine(paths.cache, "spill", paths.spill_dir(thread_id).name, p.name)
    except PathError:
        return None
    return p if same_path(p, mine) else None


def read_spill(path: Path) -> tuple[str, bool]:
    """The file's text (undecodable bytes replaced) and whether it was cut at MAX_BYTES."""
    with open(path, "rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    cut = len(raw) > MAX_BYTES
    return clean_text(raw[:MAX_BYTES].decode("utf-8", errors="replace")), cut


class SpillScreen(ModalScreen[None]):
    """List a thread's spilled outputs and read one."""

    CSS_PATH = "spill.tcss"
    BINDINGS = pane_bindings("spill")

    def __init__(self, store: LeonStore, paths: Paths, thread_id: str,
                 path: str | None = None) -> None:
        super().__init__()
        self.store = store
        self.paths = paths
        self.thread_id = thread_id
        self.preselect = own_spill_file(paths, thread_id, path)
        self.files: list[SpillFile] = []
        self.shown: SpillFile | None = None
        self.language: str = "text"
        self.truncated = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="spill-body"):
            with Vertical(id="spill-left"):
                yield OptionList(id="spill-list", markup=False)
            with Vertical(id="spill-right"):
                yield Static("", id="spill-title", markup=False)
                yield SpillView(id="spill-view")
                yield Input(placeholder="Search in this output (Enter: next match)",
                            id="spill-search")
        yield Static("", id="spill-info", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#spill-left").border_title = "Spilled outputs"
        self.query_one("#spill-right").border_title = "Output"
        self.query_one("#spill-list").focus()
        self.load_list()

    @property
    def view(self) -> SpillView:
        return self.query_one("#spill-view", SpillView)

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#spill-list", OptionList)

    def _info(self, text: str) -> None:
        self.query_one("#spill-info", Static).update(clean(text))

    # -- the list ------------------------------------------------------------------
    @work(exclusive=True, group="spill-list", exit_on_error=False)
    async def load_list(self) -> None:
        try:
            files = await list_spills(self.store, self.paths, self.thread_id)
        except Exception as exc:
            self._info(f"could not list spilled outputs: {exc}")
            return
        if self.preselect is not None and self.preselect.is_file():
            wanted = self.preselect.resolve()
            if not any(f.path.resolve() == wanted for f in files):
                st = self.preselect.stat()
                files.insert(0, SpillFile(self.preselect, st.st_size, st.st_mtime))
        self.files = files
        ol = self.option_list
        ol.clear_options()
        ol.add_options(Option(spill_prompt(f), id=str(i)) for i, f in enumerate(files))
        if not files:
            self._info("No spilled outputs in this thread: tool outputs over the spill "
                       "threshold are saved here.")
            self.query_one("#spill-title", Static).update("")
            return
        index = 0
        if self.preselect is not None:
            wanted = self.preselect.resolve()
            index = next((i for i, f in enumerate(files) if f.path.resolve() == wanted), 0)
            if files[index].path.resolve() != wanted:
                self.notify(f"{self.preselect} is gone (spill files are cleaned up with "
                            "their thread).", severity="warning")
            else:
                self.view.focus()
        ol.highlighted = index
        total = human_size(sum(f.size for f in files))
        plural = "s" if len(files) != 1 else ""
        self._info(f"{len(files)} spilled output{plural} · {total} in "
                   f"{self.paths.spill_dir(self.thread_id)}")

    @on(OptionList.OptionHighlighted, "#spill-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        index = event.option_index
        if 0 <= index < len(self.files) and self.files[index] is not self.shown:
            self.show(self.files[index])

    @on(OptionList.OptionSelected, "#spill-list")
    def _selected(self) -> None:
        self.view.focus()

    # -- one file ------------------------------------------------------------------
    def show(self, spill: SpillFile) -> None:
        self.shown = spill
        self._load_file(spill)

    @work(exclusive=True, group="spill-file", exit_on_error=False, thread=True)
    def _load_file(self, spill: SpillFile) -> None:
        """Read (and highlight) in a thread: a megabyte of Pygments takes a second."""
        try:
            text, cut = read_spill(spill.path)
        except OSError as exc:
            self.app.call_from_thread(self._show_error, spill, str(exc))
            return
        language = guess_language(text[:4000], str(spill.path)) if text else "text"
        self.app.call_from_thread(self._show_plain, spill, text, cut, language)
        if len(text) <= MAX_HIGHLIGHT_BYTES and language not in ("text", "default"):
            content = highlight(text, language=language)
            self.app.call_from_thread(self._show_highlighted, spill, content)

    def _show_error(self, spill: SpillFile, message: str) -> None:
        if spill is self.shown:
            self.view.set_text("")
            self.query_one("#spill-title", Static).update(
                clean(f"cannot read {spill.path}: {message}"))

    def _show_plain(self, spill: SpillFile, text: str, cut: bool, language: str) -> None:
        if spill is not self.shown:
            return
        self.language = language
        self.truncated = cut
        self.view.set_text(text)
        lines = len(self.view.plain)
        note = f" · first {human_size(MAX_BYTES)} shown, p opens it all" if cut else ""
        tool = f" · {spill.tool}" if spill.tool else ""
        self.query_one("#spill-title", Static).update(one_line(
            f"{spill.path.name} · {human_size(spill.size)} · {lines:,} lines · "
            f"{language}{tool}{note}"))
        needle = self.query_one("#spill-search", Input).value
        if needle:
            self._search(needle)

    def _show_highlighted(self, spill: SpillFile, content: Any) -> None:
        if spill is self.shown:
            self.view.set_highlighted(content)

    # -- search --------------------------------------------------------------------
    def _search(self, needle: str) -> None:
        count = self.view.search(needle)
        self._match_info(needle, count)

    def _match_info(self, needle: str, count: int) -> None:
        if not needle:
            self._info("")
        elif count == 0:
            self._info(f"“{needle}” not found")
        else:
            current = (self.view.current or 0) + 1
            more = "+" if count >= 10_000 else ""
            self._info(f"“{needle}”: match {current} of {count:,}{more}")

    @on(Input.Changed, "#spill-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    @on(Input.Submitted, "#spill-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self.action_next_match()

    def action_focus_search(self) -> None:
        self.query_one("#spill-search", Input).focus()

    def action_next_match(self) -> None:
        self.view.next_match()
        self._match_info(self.query_one("#spill-search", Input).value, len(self.view.matches))

    def action_previous_match(self) -> None:
        self.view.previous_match()
        self._match_info(self.query_one("#spill-search", Input).value, len(self.view.matches))

    # -- pager ---------------------------------------------------------------------
    def action_pager(self) -> None:
        if self.shown is None:
            self.notify("No spilled output selected.")
            return
        problem = run_pager(self.app, self.shown.path)
        if problem:
            self.notify(problem, severity="warning")

    def action_close(self) -> None:
        self.dismiss(None)
