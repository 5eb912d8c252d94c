"""The grep tool's regex engine: Python's meaning, RE2's speed where that is exact, a
killable child process for the rest (leon/agent/tools/linematch.py, grepchild.py)."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from proc_helpers import child_pids

from leon.agent.tools import ToolContext, ToolRegistry
from leon.agent.tools.linematch import LineMatcher, translate
from leon.agent.tools.readonly import GrepTool


def reference(pattern: str, text: str, flags: int = 0) -> list[int]:
    """What the tool promises: re.search on each line on its own."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rx = re.compile(pattern, flags)
    return [i for i, line in enumerate(lines) if rx.search(line)]



@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    w.mkdir()
    return w


async def grep(ws: Path, time_limit: float = 30.0, **args):
    reg = ToolRegistry([GrepTool(time_limit=time_limit)])
    return await reg.call("grep", args, ToolContext(workspace=ws, thread_id="t"))


# --- the two reported bugs --------------------------------------------------------------


async def test_local_flag_off_finds_the_line_the_prefilter_missed(ws: Path) -> None:
    (ws / "f.txt").write_text("abc\nxyz\n")
    res = await grep(ws, pattern="(?-m:^xyz)")
    assert res.content == "f.txt:2:xyz"


async def test_catastrophic_pattern_is_answered_at_once_and_correctly(ws: Path) -> None:
    (ws / "f.txt").write_text("a" * 40 + "!\naaaa\n" + "a" * 5000 + "!\n")
    res = await grep(ws, pattern="(a+)+$")
    assert not res.is_error
    assert res.content == "f.txt:2:aaaa"


async def test_backtracking_pattern_times_out_with_an_error_and_no_child_left(ws: Path) -> None:
    (ws / "f.txt").write_text("a" * 40 + "!\n")
    res = await grep(ws, time_limit=1.0, pattern="(?=a)(a+)+$")  # lookahead: Python's engine
    assert res.is_error and res.meta["timed_out"]
    assert "took too long" in res.content and "simplify" in res.content.lower()
    assert "lookahead" in res.content
    assert child_pids(os.getpid(), b"linematch.py") == []


async def test_cancelled_grep_kills_its_child(ws: Path) -> None:
    (ws / "f.txt").write_text("a" * 40 + "!\n")
    task = asyncio.ensure_future(grep(ws, time_limit=600, pattern=r"(a+)+\1$"))
    deadline = time.monotonic() + 30
    while not child_pids(os.getpid(), b"linematch.py"):
        assert time.monotonic() < deadline, "the grep child never started"
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert child_pids(os.getpid(), b"linematch.py") == []


# --- the engine keeps Python's meaning ------------------------------------------------------


@pytest.mark.parametrize(("pattern", "ascii_re2", "full_re2"), [
    (r"def \w+", True, True),
    (r"(?i)todo|fixme", True, True),
    (r"^\s*$", True, True),
    (r"\bfoo\b", True, False),        # RE2's \b is ASCII: exact only in ASCII text
    (r"(?a)\bfoo\b", True, True),      # ... or when Python's is ASCII too
    (r"foo\B", False, False),          # Python never matches \B in an empty line
    (r"(\w)\1", False, False),         # backreference
    (r"a(?=b)", False, False),         # lookaround
    (r"(?>a+)b", False, False),        # atomic group
    (r"a++b", False, False),           # possessive
    (r"a{1001}", False, False),        # over RE2's count limit
    (r"(?:a{100}){100}", False, False),  # RE2 refuses the nested product
])
def test_engine_choice(pattern: str, ascii_re2: bool, full_re2: bool) -> None:
    m = LineMatcher(pattern)
    assert (m.re2_for("ascii") is not None) == ascii_re2
    assert (m.re2_for("full") is not None) == full_re2


@pytest.mark.parametrize(("pattern", "text"), [
    (r"(?i)ß", "ß\nẞ\nss\nSS\n"),
    (r"(?i)k", "k\nK\n\u212a\nx\n"),               # the Kelvin sign folds to k in Python
    (r"(?i)\u0130", "i\nI\n\u0130\n\u0131\n"),      # dotted capital I
    (r"\d", "7\n\u0663\n\u00b2\nx\n"),               # Arabic-Indic three; superscript two is not \d
    (r"\s", "\x0b\n\x1c\n\u2028\n\u00a0\nx\n"),      # Python's \s, not RE2's
    (r"\w+é", "café\nxé\n é\n"),
    (r"(?a)\w", "é\n_\n"),
    (r"[^\W\d_]", "é\n3\n_\nß\n"),
    (r"(?i)[^a-z]", "A\nk\n\u212a\n1\n"),
    (r"^$", "\n\nx\n\n"),
    (r"x*", "\n\n"),
    (r"\Aa|b\Z", "ab\nba\nxb\n"),
    (r"(?s).", "a\n\n"),
    (r"[\n]|a\nb", "a\nb\n"),                         # nothing matches across a line end
    (r"\bcafé\b", "le café au lait\nxcafé\ncafés\n"),  # \b next to é: Python's engine
    (r"caf.", "caf\ufffd ok\n"),
])
def test_same_lines_as_python(pattern: str, text: str) -> None:
    assert LineMatcher(pattern).lines(text) == reference(pattern, text)


@pytest.mark.parametrize("pattern", [r"\w", r"(?i)[k-sß]", r"(?i)ǅ", r"\s|\d", r"[^\W_]"])
def test_sets_agree_with_python_on_every_code_point(pattern: str) -> None:
    """One line per code point (no surrogates: decoded text never holds one)."""
    chars = [chr(c) for c in range(0x110000) if c != 0x0A and not 0xD800 <= c <= 0xDFFF]
    text = "\n".join(chars) + "\n"
    assert LineMatcher(pattern).lines(text) == reference(pattern, text)


