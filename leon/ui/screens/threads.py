"""The thread browser: every thread, newest first, searched as you type.

Threads are paged in from the database (:meth:`LeonStore.search_threads`), a page at a
time as the highlight nears the end of what is loaded: ten thousand threads cost one page
of rows, not ten thousand. The list is an ``OptionList`` with plain-text prompts, which
draws only the lines on screen. Search is SQLite FTS5 over titles and the text of user and
assistant messages; kind and status filters narrow it.

Dismisses with the id of the thread to open, or None.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Footer, Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from leon.store.leon_store import LeonStore, NotFound
from leon.store.models import THREAD_KINDS, THREAD_STATUSES, Thread
from leon.textsafe import one_line
from leon.ui.pane_keys import pane_bindings
from leon.ui.screens.confirm import ConfirmScreen

TITLE_WIDTH = 46     # until the list knows its width
MIN_TITLE_WIDTH = 12
FIXED_WIDTH = 51     # everything on a line but the title


@dataclass
class ThreadRenamed(Message):
    """A thread got a new title in the browser."""

    thread_id: str
    title: str


@dataclass
class ThreadArchived(Message):
    """A thread was archived (``archived`` True) or restored to active (False)."""

    thread_id: str
    archived: bool


@dataclass
class ThreadDeleted(Message):
    """A thread and its history were deleted from the browser."""

    thread_id: str


def format_when(ts: float) -> str:
    """Local date and time, minute precision: stable in snapshots, sortable by eye."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def thread_prompt(thread: Thread, *, current: bool = False, width: int = TITLE_WIDTH) -> str:
    """One line per thread, plain text (OptionList draws plain text fastest, and the
    list reads no markup: a title is anyone's text); the title gets ``width`` cells,
    cleaned of control sequences."""
    title = one_line(thread.display_title)
    if len(title) > width:
        title = title[: width - 1] + "…"
    mark = "●" if current else " "
    count = f"{thread.message_count:,}"
    return (f"{mark} {title:<{width}}  {thread.kind:<8}  {thread.status:<9}"
            f"  {count:>8}  {format_when(thread.updated_at)}")


def header(width: int = TITLE_WIDTH) -> str:
    return (f"  {'title':<{width}}  {'kind':<8}  {'status':<9}  {'messages':>8}"
            f"  {'updated':<16}")


