"""Which lines of a text a Python regular expression matches — on RE2 wherever that gives
exactly Python's answer, and the search engine of the ``grep`` tool's child process.

The pattern means what Python's ``re`` says it means, searched in each line on its own
(``re.search(pattern, line)``). Python's engine backtracks, so a pattern such as
``(a+)+$`` can take longer than the age of the universe on one line of forty ``a``;
RE2 cannot (its time is linear in the text). So the pattern is parsed with Python's own
parser and rewritten, node by node, into RE2 syntax with the same meaning:

- every character set (a literal under ``(?i)``, ``[...]``, ``\\w``, ``\\d``, ``\\s``, ``.``)
  is computed by asking Python's engine which code points it matches, and written out
  as explicit ranges — so Unicode classes and case folding are Python's, not RE2's;
- nothing may consume a newline and ``^ $ \\A \\Z`` become RE2's multi-line line anchors,
  so one RE2 search over the whole text finds exactly the lines a per-line search would
  (no match can cross a line end), in one linear pass;
- ``\\b`` is translated only where RE2's ASCII word boundary equals Python's: under
  ``(?a)``, or in a text that is all ASCII.

What has no exact RE2 form — backreferences, lookarounds, atomic groups, possessive
quantifiers, conditionals, ``\\B`` (Python never matches it in an empty line), ``\\b``
next to non-ASCII text, repetition counts over 1000 — runs on Python's ``re``, line by
line. That is safe only because this module runs in a child process that the parent
kills at a time limit (:mod:`leon.agent.tools.grepchild`).

Run as a script it is that child: it reads a JSON header line and then framed files on
stdin, and writes one JSON line when it is ready and one with the rendered result at the
end (see :func:`serve`). It imports only the standard library and ``re2``, so the child
starts in ~30 ms.
"""

from __future__ import annotations

import array
import functools
import json
import re
import struct
import sys
from typing import Any, BinaryIO

try:  # Python 3.11+: the parser behind re.compile
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older layout
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

import re2

GREP_LINE_CHARS = 500  # grep hits are for locating, not reading — keep them shorter
MAX_PATTERN_CHARS = 10_000
MAX_RE2_COUNT = 1000  # RE2 refuses larger repetition counts
FRAME_HEAD = struct.Struct(">IQ")  # name length, data length

_NEVER = r"[^\x{0}-\x{10FFFF}]"  # a set no character is in
_MAX_CP = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)  # never in decoded text; RE2's UTF-8 mode has none
_NEWLINE = 0x0A


class Untranslatable(Exception):
    """The pattern has no RE2 form with exactly Python's meaning; the reason says why."""


# --- the sets Python's engine matches, as code point ranges ---------------------------

@functools.cache
def _universe(kind: str) -> str:
    """Every code point (``full``, surrogates included so index == code point) or the
    128 ASCII ones, as one string to run Python's engine over."""
    if kind == "ascii":
        return "".join(map(chr, range(128)))
    return array.array("I", range(_MAX_CP + 1)).tobytes().decode("utf-32-le", "surrogatepass")


@functools.lru_cache(maxsize=512)
def _ranges(source: str, flags: int, kind: str) -> tuple[tuple[int, int], ...]:
    """The code points (within the universe) that the one-character Python pattern
    ``source`` matches under ``flags``, as sorted inclusive ranges."""
    rx = re.compile(f"(?:{source})+", flags)
    return tuple((m.start(), m.end() - 1) for m in rx.finditer(_universe(kind)))


@functools.cache
def _cased() -> frozenset[int]:
    """Code points Python's case-insensitive matching treats as cased (their simple
    lower or upper case differs from them): the only ones besides a literal itself and
    its lower case that ``(?i)`` can make match it (see :func:`_folded_literal`)."""
    import _sre

    return frozenset(cp for cp in range(_MAX_CP + 1) if _sre.unicode_iscased(cp))


@functools.lru_cache(maxsize=1024)
def _folded_literal(cp: int, flags: int, kind: str) -> tuple[tuple[int, int], ...]:
    """What a literal matches under ``(?i)``, asked of Python's engine but only over the
    characters that can possibly match (~3,000 instead of 1.1 million). Python compiles
    it to "lower(ch) is lower(cp), or one of that letter's few extra case variants", all
    of which are cased; a character that is not cased is its own lower case, so it can
    only be lower(cp) itself."""
    import _sre

    rx = re.compile(_py_char(cp), flags)
    limit = 127 if kind == "ascii" else _MAX_CP
    candidates = {cp, _sre.unicode_tolower(cp)} | _cased()
    hits = sorted(d for d in candidates if d <= limit and rx.fullmatch(chr(d)))
    return tuple((d, d) for d in hits)


