"""Textsafe benchmark: what :func:`leon.textsafe.clean` costs on a megabyte of text.

    python bench/textsafe.py [--mb 1] [--repeat 20]

Cases, each ``--mb`` megabytes:

* **clean ascii**: log-like lines (the common case: tool output, source files);
* **clean unicode**: the same with accents, arrows and emoji (not the ASCII fast path);
* **coloured**: a ``ls --color``/pytest-like output, an SGR sequence every ~40 chars;
* **hostile**: nothing but sequences and controls (OSC title sets, clears, resets, DCS,
  C1 CSI/OSC, bare CRs, BELs, lone surrogates);
* **stream**: the clean unicode and the hostile text fed to a :class:`StreamCleaner` in
  97-character pieces (a streamed reply).

Prints the median milliseconds per case. Target: a clean megabyte well under 10 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

from leon.textsafe import StreamCleaner, clean


def cases(mb: float) -> dict[str, str]:
    n = int(mb * 1_000_000)
    ascii_line = "2024-05-01 12:00:01 INFO worker.py:42 processed batch 1234 in 0.52s\n"
    uni_line = "héllo wörld → ünïcode line ✓ with emoji 🚀 and a tab\tend\n"
    colour = "\x1b[01;34mdirectory\x1b[0m  \x1b[01;32mscript.sh\x1b[0m  plain.txt\n"
    hostile = ("\x1b]0;pwned\x07\x1b[2J\x1bc\x1bP1$r\x1b\\\x9b31m\x9d2;t\x9c\r\x07"
               "\x1b[?1049h\ud83d\udcff\x1b(0")
    return {name: (unit * (n // len(unit) + 1))[:n] for name, unit in (
        ("clean ascii", ascii_line), ("clean unicode", uni_line),
        ("coloured", colour), ("hostile", hostile))}


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def stream(text: str) -> str:
    cleaner = StreamCleaner()
    out = [cleaner.feed(text[i:i + 97]) for i in range(0, len(text), 97)]
    return "".join(out) + cleaner.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    texts = cases(args.mb)
    for name, text in texts.items():
        out = clean(text)
        print(f"{name:<14} {timed(lambda t=text: clean(t), args.repeat):8.2f} ms  "
              f"({len(text):,} -> {len(out):,} chars)")
    for name in ("clean unicode", "hostile"):
        text = texts[name]
        assert stream(text) == clean(text)
        ms = timed(lambda t=text: stream(t), max(3, args.repeat // 4))
        print(f"{'stream':<14} {ms:8.2f} ms  ({name}, 97-char pieces)")


if __name__ == "__main__":
    main()
