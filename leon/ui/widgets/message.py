"""What the transcript is made of: user and assistant messages (Markdown when they use
it; the reply streams through ``Markdown.get_stream``), the compaction summary block, and
one-line notices. Every block can take focus (Tab or a click) and be copied with ``c``.

What a block draws is cleaned by :mod:`leon.textsafe` (no escape sequence in a message can
reach the terminal); what ``c`` copies is the text as stored."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from leon.textsafe import StreamCleaner, clean, one_line
from leon.ui.bindings import bindings_for

if TYPE_CHECKING:
    from textual.widgets.markdown import MarkdownStream

# Markdown renderers (and markdown-it) are imported when first needed, not before the
# first frame: an empty chat has no Markdown to draw.


# Markdown syntax worth rendering: emphasis, code, headings, links, tables, quotes,
# lists, rules. Plain prose is drawn as it is — most user messages are plain.
_MARKDOWN = re.compile(r"[*_`#\[\]|<>]|^\s*(?:[-+]|\d+[.)])\s|^\s*(?:---|===)", re.M)


def body(text: str) -> Widget:
    """The widget for a finished message's text: one Static either way (Markdown through
    Rich, see :mod:`leon.ui.widgets.markdown_text`; Textual's Markdown widget is kept for
    replies while they stream). The text is cleaned of control sequences first."""
    text = clean(text)
    if _MARKDOWN.search(text):
        from leon.ui.widgets.markdown_text import MarkdownText

        return MarkdownText(text, classes="body")
    return Static(text, classes="body plain", markup=False)


class Block(Widget, can_focus=True):
    """A focusable item of the transcript. ``message_index`` is the position of the
    message it shows in the branch (the transcript pages and prunes by it)."""

    BINDINGS = bindings_for("block")

    def __init__(self, *, message_index: int = 0, message_id: int | None = None,
                 classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.message_index = message_index
        self.message_id = message_id

    def copy_text(self) -> str:
        """The text ``c`` copies."""
        return ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_spill":
            return False
        if action == "toggle":
            return False
        return True

    def action_copy(self) -> None:
        from leon.ui.messages import TextCopied

        text = self.copy_text()
        if text:
            self.app.copy_to_clipboard(text)
            self.post_message(TextCopied(text))

    def action_toggle(self) -> None:
        """Expand or collapse (tool and summary blocks)."""

    def action_open_spill(self) -> None:
        """Open the spilled output (tool blocks that spilled)."""


def model_label(model: str | None) -> str | None:
    """What a reply's speaker line says: the model that wrote it (None: not recorded)."""
    return model or None


UNSENT_NOTE = "not sent: the call failed before a reply; it is not part of the conversation"


class UserMessage(Block):
    """The user's turn; ``unsent`` when its call failed before any reply came (it is kept
    and shown, but no request includes it)."""

    def __init__(self, text: str, *, message_index: int = 0,
                 message_id: int | None = None, unsent: bool = False) -> None:
        super().__init__(message_index=message_index, message_id=message_id,
                         classes="message user")
        self.text = text
        self.unsent = unsent

    def compose(self) -> ComposeResult:
        yield Static("you", classes="speaker")
        yield body(self.text)
        if self.unsent:
            yield self._unsent_note()

    @staticmethod
    def _unsent_note() -> Static:
        return Static(Text.assemble(("‖ ", "bold"), UNSENT_NOTE), classes="unsent-note")

    def on_mount(self) -> None:
        self.set_class(self.unsent, "-unsent")

    async def mark_unsent(self, unsent: bool = True) -> None:
        """Show (or stop showing) that the message was not sent."""
        if unsent == self.unsent:
            return
        self.unsent = unsent
        self.set_class(unsent, "-unsent")
        if unsent:
            await self.mount(self._unsent_note())
        else:
            await self.query(".unsent-note").remove()

    def copy_text(self) -> str:
        return self.text


