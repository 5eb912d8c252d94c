"""Storage benchmark: leon's store against LangGraph's AsyncSqliteSaver.

    python bench/storage.py [--baseline-max 500] [--leon-max 10000] [--seed 1] [--out DIR]

One deterministic conversation (seeded) is stored with a checkpoint after every message:

* leon: ``LeonStore.open(path)``, one thread, ``append_message`` per message (each append
  writes the message and its checkpoint in one transaction);
* baseline: a one-node ``StateGraph(MessagesState)`` compiled with ``AsyncSqliteSaver``,
  ``ainvoke({"messages": [msg]})`` per message on one thread_id (how LangGraph users keep a
  chat). It re-stores the whole state at every checkpoint, so it grows quadratically: it
  only runs to ``--baseline-max`` and its files are always deleted.

Sizes are the database file plus its ``-wal`` file as they are on disk at that moment, for
both stores (no checkpoint or VACUUM is forced before measuring); the ``-shm`` file is not
counted. "raw" is the physical floor: the UTF-8 bytes of the text, tool input JSON and tool
result text stored so far. Latency is ``time.perf_counter()`` around each append / invoke;
the median is over the messages since the previous sample point.

The conversation keeps the Messages API's strict user/assistant alternation: a user turn,
then assistant messages with one ``tool_use`` block each, each answered by a user message
holding the ``tool_result`` for that id, then a final assistant text. Turns make 1-3 tool
calls (paired so the mean is 2), so a third of all messages are tool results of 1-20 KB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_POINTS = (100, 250, 500, 2000, 10000)

# -- targets -----------------------------------------------------------------------------
MAX_LEON_OVER_RAW = 1.5
MIN_BASELINE_OVER_LEON_AT_500 = 100.0
MAX_LATENCY_GROWTH = 1.5


# -- the conversation ----------------------------------------------------------------------
WORDS = (
    "the a an of to in for on with from by at into over after before this that these those it "
    "its we you they should could would will can may might must not only also just then so but "
    "and or if when while because since though until unless where which who what how why "
    "function class module package import export config test tests failing passing error "
    "exception stack trace log line file path directory repo branch commit merge rebase diff "
    "patch change fix bug issue feature request response handler server client cache store "
    "database query index table row column schema migration version release build deploy "
    "container image service worker queue job task thread process memory cpu latency timeout "
    "retry backoff token budget limit page offset cursor stream buffer chunk encode decode "
    "parse serialize json yaml toml http api endpoint route method header body status code "
    "value key map list set tuple string integer float boolean null default option flag "
    "argument parameter return yield await async loop event callback promise future result "
    "check verify ensure assume expect look see think seems probably actually really quite "
    "small large slow fast simple complex clean broken stale fresh first last next previous "
    "user agent model prompt context window summary history message reply tool call output"
).split()

IDENT_PARTS = (
    "get set load save read write open close parse build make run start stop init reset "
    "user item order account session token cache store thread message event record entry "
    "config options settings path file name value count size index offset limit buffer "
    "handler manager client server worker queue pool conn cursor row table schema batch "
    "request response result error state status context payload header body chunk stream"
).split()

MODULES = (
    "core", "api", "store", "utils", "models", "views", "handlers", "workers", "cli",
    "config", "db", "net", "auth", "cache", "tasks", "render", "sync", "io", "jobs",
)
EXTS = (".py", ".py", ".py", ".ts", ".go", ".rs")
LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR")
HTTP = ("GET", "GET", "POST", "PUT", "DELETE")
TOOLS = ("bash", "read_file", "grep", "run_tests", "list_dir")
UNICODE_BITS = ("—", "é", "…", "→", "✓", "ü", "日本", "ß")


class TextGen:
    def __init__(self, rng: random.Random):
        self.r = rng

    def ident(self) -> str:
        r = self.r
        n = r.choice((1, 2, 2, 3))
        return "_".join(r.choice(IDENT_PARTS) for _ in range(n))

    def camel(self) -> str:
        return "".join(p.capitalize() for p in self.ident().split("_"))

    def path(self) -> str:
        r = self.r
        depth = r.randint(1, 3)
        parts = [r.choice(MODULES) for _ in range(depth)]
        return "src/" + "/".join(parts) + "/" + self.ident() + r.choice(EXTS)

    def sentence(self) -> str:
        r = self.r
        words = [r.choice(WORDS) for _ in range(r.randint(5, 18))]
        if r.random() < 0.25:
            words.insert(r.randrange(len(words)), f"`{self.ident()}`")
        if r.random() < 0.05:
            words.insert(r.randrange(len(words)), r.choice(UNICODE_BITS))
        s = " ".join(words)
        return s[0].upper() + s[1:] + r.choice((".", ".", ".", "?", ":"))

    def prose(self, lo: int, hi: int) -> str:
        target = self.r.randint(lo, hi)
        out: list[str] = []
        n = 0
        while n < target:
            s = self.sentence()
            out.append(s)
            n += len(s) + 1
        text = " ".join(out)
        return text[:target].rstrip() or text[:target]

    # -- tool result lines ---------------------------------------------------------------
    def code_line(self, indent: int) -> str:
        r, i = self.r, self.ident
        pad = "    " * indent
        k = r.random()
        if k < 0.12:
            return f"{pad}def {i()}(self, {i()}, {i()}=None):"
        if k < 0.18:
            return f"{pad}class {self.camel()}({self.camel()}):"
        if k < 0.40:
            return f"{pad}{i()} = {i()}.{i()}({i()}, {r.randint(0, 4096)})"
        if k < 0.52:
            return f"{pad}if {i()} is not None and len({i()}) > {r.randint(0, 99)}:"
        if k < 0.62:
            return f"{pad}return {i()}[{i()}]"
        if k < 0.72:
            return f'{pad}raise {self.camel()}Error(f"{i()} {{{i()}!r}} failed")'
        if k < 0.80:
            return f"{pad}# {self.sentence()}"
        if k < 0.86:
            return f"{pad}for {i()} in {i()}.{i()}():"
        if k < 0.92:
            return f"{pad}await self.{i()}.{i()}({i()}={r.randint(1, 500)})"
        return ""

    def log_line(self) -> str:
        r = self.r
        ts = (
            f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:"
            f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999):03d}Z"
        )
        lvl = r.choice(LEVELS)
        k = r.random()
        if k < 0.4:
            msg = (
                f"{r.choice(HTTP)} /api/v{r.randint(1, 3)}/{r.choice(MODULES)}/"
                f"{r.randint(1, 99999)}"
                f" status={r.choice((200, 200, 200, 201, 204, 404, 500))}"
                f" dur={r.uniform(0.3, 900):.1f}ms req={r.getrandbits(48):012x}"
            )
        elif k < 0.7:
            msg = f"{self.ident()}: {self.sentence()}"
        else:
            msg = (
                f"{self.camel()}Error in {self.path()}:{r.randint(1, 900)}"
                f" ({self.ident()}={r.randint(0, 10**6)})"
            )
        return f"{ts} {lvl:<5} [{r.choice(MODULES)}-{r.randint(0, 15)}] {msg}"

    def grep_line(self) -> str:
        return f"{self.path()}:{self.r.randint(1, 2000)}:{self.code_line(self.r.randint(0, 3))}"

    def test_line(self) -> str:
        r = self.r
        res = r.choice(("PASSED", "PASSED", "PASSED", "PASSED", "FAILED", "SKIPPED"))
        return f"tests/test_{self.ident()}.py::test_{self.ident()} {res} [{r.randint(0, 100):3d}%]"

    def tool_result(self, tool: str, size: int) -> str:
        r = self.r
        lines: list[str] = []
        n = 0
        indent = 0
        lineno = r.randint(1, 400)
        while n < size:
            if tool == "read_file":
                indent = max(0, min(4, indent + r.choice((-1, 0, 0, 0, 1))))
                line = f"{lineno:6d}\t{self.code_line(indent)}"
                lineno += 1
            elif tool == "grep":
                line = self.grep_line()
            elif tool == "run_tests":
                line = self.test_line() if r.random() < 0.7 else self.log_line()
            elif tool == "list_dir":
                line = (
                    f"-rw-r--r--  1 dev dev {r.randint(80, 90000):>7} "
                    f"Mar {r.randint(1, 28):2d} {r.randint(0, 23):02d}:{r.randint(0, 59):02d} "
                    f"{self.path()}"
                )
            else:  # bash: mostly logs
                line = self.log_line()
            lines.append(line)
            n += len(line.encode()) + 1
        text = "\n".join(lines)
        return text.encode()[:size].decode("utf-8", "ignore")

    def tool_input(self, tool: str) -> dict[str, Any]:
        r = self.r
        if tool == "read_file":
            return {"path": self.path(), "offset": r.randint(0, 400), "limit": 400}
        if tool == "grep":
            return {"pattern": self.ident(), "path": "src/", "context": r.randint(0, 3)}
        if tool == "run_tests":
            return {"args": ["-x", f"tests/test_{self.ident()}.py", "-q"]}
        if tool == "list_dir":
            return {"path": "src/" + r.choice(MODULES)}
        cmd = r.choice((
            f"tail -n 200 /var/log/{r.choice(MODULES)}.log",
            f"journalctl -u {r.choice(MODULES)} --since '1 hour ago'",
            f"python -m {r.choice(MODULES)}.{self.ident()} --verbose",
        ))
        return {"command": cmd}


@dataclass
class Msg:
    role: str                       # user | assistant
    kind: str                       # user | assistant | tool_result
    content: list[dict[str, Any]]   # Messages API content blocks
    raw: int                        # UTF-8 bytes of text / tool input JSON / result text


def _jdump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def build_conversation(n: int, seed: int) -> list[Msg]:
    rng = random.Random(seed)
    g = TextGen(rng)
    out: list[Msg] = []
    tool_counter = 0
    pending_k: int | None = None
    while len(out) < n:
        user = g.prose(50, 400)
        out.append(Msg("user", "user", [{"type": "text", "text": user}], len(user.encode())))
        # tool calls this turn: 1-3, paired (k, 4-k) so the mean is exactly 2 and tool
        # results are a third of all messages (a turn is 2k+2 messages holding k results).
        if pending_k is None:
            k = rng.randint(1, 3)
            pending_k = 4 - k
        else:
            k, pending_k = pending_k, None
        for _ in range(k):
            tool_counter += 1
            tid = f"toolu_{rng.getrandbits(96):024x}"
            tool = rng.choice(TOOLS)
            text = g.prose(200, 1800)
            inp = g.tool_input(tool)
            out.append(Msg(
                "assistant", "assistant",
                [{"type": "text", "text": text},
                 {"type": "tool_use", "id": tid, "name": tool, "input": inp}],
                len(text.encode()) + len(_jdump(inp).encode()),
            ))
            result = g.tool_result(tool, rng.randint(1024, 20 * 1024))
            out.append(Msg(
                "user", "tool_result",
                [{"type": "tool_result", "tool_use_id": tid, "content": result}],
                len(result.encode()),
            ))
        final = g.prose(200, 2000)
        out.append(Msg("assistant", "assistant", [{"type": "text", "text": final}],
                       len(final.encode())))
    return out[:n]


# -- measurements ----------------------------------------------------------------------------
@dataclass
class Sample:
    n: int
    raw: int
    db: int          # main file
    wal: int         # -wal file
    pages: int       # page_count * page_size as the connection sees it (db after a checkpoint)
    median_ms: float
    p90_ms: float

    @property
    def total(self) -> int:
        return self.db + self.wal


@dataclass
class Run:
    name: str
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def at(self, n: int) -> Sample | None:
        return next((s for s in self.samples if s.n == n), None)


def file_sizes(path: Path) -> tuple[int, int]:
    def size(p: str) -> int:
        try:
            return os.stat(p).st_size
        except FileNotFoundError:
            return 0
    return size(str(path)), size(str(path) + "-wal")


async def page_bytes(conn: Any) -> int:
    async with conn.execute("PRAGMA page_count") as cur:
        pc = (await cur.fetchone())[0]
    async with conn.execute("PRAGMA page_size") as cur:
        ps = (await cur.fetchone())[0]
    return int(pc) * int(ps)


def sample_points(limit: int) -> list[int]:
    pts = [p for p in SAMPLE_POINTS if p <= limit]
    if limit not in pts:
        pts.append(limit)
    return pts


def window_stats(lat: list[float]) -> tuple[float, float]:
    if not lat:
        return 0.0, 0.0
    ms = sorted(x * 1000 for x in lat)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.9))]


def progress(name: str, i: int, total: int, t0: float) -> None:
    if sys.stderr.isatty():
        print(f"\r  {name}: {i}/{total}  {time.perf_counter() - t0:6.1f}s", end="",
              file=sys.stderr, flush=True)


def end_progress() -> None:
    if sys.stderr.isatty():
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)


async def run_leon(conv: list[Msg], limit: int, path: Path, pragmas: list[str],
                   checkpoint_every: int, page_size: int) -> Run:
    from leon.store.leon_store import LeonStore

    run = Run("leon")
    if page_size:
        # prototype: create the file with another page size before leon opens (and
        # migrates) it; page_size can only be chosen before the first table exists.
        pre = sqlite3.connect(path)
        pre.execute(f"PRAGMA page_size = {page_size}")
        pre.execute("PRAGMA journal_mode = WAL")
        pre.close()
        run.notes.append(f"page_size {page_size}")
    store = await LeonStore.open(path)
    try:
        run.notes.append(f"schema version {await store.schema_version()}")
        for p in pragmas:
            await store.db.execute(f"PRAGMA {p}")
            run.notes.append(f"PRAGMA {p}")
        if checkpoint_every:
            run.notes.append(f"wal_checkpoint(TRUNCATE) every {checkpoint_every} appends")
        thread = await store.create_thread("scoped", title="bench")
        points = set(sample_points(limit))
        raw = 0
        window: list[float] = []
        t0 = time.perf_counter()
        for i, m in enumerate(conv[:limit], 1):
            t = time.perf_counter()
            await store.append_message(thread.id, m.role, m.content)
            window.append(time.perf_counter() - t)
            raw += m.raw
            if checkpoint_every and i % checkpoint_every == 0:
                await store.db.checkpoint_wal()
            if i in points:
                db, wal = file_sizes(path)
                med, p90 = window_stats(window)
                run.samples.append(Sample(i, raw, db, wal, await page_bytes(store.db.conn),
                                          med, p90))
                window = []
            if i % 50 == 0:
                progress("leon", i, limit, t0)
        run.seconds = time.perf_counter() - t0
        end_progress()
        reads = []
        for _ in range(3):
            t = time.perf_counter()
            got = await store.branch(thread.id)
            reads.append(time.perf_counter() - t)
        run.notes.append(f"branch() reads back all {len(got)} in "
                         f"{min(reads) * 1000:.0f} ms (best of 3)")
        if len(got) != limit:
            raise RuntimeError(f"leon stored {len(got)} messages, expected {limit}")
    finally:
        await store.close()
    return run


def to_langchain(m: Msg) -> Any:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    if m.kind == "tool_result":
        b = m.content[0]
        return ToolMessage(content=b["content"], tool_call_id=b["tool_use_id"])
    text = "".join(b["text"] for b in m.content if b["type"] == "text")
    if m.role == "user":
        return HumanMessage(content=text)
    calls = [
        {"name": b["name"], "args": b["input"], "id": b["id"], "type": "tool_call"}
        for b in m.content if b["type"] == "tool_use"
    ]
    return AIMessage(content=text, tool_calls=calls)


async def run_baseline(conv: list[Msg], limit: int, path: Path) -> Run:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.graph import END, START, MessagesState, StateGraph

    def node(state: MessagesState) -> dict[str, Any]:
        return {}  # the message came in as input; nothing to add

    builder = StateGraph(MessagesState)
    builder.add_node("store", node)
    builder.add_edge(START, "store")
    builder.add_edge("store", END)

    run = Run("langgraph")
    async with aiosqlite.connect(str(path)) as conn:
        saver = AsyncSqliteSaver(conn)
        graph = builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "bench"}}
        msgs = [to_langchain(m) for m in conv[:limit]]
        points = set(sample_points(limit))
        raw = 0
        window: list[float] = []
        t0 = time.perf_counter()
        for i, (m, lc) in enumerate(zip(conv[:limit], msgs), 1):
            t = time.perf_counter()
            await graph.ainvoke({"messages": [lc]}, config)
            window.append(time.perf_counter() - t)
            raw += m.raw
            if i in points:
                db, wal = file_sizes(path)
                med, p90 = window_stats(window)
                run.samples.append(Sample(i, raw, db, wal, await page_bytes(conn), med, p90))
                window = []
            if i % 10 == 0:
                progress("langgraph", i, limit, t0)
        run.seconds = time.perf_counter() - t0
        end_progress()
        async with conn.execute("SELECT count(*) FROM checkpoints") as cur:
            n_ck = (await cur.fetchone())[0]
        async with conn.execute("SELECT count(*) FROM writes") as cur:
            n_wr = (await cur.fetchone())[0]
        run.notes.append(f"{n_ck} checkpoint rows and {n_wr} write rows for {limit} invokes")
        state = await graph.aget_state(config)
        if len(state.values["messages"]) != limit:
            raise RuntimeError(f"langgraph holds {len(state.values['messages'])} messages")
    return run


# -- report ----------------------------------------------------------------------------------
def mb(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.2f} GiB"
    if n >= 1024**2:
        return f"{n / 1024**2:.2f} MiB"
    return f"{n / 1024:.0f} KiB"


def table(runs: list[Run]) -> list[str]:
    head = ("store", "msgs", "raw", "db file", "wal", "db+wal", "db+wal/raw", "pages",
            "pages/raw", "median ms", "p90 ms")
    rows = []
    for run in runs:
        for s in run.samples:
            rows.append((
                run.name, str(s.n), mb(s.raw), mb(s.db), mb(s.wal), mb(s.total),
                f"{s.total / s.raw:.2f}x", mb(s.pages), f"{s.pages / s.raw:.2f}x",
                f"{s.median_ms:.2f}", f"{s.p90_ms:.2f}",
            ))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda r: "| " + " | ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
    ) + " |"
    lines = [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [fmt(r) for r in rows]
    return lines


def verdicts(leon: Run, base: Run | None) -> tuple[list[str], list[str], bool]:
    ratios: list[str] = []
    checks: list[str] = []
    ok = True

    def check(passed: bool, text: str) -> None:
        nonlocal ok
        ok &= passed
        checks.append(f"{'PASS' if passed else 'FAIL'}  {text}")

    ratios.append("leon db+wal / raw: " + ", ".join(
        f"{s.n}: {s.total / s.raw:.2f}x" for s in leon.samples))
    if base is not None:
        parts = []
        for s in base.samples:
            ls = leon.at(s.n)
            if ls:
                parts.append(f"{s.n}: {s.total / ls.total:.0f}x")
        ratios.append("langgraph db+wal / leon db+wal: " + ", ".join(parts))
    first, last = leon.samples[0], leon.samples[-1]
    growth = last.median_ms / first.median_ms if first.median_ms else float("inf")
    ratios.append(
        f"leon median append latency at {last.n} / at {first.n}: "
        f"{last.median_ms:.2f} ms / {first.median_ms:.2f} ms = {growth:.2f}x"
    )

    worst = max(leon.samples, key=lambda s: s.total / s.raw)
    check(all(s.total <= MAX_LEON_OVER_RAW * s.raw for s in leon.samples),
          f"leon db+wal <= {MAX_LEON_OVER_RAW}x raw at every size "
          f"(worst {worst.total / worst.raw:.2f}x at {worst.n})")
    b500, l500 = (base.at(500) if base else None), leon.at(500)
    if b500 and l500:
        r = b500.total / l500.total
        check(r >= MIN_BASELINE_OVER_LEON_AT_500,
              f"langgraph >= {MIN_BASELINE_OVER_LEON_AT_500:.0f}x leon at 500 messages ({r:.0f}x)")
    else:
        checks.append("SKIP  langgraph >= 100x leon at 500 (needs --baseline-max and "
                      "--leon-max >= 500)")
    if last.n >= 10000 and first.n == 100:
        check(growth <= MAX_LATENCY_GROWTH,
              f"leon median latency at 10,000 within {MAX_LATENCY_GROWTH}x of at 100 "
              f"({growth:.2f}x)")
    else:
        checks.append("SKIP  latency at 10,000 vs 100 (needs --leon-max >= 10000)")
    return ratios, checks, ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-max", type=int, default=500,
                    help="messages stored by LangGraph (0: skip; grows quadratically)")
    ap.add_argument("--leon-max", type=int, default=10000, help="messages stored by leon")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None,
                    help="directory for the databases (default: a tempdir); they are deleted")
    ap.add_argument("--leon-pragma", action="append", default=[], metavar="NAME=VALUE",
                    help="prototype: extra PRAGMA on leon's connection after open (repeatable)")
    ap.add_argument("--leon-checkpoint-every", type=int, default=0, metavar="N",
                    help="prototype: PRAGMA wal_checkpoint(TRUNCATE) every N appends "
                         "(not counted in latency)")
    ap.add_argument("--leon-page-size", type=int, default=0, metavar="BYTES",
                    help="prototype: create leon's database with this page size")
    args = ap.parse_args()
    if args.leon_max < 1:
        ap.error("--leon-max must be >= 1")

    made_dir = args.out is None
    out = Path(tempfile.mkdtemp(prefix="leon-bench-")) if made_dir else args.out
    out.mkdir(parents=True, exist_ok=True)
    leon_path = out / "bench-leon.db"
    base_path = out / "bench-langgraph.sqlite"
    created = [leon_path, base_path]

    def cleanup() -> None:
        for p in created:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(p) + suffix).unlink(missing_ok=True)
        if made_dir:
            shutil.rmtree(out, ignore_errors=True)

    for p in created:
        if any(Path(str(p) + s).exists() for s in ("", "-wal")):
            print(f"{p} exists; choose another --out", file=sys.stderr)
            return 2

    started = time.perf_counter()
    try:
        n = max(args.leon_max, args.baseline_max)
        t = time.perf_counter()
        conv = build_conversation(n, args.seed)
        gen_s = time.perf_counter() - t
        share = sum(m.kind == "tool_result" for m in conv) / len(conv)
        tr = [m.raw for m in conv if m.kind == "tool_result"]
        proto = "".join(f" --leon-pragma {p}" for p in args.leon_pragma)
        if args.leon_checkpoint_every:
            proto += f" --leon-checkpoint-every {args.leon_checkpoint_every}"
        if args.leon_page_size:
            proto += f" --leon-page-size {args.leon_page_size}"
        print(f"python bench/storage.py --baseline-max {args.baseline_max} "
              f"--leon-max {args.leon_max} --seed {args.seed}{proto}")
        print(f"machine: {os.cpu_count()} cpus (nproc {len(os.sched_getaffinity(0))}), "
              f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
              f"{platform.system()} {platform.machine()}")
        print(f"conversation: {len(conv)} messages, {share:.1%} tool results "
              f"({min(tr)}-{max(tr)} bytes, mean {statistics.mean(tr):.0f}), "
              f"{sum(m.raw for m in conv) / 1024**2:.1f} MiB raw; built in {gen_s:.1f}s")
        print()

        leon = asyncio.run(run_leon(conv, args.leon_max, leon_path, args.leon_pragma,
                                    args.leon_checkpoint_every, args.leon_page_size))
        # leon's files are closed (WAL folded in and removed on close): free them now.
        for suffix in ("", "-wal", "-shm"):
            Path(str(leon_path) + suffix).unlink(missing_ok=True)
        base = None
        if args.baseline_max > 0:
            base = asyncio.run(run_baseline(conv, args.baseline_max, base_path))

        runs = [r for r in (leon, base) if r is not None]
        print("Sizes are on-disk bytes at that moment, db file + -wal file (-shm not counted).")
        print("'pages' = page_count x page_size: what the db would be after a WAL checkpoint.")
        print("Latency: median / p90 of per-message wall time since the previous row.")
        print()
        for line in table(runs):
            print(line)
        print()
        ratios, checks, _ = verdicts(leon, base)
        for line in ratios:
            print(line)
        print()
        for line in checks:
            print(line)
        print()
        for r in runs:
            print(f"{r.name}: {len(r.samples) and r.samples[-1].n} messages in {r.seconds:.1f}s"
                  + (f"; {'; '.join(r.notes)}" if r.notes else ""))
        print(f"total wall time {time.perf_counter() - started:.0f}s")
    except KeyboardInterrupt:
        print("\ninterrupted; the benchmark databases are deleted", file=sys.stderr)
        return 130
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