def test_case_folded_literals_equal_python_over_every_code_point() -> None:
    """The shortcut for a literal under (?i) (only cased characters can match it) gives
    what Python's engine says over all 1.1 million code points."""
    from leon.agent.tools import linematch

    tricky = [ord(c) for c in "aAkKsSßẞſıİiIǅǄǆΣσςϐβιͅΩωΩKÅåµΜμ"]
    for cp in tricky + sorted(linematch._cased())[::150]:
        for flags in (re.IGNORECASE, re.IGNORECASE | re.ASCII):
            fast = [a for a, _ in linematch._folded_literal(cp, flags, "full")]
            full = linematch._ranges(linematch._py_char(cp), flags, "full")
            assert fast == [x for a, b in full for x in range(a, b + 1)], (hex(cp), flags)


def test_translation_cannot_consume_a_newline() -> None:
    source = translate(r"[^a]|\W|\s|.|\D", 0, "full")
    assert r"\x{a}-" not in source and r"-\x{a}" not in source
    assert "(?m:^)" in translate("^x$", 0, "ascii") and "(?m:$)" in translate(r"x\Z", 0, "ascii")


async def test_python_engine_paths_give_python_answers(ws: Path) -> None:
    (ws / "a.txt").write_text("hello\nhelo\n")
    (ws / "b.txt").write_text("le café au lait\nxcafé\n")
    res = await grep(ws, pattern=r"(\w)\1")
    assert res.content == "a.txt:1:hello"
    res = await grep(ws, pattern=r"\bcafé\b")
    assert res.content == "b.txt:1:le café au lait"


async def test_overlong_pattern_is_refused(ws: Path) -> None:
    res = await grep(ws, pattern="a" * 10_001)
    assert res.is_error and "longer than 10000" in res.content


async def test_stderr_of_re2_never_reaches_the_output(ws: Path) -> None:
    # This DFA runs out of memory and RE2 would log it; the child turns logging off.
    (ws / "f.txt").write_text("ab" * 20_000 + "\n")
    res = await grep(ws, pattern=r"a[ab]{30}c")
    assert res.content.startswith("no matches") and "DFA" not in res.content


# --- property: the tool's lines are re.search's lines -----------------------------------

# ASCII and non-ASCII word characters side by side (where RE2's and Python's \b, \w and
# case folding differ: the Kelvin sign, dotted and dotless i), \v (in Python's \s, not
# RE2's), a digit outside ASCII.
ALPHABET = "abAB_1 .é\u00c9ßẞ\u212a\u0130\u0131\u0663\x0b-"

_atoms = st.one_of(
    st.sampled_from(ALPHABET).map(re.escape),
    st.sampled_from([".", r"\d", r"\w", r"\s", r"\D", r"\W", r"\S", "[ab]", "[^a]", "[a-c]",
                     r"[^\w.]", "[ß-ẞ]", "[A-Z_]", r"\.", "é"]),
    st.sampled_from(["^", "$", r"\A", r"\Z", r"\b", r"\B"]),
    st.sampled_from([r"\b", r"\w\b", r"\b\w", r"\b."]),  # boundaries next to é and ß
    st.sampled_from(["(?=a)", "(?!b)", "(?<=a)", r"(a)\1"]),  # Python's engine
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, min_size=1, max_size=4).map("".join),
        st.lists(children, min_size=2, max_size=3).map(lambda alts: "(?:" + "|".join(alts) + ")"),
        st.tuples(children, st.sampled_from(["*", "+", "?", "*?", "{1,3}", "{2}", "{0,2}?"]))
        .map(lambda t: f"(?:{t[0]}){t[1]}"),
        st.tuples(st.sampled_from(["(", "(?:", "(?i:", "(?-i:", "(?m:", "(?-m:", "(?s:",
                                   "(?a:", "(?im:", "(?i-m:"]), children)
        .map(lambda t: f"{t[0]}{t[1]})"),
    )


patterns = st.tuples(
    st.sampled_from(["", "", "(?i)", "(?m)", "(?s)", "(?a)", "(?ims)"]),
    st.recursive(_atoms, _extend, max_leaves=8),
).map("".join)
texts = st.tuples(
    st.lists(st.text(alphabet=ALPHABET, max_size=12), max_size=6).map("\n".join),
    st.sampled_from(["", "\n"]),
).map("".join)


def _valid(pattern: str, flags: int = 0) -> bool:
    try:
        re.compile(pattern, flags)
    except re.error:
        return False
    return True


@settings(max_examples=600, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(pattern=patterns, text=texts, ignore_case=st.booleans())
def test_matching_lines_equal_python_per_line(pattern: str, text: str, ignore_case: bool) -> None:
    flags = re.IGNORECASE if ignore_case else 0
    assume(_valid(pattern, flags))
    assert LineMatcher(pattern, ignore_case).lines(text) == reference(pattern, text, flags)


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(pattern=patterns, text=texts, crlf=st.booleans())
def test_the_tool_reports_the_lines_python_matches(tmp_path: Path, pattern: str, text: str,
                                                   crlf: bool) -> None:
    """Through the real tool: a file on disk, the child process, grep's output format."""
    assume(_valid(pattern))
    ws = tmp_path / "prop"
    ws.mkdir(exist_ok=True)
    (ws / "t.txt").write_bytes((text.replace("\n", "\r\n") if crlf else text).encode())
    res = asyncio.run(grep(ws, max_results=100, pattern=pattern))
    assert not res.is_error, res.content
    got = [] if res.content.startswith("no matches") else \
        [int(line.split(":", 2)[1]) - 1 for line in res.content.split("\n")]
    assert got == reference(pattern, text)
