"""Text that cannot drive a terminal, and text that is always valid Unicode.

Everything leon shows comes partly from outside: thread titles, messages, file contents,
tool output, error messages from a server. A terminal obeys control sequences found in
what it is given (``ESC ] 0 ; … BEL`` sets the window title, ``ESC [ 2 J`` clears the
screen, ``ESC c`` resets the terminal, ``ESC P … ESC \\`` sends a device control string,
and each has an 8-bit C1 form such as U+009B for CSI), so :func:`clean` is applied to
every such string before the CLI writes it or the TUI draws it:

* a whole control sequence — CSI, OSC, DCS, SOS, PM, APC (introducer, parameters,
  body and terminator), in its 7-bit ``ESC`` form or its 8-bit C1 form, and any other
  ``ESC`` + one character — is removed. Almost all of them in real output are colours
  and cursor moves from tools (``ls --color``, progress bars); their payload was never
  meant to be read, and spelling them out would bury the text in ``[0;32m``;
* a carriage return becomes a line feed (``\\r\\n`` one line feed): a bare CR would let
  the rest of a line overwrite what came before it (``safe\\rrm -rf``);
* any other control character — C0 (except newline and tab), DEL, C1, a lone ``ESC``,
  and a lone surrogate (a byte that was not UTF-8) — becomes U+FFFD, so the reader sees
  that something was there instead of it vanishing, as undecodable bytes already do.

:func:`reveal` is the other choice, for where the user must see exactly what will run
(the permission prompt): every control character is spelled out (``\\x1b``).

:class:`StreamCleaner` does the same to text that arrives in pieces (a streamed reply):
a sequence cut between two pieces is still recognised, so the result equals ``clean``
of the whole. :func:`safe_output` puts one in front of ``sys.stdout`` and ``sys.stderr``
for the whole of a CLI command, so no print can slip past it.

No Textual here: the CLI and the UI both use this module.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

REPLACEMENT = "\ufffd"

# The control sequences of ECMA-48, as terminals parse them: an introducer (7-bit ESC
# form or 8-bit C1 form), parameters, and a final byte or a terminator.
_CSI = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*"           # + final byte 0x40-0x7e
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])"          # OSC DCS SOS PM APC
_BODY = r"[^\x00-\x1f\x7f-\x9f]*"                             # + BEL, ESC \ or ST
_ESC = r"\x1b[\x20-\x2f]*"                                    # + final byte 0x30-0x7e
# A whole control sequence. A string sequence's body ends at its terminator or at the
# first control character (a newline included): an unterminated OSC does not swallow
# the rest of a file. A CSI without its final byte ends where its parameters end.
_SEQUENCE = re.compile(
    rf"{_CSI}[\x40-\x7e]?|{_STRING}{_BODY}(?:\x07|\x1b\\|\x9c)?|{_ESC}[\x30-\x7e]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# Clean text: no character _CONTROL matches (its C0 range leaves out \t and \n).
_CLEAN = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]*")
_ASCII_UNSAFE = bytes(c for c in range(32) if c not in (9, 10)) + b"\x7f"
# A sequence that more text could still complete (for the stream cleaner).
_OPEN = re.compile(rf"{_ESC}|{_CSI}|{_STRING}{_BODY}\x1b?")
_INTRODUCERS = "\x1b\x90\x98\x9b\x9d\x9e\x9f"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")


def is_clean(text: str) -> bool:
    """True when ``text`` has nothing :func:`clean` would change (the fast path: about
    1 ms per MB of ASCII, 4 ms per MB otherwise)."""
    if text.isascii():
        data = text.encode("ascii")
        return len(data.translate(None, _ASCII_UNSAFE)) == len(data)
    return _CLEAN.fullmatch(text) is not None


def clean(text: str) -> str:
    """``text`` without anything a terminal would obey: control sequences removed, CR as
    LF, other control characters and lone surrogates as U+FFFD; newline and tab kept.
    Returns ``text`` itself when it is clean already."""
    if is_clean(text):
        return text
    # Three passes with constant replacements (twice as fast as one pass with a callback
    # on text full of sequences). CRs first: no sequence can contain one, so the
    # sequences found are the same either way.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(REPLACEMENT, _SEQUENCE.sub("", text))


def one_line(text: str) -> str:
    """:func:`clean`, with every run of whitespace (newlines too) as one space: for a
    field of a one-line row (a title in a list), which a newline could otherwise split
    into a forged second row."""
    return _WHITESPACE.sub(" ", clean(text)).strip()


def _spell(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code > 0xFF:
        return f"\\u{code:04x}"
    return {"\r": "\\r", "\x1b": "\\x1b"}.get(char, f"\\x{code:02x}")


def reveal(text: str) -> str:
    """``text`` with every control character spelled out (``\\x1b``, ``\\r``, ``\\x9b``)
    instead of removed: for what the user must see exactly, such as a command they are
    asked to allow. Newline and tab are kept; a backslash is left as it is."""
    if is_clean(text):
        return text
    return _CONTROL.sub(_spell, text)


class StreamCleaner:
    """:func:`clean` for text that arrives in pieces. A piece that ends inside a control
    sequence (or on a CR that may be the first half of CRLF) keeps that tail until the
    next piece, so ``feed(a) + feed(b) + finish()`` equals ``clean(a + b)``. At most
    :attr:`MAX_HOLD` characters wait; a longer unfinished sequence is cut there (its
    introducer is removed all the same)."""

    MAX_HOLD = 4096

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """The clean text that can be shown now."""
        if not self._held and is_clean(text):
            return text  # the usual fragment: nothing to clean, nothing to hold
        data = self._held + text if self._held else text
        if not data:
            return ""
        cut = self._cut(data)
        self._held = data[cut:]
        return clean(data[:cut]) if cut else ""

    def finish(self) -> str:
        """The end of the stream: whatever was held, cleaned."""
        held, self._held = self._held, ""
        return clean(held)

    def _cut(self, data: str) -> int:
        end = len(data)
        low = max(0, end - self.MAX_HOLD)
        start = max(data.rfind(c, low) for c in _INTRODUCERS)
        if start >= 0 and _OPEN.fullmatch(data, start):
            return start
        return end - 1 if data.endswith("\r") else end


class SafeTextStream:
    """A text stream (``sys.stdout``) whose every write goes through a
    :class:`StreamCleaner`; anything else (``fileno``, ``isatty``, ``encoding``) is the
    wrapped stream's."""

    def __init__(self, raw: IO[str]) -> None:
        self.raw = raw
        self._cleaner = StreamCleaner()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            out = self._cleaner.feed(text)
            if out:
                self.raw.write(out)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.raw.flush()

    def finish(self) -> None:
        """Write what the cleaner held back (a final CR, say) and flush."""
        with self._lock:
            out = self._cleaner.finish()
            if out:
                self.raw.write(out)
        self.raw.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


