"""Settings: one table of every key leon reads, its type, default, range and meaning.

``config.toml`` is optional. An unknown key or a wrong type is a :class:`ConfigError`
naming the key and the file; the CLI turns it into one line and exit status 2 before any
database is opened. At run time :meth:`Settings.set` is the one way to change a value (the
TUI and ``leon config set`` both use it): it validates, notifies subscribers so the next
model call uses the new value, and can persist to ``config.toml`` keeping the user's
comments (tomlkit).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "claude-sonnet-5"


class ConfigError(Exception):
    """A bad configuration value; ``str()`` is the one-line message shown to the user."""


@dataclass(frozen=True)
class Key:
    """One setting. ``name`` is dotted: ``memory.pruning.soft_trim_chars`` is
    ``soft_trim_chars`` in the ``[memory.pruning]`` table."""

    name: str
    type: type
    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type is bool:
            return "true or false"
        if self.type in (int, float):
            kind = "an integer" if self.type is int else "a number"
            lo = "" if self.min is None else f" >= {self.min:g}"
            hi = "" if self.max is None else f" <= {self.max:g}"
            sep = " and" if lo and hi else ""
            return f"{kind}{lo}{sep}{hi}"
        if self.type is list:
            return "a list of strings"
        return "a string"


KEYS: dict[str, Key] = {
    k.name: k
    for k in [
        Key("model", str, DEFAULT_MODEL, "Claude model used when --model is not given ('demo' for the offline model)."),
        Key("max_tokens", int, 8192, "Most tokens the model may write in one reply.", 1, 128_000),
        Key("system_prompt", str, "", "Extra instructions appended to leon's system prompt."),
        # Time limits of a call to the API (leon.llm.base.Limits), read at each call.
        Key("api.connect_timeout", float, 10.0, "Seconds to open a connection to the API "
            "before the attempt fails.", 0.1, 600),
        Key("api.first_event_timeout", float, 60.0, "Seconds from sending a request to "
            "the first event of the reply before the attempt fails.", 0.1, 3600),
        Key("api.idle_timeout", float, 60.0, "Seconds a reply may pause between two "
            "events; what arrived before is kept.", 0.1, 3600),
        Key("api.total_deadline", float, 300.0, "Seconds within which failed attempts "
            "of one call are retried; a reply that keeps streaming is never cut by it.",
            0.1, 86400),
        # Read by the TUI (leon/ui); registered here so config.toml may set them before the
        # UI is imported.
        Key("ui.theme", str, "leon-dark", "Colour theme of the TUI: a built-in Textual theme "
            "or the name of a theme file in leon's themes/ or LEON_HOME/themes/."),
        Key("ui.keymap", list, [], "Key overrides for the TUI as 'binding-id=key' strings, "
            "e.g. ['chat.threads=ctrl+t']; the help screen (F1) lists the ids."),
    ]
}


def register(*keys: Key) -> None:
    """Add keys from a layer that owns them (memory, lifecycle, ui) to the table."""
    for key in keys:
        KEYS[key.name] = key


def _check_type(key: Key, value: Any, where: str) -> Any:
    want = key.type
    ok: bool
    if want is bool:
        ok = isinstance(value, bool)
    elif want is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif want is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
            ok = math.isfinite(value)
    elif want is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{where}: '{key.name}' must be {key.describe_range()}, got {value!r}")
    if key.choices and value not in key.choices:
        raise ConfigError(f"{where}: '{key.name}' must be {key.describe_range()}, got {value!r}")
    if want in (int, float):
        if (key.min is not None and value < key.min) or (key.max is not None and value > key.max):
            raise ConfigError(f"{where}: '{key.name}' must be {key.describe_range()}, got {value!r}")
    return value


def parse_text(key: Key, text: str) -> Any:
    """Turn a value typed by a user (CLI or settings pane) into the key's type."""
    text = text.strip()
    try:
        if key.type is bool:
            low = text.lower()
            if low in ("true", "yes", "on", "1"):
                return True
            if low in ("false", "no", "off", "0"):
                return False
            raise ValueError
        if key.type is int:
            return int(text.replace("_", "").replace(",", ""))
        if key.type is float:
            return float(text)
        if key.type is list:
            return [part.strip() for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"'{key.name}' must be {key.describe_range()}, got {text!r}") from None
    return text


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in table.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


