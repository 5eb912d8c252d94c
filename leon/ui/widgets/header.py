"""The header: thread title, kind, model and agent, and a DEMO badge on the demo model."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static

from leon.textsafe import one_line


class LeonHeader(Horizontal):
    """One line at the top of the chat screen."""

    DEFAULT_CSS = """
    LeonHeader { height: 1; dock: top; background: $panel; color: $foreground; }
    LeonHeader > #header-app { width: auto; padding: 0 1; background: $primary;
                               color: $text; text-style: bold; }
    LeonHeader > #header-title { width: 1fr; padding: 0 1; text-overflow: ellipsis;
                                 text-wrap: nowrap; }
    LeonHeader > #header-badge { width: auto; padding: 0 1; background: $warning;
                                 color: $text; text-style: bold; display: none; }
    LeonHeader.-demo > #header-badge { display: block; }
    """

    title: reactive[str] = reactive("starting…")
    kind: reactive[str] = reactive("")
    model: reactive[str] = reactive("")
    agent: reactive[str] = reactive("")
    demo: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        yield Static("leon", id="header-app")
        yield Static("", id="header-title")
        yield Static("DEMO", id="header-badge")

    def _update(self) -> None:
        if not self.is_mounted:
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(one_line(self.title), "bold")  # a thread title: anyone's text
        for label, value in (("", self.kind), ("model ", self.model), ("agent ", self.agent)):
            if value:
                text.append("  ·  ", "dim")
                text.append(label, "dim")
                text.append(one_line(value))
        self.query_one("#header-title", Static).update(text)
        self.set_class(self.demo, "-demo")

    def on_mount(self) -> None:
        self._update()

    def watch_title(self) -> None:
        self._update()

    def watch_kind(self) -> None:
        self._update()

    def watch_model(self) -> None:
        self._update()

    def watch_agent(self) -> None:
        self._update()

    def watch_demo(self) -> None:
        self._update()

    @property
    def plain(self) -> str:
        """The header's text, for tests."""
        title = str(self.query_one("#header-title", Static).content)
        return f"{title}{'  DEMO' if self.demo else ''}"
