"""A read-only, syntax-highlighted text viewer with search, for spilled tool outputs.

Spill files are large by definition (they were too big for the context), so the viewer
uses the Line API: it draws only the lines on screen, whatever the file's length. The
highlighting is Textual's own (:func:`textual.highlight.highlight`, Pygments underneath),
whose styles are theme variables, so the text follows the theme. Search matches are
marked with the ``spill-view--match`` and ``spill-view--current`` component styles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.segment import Segment
from textual.content import Content
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.style import Style as VisualStyle

from leon.textsafe import clean

MAX_MATCHES = 10_000


@dataclass(frozen=True)
class Match:
    line: int
    start: int
    end: int


def clean_text(text: str) -> str:
    """Text safe to draw (:func:`leon.textsafe.clean`: control sequences removed, CR as
    LF, other control characters as U+FFFD), tabs expanded."""
    return clean(text).expandtabs(4)


def find_matches(lines: list[str], needle: str, limit: int = MAX_MATCHES) -> list[Match]:
    """Every case-insensitive occurrence of ``needle`` (taken literally)."""
    if not needle:
        return []
    pattern = re.compile(re.escape(needle), re.IGNORECASE)
    found: list[Match] = []
    for y, line in enumerate(lines):
        for m in pattern.finditer(line):
            found.append(Match(y, m.start(), m.end()))
            if len(found) >= limit:
                return found
    return found


class SpillView(ScrollView, can_focus=True):
    """Lines of highlighted text with a line-number gutter and search marks."""

    COMPONENT_CLASSES = {"spill-view--gutter", "spill-view--match", "spill-view--current"}

    DEFAULT_CSS = """
    SpillView { background: $surface; }
    SpillView > .spill-view--gutter { color: $text-muted; }
    SpillView > .spill-view--match { background: $warning 35%; }
    SpillView > .spill-view--current { background: $accent 70%; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.plain: list[str] = []
        self.lines: list[Content] = []
        self.matches: list[Match] = []
        self.current: int | None = None
        self._by_line: dict[int, list[int]] = {}
        self._gutter = 2

    # -- content -------------------------------------------------------------------
    def set_text(self, text: str) -> None:
        """Show plain text (highlighting may follow with :meth:`set_highlighted`)."""
        self.plain = text.split("\n")
        if self.plain and self.plain[-1] == "" and len(self.plain) > 1:
            self.plain.pop()
        self.lines = [Content(line) for line in self.plain]
        self._gutter = len(str(len(self.plain))) + 1
        width = max((len(line) for line in self.plain), default=0)
        self.virtual_size = Size(width + self._gutter + 1, len(self.plain))
        self.set_matches([])
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def set_highlighted(self, content: Content) -> None:
        """Swap in highlighted lines for the same text."""
        lines = content.split("\n", allow_blank=True)
        if len(lines) >= len(self.plain):
            self.lines = lines[: len(self.plain)]
            self.refresh()

    # -- search --------------------------------------------------------------------
    def set_matches(self, matches: list[Match]) -> None:
        self.matches = matches
        self.current = None
        self._by_line = {}
        for i, m in enumerate(matches):
            self._by_line.setdefault(m.line, []).append(i)
        self.refresh()

    def search(self, needle: str) -> int:
        """Mark every match and go to the first one at or below the top line."""
        self.set_matches(find_matches(self.plain, needle))
        if self.matches:
            top = self.scroll_offset.y
            first = next((i for i, m in enumerate(self.matches) if m.line >= top), 0)
            self.go_to(first)
        return len(self.matches)

    def go_to(self, index: int) -> None:
        if not self.matches:
            return
        self.current = index % len(self.matches)
        m = self.matches[self.current]
        height = max(1, self.scrollable_content_region.height)
        y = self.scroll_offset.y
        if not y <= m.line < y + height:
            y = max(0, m.line - height // 3)
        x = self.scroll_offset.x
        width = max(1, self.scrollable_content_region.width - self._gutter - 1)
        if m.start < x or m.end > x + width:
            x = max(0, m.end - width + 8) if m.end > width else 0
        self.scroll_to(x, y, animate=False)
        self.refresh()

    def next_match(self) -> None:
        if self.matches:
            self.go_to(0 if self.current is None else self.current + 1)

    def previous_match(self) -> None:
        if self.matches:
            self.go_to(-1 if self.current is None else self.current - 1)

    # -- drawing -------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.visual_style
        if index >= len(self.lines):
            return Strip.blank(width, base.rich_style)
        gutter_style = base + self.get_visual_style("spill-view--gutter")
        gutter = Strip([_segment(f"{index + 1:>{self._gutter - 1}} ", gutter_style)])
        line = self.lines[index]
        for i in self._by_line.get(index, ()):
            m = self.matches[i]
            line = line.stylize(self._mark_style(i == self.current), m.start, m.end)
        segments = [_segment(text, base + style)
                    for text, style in line.render(base, end="", parse_style=self._get_style)]
        body = Strip(segments).crop_extend(scroll_x, scroll_x + width - self._gutter,
                                           base.rich_style)
        return Strip.join([gutter, body]).apply_offsets(scroll_x, index)


    def _mark_style(self, current: bool) -> VisualStyle:
        # The component's background and weight only: the syntax colour stays readable.
        full = self.get_visual_style("spill-view--current" if current else "spill-view--match")
        return VisualStyle(background=full.background, bold=full.bold)


def _segment(text: str, style: VisualStyle) -> Segment:
    return Segment(text, style.rich_style)

