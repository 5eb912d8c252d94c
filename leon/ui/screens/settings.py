"""The settings pane: every key of :data:`leon.config.KEYS`, grouped by section, with its
meaning and range, edited in place.

A change goes through :meth:`Settings.set` (``persist=True``): it is validated (a bad
value shows the message under the key and the old value stays in force), applied at once
(subscribers such as the context gauge recompute), and written to ``config.toml``. Keys
that other layers register later appear here by themselves.

The pane is docked to the right over the chat, so the gauge stays in view while numbers
change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Footer, Input, Label, Select, Static, Switch

from leon.config import KEYS, ConfigError, Key, Settings
from leon.textsafe import clean
from leon.ui.messages import SettingChanged
from leon.ui.pane_keys import pane_bindings

GENERAL = "general"
# Sections in this order; any other section follows, alphabetically.
SECTION_ORDER = ("memory.pruning", "memory.compaction", "memory.spill", "memory", GENERAL, "ui")
SECTION_TITLES = {
    "memory.pruning": "Trimming tool results",
    "memory.compaction": "Compaction",
    "memory.spill": "Spilling large outputs",
    "memory": "Context",
    GENERAL: "Model and replies",
    "ui": "Interface",
}


def section_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else GENERAL


def grouped_keys(keys: dict[str, Key] | None = None) -> list[tuple[str, list[Key]]]:
    """Keys by section, sections in :data:`SECTION_ORDER` then alphabetical."""
    keys = KEYS if keys is None else keys
    groups: dict[str, list[Key]] = {}
    for name in keys:
        groups.setdefault(section_of(name), []).append(keys[name])
    rank = {s: i for i, s in enumerate(SECTION_ORDER)}
    order = sorted(groups, key=lambda s: (rank.get(s, len(rank)), s))
    return [(s, groups[s]) for s in order]


def slug(name: str) -> str:
    return name.replace(".", "--")


def show_value(key: Key, value: Any) -> str:
    """A value as the user would type it."""
    if key.type is list:
        return ", ".join(str(v) for v in value or [])
    return str(value)


def describe(key: Key) -> str:
    """The key's meaning, range and default, in one paragraph."""
    if key.type is str:
        default = repr(key.default)
    elif key.type is bool:
        default = str(key.default).lower()
    else:
        default = show_value(key, key.default) or "none"
    return f"{key.doc}  ({key.describe_range()}; default {default})"


