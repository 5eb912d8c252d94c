"""A yes/no question before something that cannot be undone (deleting a thread)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from leon.textsafe import clean
from leon.ui.pane_keys import pane_bindings


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses True for yes; False for no, Escape or a click outside. The safe answer
    has focus, so an Enter typed by habit does not delete anything."""

    CSS_PATH = "confirm.tcss"
    BINDINGS = pane_bindings("confirm")

    def __init__(self, question: str, *, yes: str = "Delete", no: str = "Keep") -> None:
        super().__init__()
        self.question = question
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            # the question names a thread by its title: anyone's text
            yield Static(clean(self.question), id="confirm-question", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.no_label} (n)", id="confirm-no", variant="primary")
                yield Button(f"{self.yes_label} (y)", id="confirm-yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    @on(Button.Pressed, "#confirm-yes")
    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def action_no(self) -> None:
        self.dismiss(False)

    def on_click(self, event) -> None:  # type: ignore[no-untyped-def]
        # A click on the dimmed background (outside the dialog) means no.
        if event.widget is self:
            self.dismiss(False)
