"""The fit property, bigger: many random conversations through leon's real Agent and
ContextManager, every request checked (valid for the Messages API, within the window by
the local API server's count, within window - reserve by leon's own count).

    python bench/fit_property.py [--examples 2000] [--seed 1] [--steps 12]

Each example is one conversation drawn from ``random.Random(seed + n)`` by the same
generator as tests/test_memory_fit_property.py (tests/fit_rig.py): text replies, tool
calls with results of 0-60 KB, failed and interrupted calls, rollbacks, pins, settings
changed midway, compactions that succeed, fail, come back empty or too long, or leave
identifiers out (repaired). A violation stops the run and prints the seed that
reproduces it (``--seed N --examples 1``).

Prints: the largest request against its window (the server's count; the ratio must stay
at most 1.0), leon's largest estimate against window - reserve, compactions done /
repaired / failed, requests fit left something out of, messages left out, sends refused.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fit_rig import RandomDraw, Stats, make_files, run_one  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=12, help="most steps per conversation")
    args = parser.parse_args()
    total = Stats()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leon-fit-bench-") as tmp:
        workspace = make_files(Path(tmp))
        for n in range(args.examples):
            seed = args.seed + n
            try:
                total.add(asyncio.run(run_one(RandomDraw(seed), workspace, args.steps)))
            except AssertionError as exc:
                print(f"FAILED at seed {seed} (rerun: --seed {seed} --examples 1): {exc}")
                return 1
            if (n + 1) % 100 == 0:
                print(f"  {n + 1} conversations, {time.perf_counter() - started:.0f} s",
                      flush=True)
    wall = time.perf_counter() - started
    t = total
    print(f"fit property: {t.conversations} conversations, {t.turns} turns, "
          f"{t.requests} turn requests + {t.summary_requests} summary requests "
          f"({platform.python_version()}, {wall:.0f} s)")
    which = ", a summary call" if t.largest.get("summary") else ""
    print(f"  largest request vs window (server count): {t.largest_ratio:.3f} "
          f"({t.largest.get('tokens', 0):,} of {t.largest.get('window', 0):,}, reserve "
          f"{t.largest.get('reserve', 0):,}{which})")
    print(f"  largest estimate vs window - reserve (leon's count): "
          f"{t.largest_estimate_ratio:.3f}")
    print(f"  compactions: {t.compactions} done, {t.repaired} repaired "
          f"({t.identifiers_repaired} identifiers appended), {t.compactions_failed} failed")
    print(f"  fit: {t.fits} requests left something out: {t.messages_dropped} messages "
          f"(whole turns) left out, {t.results_cleared} tool results cleared")
    print(f"  sends refused before the API: {t.refused}; injected model failures: "
          f"{t.model_failures}; rollbacks: {t.rollbacks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