class ThreadBrowserScreen(ModalScreen[str | None]):
    """Browse, search, rename, archive, delete and open threads."""

    CSS_PATH = "threads.tcss"
    BINDINGS = pane_bindings("threads")

    PAGE_SIZE = 100
    PREFETCH = 20       # load the next page when the highlight is this close to the end
    DEBOUNCE = 0.15     # seconds of quiet typing before the search runs

    def __init__(self, store: LeonStore, *, current_thread_id: str | None = None) -> None:
        super().__init__()
        self.store = store
        self.current_thread_id = current_thread_id
        self.threads: list[Thread] = []
        self.query_text = ""
        self.kind: str | None = None
        self.status: str | None = None
        self.exhausted = False
        self.fetching = False
        self.rows_fetched = 0       # rows read from the database so far (tests, status line)
        self.total: int | None = None
        self._generation = 0
        self._debounce: Timer | None = None
        self._renaming: str | None = None
        self.title_width = TITLE_WIDTH

    # -- layout --------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="threads-pane"):
            with Horizontal(id="threads-filters"):
                yield Input(placeholder="Search titles and messages…", id="threads-search")
                yield Select([("any kind", ""), *((k, k) for k in THREAD_KINDS)],
                             value="", allow_blank=False, id="threads-kind", compact=True)
                yield Select([("any status", ""), *((s, s) for s in THREAD_STATUSES)],
                             value="", allow_blank=False, id="threads-status", compact=True)
            yield Static(header(), id="threads-header", markup=False)
            yield OptionList(id="threads-list", markup=False)
            yield Input(id="threads-rename", placeholder="New title; Enter saves, Esc cancels")
            yield Static("", id="threads-info", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#threads-pane").border_title = "Threads"
        self.query_one("#threads-rename").display = False
        self.query_one("#threads-list").focus()
        self.reload()

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#threads-list", OptionList)

    # -- loading -------------------------------------------------------------------
    def reload(self) -> None:
        """Start again from the first page with the current search and filters."""
        self._generation += 1
        self.fetching = True
        self.exhausted = False
        self._load_page(self._generation, 0)

    def load_more(self) -> None:
        """Fetch the next page, unless one is on its way or there is no more."""
        if self.fetching or self.exhausted:
            return
        self.fetching = True
        self._load_page(self._generation, len(self.threads))

    @work(exclusive=True, group="threads-page", exit_on_error=False)
    async def _load_page(self, generation: int, offset: int) -> None:
        try:
            page = await self.store.search_threads(
                self.query_text, self.kind, self.status, self.PAGE_SIZE, offset)
            total = None
            if offset == 0 and not self.query_text.strip():
                total = await self._count()
        except Exception as exc:  # a locked or damaged database: say so, keep the pane
            if generation == self._generation:
                self.fetching = False
                self._info(f"could not read threads: {exc}")
            return
        if generation != self._generation:
            return  # the search changed while this page was read
        self.rows_fetched += len(page)
        if offset == 0:
            self.threads = []
            self.total = total
            self.option_list.clear_options()
        seen = {t.id for t in self.threads}
        fresh = [t for t in page if t.id not in seen]
        self.threads += fresh
        self._fit()
        self.option_list.add_options(Option(self._prompt(t), id=t.id) for t in fresh)
        if offset == 0 and self.threads:
            self.option_list.highlighted = 0
        self.exhausted = len(page) < self.PAGE_SIZE
        self.fetching = False
        self._show_count()

    async def _count(self) -> int:
        counts = await self.store.count_threads()
        return sum(n for (kind, status), n in counts.items()
                   if (self.kind in (None, kind)) and (self.status in (None, status)))

    def _show_count(self) -> None:
        shown = len(self.threads)
        if shown == 0:
            if self.query_text.strip():
                self._info(f"No thread matches “{self.query_text.strip()}”.")
            elif self.kind or self.status:
                self._info("No thread with these filters.")
            else:
                self._info("No threads yet: start one with /new or leon --thread NAME.")
            return
        if self.total is not None:
            self._info(f"{shown:,} of {self.total:,} threads loaded")
        else:
            more = "" if self.exhausted else "+"
            self._info(f"{shown:,}{more} threads match")

    def _info(self, text: str) -> None:
        self.query_one("#threads-info", Static).update(one_line(text))

    @on(OptionList.OptionHighlighted, "#threads-list")
    def _near_end(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index >= self.option_list.option_count - self.PREFETCH:
            self.load_more()

    # -- search and filters ----------------------------------------------------------
    @on(Input.Changed, "#threads-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        if self.DEBOUNCE <= 0:
            self.reload()
        else:
            self._debounce = self.set_timer(self.DEBOUNCE, self.reload)

    @on(Input.Submitted, "#threads-search")
    def _search_submitted(self) -> None:
        self.action_open()

    @on(Select.Changed, "#threads-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        self.kind = str(event.value) or None
        self.reload()

    @on(Select.Changed, "#threads-status")
    def _status_changed(self, event: Select.Changed) -> None:
        self.status = str(event.value) or None
        self.reload()

    def _cycle(self, select_id: str, values: tuple[str, ...]) -> None:
        select = self.query_one(select_id, Select)
        order = ("", *values)
        select.value = order[(order.index(str(select.value)) + 1) % len(order)]

    def action_cycle_kind(self) -> None:
        self._cycle("#threads-kind", THREAD_KINDS)

    def action_cycle_status(self) -> None:
        self._cycle("#threads-status", THREAD_STATUSES)

    def action_focus_search(self) -> None:
        self.query_one("#threads-search", Input).focus()

    def on_key(self, event: events.Key) -> None:
        # From the search box, Down moves into the results.
        if event.key == "down" and self.focused is self.query_one("#threads-search"):
            self.option_list.focus()
            event.stop()

    # -- the highlighted thread --------------------------------------------------------
    def _selected(self) -> Thread | None:
        index = self.option_list.highlighted
        if index is None or index >= len(self.threads):
            return None
        return self.threads[index]

    def _prompt(self, thread: Thread) -> str:
        return thread_prompt(thread, current=thread.id == self.current_thread_id,
                             width=self.title_width)

    def _fit(self) -> None:
        """Give the title column whatever width the list has beyond the other columns."""
        width = self.option_list.scrollable_content_region.width
        if width <= 0:
            return
        fitted = max(MIN_TITLE_WIDTH, width - FIXED_WIDTH - 3)
        if fitted == self.title_width:
            return
        self.title_width = fitted
        self.query_one("#threads-header", Static).update(header(fitted))
        for index, thread in enumerate(self.threads):
            if index < self.option_list.option_count:
                self.option_list.replace_option_prompt_at_index(index, self._prompt(thread))

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _replace(self, thread: Thread) -> None:
        index = next(i for i, t in enumerate(self.threads) if t.id == thread.id)
        self.threads[index] = thread
        self.option_list.replace_option_prompt(thread.id, self._prompt(thread))

    def _remove(self, thread_id: str) -> None:
        index = next(i for i, t in enumerate(self.threads) if t.id == thread_id)
        del self.threads[index]
        self.option_list.remove_option(thread_id)
        if self.total is not None:
            self.total -= 1
        self._show_count()

    @on(OptionList.OptionSelected, "#threads-list")
    def action_open(self) -> None:
        thread = self._selected()
        if thread is not None:
            self.dismiss(thread.id)

    def action_close(self) -> None:
        if self._renaming is not None:
            self._end_rename()
            return
        self.dismiss(None)

    # rename --------------------------------------------------------------------------
    def action_rename(self) -> None:
        thread = self._selected()
        if thread is None:
            return
        self._renaming = thread.id
        box = self.query_one("#threads-rename", Input)
        box.value = one_line(thread.title)
        box.border_title = Content(f"Rename {one_line(thread.display_title)[:40]}")
        box.display = True
        box.focus()

    def _end_rename(self) -> None:
        self._renaming = None
        self.query_one("#threads-rename").display = False
        self.option_list.focus()

    @on(Input.Submitted, "#threads-rename")
    async def _rename_submitted(self, event: Input.Submitted) -> None:
        thread_id, title = self._renaming, " ".join(event.value.split())
        self._end_rename()
        if thread_id is None:
            return
        try:
            thread = await self.store.update_thread(thread_id, title=title)
        except (NotFound, ValueError) as exc:
            self.notify(str(exc), severity="error")
            return
        except Exception as exc:
            self.notify(f"could not rename: {exc}", severity="error")
            return
        self._replace(thread)
        self.post_message(ThreadRenamed(thread.id, thread.title))

    # archive -------------------------------------------------------------------------
    async def action_archive(self) -> None:
        thread = self._selected()
        if thread is None:
            return
        archived = thread.status != "archived"
        try:
            thread = await self.store.update_thread(
                thread.id, status="archived" if archived else "active")
        except Exception as exc:
            self.notify(f"could not archive: {exc}", severity="error")
            return
        if self.status is not None and thread.status != self.status:
            self._remove(thread.id)
        else:
            self._replace(thread)
        self.notify(f"{'Archived' if archived else 'Restored'} “{thread.display_title}”.")
        self.post_message(ThreadArchived(thread.id, archived))

    # delete --------------------------------------------------------------------------
    def action_delete(self) -> None:
        thread = self._selected()
        if thread is None:
            return
        if thread.id == self.current_thread_id:
            self.notify("That thread is open: switch to another one before deleting it.",
                        severity="warning")
            return
        what = (f"Delete “{thread.display_title}” and its {thread.message_count:,} "
                "messages, checkpoints and summaries")
        if self._everywhere() is not None:
            question = (f"{what}, with its sandboxes and spilled outputs? It is archived "
                        f"first: `leon threads restore {thread.id}` brings it back.")
        else:
            question = f"{what}? This cannot be undone."

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete(thread)

        self.app.push_screen(ConfirmScreen(question), answered)

    def _everywhere(self) -> tuple[Any, Any] | None:
        """The app's stores and paths, when it has them for this store: then a thread is
        deleted as ``leon threads rm`` does it (archived, then removed from the three
        databases and the spill directory, crash-safely)."""
        stores = getattr(self.app, "stores", None)
        paths = getattr(self.app, "paths", None)
        if stores is None or paths is None or getattr(stores, "leon", None) is not self.store:
            return None
        return stores, paths

    @work(group="threads-delete", exit_on_error=False)
    async def _delete(self, thread: Thread) -> None:
        try:
            note = await self._delete_thread(thread)
        except Exception as exc:
            self.notify(f"could not delete: {exc}", severity="error")
            return
        self._remove(thread.id)
        self.notify(note)
        self.post_message(ThreadDeleted(thread.id))

    async def _delete_thread(self, thread: Thread) -> str:
        everywhere = self._everywhere()
        if everywhere is None:
            await self.store.delete_thread(thread.id)
            return "Thread deleted."
        from leon.lifecycle.deletion import delete_thread
        from leon.lifecycle.retention import thread_bytes

        stores, paths = everywhere
        removed = await delete_thread(stores, paths, thread, "user",
                                      size=await thread_bytes(stores, thread.id))
        await self.store.add_event(None, "gc", {
            "removed": [removed.to_json()], "by": "user",
            "summary": f"deleted {thread.id} in the thread browser"})
        return (f"Deleted; archived to {removed.archive} "
                f"(`leon threads restore {thread.id}` brings it back).")