def _py_char(cp: int) -> str:
    return f"\\U{cp:08x}"


_CATEGORY = {
    _c.CATEGORY_DIGIT: r"\d", _c.CATEGORY_NOT_DIGIT: r"\D",
    _c.CATEGORY_SPACE: r"\s", _c.CATEGORY_NOT_SPACE: r"\S",
    _c.CATEGORY_WORD: r"\w", _c.CATEGORY_NOT_WORD: r"\W",
}


def _set_source(op: Any, av: Any) -> str:
    """A Python pattern for one character-set node of a parse tree."""
    if op is _c.LITERAL:
        return _py_char(av)
    if op is _c.NOT_LITERAL:
        return f"[^{_py_char(av)}]"
    parts: list[str] = []
    for item_op, item in av:
        if item_op is _c.NEGATE:
            parts.insert(0, "^")
        elif item_op is _c.LITERAL:
            parts.append(_py_char(item))
        elif item_op is _c.RANGE:
            parts.append(f"{_py_char(item[0])}-{_py_char(item[1])}")
        elif item_op is _c.CATEGORY and item in _CATEGORY:
            parts.append(_CATEGORY[item])
        else:
            raise Untranslatable(f"character set item {item_op}")
    return "[" + "".join(parts) + "]"


def _re2_set(ranges: tuple[tuple[int, int], ...]) -> str:
    """RE2 syntax for the code points in ``ranges``, minus the newline (no match may
    cross a line end) and the surrogates (no UTF-8 text holds them)."""
    out: list[str] = []
    for lo, hi in ranges:
        for a, b in _minus(lo, hi, _NEWLINE, _NEWLINE):
            for x, y in _minus(a, b, *_SURROGATES):
                out.append(f"\\x{{{x:x}}}" if x == y else f"\\x{{{x:x}}}-\\x{{{y:x}}}")
    if not out:
        return _NEVER
    if len(out) == 1 and "-" not in out[0]:
        return out[0]
    return "[" + "".join(out) + "]"


def _minus(lo: int, hi: int, cut_lo: int, cut_hi: int) -> list[tuple[int, int]]:
    if hi < cut_lo or lo > cut_hi:
        return [(lo, hi)]
    return [(a, b) for a, b in ((lo, cut_lo - 1), (cut_hi + 1, hi)) if a <= b]


# --- the parse tree, rewritten for RE2 ---------------------------------------------------

_CASE_FLAGS = _c.SRE_FLAG_IGNORECASE | _c.SRE_FLAG_ASCII  # what changes a set's meaning


def translate(pattern: str, flags: int = 0, kind: str = "full") -> str:
    """RE2 source that, searched over a whole ``\\n``-separated text, matches inside
    exactly the lines where ``re.search(pattern, line, flags)`` would match. ``kind``
    ``ascii`` promises the text is all ASCII (sets shrink to ASCII, ``\\b`` becomes
    exact). Raises :class:`Untranslatable` or ``re.error``."""
    tree = _sre_parse.parse(pattern, flags)
    return _Translator(kind).seq(list(tree), tree.state.flags)


