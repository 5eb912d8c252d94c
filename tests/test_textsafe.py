"""leon.textsafe: nothing that comes out of clean() can drive a terminal, whatever goes in."""

from __future__ import annotations

import io
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leon.textsafe import (
    REPLACEMENT,
    SafeTextStream,
    StreamCleaner,
    bad_bytes_note,
    clean,
    decode,
    escape_json,
    is_clean,
    json_dumps,
    one_line,
    read_all,
    repair,
    reveal,
    safe_output,
)

# Every character a terminal could act on: C0 but newline and tab, DEL, C1, and lone
# surrogates (which cannot even be encoded).
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

ATTACKS = {
    "osc title (BEL)": ("a\x1b]0;pwned\x07b", "ab"),
    "osc title (ST)": ("a\x1b]2;pwned\x1b\\b", "ab"),
    "osc 8-bit": ("a\x9d0;pwned\x9cb", "ab"),
    "osc 52 clipboard": ("a\x1b]52;c;cm0gLXJmIH4=\x07b", "ab"),
    "osc 8 hyperlink keeps its text": ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
    "clear screen": ("a\x1b[2Jb", "ab"),
    "clear, 8-bit CSI": ("a\x9b2Jb", "ab"),
    "private mode (alt screen)": ("a\x1b[?1049hb", "ab"),
    "sgr colour": ("\x1b[01;38;5;196mred\x1b[0m", "red"),
    "full reset": ("a\x1bcb", "ab"),
    "DECALN fills the screen": ("a\x1b#8b", "ab"),
    "charset switch": ("a\x1b(0b", "ab"),
    "dcs": ("a\x1bP1$qm\x1b\\b", "ab"),
    "dcs 8-bit": ("a\x90q#0;2;0;0;0\x9cb", "ab"),
    "sos pm apc": ("a\x1bXs\x1b\\\x1b^p\x1b\\\x1b_a\x1b\\b", "ab"),
    "apc 8-bit": ("a\x9fgarbage\x9cb", "ab"),
    "bare CR overwrites": ("safe\rrm -rf ~", "safe\nrm -rf ~"),
    "CRLF": ("one\r\ntwo\r\n", "one\ntwo\n"),
    "backspace": ("abc\b\b\bxyz", f"abc{REPLACEMENT * 3}xyz"),
    "bell": ("ding\x07", f"ding{REPLACEMENT}"),
    "NUL and DEL": ("a\x00b\x7fc", f"a{REPLACEMENT}b{REPLACEMENT}c"),
    "lone ESC at the end": ("a\x1b", f"a{REPLACEMENT}"),
    "ESC before a newline": ("a\x1b\nb", f"a{REPLACEMENT}\nb"),
    "NEL and other C1": ("a\x85b\x84c", f"a{REPLACEMENT}b{REPLACEMENT}c"),
    "unterminated osc stops at the line end": ("\x1b]0;title\nnext", "\nnext"),
    "csi without a final byte": ("a\x1b[12\nb", "a\nb"),
    "lone surrogate (a byte that was not UTF-8)": ("bad \udcff byte", f"bad {REPLACEMENT} byte"),
    "removing one sequence does not make another": ("\x1b\x1b[0m[2J", f"{REPLACEMENT}[2J"),
    "tab and newline stay": ("a\tb\nc", "a\tb\nc"),
    "unicode stays": ("héllo → 🚀 ✓", "héllo → 🚀 ✓"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_clean_removes_each_attack(name):
    text, expected = ATTACKS[name]
    assert clean(text) == expected
    assert not UNSAFE.search(clean(text))


def test_clean_text_is_returned_as_is():
    text = "plain\ttext\nwith ünïcode\n" * 100
    assert clean(text) is text
    assert is_clean(text) and not is_clean(text + "\x1b")
    assert not is_clean("é\x9b") and not is_clean("\r")


hostile_alphabet = st.sampled_from(list(
    "\x1b\x9b\x9d\x90\x98\x9e\x9f\x9c\x07\x08\r\n\t\x00\x7f\x85[]P^_X\\;0m2Jc(#8?ab é🚀\udcff"))
hostile_text = st.lists(hostile_alphabet, max_size=40).map("".join)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(hostile_text, st.text(max_size=60)))
def test_nothing_clean_returns_can_drive_a_terminal(text):
    out = clean(text)
    assert not UNSAFE.search(out)
    assert clean(out) == out                   # idempotent
    out.encode("utf-8")                        # always encodable
    # no line is merged into another, none is made up (a CR is a line end of its own)
    assert out.count("\n") == text.count("\n") + text.count("\r") - text.count("\r\n")


@settings(max_examples=3000, deadline=None)
@given(hostile_text, st.lists(st.integers(min_value=0, max_value=40), max_size=6))
def test_stream_cleaner_equals_clean_of_the_whole(text, cuts):
    cleaner = StreamCleaner()
    points = sorted({min(c, len(text)) for c in cuts})
    pieces, start = [], 0
    for p in [*points, len(text)]:
        pieces.append(text[start:p])
        start = p
    out = "".join(cleaner.feed(p) for p in pieces) + cleaner.finish()
    assert out == clean(text)


def test_stream_cleaner_holds_a_sequence_cut_in_two():
    cleaner = StreamCleaner()
    assert cleaner.feed("red: \x1b[3") == "red: "
    assert cleaner.feed("1mRED\x1b[0m\r") == "RED"      # the CR may be half a CRLF
    assert cleaner.feed("\nnext \x1b]0;pw") == "\nnext "
    assert cleaner.feed("ned\x07 done") == " done"
    assert cleaner.finish() == ""


def test_stream_cleaner_holds_at_most_max_hold():
    cleaner = StreamCleaner()
    out = cleaner.feed("\x1b]0;" + "x" * (StreamCleaner.MAX_HOLD + 10))
    assert out == ""                                     # the introducer went with it
    rest = cleaner.feed("yy\x07after")
    assert rest == f"yy{REPLACEMENT}after" and not UNSAFE.search(rest)


def test_one_line_cannot_forge_a_row():
    assert one_line("title\n0123456789ab  2024-01-01 fake row\x1b[2J") == \
        "title 0123456789ab 2024-01-01 fake row"
    assert one_line("  a\t\tb\r\nc  ") == "a b c"


def test_reveal_spells_controls_out():
    assert reveal("echo hi\x1b[2K\rrm -rf ~\x07") == "echo hi\\x1b[2K\\rrm -rf ~\\x07"
    assert reveal("\x9b2J \udcff\ud800") == "\\x9b2J \\xff\\ud800"
    assert reveal("a\tb\nc") == "a\tb\nc"
    assert not UNSAFE.search(reveal("".join(map(chr, range(0x100)))))


def test_json_keeps_the_data_and_escapes_every_control():
    value = {"t": "\x1b]0;pwn\x07 \x9b2J \x7f é \udcff", "n": [1, "\x1bc"]}
    text = json_dumps(value)
    assert not UNSAFE.search(text)
    assert "é" in text                                   # readable, not \u00e9
    assert json.loads(text) == value                     # exactly the same data
    assert escape_json('{"a": "b"}') == '{"a": "b"}'
    assert json.loads(escape_json(json.dumps({"x": "\x85"}, ensure_ascii=False))) == {"x": "\x85"}


def test_bad_bytes_become_replacement_characters_and_are_counted():
    assert decode(b"hello \xff\xfe ok") == (f"hello {REPLACEMENT * 2} ok", 2)
    assert decode("fine é".encode()) == ("fine é", 0)
    assert decode(b"\xed\xa0\x80") == (REPLACEMENT * 3, 3)    # an encoded surrogate
    assert repair("argv \udcff") == (f"argv {REPLACEMENT}", 1)
    assert repair("ascii") == ("ascii", 0)
    assert bad_bytes_note("the prompt", 1) == \
        f"the prompt had 1 byte that is not UTF-8; replaced with {REPLACEMENT}"
    assert "2 bytes that are" in bad_bytes_note("the title", 2)


def test_read_all_reads_bytes_when_it_can():
    stream = io.TextIOWrapper(io.BytesIO(b"hi \xff there"), encoding="utf-8")
    assert read_all(stream) == (f"hi {REPLACEMENT} there", 1)
    assert read_all(io.StringIO("no buffer \udcfe")) == (f"no buffer {REPLACEMENT}", 1)


def test_safe_text_stream_cleans_every_write_and_finishes_held_text():
    raw = io.StringIO()
    stream = SafeTextStream(raw)
    print("title \x1b]0;pwn", file=stream, end="")   # type: ignore[arg-type]
    print("ed\x07 \x1b[2J", "x\r", file=stream)      # type: ignore[arg-type]
    stream.write("tail\r")
    assert "\r" not in raw.getvalue()
    stream.finish()
    assert raw.getvalue() == "title   x\ntail\n"
    assert stream.getvalue() == raw.getvalue()         # other attributes are the raw stream's


def test_safe_output_wraps_and_restores_stdout_and_stderr(capsys):
    import sys

    before = sys.stdout, sys.stderr
    with safe_output():
        print("out \x1bc\x9b2J")
        print("err \x1b]0;x\x07 \udcff", file=sys.stderr)
    assert (sys.stdout, sys.stderr) == before
    captured = capsys.readouterr()
    assert captured.out == "out \n"
    assert captured.err == f"err  {REPLACEMENT}\n"
