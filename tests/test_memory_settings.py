"""The memory keys: registered with their defaults, validated with ranges and across keys
(one settings API for the TUI and `leon config set`), and read afresh by every call."""

from __future__ import annotations

import pytest

from leon.config import KEYS, ConfigError, Settings, load_settings
from leon.memory.settings import MemorySettings, context_window

DEFAULTS = {
    "memory.context_window": 0,
    "memory.pruning.soft_trim_chars": 3000,
    "memory.pruning.hard_clear_threshold": 10000,
    "memory.pruning.protect_recent": 3,
    "memory.pruning.trim_tool_results": True,
    "memory.pruning.min_prune_tokens": 5000,
    "memory.compaction.enabled": True,
    "memory.compaction.trigger_ratio": 0.70,
    "memory.compaction.min_messages": 20,
    "memory.compaction.reserve_tokens": 16384,
    "memory.compaction.keep_recent_tokens": 20000,
    "memory.spill.threshold_chars": 10000,
}


def test_every_memory_key_is_registered_with_its_default():
    s = Settings()
    for name, default in DEFAULTS.items():
        assert name in KEYS, name
        assert s[name] == default, name
    assert {n for n in KEYS if n.startswith("memory.")} == set(DEFAULTS)


def test_every_key_is_in_the_readme_config_table():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in DEFAULTS:
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize("name", [n for n in DEFAULTS if KEYS[n].type in (int, float)])
def test_out_of_range_values_are_refused_naming_key_and_range(name):
    key = KEYS[name]
    s = Settings()
    bad = key.min - 1 if key.min is not None else None
    with pytest.raises(ConfigError) as info:
        s.set(name, str(bad))
    msg = str(info.value)
    assert name in msg and ">=" in msg and "\n" not in msg
    assert s[name] == DEFAULTS[name]  # nothing changed


def test_wrong_types_are_refused():
    s = Settings()
    with pytest.raises(ConfigError, match="memory.pruning.trim_tool_results"):
        s.set("memory.pruning.trim_tool_results", "maybe")
    with pytest.raises(ConfigError, match="memory.compaction.trigger_ratio"):
        s.set("memory.compaction.trigger_ratio", "lots")


def test_spill_threshold_above_clear_threshold_is_refused_saying_why(tmp_path):
    s = Settings()
    with pytest.raises(ConfigError) as info:
        s.set("memory.spill.threshold_chars", 20000)
    msg = str(info.value)
    assert "memory.spill.threshold_chars" in msg and "hard_clear_threshold" in msg
    assert "spill file" in msg
    # lowering the clear threshold under the spill threshold is refused the same way
    with pytest.raises(ConfigError, match="must not be above"):
        s.set("memory.pruning.hard_clear_threshold", 9000)
    # ... and in config.toml, before anything is opened
    p = tmp_path / "config.toml"
    p.write_text("[memory.spill]\nthreshold_chars = 50000\n")
    with pytest.raises(ConfigError, match=str(p)):
        load_settings(p)
    # raising both in the right order works
    s.set("memory.pruning.hard_clear_threshold", 30000)
    s.set("memory.spill.threshold_chars", 20000)
    assert s["memory.spill.threshold_chars"] == 20000


def test_soft_trim_above_clear_threshold_is_refused():
    with pytest.raises(ConfigError, match="soft_trim_chars"):
        Settings().set("memory.pruning.soft_trim_chars", 12000)


def test_keep_recent_must_stay_below_the_compaction_threshold():
    s = Settings({"memory.context_window": 50_000, "memory.compaction.reserve_tokens": 10_000,
                  "memory.compaction.keep_recent_tokens": 5_000})
    with pytest.raises(ConfigError, match="compacted again"):
        s.set("memory.compaction.keep_recent_tokens", 30_000)  # threshold is 28000
    with pytest.raises(ConfigError, match="larger than"):
        s.set("memory.context_window", 9_000)


def test_memory_keys_load_from_config_toml_and_persist(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("# mine\n[memory.pruning]\nsoft_trim_chars = 2000\n\n"
                 "[memory.compaction]\ntrigger_ratio = 0.5\n")
    s = load_settings(p)
    assert s["memory.pruning.soft_trim_chars"] == 2000
    assert s["memory.compaction.trigger_ratio"] == 0.5
    s.set("memory.spill.threshold_chars", "8000", persist=True)
    again = load_settings(p)
    assert again["memory.spill.threshold_chars"] == 8000 and "# mine" in p.read_text()


def test_snapshot_reads_current_values_and_window_table():
    s = Settings()
    assert MemorySettings.of(s, "claude-sonnet-4-6").window == 200_000
    assert context_window("demo") == 200_000
    s.set("memory.compaction.keep_recent_tokens", 5000)
    s.set("memory.context_window", 64_000)
    snap = MemorySettings.of(s, "claude-sonnet-4-6")
    assert snap.window == 64_000
    assert snap.threshold == int(0.7 * (64_000 - 16_384))


def test_leon_config_set_validates_memory_keys(leon_paths, capsys):
    from leon.cli import main

    assert main(["config", "set", "memory.pruning.soft_trim_chars", "100"]) == 2
    err = capsys.readouterr().err
    assert "memory.pruning.soft_trim_chars" in err and ">= 200" in err
    assert main(["config", "set", "memory.spill.threshold_chars", "20000"]) == 2
    assert "hard_clear_threshold" in capsys.readouterr().err
    assert main(["config", "set", "memory.compaction.trigger_ratio", "0.6"]) == 0
    assert "trigger_ratio = 0.6" in leon_paths.config.read_text()
