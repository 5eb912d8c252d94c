"""A small declarative validator for what leon reads from outside (thread exports and
archives): each field is described by a spec (type, enum, format, size, nullability), and
the first problem found is reported as one line naming the field — ``messages[3].role:
'robot' is not one of user, assistant``.

Also here: :func:`load_json`, the one way those files become Python values — bounded in
size, strict UTF-8, no ``NaN``/``Infinity``, no lone surrogates (SQLite could not store
them), nesting depth bounded.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Positive row ids and counts fit SQLite's integers and survive a round trip through
# JSON in any reader (2**53).
MAX_INT = 2**53
# Times are seconds since the epoch up to the end of the year 9999 (what strftime and
# localtime can show).
MAX_TIME = 253402300799.0
MAX_DEPTH = 64  # nesting of JSON values (tool inputs are the deepest leon makes: a few)


class Invalid(ValueError):
    """One problem in outside input: ``field`` (``messages[3].parent_id``, empty for the
    whole document) and ``reason``."""

    def __init__(self, where: str, reason: str, context: str = ""):
        self.field = where
        self.reason = reason
        super().__init__(context + (f"{where}: {reason}" if where else reason))

    def within(self, context: str) -> Invalid:
        """The same problem, its line prefixed with ``context`` (the file it is in)."""
        return Invalid(self.field, self.reason, context)


def shown(value: Any) -> str:
    """A value for an error line: repr (control characters escaped), shortened."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value), "?")


class Spec:
    """A description of one value."""

    null: bool = False

    def check(self, value: Any, where: str) -> None:
        raise NotImplementedError


def _null(spec: Spec, value: Any, where: str) -> bool:
    """True when ``value`` is None and that is allowed; raises when it is not."""
    if value is None:
        if spec.null:
            return True
        raise Invalid(where, "must not be null")
    return False


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Str(Spec):
    """A string of at most ``max`` characters; optionally one of ``enum``, or matching
    ``pattern`` (described as ``what``); ``line``: one line, no control characters;
    NUL is never allowed."""

    max: int = 10_000
    enum: tuple[str, ...] | None = None
    pattern: re.Pattern[str] | None = None
    what: str = ""
    line: bool = False
    null: bool = False

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        if not isinstance(value, str):
            raise Invalid(where, f"must be a string, not {_kind(value)}")
        if len(value) > self.max:
            raise Invalid(where, f"is {len(value):,} characters long; at most {self.max:,}")
        if self.enum is not None and value not in self.enum:
            raise Invalid(where, f"{shown(value)} is not one of {', '.join(self.enum)}")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise Invalid(where, f"{shown(value)} is not {self.what or 'in the expected format'}")
        if "\x00" in value or (self.line and _CONTROLS.search(value)):
            raise Invalid(where, f"{shown(value)} contains a control character")


@dataclass(frozen=True)
class Int(Spec):
    """An integer (not a boolean) in ``[min, max]``."""

    min: int = 0
    max: int = MAX_INT
    null: bool = False

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(where, f"must be an integer, not {_kind(value)}")
        if not self.min <= value <= self.max:
            raise Invalid(where, f"{value} is out of range ({self.min}..{self.max})")


@dataclass(frozen=True)
class Num(Spec):
    """A finite number (not a boolean) in ``[min, max]``."""

    min: float = 0.0
    max: float = float(MAX_INT)
    null: bool = False

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(where, f"must be a number, not {_kind(value)}")
        if not math.isfinite(value) or not self.min <= value <= self.max:
            raise Invalid(where, f"{value} is out of range ({self.min:g}..{self.max:g})")


def Time(null: bool = False) -> Num:  # noqa: N802 - reads as a type in the schemas
    """Seconds since the epoch."""
    return Num(0.0, MAX_TIME, null)


@dataclass(frozen=True)
class Bool(Spec):
    """``true``/``false`` (or, as SQLite stores them, 0/1)."""

    null: bool = False

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        if value not in (0, 1) or isinstance(value, float):
            raise Invalid(where, f"must be true/false or 0/1, not {shown(value)}")


@dataclass(frozen=True)
class AnyJson(Spec):
    """Any JSON value (``object_only``: an object); already bounded by :func:`load_json`."""

    object_only: bool = False
    null: bool = False

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        if self.object_only and not isinstance(value, dict):
            raise Invalid(where, f"must be an object, not {_kind(value)}")


@dataclass(frozen=True)
class Obj(Spec):
    """An object with exactly these ``fields`` (those in ``optional`` may be missing);
    any other key is refused, so nothing unchecked gets through."""

    fields: dict[str, Spec]
    optional: frozenset[str] = frozenset()
    null: bool = False
    extra: bool = False  # allow keys not listed (content blocks carry API extras)

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        if not isinstance(value, dict):
            raise Invalid(where, f"must be an object, not {_kind(value)}")
        for name, spec in self.fields.items():
            sub = f"{where}.{name}" if where else name
            if name not in value:
                if name in self.optional:
                    continue
                raise Invalid(sub, "is missing")
            spec.check(value[name], sub)
        if not self.extra:
            for name in value:
                if name not in self.fields:
                    raise Invalid(f"{where}.{name}" if where else name, "is not a known field")


