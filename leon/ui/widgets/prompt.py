"""The prompt: a multi-line input. Enter sends; shift+enter or ctrl+j inserts a new line
(ctrl+j works in every terminal; shift+enter only where the terminal reports it); Up on
the first line recalls earlier prompts, Down on the last line walks back.

The prompt draws the text it holds, so what enters it from elsewhere (a recalled stored
prompt, a paste copied out of a terminal) is cleaned by :mod:`leon.textsafe` first."""

from __future__ import annotations

from textual import events
from textual.widgets import TextArea

from leon.textsafe import clean
from leon.ui.bindings import bindings_for
from leon.ui.messages import PromptSubmitted

NEWLINE_KEYS = {"shift+enter", "ctrl+j", "alt+enter"}
HISTORY_LIMIT = 200


class PromptInput(TextArea):
    """Multi-line prompt with history recall."""

    BINDINGS = bindings_for("prompt")

    DEFAULT_CSS = """
    PromptInput { height: auto; min-height: 3; max-height: 12; }
    """

    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus",
                         compact=False, placeholder=placeholder)
        self.prompts: list[str] = []
        self._recall_index: int | None = None  # position in history while recalling
        self._draft = ""                        # what was typed before recalling began

    def load_text(self, text: str) -> None:
        """Replace the prompt's text (history recall, a failed message put back)."""
        super().load_text(clean(text))

    async def _on_paste(self, event: events.Paste) -> None:
        event.text = clean(event.text)
        await super()._on_paste(event)

    # -- history -------------------------------------------------------------------
    def set_history(self, prompts: list[str]) -> None:
        self.prompts = [p for p in prompts if p.strip()][-HISTORY_LIMIT:]
        self._recall_index = None

    def remember(self, text: str) -> None:
        if text.strip() and (not self.prompts or self.prompts[-1] != text):
            self.prompts.append(text)
            del self.prompts[:-HISTORY_LIMIT]
        self._recall_index = None

    def _show(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def action_recall_previous(self) -> None:
        if not self.prompts:
            return
        if self._recall_index is None:
            self._draft = self.text
            self._recall_index = len(self.prompts)
        if self._recall_index > 0:
            self._recall_index -= 1
            self._show(self.prompts[self._recall_index])

    def action_recall_next(self) -> None:
        if self._recall_index is None:
            return
        self._recall_index += 1
        if self._recall_index >= len(self.prompts):
            self._recall_index = None
            self._show(self._draft)
        else:
            self._show(self.prompts[self._recall_index])

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == 0 and self.prompts and \
                self.selection.is_empty:
            self.action_recall_previous()
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if not select and self.cursor_location[0] == last_row and \
                self._recall_index is not None:
            self.action_recall_next()
            return
        super().action_cursor_down(select)

    # -- sending -------------------------------------------------------------------
    def action_send(self) -> None:
        text = self.text
        if text.strip():
            self.post_message(PromptSubmitted(text))

    def action_newline(self) -> None:
        start, end = self.selection
        self._replace_via_keyboard("\n", start, end)

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_send()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.action_newline()
            return
        await super()._on_key(event)
