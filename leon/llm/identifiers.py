"""Find the identifiers a summary must not lose.

An identifier is a *salient* name: something a later turn might need verbatim and
could not reconstruct from prose. File paths and names (``src/app.py``, ``README.md``,
``.env``; a ``:line`` suffix is dropped, ``src/app.py:42`` is ``src/app.py``), URLs, hex
and uuid-like ids and hashes (``a1b2c3d``), names mixing letters with digits or
punctuation (``toolu_01ABC``, ``v1.2.3``, ``x86``), code symbols (``snake_case``,
``CamelCase``, ``dotted.names``, ``func()``), and backticked code spans.

Never identifiers: bare numbers (``11``, ``3.14``, ``2024-01-15``, ``127.0.0.1``),
quantities (``100ms``, ``10KB``, ``2nd``), and ordinary words — including capitalised
ones at the start of a sentence and backticked single words (`` `open` ``). Summaries of
real sessions drop line numbers and counters all the time, and that loses nothing a
later turn could not find again.

The demo model uses :func:`extract_identifiers` to build the identifier list of its
summaries, and the memory layer uses :func:`missing_identifiers` to check that a
summary (from any model) kept them.
"""

from __future__ import annotations

import re

# A backticked span (not part of a ``` fence), a call (``parse()``), or a run of
# characters that are not obvious separators. Commas, '=' and quotes separate because
# tool inputs are rendered as ``key=value`` and prose lists names with commas.
_TOKEN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)"
                    r"|(?<![\w.])[A-Za-z_][\w.]*\(\)"
                    r"|[^\s`\"'()\[\]{}<>|,;=]+")

# Spans longer than this are code, not a name; scan inside them instead.
_MAX_SPAN = 120

_LEAD_STRIP = "#!?:…"
_TRAIL_STRIP = ".,:;!?%…"

# Dotted abbreviations that look like ``name.ext`` but are English.
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "ph.d", "a.m", "p.m", "u.s", "u.k", "n.b", "p.s"}

_UUIDISH = re.compile(r"(?:0x)?[0-9a-fA-F]+(?:-[0-9a-fA-F]+)*")
_NUMBERISH = re.compile(r"[+-]?\d[\d.,:\-]*")
_DOTTED = re.compile(r"[\w\-@~+*]+(?:\.[\w\-+*]+)+")
_DOTFILE = re.compile(r"\.[A-Za-z_][\w\-.]*")
_SNAKE = re.compile(r"[\w\-.:@$]+")
_WORDLIKE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_MIXED = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_PLURAL_ACRONYM = re.compile(r"[A-Z]+s")  # URLs, APIs, IDs: English, not CamelCase
# A number with a short unit or ordinal suffix: a quantity, not a name.
_QUANTITY = re.compile(r"[+-]?\d+(?:[.,]\d+)*[A-Za-z]{1,3}")
# A ``:line`` or ``:line:col`` suffix after a name (``app.py:42``, ``src/x.rs:7:3``).
_LINE_SUFFIX = re.compile(r"(?<=[A-Za-z_\])/])(?::\d+)+$")
_CALL = re.compile(r"[A-Za-z_][\w.]*\(\)")
# Inside a chunk that is not an identifier as a whole, these split it into parts.
_INNER_SPLIT = re.compile(r"[^\w./~@\-]+")


