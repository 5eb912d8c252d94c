"""The settings pane: every key by section, inline validation that keeps the old value,
changes applied at once (subscribers told) and saved to config.toml."""

from __future__ import annotations

import tomllib

from textual.app import App
from textual.widgets import Input, Select, Static, Switch

import leon.memory.settings  # noqa: F401  (registers the memory keys, as the app does)
from leon.config import KEYS, Key, Settings, register
from leon.ui.messages import SettingChanged
from leon.ui.screens.settings import SettingsScreen, grouped_keys, section_of, slug


class Host(App):
    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings
        self.heard: list[tuple[str, object]] = []
        self.posted: list[SettingChanged] = []

    def on_mount(self) -> None:
        # What the app does: recompute the gauge when a setting changes.
        self.settings.subscribe(lambda k, v: self.heard.append((k, v)))
        self.push_screen(SettingsScreen(self.settings))

    def on_setting_changed(self, m: SettingChanged) -> None:
        self.posted.append(m)


def editor(screen, name: str):
    return screen.query_one(f"#edit-{slug(name)}")


def error_text(screen, name: str) -> str:
    row = screen.query_one(f"#setting-{slug(name)}")
    return str(row.query_one(".setting-error", Static).render())


async def type_into(pilot, box: Input, text: str) -> None:
    box.focus()
    box.value = ""
    await pilot.press(*text, "enter")
    await pilot.pause()


def test_every_key_in_a_section():
    groups = grouped_keys()
    names = [k.name for _, keys in groups for k in keys]
    assert sorted(names) == sorted(KEYS)
    sections = [s for s, _ in groups]
    assert sections[:3] == ["memory.pruning", "memory.compaction", "memory.spill"]
    assert section_of("model") == "general" and section_of("ui.theme") == "ui"


async def test_every_key_has_an_editor_with_its_doc(tmp_path):
    settings = Settings(path=tmp_path / "config.toml")
    app = Host(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        for name, key in KEYS.items():
            widget = editor(screen, name)
            if key.type is bool:
                assert isinstance(widget, Switch) and widget.value == settings[name]
            elif key.choices or name == "ui.theme":
                assert isinstance(widget, Select)
            else:
                assert isinstance(widget, Input)
            row = screen.query_one(f"#setting-{slug(name)}")
            doc = str(row.query_one(".setting-doc", Static).render())
            assert key.describe_range() in doc


async def test_valid_change_applies_at_once_and_persists(tmp_path):
    config = tmp_path / "config.toml"
    settings = Settings(path=config)
    app = Host(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        await type_into(pilot, editor(screen, "memory.pruning.soft_trim_chars"), "4_000")
        assert settings["memory.pruning.soft_trim_chars"] == 4000
        assert app.heard == [("memory.pruning.soft_trim_chars", 4000)]
        assert [(m.key, m.value) for m in app.posted] == [("memory.pruning.soft_trim_chars", 4000)]
        saved = tomllib.loads(config.read_text())
        assert saved["memory"]["pruning"]["soft_trim_chars"] == 4000
        # A switch applies on toggle.
        switch = editor(screen, "memory.compaction.enabled")
        switch.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert settings["memory.compaction.enabled"] is False
        assert tomllib.loads(config.read_text())["memory"]["compaction"]["enabled"] is False


async def test_invalid_value_shows_the_message_and_keeps_the_old_value(tmp_path):
    config = tmp_path / "config.toml"
    settings = Settings(path=config)
    app = Host(settings)
    name = "memory.pruning.soft_trim_chars"
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        box = editor(screen, name)
        await type_into(pilot, box, "50")
        assert settings[name] == 3000
        assert "must be an integer >= 200" in error_text(screen, name)
        assert screen.query_one(f"#setting-{slug(name)}").has_class("-invalid")
        assert box.value == "50"                 # what was typed stays, to be corrected
        await type_into(pilot, box, "lots")
        assert settings[name] == 3000 and "got 'lots'" in error_text(screen, name)
        # A rule across keys: the spill threshold may not exceed the clear threshold.
        spill = "memory.spill.threshold_chars"
        await type_into(pilot, editor(screen, spill), "20000")
        assert settings[spill] == 10000
        assert "must not be above" in error_text(screen, spill)
        # Correcting the value clears the message.
        await type_into(pilot, box, "2500")
        assert settings[name] == 2500 and error_text(screen, name) == ""
        assert not screen.query_one(f"#setting-{slug(name)}").has_class("-invalid")
    assert app.heard == [(name, 2500)]
    assert not config.exists() or "threshold_chars" not in config.read_text()


async def test_reset_to_default_and_changes_made_elsewhere(tmp_path):
    settings = Settings(path=tmp_path / "config.toml")
    settings.set("max_tokens", 1000)
    app = Host(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        box = editor(screen, "max_tokens")
        assert box.value == "1000"
        box.focus()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert settings["max_tokens"] == KEYS["max_tokens"].default
        assert box.value == str(KEYS["max_tokens"].default)
        # /model typed in the chat while the pane is open: the pane shows it.
        settings.set("model", "demo")
        await pilot.pause()
        assert editor(screen, "model").value == "demo"


async def test_filter_and_keys_added_later(tmp_path):
    register(Key("zz_test.later_knob", int, 5, "A knob another layer added.", 0, 10))
    try:
        settings = Settings(path=tmp_path / "config.toml")
        app = Host(settings)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(editor(screen, "zz_test.later_knob"), Input)
            screen.query_one("#settings-filter", Input).focus()
            await pilot.press(*"spill")
            await pilot.pause()
            shown = [r.id for r in screen.query(".setting") if r.display]
            assert f"setting-{slug('memory.spill.threshold_chars')}" in shown
            assert f"setting-{slug('max_tokens')}" not in shown
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, SettingsScreen)
    finally:
        KEYS.pop("zz_test.later_knob", None)


# The snapshot uses a fixed table, so other layers adding or rewording keys cannot change it.
SNAPSHOT_KEYS = {k.name: k for k in [
    Key("memory.pruning.soft_trim_chars", int, 3000,
        "Older tool results longer than this keep their head and tail.", 200, 1_000_000),
    Key("memory.pruning.hard_clear_threshold", int, 10000,
        "Older tool results longer than this are replaced by a placeholder.", 500, 10_000_000),
    Key("memory.pruning.trim_tool_results", bool, True, "Trim older tool results."),
    Key("memory.compaction.trigger_ratio", float, 0.7,
        "Compact when the request exceeds this share of the window.", 0.1, 0.95),
    Key("model", str, "claude-sonnet-5", "Claude model used when --model is not given."),
    Key("ui.density", str, "normal", "Spacing of the transcript.",
        choices=("compact", "normal")),
]}


def test_snapshot_settings(snap_compare, monkeypatch):
    import leon.config
    import leon.ui.screens.settings as pane

    monkeypatch.setattr(leon.config, "KEYS", SNAPSHOT_KEYS)
    monkeypatch.setattr(pane, "KEYS", SNAPSHOT_KEYS)
    monkeypatch.setattr(leon.config, "_VALIDATORS", [])
    settings = Settings(path=None)

    async def ready(pilot) -> None:
        await pilot.pause()
        screen = pilot.app.screen
        for box in screen.query(Input):
            box.cursor_blink = False
        box = editor(screen, "memory.pruning.soft_trim_chars")
        box.value = "50"
        screen.apply("memory.pruning.soft_trim_chars", "50")
        editor(screen, "memory.pruning.hard_clear_threshold").focus()
        await pilot.pause()

    assert snap_compare(Host(settings), terminal_size=(100, 30), run_before=ready)