class AssistantMessage(Block):
    """A reply: complete (from the store) or streaming. While streaming, fragments go
    through a :class:`MarkdownStream`, which coalesces them when they come faster than
    the screen redraws; :meth:`finish` stops it."""

    def __init__(self, text: str = "", *, speaker: str = "claude", message_index: int = 0,
                 message_id: int | None = None, interrupted: str | None = None,
                 stopped: str | None = None) -> None:
        super().__init__(message_index=message_index, message_id=message_id,
                         classes="message assistant")
        self.text = text
        self.speaker = speaker
        self.interrupted = interrupted
        # The mark of a reply that ended short ("cut off at the output limit", "declined").
        self.stopped = stopped
        self._stream: MarkdownStream | None = None
        # a sequence split between two streamed fragments is still removed whole
        self._cleaner = StreamCleaner()

    def compose(self) -> ComposeResult:
        yield Static(self.speaker, classes="speaker")
        if self.text:
            yield body(self.text)
        else:  # a reply about to stream needs the Markdown widget (it streams into it)
            from textual.widgets import Markdown

            yield Markdown(classes="body")
        if self.interrupted is not None:
            yield self._interrupted_note(self.interrupted)
        elif self.stopped is not None:
            yield self._stopped_note(self.stopped)

    @staticmethod
    def _interrupted_note(reason: str) -> Static:
        reason = one_line(reason)
        return Static(Text.assemble(("‖ interrupted", "bold"), f" — {reason}" if reason else ""),
                      classes="interrupted-note")

    @staticmethod
    def _stopped_note(mark: str) -> Static:
        return Static(Text.assemble(("‖ ", "bold"), (mark, "bold")), classes="stopped-note")

    def on_mount(self) -> None:
        if self.interrupted is not None:
            self.add_class("-interrupted")
        elif self.stopped is not None:
            self.add_class("-stopped")

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    async def append(self, fragment: str) -> None:
        """Add a streamed fragment."""
        self.text += fragment
        if self._stream is None:
            from textual.widgets import Markdown

            self.add_class("-streaming")
            self._stream = Markdown.get_stream(self.query_one(Markdown))
        shown = self._cleaner.feed(fragment)
        if shown:
            await self._stream.write(shown)

    async def finish(self) -> None:
        """Stop the stream (flushing what is pending); safe to call more than once."""
        stream, self._stream = self._stream, None
        self.remove_class("-streaming")
        if stream is not None:
            rest = self._cleaner.finish()
            if rest:
                await stream.write(rest)
            await stream.stop()

    async def mark_interrupted(self, reason: str) -> None:
        await self.finish()
        if self.interrupted is None:
            self.interrupted = reason
            self.add_class("-interrupted")
            await self.mount(self._interrupted_note(reason))

    async def mark_stopped(self, mark: str) -> None:
        """Mark the reply as ended short (cut off, declined) once it is stored."""
        await self.finish()
        if self.interrupted is None and self.stopped is None:
            self.stopped = mark
            self.add_class("-stopped")
            await self.mount(self._stopped_note(mark))

    def copy_text(self) -> str:
        return self.text


class SummaryBlock(Block):
    """The compaction summary the conversation continues from; Enter expands it."""

    def __init__(self, text: str, *, replaced: int | None = None,
                 message_index: int = 0) -> None:
        super().__init__(message_index=message_index, classes="summary")
        self.text = text
        self.replaced = replaced
        self.expanded = False

    def compose(self) -> ComposeResult:
        yield Static(self._title(), classes="summary-title")
        text = body(self.text)
        text.display = False
        yield text

    def _title(self) -> Text:
        arrow = "▼" if self.expanded else "►"
        what = f"{self.replaced} earlier messages" if self.replaced else "the earlier conversation"
        hint = "" if self.expanded else "  (Enter to read)"
        return Text.assemble((f"{arrow} Summary ", "bold"), f"of {what}",
                             (f" · {len(self.text):,} chars", "dim"), (hint, "dim"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "open_spill"

    def action_toggle(self) -> None:
        self.expanded = not self.expanded
        self.query_one(".body").display = self.expanded
        self.query_one(".summary-title", Static).update(self._title())
        self.set_class(self.expanded, "-expanded")

    def on_click(self) -> None:
        self.action_toggle()

    def copy_text(self) -> str:
        return self.text


class Notice(Static):
    """A one-line event where it happened in the conversation ("pruned 4 tool results,
    −18,240 tokens"). ``level``: info, memory, warning, error."""

    def __init__(self, text: str, *, level: str = "info", message_index: int = 0) -> None:
        super().__init__(Text.assemble(("— ", "dim"), clean(text)), classes=f"notice -{level}")
        self.message_index = message_index
        self.plain = text