def _normalise(chunk: str) -> str:
    """Strip the punctuation prose wraps around a token (``app.py.`` → ``app.py``)."""
    # A leading run of dots is an ellipsis unless it starts a relative path (``../x``).
    if chunk.startswith("..") and not chunk.startswith("../"):
        chunk = chunk.lstrip(".")
    chunk = chunk.lstrip(_LEAD_STRIP).rstrip(_TRAIL_STRIP)
    # Stars on both sides are Markdown emphasis; a leading star alone is a glob (*.py).
    if chunk.endswith("*") or not chunk.startswith("*"):
        chunk = chunk.strip("*").rstrip(_TRAIL_STRIP)
    # A single leading dot belongs to dotfiles and ``./x`` only.
    relative = chunk.startswith(("./", "../"))
    if chunk.startswith(".") and not relative and not (chunk[1:2].isalnum() or chunk[1:2] == "_"):
        chunk = chunk.lstrip(".")
    if chunk[:1] in "$€£" and chunk[1:2].isdigit():
        chunk = chunk[1:]
    return _LINE_SUFFIX.sub("", chunk)


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def is_identifier(token: str) -> bool:
    """Whether one already-normalised token counts as an identifier."""
    if len(token) < 2 or not any(c.isalnum() for c in token):
        return False
    if _CALL.fullmatch(token):
        return True
    if _NUMBERISH.fullmatch(token) or _QUANTITY.fullmatch(token):
        return False  # bare numbers and quantities: never salient
    if "/" in token:
        return True
    if _UUIDISH.fullmatch(token):
        hexpart = token[2:] if token.lower().startswith("0x") else token
        if token.lower().startswith("0x") and len(hexpart) >= 1:
            return True
        return _digits(token) >= 1 and len(hexpart.replace("-", "")) >= 6
    if "_" in token and _SNAKE.fullmatch(token):
        return True
    if _DOTFILE.fullmatch(token):
        return True
    if _DOTTED.fullmatch(token):
        parts = token.split(".")
        if token.lower() in _ABBREVIATIONS or all(len(p) <= 1 for p in parts):
            return False
        return any(c.isalpha() for c in parts[-1]) or _digits(token) >= 2
    if _WORDLIKE.fullmatch(token) and not _digits(token):
        if _PLURAL_ACRONYM.fullmatch(token):
            return False
        # CamelCase / camelCase: an upper-case letter after the first, plus a lower-case one.
        return any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)
    if _MIXED.fullmatch(token):
        # Letters mixed with digits: ids, versions, sizes (a1b2c3, v1.2.3, 100ms, utf-8).
        has_alpha = any(c.isalpha() for c in token)
        return has_alpha and (_digits(token) >= 2 or (len(token) >= 4 and _digits(token) >= 1))
    return False


def _candidates(chunk: str, depth: int = 0) -> list[str]:
    token = _normalise(chunk)
    if is_identifier(token):
        return [token]
    if depth > 0:
        return []
    # Not an identifier as a whole (``foo_bar,2`` or ``key:Value``): try its parts.
    found: list[str] = []
    for part in _INNER_SPLIT.split(token):
        if part and part != token:
            found.extend(_candidates(part, depth + 1))
    return found


def _is_code_span(span: str) -> bool:
    """Whether a backticked span counts whole: code (a command, an expression, a name
    with punctuation), not a bare number or a single plain word."""
    if _NUMBERISH.fullmatch(span) or _QUANTITY.fullmatch(span):
        return False
    if span.isalpha():
        return is_identifier(span)  # `open` is a word; `getUser` a name
    return any(c.isalnum() for c in span)


def extract_identifiers(text: str) -> list[str]:
    """Return the identifiers in ``text``, deduplicated, in first-seen order.

    >>> extract_identifiers("Fix `parse()` in src/app.py:42 (see ToolRegistry), take 11.")
    ['parse()', 'src/app.py', 'ToolRegistry']
    """
    if not text:
        return []
    seen: dict[str, None] = {}
    for match in _TOKEN.finditer(text):
        span = match.group(1)
        if span is not None:
            span = span.strip()
            if span and len(span) <= _MAX_SPAN and _is_code_span(span):
                seen.setdefault(span, None)
                continue
            found = extract_identifiers(span)
        else:
            found = _candidates(match.group(0))
        for token in found:
            seen.setdefault(token, None)
    return list(seen)


def contains_identifier(identifier: str, text: str) -> bool:
    """Whether ``identifier`` occurs in ``text`` as a whole token.

    Word boundaries are only required where the identifier itself starts or ends
    with a word character, so ``42`` is not found inside ``420`` but ``app.py`` is
    found inside ``src/app.py``.
    """
    if not identifier:
        return True
    pattern = re.escape(identifier)
    if re.match(r"\w", identifier[0]):
        pattern = r"(?<!\w)" + pattern
    if re.match(r"\w", identifier[-1]):
        pattern += r"(?!\w)"
    return re.search(pattern, text) is not None


def missing_identifiers(original: str, summary: str) -> list[str]:
    """Identifiers of ``original`` that ``summary`` does not contain, in first-seen order."""
    # Most identifiers appear in the summary as identifiers themselves: a set lookup
    # avoids one regex scan of the summary per identifier on long conversations.
    present = set(extract_identifiers(summary))
    return [
        i for i in extract_identifiers(original)
        if i not in present and not contains_identifier(i, summary)
    ]