Validator = Callable[[dict[str, Any]], str | None]
_VALIDATORS: list[Validator] = []


def register_rule(rule: Validator) -> None:
    """A rule across keys (e.g. spill threshold <= hard clear threshold); returns an error
    message, or None when the values are consistent."""
    _VALIDATORS.append(rule)


class Settings:
    """The live settings of one leon process."""

    def __init__(self, values: dict[str, Any] | None = None, path: Path | None = None):
        self.path = path
        self._values = {name: key.default for name, key in KEYS.items()}
        self._listeners: list[Callable[[str, Any], None]] = []
        if values:
            where = str(path) if path else "settings"
            for name, value in values.items():
                key = KEYS.get(name)
                if key is None:
                    raise ConfigError(f"{where}: unknown key '{name}'{_suggest(name)}")
                self._values[name] = _check_type(key, value, where)
            self._check_rules(self._values, where)

    # -- reading -------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        if name not in KEYS:
            raise KeyError(name)
        return self._values.get(name, KEYS[name].default)

    def get(self, name: str) -> Any:
        return self[name]

    def section(self, prefix: str) -> dict[str, Any]:
        """Values under ``prefix.`` with the prefix removed, e.g. ``section("memory.pruning")``."""
        p = prefix + "."
        return {n[len(p):]: self[n] for n in KEYS if n.startswith(p)}

    def as_dict(self) -> dict[str, Any]:
        return {n: self[n] for n in sorted(KEYS)}

    # -- changing ------------------------------------------------------------------
    def subscribe(self, listener: Callable[[str, Any], None]) -> Callable[[], None]:
        """Call ``listener(key, value)`` after each change; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def set(self, name: str, value: Any, *, persist: bool = False) -> Any:
        """Validate and apply one value (a typed value or the text a user typed)."""
        key = KEYS.get(name)
        if key is None:
            raise ConfigError(f"unknown key '{name}'{_suggest(name)}")
        if isinstance(value, str) and key.type is not str:
            value = parse_text(key, value)
        value = _check_type(key, value, "settings")
        candidate = dict(self._values)
        candidate[name] = value
        self._check_rules(candidate, "settings")
        self._values = candidate
        if persist:
            self.save_key(name)
        for listener in list(self._listeners):
            listener(name, value)
        return value

    def save_key(self, name: str) -> None:
        """Write one key to config.toml, keeping the rest of the file (and its comments)."""
        import tomlkit

        if self.path is None:
            return
        doc = tomlkit.parse(self.path.read_text()) if self.path.exists() else tomlkit.document()
        *tables, leaf = name.split(".")
        node: Any = doc
        for t in tables:
            if t not in node:
                node[t] = tomlkit.table()
            node = node[t]
        node[leaf] = self[name]
        from leon.paths import make_private_dir

        make_private_dir(self.path.parent)  # 0700, as every directory leon makes
        tmp = self.path.with_suffix(".toml.tmp")
        # 0600 from the start; a link planted at the temp name is not followed
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(tomlkit.dumps(doc))
        tmp.replace(self.path)

    @staticmethod
    def _check_rules(values: dict[str, Any], where: str) -> None:
        for rule in _VALIDATORS:
            problem = rule(values)
            if problem:
                raise ConfigError(f"{where}: {problem}")


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(KEYS), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def load_settings(path: Path) -> Settings:
    """Read ``config.toml`` if it exists. Raises :class:`ConfigError` with one line."""
    if not path.exists():
        return Settings(path=path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return Settings(_flatten(data), path=path)


def describe_keys() -> str:
    """Every key with its default and meaning (for `leon config keys` and the README)."""
    lines = []
    for name in sorted(KEYS):
        k = KEYS[name]
        lines.append(f"{name} = {k.default!r}  # {k.doc} ({k.describe_range()})")
    return "\n".join(lines)


# Layers that own keys register them on import; they must be in KEYS before a
# config.toml is parsed, so import them here (they only need Key and register above).
from leon.agent import keys as _agent_keys  # noqa: E402,F401
from leon.lifecycle import keys as _lifecycle_keys  # noqa: E402,F401
from leon.memory import settings as _memory_settings  # noqa: E402,F401
from leon.store import keys as _store_keys  # noqa: E402,F401
