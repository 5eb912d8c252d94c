"""``leon`` on the command line: argument parsing and exit codes.

Exit status: 0 success; 1 the command failed (API error, missing thread, damaged
database, a database locked past ``store.lock_wait``, another leon answering on the thread
with ``run --no-wait`` or past ``store.turn_wait``); 2 bad usage or bad configuration
(nothing was opened or changed); 130 interrupted with Ctrl+C (SIGINT), 143 stopped by
SIGTERM — in both cases within two seconds, whatever a tool was doing, with what had
arrived kept (the partial reply is stored, marked interrupted) and the commands leon
started killed (see :mod:`leon.interrupts`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from leon import __version__

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


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
    run.add_argument("--continue", "-c", dest="run_continue", action="store_true",
                     help="continue the most recent thread instead of a one-shot one")
    run.add_argument("--model", "-m", dest="run_model")
    run.add_argument("--workspace", "-w", dest="run_workspace", type=Path)
    run.add_argument("--json", action="store_true", help="print events as JSON lines")
    run.add_argument("--no-wait", action="store_true",
                     help="if another leon is answering on the thread, exit 1 at once "
                     "instead of waiting for it (store.turn_wait)")
    run.add_argument("--yes", "-y", action="store_true",
                     help="allow every file change and command without asking (otherwise only "
                     "what [permissions] allow in config.toml permits)")

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
    rm = ts.add_parser("rm", help="delete a thread and its history (archived first)")
    rm.add_argument("thread")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask")
    rs = ts.add_parser("restore", help="bring back a thread from its archive (gc and rm "
                       "archive every thread they delete)")
    rs.add_argument("archive", nargs="?", help="archive file, or a thread id (its newest archive)")
    rs.add_argument("--list", action="store_true", help="list the archive files")

    ck = sub.add_parser("checkpoints", help="the checkpoints of a thread")
    ck.add_argument("thread")
    rb = sub.add_parser("rollback", help="move a thread's head to a checkpoint (deletes nothing)")
    rb.add_argument("thread")
    rb.add_argument("checkpoint", type=int)
    rb.add_argument("--files", action="store_true",
                    help="also restore the files tools changed to their content at the "
                    "checkpoint")
    rb.add_argument("--force", action="store_true",
                    help="with --files: restore even files changed outside leon since")
    rb.add_argument("--workspace", "-w", dest="rollback_workspace", type=Path,
                    help="with --files: the workspace for changes that do not record theirs "
                    "(default: .)")
    rf = sub.add_parser("rollforward", help="move a thread's head forward again after a rollback")
    rf.add_argument("thread")

    sub.add_parser("doctor", help="check databases, config and API key")

    gc = sub.add_parser("gc", help="apply retention: archive and delete old ephemeral and "
                        "archived threads, orphans; reclaim the space")
    gc.add_argument("--dry-run", action="store_true", help="say what would go and how many "
                    "bytes; change nothing")
    gc.add_argument("--json", action="store_true")
    st = sub.add_parser("stats", help="threads, messages, database, spill and archive sizes, "
                        "blobs, memory")
    st.add_argument("--json", action="store_true")
    st.add_argument("--history", action="store_true", help="the sample each start recorded")
    st.add_argument("--limit", type=int, default=50, help="samples with --history")

    cp = sub.add_parser("compact", help="summarise a thread's older turns now (re-arms "
                        "automatic compaction)")
    cp.add_argument("thread")

    sb = sub.add_parser("sandbox", help="the working directories tools run in, and their leases")
    sbs = sb.add_subparsers(dest="sandbox_cmd", metavar="ACTION", required=True)
    sbl = sbs.add_parser("ls", help="list sandboxes with their lease")
    sbl.add_argument("--all", "-a", action="store_true", help="include removed sandboxes")
    sbshow = sbs.add_parser("show", help="a sandbox's leases, lease events and commands")
    sbshow.add_argument("sandbox", help="sandbox id, thread id, or a prefix of either")
    sbrm = sbs.add_parser("rm", help="delete a sandbox's directory")
    sbrm.add_argument("sandbox", help="sandbox id, thread id, or a prefix of either")
    sbrm.add_argument("--force", action="store_true", help="even if a live leon holds its lease")
    sbgc = sbs.add_parser("gc", help="reap stale leases, remove finished and orphan sandboxes")
    sbgc.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")

    ib = sub.add_parser("inbox", help="unread messages: replies, sub-agent and `leon run` outcomes")
    ib.add_argument("--mark-read", action="store_true", help="mark the listed messages read")
    ib.add_argument("--limit", type=int, default=50)

    cfg = sub.add_parser("config", help="show or change settings")
    cs = cfg.add_subparsers(dest="config_cmd", metavar="ACTION", required=True)
    cs.add_parser("keys", help="every key with its default and meaning")
    cs.add_parser("show", help="the values in force")
    cset = cs.add_parser("set", help="change a value and save it to config.toml")
    cset.add_argument("key")
    cset.add_argument("value")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``leon`` console script. Everything it prints goes through
    :func:`leon.textsafe.safe_output`: no title, message or tool output can drive the
    terminal (``-o FILE`` and ``--json`` keep the exact data)."""
    from leon.textsafe import safe_output

    with safe_output():
        return _main(argv)


# Arguments that name files: their bytes are the file's name, not text to store.
_PATH_ARGUMENTS = ("file", "archive")
_ARGUMENT_NAMES = {"prompt": "the prompt", "title": "the title", "thread": "the thread",
                   "run_thread": "the thread name", "value": "the value"}


def repair_arguments(args: argparse.Namespace) -> None:
    """A byte that is not UTF-8 in a text argument (``leon run $'hi \\xff'``) arrives
    as a lone surrogate, which SQLite, config.toml and the API refuse: store it as
    U+FFFD instead, and say so on stderr."""
    from leon.textsafe import bad_bytes_note, repair

    for name, value in vars(args).items():
        if isinstance(value, str) and name not in _PATH_ARGUMENTS:
            fixed, bad = repair(value)
            if bad:
                setattr(args, name, fixed)
                what = _ARGUMENT_NAMES.get(name, f"the {name.replace('_', ' ')} argument")
                print(f"leon: {bad_bytes_note(what, bad)}", file=sys.stderr)


def _main(argv: list[str] | None) -> int:
    # Until the command's own handlers are in place (leon.interrupts), a SIGTERM exits
    # quietly with its status instead of killing leon mid-import.
    previous_term = signal.signal(signal.SIGTERM, _terminated_early)
    try:
        args = build_parser().parse_args(argv)
        repair_arguments(args)
        from leon import commands, interrupts

        code = asyncio.run(interrupts.Interrupts().run(commands.dispatch(args)))
    except KeyboardInterrupt:
        print("\nleon: interrupted (what had arrived is kept)", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`leon run ... | head`): everything is stored already;
        # stop writing without a traceback, as other Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_FAILED
    except Exception as exc:  # a bug: one line here, the traceback in the private log
        from leon.crashlog import one_line

        print(f"leon: {one_line(exc)}", file=sys.stderr)
        code = EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    return code


def _terminated_early(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_TERMINATED)


if __name__ == "__main__":
    sys.exit(main())
