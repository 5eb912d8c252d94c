"""``leon`` on the command line: argument parsing and exit codes.

Exit status: 0 success; 1 the command failed (API error, missing thread, damaged
database); 2 bad usage or bad configuration (nothing was opened or changed);
130 interrupted with Ctrl+C (what had arrived is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from leon import __version__

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="leon", description="A terminal chat client for Claude with local memory.")
    p.add_argument("--version", action="version", version=f"leon {__version__}")
    p.add_argument("--thread", "-t", metavar="NAME", help="open (or start) a scoped thread")
    p.add_argument("--continue", "-c", dest="continue_last", action="store_true",
                   help="continue the most recent thread")
    p.add_argument("--model", "-m", help="model for this run ('demo' for the offline model)")
    p.add_argument("--workspace", "-w", type=Path, help="directory the tools may read (default: .)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="one prompt, answer on stdout (for scripts and cron)")
    run.add_argument("prompt", help="the prompt, or - to read it from stdin")
    run.add_argument("--thread", "-t", dest="run_thread", metavar="NAME",
                     help="continue a scoped thread instead of a one-shot one")
    run.add_argument("--model", "-m", dest="run_model")
    run.add_argument("--workspace", "-w", dest="run_workspace", type=Path)
    run.add_argument("--json", action="store_true", help="print events as JSON lines")

    th = sub.add_parser("threads", help="list, show, rename, export, import, remove threads")
    ts = th.add_subparsers(dest="threads_cmd", metavar="ACTION", required=True)
    ls = ts.add_parser("ls", help="list threads, newest first")
    ls.add_argument("--kind", choices=["general", "scoped", "subagent", "oneshot"])
    ls.add_argument("--status", choices=["active", "completed", "archived"])
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--offset", type=int, default=0)
    ls.add_argument("--json", action="store_true")
    show = ts.add_parser("show", help="print the active branch of a thread")
    show.add_argument("thread")
    ren = ts.add_parser("rename", help="give a thread a new title")
    ren.add_argument("thread")
    ren.add_argument("title")
    exp = ts.add_parser("export", help="markdown of the active branch, or json of the whole tree")
    exp.add_argument("thread")
    exp.add_argument("--format", "-f", choices=["markdown", "json"], default="markdown")
    exp.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    imp = ts.add_parser("import", help="restore a json export")
    imp.add_argument("file", help="a json export, or - for stdin")
    rm = ts.add_parser("rm", help="delete a thread and its history")
    rm.add_argument("thread")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask")

    ck = sub.add_parser("checkpoints", help="the checkpoints of a thread")
    ck.add_argument("thread")
    rb = sub.add_parser("rollback", help="move a thread's head to a checkpoint (deletes nothing)")
    rb.add_argument("thread")
    rb.add_argument("checkpoint", type=int)
    rf = sub.add_parser("rollforward", help="move a thread's head forward again after a rollback")
    rf.add_argument("thread")

    sub.add_parser("doctor", help="check databases, config and API key")

    cfg = sub.add_parser("config", help="show or change settings")
    cs = cfg.add_subparsers(dest="config_cmd", metavar="ACTION", required=True)
    cs.add_parser("keys", help="every key with its default and meaning")
    cs.add_parser("show", help="the values in force")
    cset = cs.add_parser("set", help="change a value and save it to config.toml")
    cset.add_argument("key")
    cset.add_argument("value")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``leon`` console script."""
    args = build_parser().parse_args(argv)
    from leon import commands

    try:
        code = asyncio.run(commands.dispatch(args))
    except KeyboardInterrupt:
        print("\nleon: interrupted (what had arrived is kept)", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`leon run ... | head`): everything is stored already;
        # stop writing without a traceback, as other Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
