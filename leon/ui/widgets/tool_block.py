"""A tool call as a compact, collapsible block: status, tool, arguments, output size and
badges for output the memory layer trimmed, cleared or spilled. Enter (or a click on the
header) expands it; ``o`` opens a spilled output in the spill pane."""

from __future__ import annotations

import json
import re
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from leon.textsafe import clean, one_line
from leon.ui.widgets.message import Block
from leon.units import human_size

PREVIEW_LINES = 24
STATUS = {
    "running": ("◐", "tool--running"),
    "ok": ("✓", "tool--ok"),
    "error": ("×", "tool--error"),
    "cancelled": ("○", "tool--error"),
}
# A spill file path as the memory layer writes it into the tool result.
_SPILL_PATH = re.compile(r"(/[^\s'\"`()]+/spill/[^\s'\"`()]+)")


def args_summary(name: str, args: dict[str, Any], limit: int = 70) -> str:
    """The arguments in one line: the command for bash, the path for file tools, else
    ``key=value`` pairs; cleaned of control sequences (the model chose them)."""
    if not args:
        return ""
    for key in ("command", "path", "pattern", "file_path", "description"):
        if isinstance(args.get(key), str):
            main = args[key]
            rest = [f"{k}={_short(v)}" for k, v in args.items() if k != key]
            text = " ".join([" ".join(main.split()), *rest])
            break
    else:
        text = " ".join(f"{k}={_short(v)}" for k, v in args.items())
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= 30 else text[:29] + "…"


def find_spill_path(output: str) -> str | None:
    match = _SPILL_PATH.search(output)
    return match.group(1).rstrip(".,;:") if match else None


