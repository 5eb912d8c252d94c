"""Whether a bash command is one *simple command of literal words*, and which words.

A permission rule such as ``bash:git status*`` may only allow a command when leon can
prove what bash will run: one command, whose words are exactly the text written, with
nothing bash would expand, substitute, redirect or chain. :func:`simple_words` answers
that; it returns the words bash will pass to the program, or None for anything else
(which then needs the user's answer).

Two parsers must agree. leon's own strict scanner (below) accepts only these word forms:

* bare characters: letters, digits, ``- _ . / : = , + @ % ^ ]`` and printable non-ASCII
  letters, marks, numbers, punctuation and symbols (never a Unicode space, control or
  format character, so no NBSP, no bidi override, no zero-width joiner);
* ``~`` only where bash does not expand it (not at the start of a word, not after ``=``
  or ``:``), as in ``HEAD~1``;
* single-quoted text (anything printable);
* double-quoted text without ``$``, backquote, backslash or ``!``;
* words separated by spaces and tabs; leading and trailing blanks and newlines ignored.

Everything else is refused: ``$`` in any form (parameters, ``$'…'``, ``$"…"``,
arithmetic, command substitution), backquotes, backslashes, ``; & | < > ( ) { } [ * ?
# !``, newlines and other control characters, an assignment as first word (``X=1 cmd``),
a reserved word (``if``, ``time``, ``coproc`` …) or a builtin that evaluates its
arguments (:data:`EVALUATING_BUILTINS`: ``eval``, ``printf -v 'a[$(cmd)]'`` …) as command
name, more than :data:`MAX_SIMPLE_CHARS` characters or :data:`MAX_SIMPLE_WORDS` words.
Then ``bashlex`` (a port of bash's own grammar) must parse the same text as exactly one
plain command whose words sit exactly where the scanner found them and have no
expansions inside. bashlex's words are not used: its quote removal is wrong for adjacent
quoted parts (``'a''b'`` gives ``a''b``), so the words come from the scanner, whose forms
have one meaning. tests/test_bash_rules.py checks the scanner's words against what a
real bash passes to a program.

:func:`canonical` writes words back as one command string in a single form (one space
between words, quotes only where needed); permission globs are matched against that.
"""

from __future__ import annotations

import functools
import unicodedata

import bashlex  # type: ignore[import-untyped]

# Longer commands are not simple: a person cannot review them at a glance anyway, and
# the bounds keep bashlex's work small whatever the model sends (it takes about 0.1 ms
# a word, so 512 words stay well under a tenth of a second on a busy machine).
MAX_SIMPLE_CHARS = 16_384
MAX_SIMPLE_WORDS = 512

_BARE_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "-_./:=,+@%^]")
# Characters never allowed inside double quotes: they expand there (or might, with
# history expansion on).
_DQ_ACTIVE = frozenset('$`\\!')
# Words bash treats as syntax in the command position.
RESERVED = frozenset({
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until",
    "do", "done", "in", "function", "time", "coproc", "{", "}", "!", "[[", "]]",
})
# Builtins that run their arguments as shell code or evaluate them, whatever the quoting:
# `printf -v 'a[$(cmd)]' x`, `test -v 'a[$(cmd)]'`, `declare`/`typeset`/`let`/`read` on a
# subscript, `compgen -C cmd`, `fc -e cmd`, `enable -f lib.so`, and the wrappers `eval`,
# `source`, `trap`, `command`, `builtin`, `exec`. Literal words are not enough to know
# what these do, so such a command is not simple. (Every other bash builtin was checked
# not to evaluate its arguments; tests/test_bash_rules.py runs the attacks.)
EVALUATING_BUILTINS = frozenset({
    "eval", "source", ".", "trap", "command", "builtin", "exec", "declare", "typeset",
    "local", "readonly", "export", "let", "printf", "read", "test", "[", "mapfile",
    "readarray", "getopts", "unset", "wait", "fc", "enable", "complete", "compgen", "bind",
})
_BLANKS = " \t"
_ENDS = " \t\n"


def _printable(ch: str) -> bool:
    """A character that is shown as itself: printable ASCII (space included), or a
    non-ASCII letter, mark, number, punctuation or symbol."""
    if ch < "\x7f":
        return ch >= " "
    return unicodedata.category(ch)[0] in "LMNPS"


def _bare(ch: str) -> bool:
    """A character that means only itself outside quotes."""
    if ch < "\x7f":
        return ch in _BARE_ASCII
    return unicodedata.category(ch)[0] in "LMNPS"


