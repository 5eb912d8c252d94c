"""Colour themes from TOML files: leon's own (``leon/themes/*.toml``) and the user's
(``LEON_HOME/themes/*.toml``). Every colour is checked with ``Color.parse``; a file that
does not parse or names a bad colour is skipped, and the reason is shown to the user.

A theme file::

    name = "leon-dark"          # optional: defaults to the file name
    dark = true
    primary = "#5fa8d3"         # required
    secondary = "#a78bfa"       # the rest are optional
    accent = "#f2b880"
    foreground = "#e2e6ea"
    background = "#15191e"
    surface = "#1d2329"
    panel = "#262e36"
    success = "#7bc47f"
    warning = "#e5c07b"
    error = "#e06c75"

    [variables]                 # optional Textual theme variables
    "footer-key-foreground" = "#f2b880"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

PACKAGE_THEMES = Path(__file__).resolve().parent.parent / "themes"
DEFAULT_THEME = "leon-dark"
COLOUR_FIELDS = ("primary", "secondary", "accent", "foreground", "background", "surface",
                 "panel", "boost", "success", "warning", "error")
_ALLOWED = {"name", "dark", "variables", "luminosity_spread", "text_alpha", *COLOUR_FIELDS}


class ThemeFileError(ValueError):
    """A theme file leon cannot use; ``str()`` names the file and the problem."""


@dataclass
class LoadedThemes:
    """Themes read from the theme directories, and the files that were skipped."""

    themes: list[Theme] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_theme(path: Path) -> Theme:
    """One theme file → a Textual :class:`Theme`. Raises :class:`ThemeFileError`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"{path.name}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"{path.name}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _ALLOWED)
    if unknown:
        raise ThemeFileError(f"{path.name}: unknown key {unknown[0]!r}")
    if "primary" not in data:
        raise ThemeFileError(f"{path.name}: 'primary' colour is required")
    colours: dict[str, str] = {}
    for name in COLOUR_FIELDS:
        if name in data:
            colours[name] = _colour(path, name, data[name])
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ThemeFileError(f"{path.name}: [variables] must be a table")
    for name, value in variables.items():
        if not isinstance(value, str):
            raise ThemeFileError(f"{path.name}: variable {name!r} must be a string")
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError(f"{path.name}: 'dark' must be true or false")
    theme_name = data.get("name", path.stem)
    if not isinstance(theme_name, str) or not theme_name.strip():
        raise ThemeFileError(f"{path.name}: 'name' must be a non-empty string")
    extra: dict[str, float] = {}
    for name in ("luminosity_spread", "text_alpha"):
        if name in data:
            value = data[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ThemeFileError(f"{path.name}: {name!r} must be a number")
            extra[name] = float(value)
    return Theme(name=theme_name.strip(), dark=dark, variables=dict(variables), **colours,
                 **extra)  # type: ignore[arg-type]


def _colour(path: Path, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f"{path.name}: {name!r} must be a colour string, got {value!r}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeFileError(f"{path.name}: {name!r} is not a colour: {value!r}") from None
    return value


def load_themes(*directories: Path) -> LoadedThemes:
    """Every ``*.toml`` theme in ``directories`` (later ones override earlier ones by
    name); bad files are skipped and described in ``problems``."""
    loaded = LoadedThemes()
    by_name: dict[str, Theme] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                theme = parse_theme(path)
            except ThemeFileError as exc:
                loaded.problems.append(f"theme skipped: {exc}")
                continue
            by_name[theme.name] = theme
    loaded.themes = list(by_name.values())
    return loaded
