"""The help screen: every key binding (with its id, for the ``ui.keymap`` setting) by
group, and the slash commands."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from leon.ui.bindings import SLASH_COMMANDS, TABLE, Key, bindings_for


def all_keys() -> tuple[Key, ...]:
    """The app's bindings and the panes' (leon/ui/pane_keys.py)."""
    try:
        from leon.ui.pane_keys import PANE_TABLE
    except ImportError:
        return TABLE
    return TABLE + PANE_TABLE


def _keys(keys: str, display: str | None) -> str:
    if display:
        return display
    return " / ".join(k.strip() for k in keys.split(","))


class HelpScreen(ModalScreen[None]):
    """Keys and commands. ``keymap`` holds the user's overrides (id → keys)."""

    BINDINGS = bindings_for("help")
    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background 60%; }
    HelpScreen > #help {
        width: 96; max-width: 95%; height: 90%; border: round $primary;
        background: $surface; padding: 0 1;
    }
    HelpScreen .help-heading { text-style: bold; color: $text-primary; margin-top: 1; }
    HelpScreen #help-intro { color: $text-muted; }
    """

    def __init__(self, keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.keymap = keymap or {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as scroll:
            scroll.border_title = "leon · help"
            scroll.border_subtitle = "Esc to close"
            yield Static(
                "Type a message and press Enter. Replies stream in; Escape stops one. "
                "The gauge on the right shows how full the context is. Click or Tab to a "
                "message, then c copies it (OSC 52). Remap any key with the ui.keymap "
                "setting, e.g. ui.keymap = [\"chat.threads=ctrl+t\"].",
                id="help-intro", markup=False)
            yield Static("Slash commands", classes="help-heading")
            yield Static(self._commands())
            groups: list[str] = []
            for key in all_keys():
                if key.group not in groups:
                    groups.append(key.group)
            for group in groups:
                yield Static(group, classes="help-heading")
                yield Static(self._group(group))

    def _commands(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(min_width=22)
        table.add_column()
        for command, args, what in SLASH_COMMANDS:
            table.add_row(Text(f"{command} {args}".strip(), style="bold"), what)
        return table

    def _group(self, group: str) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(min_width=22)
        table.add_column(min_width=34)
        table.add_column()
        for key in all_keys():
            if key.group != group:
                continue
            keys = self.keymap.get(key.id)
            shown = _keys(keys, None) if keys else _keys(key.keys, key.key_display)
            table.add_row(Text(shown, style="bold"), key.description, Text(key.id, style="dim"))
        return table

    def action_close(self) -> None:
        self.dismiss(None)
