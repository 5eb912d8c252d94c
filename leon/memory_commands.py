"""CLI commands of the memory middleware: ``leon compact THREAD`` and the gauge line that
``leon run --json`` prints last."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from leon.agent import events as ev


def gauge_line(gauge: Any) -> dict[str, Any]:
    """The final ``{"kind": "gauge", ...}`` line of ``leon run --json``."""
    return {"kind": "gauge", **gauge.to_json()}


def describe_memory_event(event: ev.MemoryEvent) -> str:
    """One line for a person (``leon run`` without ``--json`` prints it on stderr)."""
    d = event.data
    if event.event == "compact":
        line = (f"compacted {d.get('messages_replaced')} messages: "
                f"{d.get('tokens_before'):,} -> {d.get('tokens_after'):,} tokens "
                f"({d.get('duration_ms')} ms)")
        if d.get("identifiers_repaired"):
            line += (f"; {d['identifiers_repaired']} identifier(s) the summary left out "
                     "were appended verbatim")
        if d.get("identifiers_left_out"):
            line += f" ({d['identifiers_left_out']} more did not fit and stay in history)"
        return line
    if event.event == "fit":
        done = []
        if d.get("results_cleared"):
            done.append(f"cleared {d['results_cleared']} old tool result(s) "
                        f"(~{d.get('tokens_cleared', 0):,} tokens)")
        if d.get("messages_dropped"):
            spans = ", ".join(f"{a}" if a == b else f"{a}-{b}"
                              for a, b in d.get("dropped_ids", []))
            done.append(f"left out the {d['messages_dropped']} oldest message(s) "
                        f"(~{d.get('tokens_dropped', 0):,} tokens; ids {spans})")
        return (f"request too large for the window ({d.get('reason')}): "
                + " and ".join(done) + f" of this request to fit {d.get('limit'):,} tokens; "
                "history is kept")
    if event.event == "fit_failed":
        return f"not sent: {d.get('error')}"
    if event.event == "prune":
        return (f"pruned {d.get('results')} old tool result(s), "
                f"{d.get('tokens_saved'):,} tokens freed")
    if event.event == "spill":
        return f"large output ({d.get('chars'):,} chars) saved to {d.get('path')}"
    if event.event == "compact_rejected":
        return f"compaction rejected: {d.get('reason')}; history kept as it was"
    if event.event == "compact_blocked":
        return f"automatic compaction stopped: {d.get('hint')}"
    return f"{event.event}: {json.dumps(d)}"


async def compact_command(args: argparse.Namespace, stores: Any, paths: Any,
                          settings: Any) -> int:
    """``leon compact THREAD``: summarise the thread's older turns now, whatever the
    thresholds; re-arms automatic compaction if the circuit breaker had tripped."""
    from leon.cli import EXIT_FAILED
    from leon.runtime import choose_provider, make_agent

    thread = await stores.leon.find_thread(args.thread)
    choice = choose_provider(getattr(args, "model", None) or thread.model or None, settings)
    if choice.notice:
        print(f"leon: {choice.notice}", file=sys.stderr)
    agent = await make_agent(stores, paths, settings, choice, thread, Path.cwd())
    try:
        before = await agent.gauge()
        outcome = await agent.compact()
    finally:
        await agent.close()
    if not outcome.ok:
        print(f"leon: {thread.id}: not compacted: {outcome.reason}", file=sys.stderr)
        return EXIT_FAILED
    d = outcome.data
    print(f"{thread.id}: compacted {d['messages_replaced']} messages into a summary: "
          f"{before.total:,} -> {d['tokens_after']:,} tokens "
          f"(`leon checkpoints {thread.id}` to see it, `leon rollback` to undo)")
    return 0
