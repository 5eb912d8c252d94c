"""config.toml: defaults, one-line errors naming the key and the file, live changes."""

from __future__ import annotations

import pytest

from leon.config import ConfigError, Settings, load_settings


def test_missing_file_gives_documented_defaults(tmp_path):
    s = load_settings(tmp_path / "config.toml")
    assert s["model"].startswith("claude-")
    assert s["max_tokens"] == 8192


def test_unknown_key_names_key_file_and_suggestion(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('modle = "claude-x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(p)
    msg = str(info.value)
    assert "modle" in msg and str(p) in msg and "did you mean 'model'" in msg
    assert "\n" not in msg


def test_wrong_type_and_range(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("max_tokens = \"lots\"\n")
    with pytest.raises(ConfigError, match="'max_tokens' must be an integer"):
        load_settings(p)
    p.write_text("max_tokens = 0\n")
    with pytest.raises(ConfigError, match=">= 1"):
        load_settings(p)


def test_broken_toml_is_one_line(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("model = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(p)


def test_set_validates_notifies_and_persists_keeping_comments(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("# my settings\nmodel = \"claude-sonnet-4-5\"\n")
    s = load_settings(p)
    seen = []
    s.subscribe(lambda k, v: seen.append((k, v)))
    assert s.set("max_tokens", "4096", persist=True) == 4096
    assert seen == [("max_tokens", 4096)]
    assert "# my settings" in p.read_text()
    assert load_settings(p)["max_tokens"] == 4096
    with pytest.raises(ConfigError, match="max_tokens"):
        s.set("max_tokens", "-3")
    assert s["max_tokens"] == 4096
    with pytest.raises(ConfigError, match="unknown key"):
        s.set("nope", "1")


def test_settings_from_dict_rejects_bool_for_int():
    with pytest.raises(ConfigError):
        Settings({"max_tokens": True})