class SettingsScreen(ModalScreen[None]):
    """Edit every setting while chatting."""

    CSS_PATH = "settings.tcss"
    BINDINGS = pane_bindings("settings")

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self._applying = False
        self._unsubscribe: Callable[[], None] | None = None
        self.errors: dict[str, str] = {}

    # -- layout --------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="settings-pane"):
            yield Input(placeholder="Filter settings…", id="settings-filter", compact=True)
            with VerticalScroll(id="settings-list"):
                for section, keys in grouped_keys():
                    title = SECTION_TITLES.get(section, section)
                    with Vertical(classes="settings-section", id=f"section-{slug(section)}"):
                        yield Static(f"{title}  [{section}]" if section != GENERAL else title,
                                     classes="settings-section-title", markup=False)
                        for key in keys:
                            yield from self._row(key)
            yield Static("", id="settings-info", markup=False)
        yield Footer()

    def _row(self, key: Key) -> ComposeResult:
        with Vertical(classes="setting", id=f"setting-{slug(key.name)}"):
            with Horizontal(classes="setting-head"):
                yield Label(key.name.rsplit(".", 1)[-1], classes="setting-name", markup=False)
                yield self._editor(key)
            yield Static(describe(key), classes="setting-doc", markup=False)
            yield Static("", classes="setting-error", markup=False)

    def _editor(self, key: Key) -> Widget:
        value = self.settings[key.name]
        wid = f"edit-{slug(key.name)}"
        if key.type is bool:
            return Switch(value=bool(value), id=wid, classes="setting-editor")
        choices = self._choices(key)
        if choices:
            options = [(c, c) for c in choices]
            if value not in choices:
                options.insert(0, (str(value), value))
            return Select(options, value=value, allow_blank=False, id=wid,
                          classes="setting-editor", compact=True)
        return Input(show_value(key, value), id=wid, classes="setting-editor", compact=True)

    def _choices(self, key: Key) -> list[str] | None:
        if key.choices:
            return list(key.choices)
        if key.name == "ui.theme":  # any theme the app knows, built in or from a file
            return sorted(self.app.available_themes)
        return None

    def on_mount(self) -> None:
        self.query_one("#settings-pane").border_title = "Settings"
        where = self.settings.path or "not saved (no config file)"
        self._info(f"Enter applies; changes are saved to {where}")
        self._unsubscribe = self.settings.subscribe(self._changed_elsewhere)
        first = self.query(".setting-editor").first()
        first.focus()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _info(self, text: str) -> None:
        self.query_one("#settings-info", Static).update(clean(text))

    # -- applying --------------------------------------------------------------------
    @staticmethod
    def _key_of(widget: Widget) -> str | None:
        wid = widget.id or ""
        if not wid.startswith("edit-"):
            return None
        name = wid[len("edit-"):].replace("--", ".")
        return name if name in KEYS else None

    def apply(self, name: str, value: Any) -> bool:
        """Validate, apply and save one value; on a bad value show why and keep the old."""
        row = self.query_one(f"#setting-{slug(name)}")
        error = row.query_one(".setting-error", Static)
        self._applying = True
        try:
            new = self.settings.set(name, value, persist=True)
        except ConfigError as exc:
            message = str(exc).removeprefix("settings: ")
            self.errors[name] = message
            error.update(clean(message))
            row.add_class("-invalid")
            kept = show_value(KEYS[name], self.settings[name])
            self._info(f"{name} not changed: it stays {kept}")
            return False
        except OSError as exc:
            message = f"applied, but could not save to {self.settings.path}: {exc}"
            self.errors[name] = message
            error.update(clean(message))
            row.add_class("-invalid")
            return False
        finally:
            self._applying = False
        self.errors.pop(name, None)
        error.update("")
        row.remove_class("-invalid")
        self._info(f"{name} = {show_value(KEYS[name], new)}"
                   + (" (saved)" if self.settings.path else ""))
        self.post_message(SettingChanged(name, new))
        return True

    def _text_changed(self, widget: Input) -> None:
        name = self._key_of(widget)
        if name is None:
            return
        unchanged = widget.value == show_value(KEYS[name], self.settings[name])
        if unchanged and name not in self.errors:
            return
        self.apply(name, widget.value)

    @on(Input.Submitted, ".setting-editor")
    def _submitted(self, event: Input.Submitted) -> None:
        self._text_changed(event.input)

    @on(Input.Blurred, ".setting-editor")
    def _blurred(self, event: Input.Blurred) -> None:
        if self.app.screen is self:  # not when the pane is closing
            self._text_changed(event.input)

    @on(Switch.Changed, ".setting-editor")
    def _switched(self, event: Switch.Changed) -> None:
        name = self._key_of(event.switch)
        if name is None or self._applying or event.value == self.settings[name]:
            return
        if not self.apply(name, event.value):
            with event.switch.prevent(Switch.Changed):
                event.switch.value = bool(self.settings[name])

    @on(Select.Changed, ".setting-editor")
    def _selected(self, event: Select.Changed) -> None:
        name = self._key_of(event.select)
        if name is None or self._applying or event.value == self.settings[name]:
            return
        if not self.apply(name, event.value):
            with event.select.prevent(Select.Changed):
                event.select.value = self.settings[name]

    def _changed_elsewhere(self, name: str, value: Any) -> None:
        """Another part of leon changed a setting (``/model``, ``/theme``): show it."""
        if not self._applying:
            self._show(name, value)

    def _show(self, name: str, value: Any) -> None:
        """Put ``value`` in the key's editor without applying it again."""
        if name not in KEYS:
            return
        try:
            editor = self.query_one(f"#edit-{slug(name)}")
        except Exception:
            return
        if isinstance(editor, Switch):
            with editor.prevent(Switch.Changed):
                editor.value = bool(value)
        elif isinstance(editor, Select):
            with editor.prevent(Select.Changed):
                editor.value = value
        elif isinstance(editor, Input):
            with editor.prevent(Input.Changed):
                editor.value = show_value(KEYS[name], value)

    # -- actions ---------------------------------------------------------------------
    def action_reset(self) -> None:
        """Put the focused setting back to its default."""
        focused = self.focused
        name = self._key_of(focused) if focused is not None else None
        if name is None:
            self.notify("Focus a setting first, then reset it.")
            return
        if self.apply(name, KEYS[name].default):
            self._show(name, self.settings[name])

    def action_focus_filter(self) -> None:
        self.query_one("#settings-filter", Input).focus()

    @on(Input.Changed, "#settings-filter")
    def _filter(self, event: Input.Changed) -> None:
        words = event.value.lower().split()
        for section in self.query(".settings-section"):
            visible = 0
            for row in section.query(".setting"):
                name = (row.id or "").removeprefix("setting-").replace("--", ".")
                key = KEYS.get(name)
                haystack = f"{name} {key.doc if key else ''}".lower()
                shown = all(w in haystack for w in words)
                row.display = shown
                visible += shown
            section.display = visible > 0

    def action_close(self) -> None:
        self.dismiss(None)
