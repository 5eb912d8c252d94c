"""Soak benchmark: 1,000 sessions in one process, retention on vs. off.

    python bench/soak.py                      # 1,000 sessions per mode, budget 8 MiB
    python bench/soak.py --sessions 200 --every 50

One process runs two modes one after the other, each in its own fresh LEON_HOME:

* **retention on** (first, so its memory curve starts clean): the default retention
  windows, a disk budget of ``--budget-mb`` for the databases plus spill files, and an
  archive cap of the same size; every ``--startup-every`` sessions leon "starts" again —
  :func:`leon.lifecycle.startup.housekeeping` with its real time budgets (orphans 0.1 s,
  gc 0.2 s with a bounded incremental vacuum, a stats sample);
* **retention off** (the baseline): the same sessions, no housekeeping at all.

A session is what ``leon run`` does, driven in-process on the offline demo model: a
one-shot thread, an agent with every tool (``--yes``), one prompt, the thread marked
completed, the agent closed. Three kinds, in a fixed rotation: reading a large log
(spilled to a file), running a command with long output in the sandbox, and delegating
a search to a sub-agent (a second, ``subagent`` thread). Skills are installed, so every
thread references the same skills snapshot.

Every ``--every`` sessions it samples resident memory (after a ``gc.collect()``) and the
bytes on disk: the three databases with their WAL files plus spill files (what the
budget counts), and, apart, archives and sandboxes. It prints both curves and the
ratios; the targets: with retention on, memory after the last session within 10% of
after the first sample, and disk at most the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leon.agent.policy import NonInteractiveAsker  # noqa: E402
from leon.config import Settings  # noqa: E402
from leon.lifecycle import startup  # noqa: E402
from leon.lifecycle.retention import dir_bytes, human  # noqa: E402
from leon.lifecycle.stats import rss_bytes  # noqa: E402
from leon.llm.demo import DemoProvider  # noqa: E402
from leon.paths import Paths  # noqa: E402
from leon.runtime import ProviderChoice, make_agent  # noqa: E402
from leon.store import Stores  # noqa: E402

PROMPTS = (
    "read big.log",
    "run `seq 1 4000`",
    "delegate grep TODO",
)
SKILL = """---
name: conventions
description: House conventions for this repository
---
Use four spaces. Keep functions short. Every public function has a docstring.
""" + "Details of the conventions. " * 1500  # a ~40 KB snapshot, as in the issue


@dataclass
class Sample:
    sessions: int
    rss: int
    disk: int          # databases + WAL + spill (what the budget counts)
    archive: int
    sandboxes: int
    threads: int
    seconds: float


@dataclass
class Run:
    name: str
    samples: list[Sample] = field(default_factory=list)
    startups: int = 0
    removed: int = 0
    left_max: int = 0


def workspace(root: Path) -> Path:
    ws = root / "ws"
    (ws / "src").mkdir(parents=True)
    lines = [f"2026-03-10T09:{i // 60 % 60:02}:{i % 60:02} INFO request {i} served in "
             f"{i % 97} ms path=/api/v1/items/{i}" for i in range(600)]
    (ws / "big.log").write_text("\n".join(lines) + "\n")
    for i in range(8):
        (ws / "src" / f"mod{i}.py").write_text(
            f'"""Module {i}."""\n\n# TODO: handle the empty case in mod{i}\n'
            f"def f{i}(x):\n    return x * {i}\n")
    return ws


def measure(paths: Paths, stores: Stores) -> tuple[int, int, int]:
    dbs = sum(s.db.size_bytes() for s in (stores.leon, stores.sandbox, stores.chat))
    return (dbs + dir_bytes(paths.spill)[0], dir_bytes(paths.archive)[0],
            dir_bytes(paths.sandboxes)[0])


async def one_session(stores: Stores, paths: Paths, settings: Settings, ws: Path,
                      prompt: str) -> None:
    thread = await stores.leon.create_thread("oneshot", model="demo")
    agent = await make_agent(stores, paths, settings, ProviderChoice(DemoProvider(), "demo", None),
                             thread, ws, asker=NonInteractiveAsker(yes=True))
    try:
        await agent.send(prompt)
    finally:
        await agent.close()
    await stores.leon.update_thread(thread.id, status="completed")


async def run_mode(name: str, retention: bool, args: argparse.Namespace) -> Run:
    root = Path(tempfile.mkdtemp(prefix=f"leon-soak-{name}-"))
    try:
        paths = Paths(home=root / "home", cache=root / "cache")
        (paths.home / "skills").mkdir(parents=True)
        (paths.home / "skills" / "conventions.md").write_text(SKILL)
        ws = workspace(root)
        settings = Settings({"retention.disk_budget_mb": args.budget_mb,
                             "retention.archive_max_mb": args.budget_mb,
                             "tools.bash_cwd": "workspace"})
        stores = await Stores.open(paths)
        run = Run(name)
        key = str(paths.leon_db)
        if not retention:
            startup._DONE.add(key)  # the baseline never does housekeeping
        started = time.monotonic()
        try:
            for i in range(1, args.sessions + 1):
                if retention and i % args.startup_every == 1:
                    report = await startup.housekeeping(stores, paths, settings, force=True)
                    run.startups += 1
                    if report and report.gc is not None:
                        run.removed += len(report.gc.removed)
                        run.left_max = max(run.left_max, report.gc.left_for_later)
                await one_session(stores, paths, settings, ws, PROMPTS[i % len(PROMPTS)])
                if i % args.every == 0:
                    gc.collect()
                    disk, archive, boxes = measure(paths, stores)
                    threads = (await stores.leon.db.fetchone("SELECT count(*) FROM threads"))[0]
                    run.samples.append(Sample(i, rss_bytes(), disk, archive, boxes, threads,
                                              time.monotonic() - started))
                    s = run.samples[-1]
                    print(f"  {name:<13} {i:>5} sessions  rss {human(s.rss):>10}  "
                          f"disk {human(s.disk):>10}  archive {human(s.archive):>10}  "
                          f"threads {threads:>5}  {s.seconds:6.1f} s", flush=True)
        finally:
            await stores.close()
        return run
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(on: Run, off: Run, args: argparse.Namespace) -> bool:
    budget = args.budget_mb * 1024 * 1024
    print()
    print(f"{'sessions':>8} | {'rss on':>10} {'rss off':>10} | {'disk on':>10} {'disk off':>10}"
          f" | {'archive on':>10} | {'threads on':>10} {'threads off':>11}")
    for a, b in zip(on.samples, off.samples, strict=True):
        print(f"{a.sessions:>8} | {human(a.rss):>10} {human(b.rss):>10} | {human(a.disk):>10} "
              f"{human(b.disk):>10} | {human(a.archive):>10} | {a.threads:>10} {b.threads:>11}")
    first, last = on.samples[0], on.samples[-1]
    rss_ratio = last.rss / first.rss
    disk_ratio = off.samples[-1].disk / max(1, last.disk)
    peak = max(s.disk for s in on.samples)
    print()
    print(f"retention on: rss after {last.sessions} / after {first.sessions} sessions = "
          f"{rss_ratio:.3f} (target <= 1.10)")
    print(f"retention on: disk peak {human(peak)}, final {human(last.disk)}, budget "
          f"{human(budget)} (target: <= budget)")
    print(f"disk off / on after {last.sessions} sessions = {disk_ratio:.1f}x "
          f"({human(off.samples[-1].disk)} vs {human(last.disk)})")
    print(f"housekeeping: {on.startups} starts removed {on.removed} threads; largest backlog "
          f"left for the next start: {on.left_max}")
    print(f"wall time: on {on.samples[-1].seconds:.0f} s, off {off.samples[-1].seconds:.0f} s")
    ok = rss_ratio <= 1.10 and peak <= budget
    print("targets met" if ok else "TARGETS MISSED")
    return ok


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--every", type=int, default=100, help="sample every N sessions")
    p.add_argument("--budget-mb", type=float, default=8.0)
    p.add_argument("--startup-every", type=int, default=10,
                   help="with retention on, leon starts again every N sessions")
    p.add_argument("--no-baseline", action="store_true",
                   help="retention on only (for quick experiments; no ratio)")
    args = p.parse_args()
    os.environ.pop("ANTHROPIC_API_KEY", None)
    print(f"soak: {args.sessions} sessions per mode, sample every {args.every}, "
          f"budget {args.budget_mb:g} MiB, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}")
    on = await run_mode("retention-on", True, args)
    if args.no_baseline:
        first, last = on.samples[0], on.samples[-1]
        print(f"rss {last.rss / first.rss:.3f}, disk peak "
              f"{human(max(s.disk for s in on.samples))}")
        return 0
    off = await run_mode("retention-off", False, args)
    return 0 if report(on, off, args) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
