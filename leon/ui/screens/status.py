"""The status view: how big leon's home has grown (threads by kind and status, database,
WAL, spill and archive sizes, blob dedup, process memory) and the samples taken at each
start — the same figures as ``leon stats`` and ``leon stats --history``."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from leon.lifecycle.stats import collect, format_history, format_stats, history
from leon.textsafe import clean


class StatusScreen(ModalScreen[None]):
    """Growth at a glance; Escape closes, r refreshes."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="status.close"),
        Binding("r", "refresh_stats", "Refresh", id="status.refresh"),
    ]
    DEFAULT_CSS = """
    StatusScreen { align: center middle; background: $background 60%; }
    StatusScreen > #status {
        width: 96; max-width: 95%; height: 80%; border: round $primary;
        background: $surface; padding: 0 1;
    }
    StatusScreen .status-heading { text-style: bold; color: $text-primary; margin-top: 1; }
    """

    def __init__(self, stores, paths) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.stores = stores
        self.paths = paths

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="status") as scroll:
            scroll.border_title = "leon · status"
            scroll.border_subtitle = "r refresh · Esc close"
            yield Static("Now", classes="status-heading")
            yield Static("measuring…", id="status-now", markup=False)
            yield Static("Growth (one sample per start)", classes="status-heading")
            yield Static("", id="status-history", markup=False)

    def on_mount(self) -> None:
        self.action_refresh_stats()

    def action_refresh_stats(self) -> None:
        self.load_stats()

    @work(exclusive=True, group="status", exit_on_error=False)
    async def load_stats(self) -> None:
        data = await collect(self.stores, self.paths)
        samples = await history(self.stores, limit=20)
        self.query_one("#status-now", Static).update(clean(format_stats(data)))
        self.query_one("#status-history", Static).update(clean(format_history(samples)))
