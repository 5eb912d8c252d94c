"""grep benchmark: the tool as it is (matching in a child process, RE2 where exact) against
the tool before the change (Python ``re`` in a worker thread, with and without its
whole-file prefilter), on a real source tree.

    python bench/grep.py [--runs 3] [--old-commit c5e96ec]

The tree is a copy of five installed packages' sources (anthropic, textual, rich,
hypothesis, pygments; ``__pycache__`` left out) in a temp dir, deleted at the end. The old
tool is loaded from git (``git show COMMIT:leon/agent/tools/readonly.py``) and run the way
it ran, through a ToolRegistry; "old, no prefilter" is the same code with its prefilter
turned off (per-line Python ``re`` only). Each figure is the median wall time of
``--runs`` calls, after one warm-up call (page cache), shown as "wall / CPU": CPU is
this process's (all threads) plus the grep child's, steadier than wall time on a shared
machine. The outputs of old and new are compared: they must be equal, except where the
old prefilter gave a wrong answer.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from leon.agent.tools import ToolContext, ToolRegistry  # noqa: E402
from leon.agent.tools.readonly import GrepTool  # noqa: E402

PACKAGES = ("anthropic", "textual", "rich", "hypothesis", "pygments")
PATTERNS = [
    ("literal", r"def __init__", False),
    ("class + \\w", r"class \w+Error", False),
    ("ignore case", r"todo|fixme", True),
    ("anchored", r"^\s*import\s+os$", False),
    ("\\b (ASCII files)", r"\bself\.app\b", False),
    ("no match", r"zq{3}xj", False),
    ("lookahead (Python)", r"def (?=test_)\w+", False),
]


def load_old(commit: str):
    source = subprocess.run(["git", "show", f"{commit}:leon/agent/tools/readonly.py"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("leon.agent.tools.old_readonly", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "leon.agent.tools"
    exec(compile(source, "old_readonly.py", "exec"), module.__dict__)  # noqa: S102
    return module


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its reaped children (the grep
    child): steadier than wall time on a shared machine."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


async def timed(reg: ToolRegistry, ctx: ToolContext, args: dict, runs: int):
    await reg.call("grep", args, ctx)  # warm-up
    times, cpu, result = [], [], None
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        result = await reg.call("grep", args, ctx)
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
    return statistics.median(times), statistics.median(cpu), result


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--old-commit", default="c5e96ec")
    opts = ap.parse_args()
    site = Path(importlib.util.find_spec("rich").origin).parent.parent
    old = load_old(opts.old_commit)
    no_prefilter = type("NoPrefilter", (old.GrepTool,), {
        "_prefilter": staticmethod(lambda pattern, flags: None)})
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        for name in PACKAGES:
            shutil.copytree(site / name, tree / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        files = [p for p in tree.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        print(f"tree: {len(files)} files, {size / 1e6:.1f} MB ({', '.join(PACKAGES)})\n")
        ctx = ToolContext(workspace=tree, thread_id="bench")
        tools = {"new": ToolRegistry([GrepTool(time_limit=600)]),
                 "old": ToolRegistry([old.GrepTool()]),
                 "old, no prefilter": ToolRegistry([no_prefilter()])}
        print("wall / CPU time per call, median\n")
        print(f"| pattern | matches | {' | '.join(tools)} | same output |")
        print(f"|---|---|{'---|' * len(tools)}---|")
        for label, pattern, icase in PATTERNS:
            args = {"pattern": pattern, "ignore_case": icase, "max_results": 100_000}
            row, outputs = [], {}
            for name, reg in tools.items():
                seconds, cpu, result = await timed(reg, ctx, args, opts.runs)
                row.append(f"{seconds * 1000:,.0f} ms / {cpu * 1000:,.0f} ms")
                outputs[name] = result.content
            matches = outputs["new"].count("\n") + 1 if "no matches" not in outputs["new"] \
                else 0
            same = len(set(outputs.values())) == 1
            print(f"| {label} `{pattern}` | {matches} | {' | '.join(row)} | "
                  f"{'yes' if same else 'NO'} |")
        # The reported pattern: only the new tool can run it.
        (tree / "runs.txt").write_text("a" * 40 + "!\naaaa\n")
        seconds, cpu, result = await timed(tools["new"], ctx, {"pattern": "(a+)+$"},
                                           opts.runs)
        print(f"| catastrophic `(a+)+$` | {result.content.count(chr(10)) + 1} | "
              f"{seconds * 1000:,.0f} ms / {cpu * 1000:,.0f} ms | does not finish | "
              "does not finish | - |")


if __name__ == "__main__":
    asyncio.run(main())
