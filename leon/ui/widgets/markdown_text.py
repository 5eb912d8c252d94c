"""Finished messages drawn as one widget: Rich's Markdown in a Static, styled from the
app's theme.

Textual's ``Markdown`` widget is a tree of block widgets, each styled by the stylesheet
when it mounts. Measured headless at 120x40: eight Claude-like replies (emphasis, a
list, some code) took 460 ms to mount and 150 ms to paint as ``Markdown`` widgets, and
5 ms and 100 ms as Rich Markdown in one Static each. A transcript mounts a page of
history at a time, so that is the difference between opening (or scrolling up) a long
thread at once and freezing for a second. A reply that is *streaming* keeps Textual's
widget, which ``Markdown.get_stream`` writes into; only finished text comes here.

The colours follow the theme the way Textual's widget does (``$markdown-h1-color``…,
inline code in ``$text-warning``, bullets in ``$text-primary``), so history and a fresh
reply look alike, and a theme change redraws.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.errors import StyleSyntaxError
from rich.markdown import CodeBlock, Heading, Markdown
from rich.style import Style
from rich.syntax import Syntax
from rich.theme import Theme
from textual.color import Color
from textual.widgets import Static

from leon.textsafe import clean


class _Heading(Heading):
    LEVEL_ALIGN: ClassVar[dict[str, Any]] = {f"h{n}": "left" for n in range(1, 7)}


class _CodeBlock(CodeBlock):
    """A fenced block on the theme's panel colour, not the Pygments style's own."""

    background = "default"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Syntax(str(self.text).rstrip(), self.lexer_name, theme=self.theme,
                     word_wrap=True, padding=(1, 2), background_color=self.background)


@lru_cache(maxsize=16)
def _markdown_class(code_background: str) -> type[Markdown]:
    """Rich's Markdown with left-aligned headings and code on ``code_background``."""
    code = type("CodeBlock", (_CodeBlock,), {"background": code_background})
    elements = {**Markdown.elements, "heading_open": _Heading, "fence": code,
                "code_block": code}
    return type("LeonMarkdown", (Markdown,), {"elements": elements})


class ThemedMarkdown:
    """Rich Markdown rendered under a theme of ``markdown.*`` styles."""

    def __init__(self, text: str, theme: Theme, code_theme: str, code_background: str):
        self.markdown = _markdown_class(code_background)(text, code_theme=code_theme,
                                                         hyperlinks=True)
        self.theme = theme

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Textual renders a Static's content in one go, so the theme is pushed for
        # exactly this render.
        with console.use_theme(self.theme):
            yield from console.render(self.markdown, options)


@lru_cache(maxsize=16)
def markdown_styles(variables: tuple[tuple[str, str], ...], dark: bool) -> tuple[Theme, str, str]:
    """The Rich theme, the Pygments style and the code background for a Textual theme's
    CSS variables (cached: the variables only change with the theme). Colours with an
    alpha are blended over the background, as the terminal cannot show them."""
    v = dict(variables)
    background = _opaque(v.get("background", ""), None) or ("#000000" if dark else "#FFFFFF")

    def color(*names: str) -> str:
        for name in names:
            found = _opaque(v.get(name, ""), background)
            if found:
                return found
        return "default"

    def blend(over: str, amount: float) -> str:
        return Color.parse(background).blend(Color.parse(over), amount).hex6

    wanted: dict[str, str] = {}
    for n in range(1, 7):
        text_style = v.get(f"markdown-h{n}-text-style", "bold").replace("none", "")
        wanted[f"markdown.h{n}"] = f"{text_style} {color(f'markdown-h{n}-color', 'primary')}"
    inline = color("text-warning", "warning") if dark else color("text-error", "error")
    link = color("text-accent", "accent")
    wanted.update({
        "markdown.code": f"{inline} on {blend(color('warning'), 0.1)}",
        "markdown.item.bullet": color("text-primary", "primary"),
        "markdown.item.number": color("text-primary", "primary"),
        "markdown.block_quote": color("foreground-muted", "foreground"),
        "markdown.hr": color("secondary"),
        "markdown.link": f"underline {link}",
        "markdown.link_url": f"underline {link}",
        "markdown.em": "italic",
        "markdown.strong": "bold",
        "markdown.s": "strike",
        "markdown.table.border": color("foreground-muted", "foreground"),
        "markdown.table.header": "bold",
    })
    styles: dict[str, Style] = {}
    for name, spec in wanted.items():
        try:
            styles[name] = Style.parse(spec.strip() or "none")
        except StyleSyntaxError:  # a theme value Rich cannot draw: keep Rich's default
            continue
    code_background = blend(color("foreground"), 0.05)
    return Theme(styles), ("github-dark" if dark else "default"), code_background


def _opaque(value: str, background: str | None) -> str | None:
    """``value`` as an opaque ``#RRGGBB`` (blended over ``background`` when it has an
    alpha), or None when it is not a colour."""
    try:
        c = Color.parse(value)
    except Exception:
        return None
    if c.a < 1 and background:
        c = Color.parse(background) + c
    return c.hex6


class MarkdownText(Static):
    """A finished message's Markdown as one widget (see the module docstring)."""

    def __init__(self, text: str, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.text = clean(text)  # no escape sequence reaches Rich (it passes them through)

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda _: self.refresh(layout=True), init=False)

    def render(self) -> ThemedMarkdown:
        app = self.app
        variables = tuple(sorted(app.theme_variables.items()))
        theme, code_theme, code_background = markdown_styles(variables, app.current_theme.dark)
        return ThemedMarkdown(self.text, theme, code_theme, code_background)