class _Translator:
    def __init__(self, kind: str):
        self.kind = kind

    def seq(self, items: list[Any], flags: int) -> str:
        return "".join(self.node(op, av, flags) for op, av in items)

    def node(self, op: Any, av: Any, flags: int) -> str:
        if op in (_c.LITERAL, _c.NOT_LITERAL, _c.IN):
            if op is _c.LITERAL:
                if not flags & _c.SRE_FLAG_IGNORECASE:
                    return _re2_set(((av, av),))  # no need to ask Python about one character
                return _re2_set(_folded_literal(av, flags & _CASE_FLAGS, self.kind))
            source = _set_source(op, av)
            return _re2_set(_ranges(source, flags & _CASE_FLAGS, self.kind))
        if op is _c.ANY:
            return r"[^\n]"  # with or without (?s): a line holds no newline
        if op is _c.AT:
            return self.anchor(av, flags)
        if op is _c.BRANCH:
            return "(?:" + "|".join(self.seq(list(alt), flags) for alt in av[1]) + ")"
        if op is _c.SUBPATTERN:
            _group, add, remove, sub = av
            return "(?:" + self.seq(list(sub), (flags | add) & ~remove) + ")"
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):  # greedy or lazy: same lines match
            lo, hi, sub = av
            return "(?:" + self.seq(list(sub), flags) + ")" + self.count(lo, hi)
        reasons = {
            _c.GROUPREF: "a backreference", _c.GROUPREF_EXISTS: "a conditional group",
            _c.ASSERT: "a lookahead or lookbehind", _c.ASSERT_NOT: "a lookahead or lookbehind",
        }
        for name, reason in (("ATOMIC_GROUP", "an atomic group"),
                             ("POSSESSIVE_REPEAT", "a possessive quantifier")):
            if hasattr(_c, name):
                reasons[getattr(_c, name)] = reason
        raise Untranslatable(reasons.get(op, f"{op}"))

    def anchor(self, at: Any, flags: int) -> str:
        if at in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING, _c.AT_BEGINNING_LINE):
            return "(?m:^)"
        if at in (_c.AT_END, _c.AT_END_STRING, _c.AT_END_LINE):
            return "(?m:$)"  # a line has no newline, so Python's '$' is its end
        if at is _c.AT_BOUNDARY:
            if self.kind == "ascii" or flags & _c.SRE_FLAG_ASCII:
                return r"\b"  # RE2's word characters are ASCII ones, as Python's are here
            raise Untranslatable(r"\b next to non-ASCII text")
        raise Untranslatable(r"\B")  # Python's \B never matches in an empty line; RE2's does

    @staticmethod
    def count(lo: int, hi: int) -> str:
        unbounded = hi == _c.MAXREPEAT
        if lo > MAX_RE2_COUNT or (not unbounded and hi > MAX_RE2_COUNT):
            raise Untranslatable(f"a repetition count over {MAX_RE2_COUNT}")
        if unbounded:
            return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
        if (lo, hi) == (0, 1):
            return "?"
        return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would otherwise print to leon's terminal
    return options


# --- matching ------------------------------------------------------------------------


class LineMatcher:
    """A pattern compiled for line search. ``re.error`` if Python refuses it."""

    def __init__(self, pattern: str, ignore_case: bool = False):
        if len(pattern) > MAX_PATTERN_CHARS:
            raise re.error(f"pattern is longer than {MAX_PATTERN_CHARS} characters")
        self.flags = re.IGNORECASE if ignore_case else 0
        self.pattern = pattern
        self.python = re.compile(pattern, self.flags)  # the meaning, and its errors
        self._re2: dict[str, Any] = {}
        self.why_not: dict[str, str] = {}  # kind -> why that kind of text needs Python
        self.engines: set[str] = set()  # which engines searched at least one text

    def re2_for(self, kind: str) -> Any:
        """The compiled RE2 program for ``ascii`` or ``full`` text, or None when this
        pattern needs Python's engine there (the reason is in ``why_not``)."""
        if kind not in self._re2:
            try:
                source = translate(self.pattern, self.flags, kind)
                self._re2[kind] = re2.compile(source, _re2_options())
            except Untranslatable as exc:
                self._re2[kind], self.why_not[kind] = None, f"it uses {exc}"
            except re2.error as exc:  # e.g. nested counts whose product is over 1000
                self._re2[kind], self.why_not[kind] = None, f"RE2 refused it ({exc})"
        return self._re2[kind]

    def lines(self, text: str) -> list[int]:
        """0-based numbers of the lines of ``text`` (``\\n``-separated; a final newline
        ends the last line) that the pattern matches."""
        rx = self.re2_for("ascii" if text.isascii() else "full")
        if rx is None:
            self.engines.add("python")
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            search = self.python.search
            return [i for i, line in enumerate(lines) if search(line)]
        self.engines.add("re2")
        return _whole_text_lines(rx, text.encode("utf-8"))


def _whole_text_lines(rx: Any, data: bytes) -> list[int]:
    """Lines holding a match of a translated pattern: one search per matching line."""
    end = len(data)
    after_last_line = end == 0 or data.endswith(b"\n")  # no line starts at `end` then
    hits: list[int] = []
    line, counted_to, pos = 0, 0, 0
    while pos <= end:
        m = rx.search(data, pos)
        if m is None:
            break
        start = m.start()
        if start == end and after_last_line:
            break
        line += data.count(b"\n", counted_to, start)
        hits.append(line)
        newline = data.find(b"\n", start)
        if newline < 0:
            break
        pos = counted_to = newline + 1
        line += 1
    return hits