@dataclass(frozen=True)
class ListOf(Spec):
    """A list of at most ``max`` items, each ``item``."""

    item: Spec
    max: int = 1_000_000
    null: bool = False

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        if not isinstance(value, list):
            raise Invalid(where, f"must be a list, not {_kind(value)}")
        if len(value) > self.max:
            raise Invalid(where, f"has {len(value):,} items; at most {self.max:,}")
        for i, v in enumerate(value):
            self.item.check(v, f"{where}[{i}]")


@dataclass(frozen=True)
class MapOf(Spec):
    """An object used as a map: keys ``key``, values ``value``."""

    key: Str
    value: Spec
    max: int = 100_000
    null: bool = False

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        if not isinstance(value, dict):
            raise Invalid(where, f"must be an object, not {_kind(value)}")
        if len(value) > self.max:
            raise Invalid(where, f"has {len(value):,} entries; at most {self.max:,}")
        for k, v in value.items():
            sub = f"{where}[{k!r}]"
            self.key.check(k, sub)
            self.value.check(v, sub)


@dataclass(frozen=True)
class Either(Spec):
    """One of several specs (tried in order); the reason names them all."""

    options: tuple[Spec, ...]
    what: str
    null: bool = False

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        for option in self.options:
            try:
                option.check(value, where)
                return
            except Invalid:
                continue
        raise Invalid(where, f"must be {self.what}, not {shown(value)}")


@dataclass(frozen=True)
class Tagged(Spec):
    """An object whose ``tag`` field (a string) picks its spec from ``kinds``; kinds not
    listed but matching ``other`` use ``other_spec``."""

    tag: str
    kinds: dict[str, Spec]
    other: re.Pattern[str] | None = None
    other_spec: Spec | None = None
    null: bool = False

    def check(self, value: Any, where: str) -> None:
        if _null(self, value, where):
            return
        if not isinstance(value, dict):
            raise Invalid(where, f"must be an object, not {_kind(value)}")
        kind = value.get(self.tag)
        if not isinstance(kind, str):
            raise Invalid(f"{where}.{self.tag}", "is missing" if kind is None
                          else f"must be a string, not {_kind(kind)}")
        spec = self.kinds.get(kind)
        if spec is None and self.other is not None and self.other.fullmatch(kind):
            spec = self.other_spec
        if spec is None:
            known = ", ".join(self.kinds)
            raise Invalid(f"{where}.{self.tag}", f"{shown(kind)} is not a known kind ({known})")
        spec.check(value, where)


def unique(rows: Iterable[dict[str, Any]], key: str, where: str) -> None:
    """Refuse a repeated ``key`` among ``rows`` (the ids of one table)."""
    seen: set[Any] = set()
    for i, r in enumerate(rows):
        if r[key] in seen:
            raise Invalid(f"{where}[{i}].{key}", f"{r[key]} appears twice")
        seen.add(r[key])


# -- reading the bytes ---------------------------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json(raw: bytes, max_bytes: int, what: str) -> Any:
    """Parse ``raw`` (at most ``max_bytes``) as strict UTF-8 JSON. Raises :class:`Invalid`
    with one line: too large, not UTF-8 (with the offset), not JSON (with line and
    column), nested too deeply, or a string that is not Unicode text."""
    if len(raw) > max_bytes:
        raise Invalid("", f"{what} is larger than {max_bytes // 2**20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("", f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise Invalid("", f"{what} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                          f"{exc.colno})") from None
    except ValueError as exc:
        raise Invalid("", f"{what} is not valid JSON ({exc})") from None
    except RecursionError:
        raise Invalid("", f"{what} is nested too deeply") from None
    _walk(data)
    return data


_Where = tuple[Any, "str | int"] | None  # (parent, key or index): built into a name on error


def _name(node: _Where) -> str:
    parts = []
    while node is not None:
        node, tail = node
        parts.append(f"[{tail}]" if isinstance(tail, int) else f".{tail}")
    return "".join(reversed(parts)).lstrip(".")


def _walk(data: Any) -> None:
    """Depth and text checks over every value, iteratively (a deep document must not
    exhaust the stack here either)."""
    stack: list[tuple[Any, int, _Where]] = [(data, 0, None)]
    while stack:
        value, depth, node = stack.pop()
        if depth > MAX_DEPTH:
            raise Invalid(_name(node), f"is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, str):
            _text(value, node)
        elif isinstance(value, dict):
            for k, v in value.items():
                _text(k, node)
                stack.append((v, depth + 1, (node, k)))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                stack.append((v, depth + 1, (node, i)))


def _text(value: str, node: _Where) -> None:
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(_name(node), "contains a lone surrogate (\\ud800-\\udfff): not text") \
            from None