@contextlib.contextmanager
def safe_output() -> Iterator[None]:
    """Route ``sys.stdout`` and ``sys.stderr`` through :class:`SafeTextStream` until the
    block ends (the CLI runs each command inside one)."""
    saved = sys.stdout, sys.stderr
    out = SafeTextStream(saved[0]) if saved[0] is not None else None
    err = SafeTextStream(saved[1]) if saved[1] is not None else None
    if out is not None:
        sys.stdout = out  # type: ignore[assignment]
    if err is not None:
        sys.stderr = err  # type: ignore[assignment]
    try:
        yield
    finally:
        for stream in (out, err):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.finish()
        sys.stdout, sys.stderr = saved


def escape_json(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``, which escapes C0 already)
    with DEL, C1 and lone surrogates escaped too (``\\u009b``): the same data, nothing a
    terminal obeys. They can only occur inside JSON strings, so escaping them is exact."""
    if is_clean(text):
        return text
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def json_dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` for a terminal: non-ASCII stays readable, control characters are
    ``\\u`` escapes (see :func:`escape_json`)."""
    return escape_json(json.dumps(value, ensure_ascii=False, **options))


# -- bytes that are not UTF-8 ---------------------------------------------------------------
def repair(text: str) -> tuple[str, int]:
    """``text`` (from ``sys.argv`` or an environment variable, where a byte that is not
    UTF-8 arrives as a lone surrogate) with each such byte as U+FFFD, and how many there
    were. SQLite, files and the API all refuse lone surrogates."""
    if text.isascii():
        return text, 0
    return _SURROGATE.subn(REPLACEMENT, text)


def decode(data: bytes) -> tuple[str, int]:
    """UTF-8 ``data`` as text, each byte that is not UTF-8 as U+FFFD (one per byte), and
    how many bytes those were."""
    return repair(data.decode("utf-8", errors="surrogateescape"))


def read_all(stream: IO[str]) -> tuple[str, int]:
    """All of ``stream`` (stdin) read as bytes and decoded by :func:`decode`; a stream
    without a byte buffer is read as text and :func:`repair` ed."""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return decode(buffer.read())
    return repair(stream.read())


def bad_bytes_note(what: str, count: int) -> str:
    """``the prompt had 1 byte that is not UTF-8; replaced with �``."""
    return (f"{what} had {count} byte{'s' if count != 1 else ''} that "
            f"{'is' if count == 1 else 'are'} not UTF-8; replaced with {REPLACEMENT}")