# --- what grep prints ------------------------------------------------------------------


def cut_line(line: str, limit: int) -> str:
    """``line`` cut to ``limit`` characters, saying how long it was."""
    if len(line) <= limit:
        return line
    return f"{line[:limit]}… [line cut: {len(line)} chars]"


def render_hits(name: str, lines: list[str], shown: list[int], matched: set[int],
                context: int) -> list[str]:
    """grep-style output: ':' after matching lines, '-' after context lines, '--'
    between groups that are not adjacent."""
    if not context:
        return [f"{name}:{i + 1}:{cut_line(lines[i], GREP_LINE_CHARS)}" for i in shown]
    wanted = sorted(
        {j for i in shown for j in range(max(0, i - context), min(len(lines), i + context + 1))}
    )
    out: list[str] = []
    prev = None
    for j in wanted:
        if prev is not None and j != prev + 1:
            out.append("--")
        sep = ":" if j in matched else "-"
        out.append(f"{name}{sep}{j + 1}{sep}{cut_line(lines[j], GREP_LINE_CHARS)}")
        prev = j
    return out


class GrepRun:
    """Matches file after file and keeps grep's output: at most ``max_results`` matching
    lines are shown, the rest only counted."""

    def __init__(self, matcher: LineMatcher, context: int, max_results: int):
        self.matcher = matcher
        self.context = context
        self.max_results = max_results
        self.out: list[str] = []
        self.matches = self.shown = self.files = 0

    def add(self, name: str, data: bytes) -> None:
        text = data.decode("utf-8", errors="replace")
        # Same line breaks as read_file (universal newlines), one kind only.
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        hits = self.matcher.lines(text)
        if not hits:
            return
        self.files += 1
        self.matches += len(hits)
        room = self.max_results - self.shown
        if room <= 0:
            return  # keep counting so the note can say how many were left out
        shown = hits[:room]
        self.shown += len(shown)
        if self.context and self.out:
            self.out.append("--")
        lines = text.split("\n")
        self.out.extend(render_hits(name, lines, shown, set(hits), self.context))

    def result(self) -> dict[str, Any]:
        return {"out": self.out, "matches": self.matches, "shown": self.shown,
                "files": self.files, "engines": sorted(self.matcher.engines),
                "why_python": sorted(set(self.matcher.why_not.values()))}


# --- the child process ---------------------------------------------------------------


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """The child's protocol. In: one JSON line ``{"pattern", "ignore_case", "context",
    "max_results"}``, then per file ``FRAME_HEAD`` (name length, data length), the name
    (UTF-8, surrogateescape) and the raw bytes; EOF ends. Out: one JSON line
    ``{"ok": true, "re2": bool, "why": str|null}`` or ``{"ok": false, "error": str}``
    as soon as the pattern is compiled, then one with :meth:`GrepRun.result`."""

    def send(obj: dict[str, Any]) -> None:
        stdout.write(json.dumps(obj).encode() + b"\n")
        stdout.flush()

    header = json.loads(stdin.readline())
    try:
        matcher = LineMatcher(header["pattern"], bool(header.get("ignore_case")))
        ascii_ok = matcher.re2_for("ascii") is not None
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        send({"ok": False, "error": str(exc) or type(exc).__name__})
        return
    send({"ok": True, "re2": ascii_ok, "why": matcher.why_not.get("ascii")})
    run = GrepRun(matcher, int(header.get("context", 0)), int(header.get("max_results", 200)))
    while head := stdin.read(FRAME_HEAD.size):
        if len(head) < FRAME_HEAD.size:
            break
        name_len, data_len = FRAME_HEAD.unpack(head)
        name = stdin.read(name_len).decode("utf-8", "surrogateescape")
        run.add(name, stdin.read(data_len))
    send(run.result())


CHILD_MEMORY_BYTES = 1 << 30  # backtracking state can grow with a 5 MB line: cap it


if __name__ == "__main__":
    try:  # a pattern that eats memory ends this process (MemoryError), not the machine
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    try:
        serve(open(sys.stdin.fileno(), "rb", buffering=1 << 20, closefd=False),  # noqa: SIM115
              sys.stdout.buffer)
    except (BrokenPipeError, KeyboardInterrupt):  # the parent went away or gave up
        pass
