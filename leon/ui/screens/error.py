"""What the user sees when leon cannot start (a locked or damaged database, an unreadable
LEON_HOME): the message, what to try, and a way out — never a traceback."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from leon.textsafe import clean
from leon.ui.bindings import bindings_for


class StartupErrorScreen(Screen[bool]):
    """Dismisses with True to try again; quitting exits the app with status 1."""

    BINDINGS = bindings_for("error")
    DEFAULT_CSS = """
    StartupErrorScreen { align: center middle; }
    StartupErrorScreen > #startup-error {
        width: 90; max-width: 95%; height: auto; border: thick $error;
        background: $surface; padding: 1 2;
    }
    StartupErrorScreen #startup-error-title { text-style: bold; color: $text-error; }
    StartupErrorScreen #startup-error-message { margin: 1 0; }
    StartupErrorScreen #startup-error-help { color: $text-muted; }
    """

    def __init__(self, message: str, home: str) -> None:
        super().__init__()
        self.message = message
        self.home = home

    def compose(self) -> ComposeResult:
        with Vertical(id="startup-error"):
            yield Static("leon could not open its data", id="startup-error-title")
            yield Static(Text(clean(self.message)), id="startup-error-message")
            yield Static(
                f"Data lives in {clean(self.home)} (LEON_HOME).\n"
                "• If another leon is running, close it and press r to try again.\n"
                "• `leon doctor` checks every database; a damaged one can be moved aside "
                "and leon starts fresh.\n"
                "• Press q to quit.",
                id="startup-error-help", markup=False)
        yield Footer()

    def action_retry(self) -> None:
        self.dismiss(True)

    def action_quit(self) -> None:
        self.app.exit(return_code=1)