class ToolBlock(Block):
    """One tool call and, once it returns, its result."""

    COMPONENT_CLASSES = {
        "tool--running", "tool--ok", "tool--error", "tool--name", "tool--muted",
        "tool--badge-trimmed", "tool--badge-cleared", "tool--badge-spilled",
    }
    DEFAULT_CSS = """
    ToolBlock > .tool--running { color: $text-warning; }
    ToolBlock > .tool--ok { color: $text-success; }
    ToolBlock > .tool--error { color: $text-error; }
    ToolBlock > .tool--name { text-style: bold; }
    ToolBlock > .tool--muted { color: $foreground-muted; }
    ToolBlock > .tool--badge-trimmed { color: $foreground; background: $warning-muted; }
    ToolBlock > .tool--badge-cleared { color: $foreground; background: $error-muted; }
    ToolBlock > .tool--badge-spilled { color: $foreground; background: $accent-muted;
                                        text-style: underline; }
    """

    def __init__(self, tool_use_id: str, name: str, args: dict[str, Any], *,
                 message_index: int = 0) -> None:
        super().__init__(message_index=message_index, classes="tool")
        self.tool_use_id = tool_use_id
        self.tool_name = name
        self.args = args
        self.status = "running"
        self.output = ""
        self.output_size: int | None = None
        self.trimmed = False
        self.cleared = False
        self.spill_path: str | None = None
        self.expanded = False
        self._style_cache: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Static("", classes="tool-header")
        with Vertical(classes="tool-body"):
            yield Static(self._args_text(), classes="tool-args")
            yield Static("", classes="tool-output")

    def on_mount(self) -> None:
        self.query_one(".tool-body").display = False
        self._refresh()

    # -- state ---------------------------------------------------------------------
    def set_result(self, *, is_error: bool, output: str, size: int | None = None,
                   meta: dict[str, Any] | None = None, cancelled: bool = False) -> None:
        self.status = "cancelled" if cancelled else ("error" if is_error else "ok")
        self.output = output
        self.output_size = size if size is not None else len(output.encode())
        meta = meta or {}
        spill = meta.get("spill_path") or meta.get("spilled") or find_spill_path(output)
        if isinstance(spill, str):
            self.spill_path = spill
        self.trimmed = self.trimmed or bool(meta.get("trimmed"))
        self.cleared = self.cleared or bool(meta.get("cleared"))
        self._refresh()

    def set_badges(self, *, trimmed: bool | None = None, cleared: bool | None = None,
                   spill_path: str | None = None) -> None:
        if trimmed is not None:
            self.trimmed = trimmed
        if cleared is not None:
            self.cleared = cleared
        if spill_path:
            self.spill_path = spill_path
        self._refresh()

    @property
    def badges(self) -> list[str]:
        out = []
        if self.trimmed:
            out.append("trimmed")
        if self.cleared:
            out.append("cleared")
        if self.spill_path:
            out.append("spilled")
        return out

    # -- drawing -------------------------------------------------------------------
    def _style(self, name: str) -> Any:
        """A component's style blended over the block (badges keep their background);
        cached until the CSS or the theme changes."""
        style = self._style_cache.get(name)
        if style is None:
            full = self.get_component_rich_style(name)
            style = full if name.startswith("tool--badge") else Style(
                color=full.color, bold=full.bold, italic=full.italic)
            self._style_cache[name] = style
        return style

    def notify_style_update(self) -> None:
        self._style_cache.clear()
        super().notify_style_update()
        self._refresh()

    def _header(self) -> Text:
        icon, style = STATUS[self.status]
        arrow = "▼" if self.expanded else "►"
        muted = self._style("tool--muted")
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{arrow} ", muted)
        text.append(icon + " ", self._style(style))
        text.append(one_line(self.tool_name), self._style("tool--name"))
        summary = args_summary(self.tool_name, self.args)
        if summary:
            text.append("  " + summary, muted)
        if self.output_size is not None:
            text.append(f" · {human_size(self.output_size)}", muted)
        if self.status == "running":
            text.append(" · running", muted)
        for badge in self.badges:
            text.append(" ")
            text.append(f" {badge} ", self._style(f"tool--badge-{badge}"))
        return text

    def _args_text(self) -> Text:
        return Text(clean(json.dumps(self.args, indent=2, ensure_ascii=False)))

    def _output_text(self) -> Text:
        lines = self.output.splitlines()
        shown = "\n".join(lines[:PREVIEW_LINES])
        text = Text(clean(shown))  # tool output: whatever the command printed
        muted = self._style("tool--muted")
        if len(lines) > PREVIEW_LINES:
            text.append(f"\n… {len(lines) - PREVIEW_LINES:,} more lines", muted)
        if self.spill_path:
            text.append(f"\nfull output: {clean(self.spill_path)}  (o to open)", muted)
        return text

    def _refresh(self) -> None:
        if not self.is_mounted:
            return
        header = self._header()
        self.query_one(".tool-header", Static).update(header)
        self.query_one(".tool-output", Static).update(self._output_text())
        for status in STATUS:
            self.set_class(self.status == status, f"-{status}")
        if self.has_focus:  # the footer shows "o Open spilled output" only when it applies
            self.refresh_bindings()

    # -- actions -------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_spill":
            return self.spill_path is not None
        return True

    def action_toggle(self) -> None:
        self.expanded = not self.expanded
        self.query_one(".tool-body").display = self.expanded
        self.set_class(self.expanded, "-expanded")
        self._refresh()

    def action_open_spill(self) -> None:
        from leon.ui.messages import SpillOpened

        if self.spill_path:
            self.post_message(SpillOpened(self.spill_path))

    def on_click(self, event: Any) -> None:
        widget = getattr(event, "widget", None)
        if widget is not None and widget.has_class("tool-header"):
            if self.spill_path and "spilled" in self.badges and getattr(event, "x", 0) >= \
                    self._badge_x():
                self.action_open_spill()
            else:
                self.action_toggle()

    def _badge_x(self) -> int:
        header = self._header().plain
        index = header.find(" spilled ")
        return index if index >= 0 else 10**6

    def copy_text(self) -> str:
        return f"{self.tool_name} {json.dumps(self.args, ensure_ascii=False)}\n{self.output}"