def _scan(text: str) -> tuple[list[str], list[tuple[int, int]]] | None:
    """Words and their (start, end) spans, or None when ``text`` has anything but the
    literal forms listed in the module docstring."""
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in _BLANKS:
            i += 1
            continue
        start = i
        parts: list[str] = []
        while i < n and text[i] not in _BLANKS:
            ch = text[i]
            if ch == "'" or ch == '"':
                close = text.find(ch, i + 1)
                if close < 0:
                    return None
                inner = text[i + 1:close]
                if not all(map(_printable, inner)):
                    return None
                if ch == '"' and any(c in _DQ_ACTIVE for c in inner):
                    return None
                parts.append(inner)
                i = close + 1
            elif ch == "~":
                # bash expands a tilde at the start of a word and after the '=' or a ':'
                # of an assignment-like word (`a=~`, `PATH=x:~`), also in arguments.
                if i == start or text[i - 1] in "=:":
                    return None
                parts.append(ch)
                i += 1
            elif _bare(ch):
                parts.append(ch)
                i += 1
            else:
                return None
        words.append("".join(parts))
        spans.append((start, i))
    return words, spans


def _bashlex_agrees(text: str, spans: list[tuple[int, int]]) -> bool:
    """Whether bashlex parses ``text`` as one command of plain words at ``spans``."""
    try:
        trees = bashlex.parse(text)
    except Exception:  # noqa: BLE001 - bashlex raises many kinds; any means "not simple"
        return False
    if len(trees) != 1 or trees[0].kind != "command":
        return False
    parts = trees[0].parts
    if len(parts) != len(spans):
        return False
    for node, span in zip(parts, spans, strict=True):
        if node.kind != "word" or getattr(node, "parts", None) or tuple(node.pos) != span:
            return False
    return True


@functools.lru_cache(maxsize=64)
def simple_words(command: str) -> tuple[str, ...] | None:
    """The words bash passes to the program when ``command`` is a single simple command
    of literal words, else None (see the module docstring for exactly what passes)."""
    text = command.strip(_ENDS)
    if not text or len(text) > MAX_SIMPLE_CHARS:
        return None
    scanned = _scan(text)
    if scanned is None:
        return None
    words, spans = scanned
    if len(words) > MAX_SIMPLE_WORDS:
        return None
    first = words[0]
    # `X=1 cmd` sets a variable for cmd (`PATH=. git`, `GIT_DIR=…`); an empty command
    # name, or one with '=', is never what a rule meant.
    if not first or "=" in first or first in RESERVED or first in EVALUATING_BUILTINS:
        return None
    if not _bashlex_agrees(text, spans):
        return None
    return tuple(words)


def _needs_quotes(word: str, first: bool) -> bool:
    if not word or (first and ("=" in word or word in RESERVED)):
        return True
    for i, ch in enumerate(word):
        if ch == "~":
            if i == 0 or word[i - 1] in "=:":
                return True
        elif not _bare(ch):
            return True
    return False


def quote_word(word: str, first: bool = False) -> str:
    """``word`` as leon writes it in a command: bare when every character is literal
    there, else in single quotes (double quotes when it contains a single quote and
    nothing active in double quotes)."""
    if not _needs_quotes(word, first):
        return word
    if "'" not in word:
        return f"'{word}'"
    if not any(c in _DQ_ACTIVE or c == '"' for c in word):
        return f'"{word}"'
    return "'" + word.replace("'", "'\"'\"'") + "'"


def canonical(words: tuple[str, ...] | list[str]) -> str:
    """One command string for ``words``: single spaces between words, quotes only where a
    word needs them. ``git  'status'`` and ``git status`` both give ``git status``."""
    return " ".join(quote_word(w, i == 0) for i, w in enumerate(words))


def escape_glob(text: str) -> str:
    """``text`` as an fnmatch pattern that matches only ``text`` itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def literal_of(pattern: str) -> str | None:
    """The one string an fnmatch ``pattern`` matches, when it has no wildcard (only the
    escapes ``[*]``, ``[?]`` and ``[[]``); None for a real glob."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "[":
            if pattern[i:i + 3] in ("[*]", "[?]", "[[]"):
                out.append(pattern[i + 1])
                i += 3
                continue
            return None
        if ch in "*?":
            return None
        out.append(ch)
        i += 1
    return "".join(out)
