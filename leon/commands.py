"""What each CLI command does. Every command loads the config first (a bad config exits
2 before any database is touched), then opens the stores."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leon import memory_commands, tool_commands
from leon.agent import events as ev
from leon.agent.stops import MARKED as ENDED_SHORT
from leon.agent.turn import TurnBusy, TurnError
from leon.cli import EXIT_FAILED, EXIT_USAGE
from leon.config import ConfigError, Settings, describe_keys, load_settings
from leon.lifecycle import commands as lifecycle_commands
from leon.paths import PathError, Paths, default_paths
from leon.store import NotFound, StoreError, Stores
from leon.store.export import export_json, export_markdown, import_json, read_export
from leon.store.validate import Invalid
from leon.textsafe import bad_bytes_note, escape_json, json_dumps, one_line, read_all
from leon.units import human_size


def err(message: str) -> None:
    print(f"leon: {message}", file=sys.stderr)


async def dispatch(args: argparse.Namespace) -> int:
    paths = default_paths()
    try:
        settings = load_settings(paths.config)
    except ConfigError as exc:
        err(str(exc))
        return EXIT_USAGE
    command = args.command
    for attr in ("thread", "run_thread"):  # `leon threads rm ""` must not match every id
        value = getattr(args, attr, None)
        if value is not None and not value.strip():
            err("the thread argument is empty: give a thread's id, name or title")
            return EXIT_USAGE
    if command == "config":
        return config_command(args, settings)
    if command is None:
        return await open_tui(args, paths, settings)
    if command == "doctor":  # it must work when the databases cannot be opened
        return await doctor_command(args, paths, settings)
    try:
        stores = await Stores.open(paths, lock_wait=settings["store.lock_wait"], notify=err)
    except StoreError as exc:
        err(str(exc))
        return EXIT_FAILED
    try:
        handler = {
            "run": run_command, "threads": threads_command, "checkpoints": checkpoints_command,
            "rollback": rollback_command, "rollforward": rollforward_command,
            "sandbox": tool_commands.sandbox_command,
            "inbox": tool_commands.inbox_command,
            "compact": memory_commands.compact_command,
            "gc": lifecycle_commands.gc_command, "stats": lifecycle_commands.stats_command,
        }[command]
        return await handler(args, stores, paths, settings)
    except NotFound as exc:
        err(str(exc).strip("'\""))
        return EXIT_FAILED
    except StoreError as exc:
        err(str(exc))
        return EXIT_FAILED
    except PathError as exc:  # a path leon would not derive (leon.paths): refused, one line
        err(str(exc))
        return EXIT_FAILED
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError:  # a bug (IntegrityError, ...), not damage
            raise
        # Damage the start-up check could not see (pages it did not read).
        err(f"a database in {paths.home} is damaged ({exc}); run `leon doctor`")
        return EXIT_FAILED
    finally:
        await stores.close()


async def open_tui(args: argparse.Namespace, paths: Paths, settings: Settings) -> int:
    try:
        from leon.ui.app import run_app  # type: ignore[import-not-found]
    except ImportError:
        from leon.cli import build_parser

        build_parser().print_help()
        return 0
    return await run_app(args, paths, settings)


# -- leon run ---------------------------------------------------------------------------
@dataclass
class _RunState:
    thread_id: str | None = None
    stored: bool = False  # the user's message is in leon.db


async def run_command(args: argparse.Namespace, stores: Stores, paths: Paths,
                      settings: Settings) -> int:
    """``leon run``. The prompt is never lost to a lock or a busy thread: when it could
    not be stored, one line says so (a prompt read from stdin is kept in a file)."""
    from_stdin = args.prompt == "-"
    prompt = read_prompt(args.prompt)
    state = _RunState()
    try:
        return await _run_prompt(args, stores, paths, settings, prompt, state)
    except (StoreError, TurnBusy) as exc:
        if state.stored:
            line = f"{exc}; your message is stored in thread {state.thread_id}"
        elif from_stdin and prompt.strip():
            line = f"{exc}; your message was not stored: it is kept in " \
                   f"{_keep_unsent(paths, prompt)}"
        else:
            line = f"{exc}; your message was not stored: run the command again"
        if args.json:
            _print_json({"kind": "error", "error": line, "stored": state.stored})
        err(line)
        return EXIT_FAILED


def _keep_unsent(paths: Paths, prompt: str) -> Path:
    """Save a prompt that could not be stored (it came from a pipe: the user may not
    have it anywhere else) as a private file under LEON_HOME/unsent/."""
    from leon.paths import make_private_dir

    folder = make_private_dir(paths.home / "unsent")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stamp}-{os.getpid()}.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(prompt)
    return path


async def _run_prompt(args: argparse.Namespace, stores: Stores, paths: Paths,
                      settings: Settings, prompt: str, state: _RunState) -> int:
    from leon.runtime import choose_provider, make_agent, resolve_thread

    if not prompt.strip():
        err("empty prompt")
        return EXIT_USAGE
    workspace = (args.run_workspace or args.workspace or Path.cwd()).resolve()
    if not workspace.is_dir():
        err(f"workspace {workspace} is not a directory")
        return EXIT_USAGE
    choice = choose_provider(args.run_model or args.model, settings)
    thread_name = args.run_thread or args.thread
    resume_last = (args.run_continue or args.continue_last) and not thread_name
    thread = await resolve_thread(stores, thread=thread_name, continue_last=resume_last,
                                  kind=None if thread_name or resume_last else "oneshot",
                                  model=choice.model)
    state.thread_id = thread.id
    from leon.agent.policy import NonInteractiveAsker

    agent = await make_agent(stores, paths, settings, choice, thread, workspace,
                             asker=NonInteractiveAsker(yes=args.yes))
    as_json = args.json
    if choice.notice:
        if as_json:
            _print_json({"kind": "notice", "text": choice.notice})
        else:
            print(f"leon: {choice.notice}", file=sys.stderr)
    for line in lifecycle_commands.startup_lines(paths):  # housekeeping: one line per kind
        if as_json:
            _print_json({"kind": "notice", "text": line})
        else:
            print(f"leon: {line}", file=sys.stderr)
    if args.no_wait:
        agent.turn_wait = 0
    agent.subscribe(lambda e: setattr(state, "stored", state.stored or
                                      isinstance(e, ev.UserMessageStored)))
    agent.subscribe(_json_printer if as_json else _TextPrinter())

    # Ctrl+C and SIGTERM cancel this task (leon.interrupts): the turn stores what had
    # arrived, marked interrupted, and kills what its tools started; then the lease goes.
    try:
        result = await agent.send(prompt)
    except TurnBusy as exc:
        if args.no_wait:
            raise TurnBusy(f"{exc} (--no-wait)") from None
        raise
    except TurnError as exc:
        unsent = agent.unsent
        if as_json:
            _print_json({"kind": "error", "error": str(exc), "status": exc.status,
                         "unsent": unsent.id if unsent else None})
        if unsent is not None:  # said first: the last line stays the reason
            err(f"your message was not sent; it is kept in thread {thread.id}, marked unsent, "
                "and no later request includes it. Run the same prompt on that thread "
                f"(--thread {thread.id}) to send it again.")
        err(str(exc))
        return EXIT_FAILED
    finally:
        await asyncio.shield(agent.close())  # release the sandbox lease
    if thread.kind == "oneshot":
        await stores.leon.update_thread(thread.id, status="completed")
    if as_json:
        _print_json(memory_commands.gauge_line(await agent.gauge()))
        _print_json({"kind": "done", "thread": thread.id, "stop_reason": result.stop_reason})
    elif not result.text.endswith("\n"):
        print()
    # A reply cut off, declined or paused is no answer: a script must not take it for
    # one (the notice saying why is already on stderr).
    return EXIT_FAILED if result.stop_reason in ENDED_SHORT else 0


def read_prompt(prompt: str) -> str:
    """The prompt argument, or stdin for ``-``, read as bytes: a byte that is not UTF-8
    becomes U+FFFD (with a note on stderr), so the turn goes on and the prompt is kept.
    (An argument's bad bytes were replaced already, see ``cli.repair_arguments``.)"""
    if prompt != "-":
        return prompt
    text, bad = read_all(sys.stdin)
    if bad:
        err(bad_bytes_note("the prompt on stdin", bad))
    return text


def _print_json(obj: dict[str, Any]) -> None:
    # C0 controls are \u escapes in JSON already; json_dumps escapes C1 and DEL too.
    print(json_dumps(obj), flush=True)


def _json_printer(event: ev.AgentEvent) -> None:
    _print_json(event.to_json())


class _TextPrinter:
    """Reply text on stdout; tools, retries and memory events on stderr."""

    def __init__(self) -> None:
        self.gap = False  # a new round of text starts after tool calls: separate it

    def __call__(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.TextStreamed):
            if self.gap:
                sys.stdout.write("\n\n")
                self.gap = False
            sys.stdout.write(event.text)
            sys.stdout.flush()
        else:
            if isinstance(event, ev.ToolCallStarted):
                sys.stdout.flush()
                self.gap = True
            _describe(event)


def _describe(event: ev.AgentEvent) -> None:
    if isinstance(event, ev.ToolCallStarted):
        args = ", ".join(f"{k}={v!r}" for k, v in event.input.items())
        print(f"\n· {event.name}({args[:120]})", file=sys.stderr)
    elif isinstance(event, ev.ToolCallFinished):
        state = "error" if event.is_error else "ok"
        if event.meta.get("permission") == "denied":
            state = "denied: allow it with --yes or [permissions] allow in config.toml"
        if event.meta.get("not_run"):
            print("  not run: the reply ended short (see below)", file=sys.stderr)
            return
        print(f"  {state}, {human_size(event.bytes)}", file=sys.stderr)
    elif isinstance(event, ev.WaitingForThread):
        print(f"leon: waiting for the other leon ({event.holder}) on this thread (up to "
              f"{event.limit_text}; --no-wait gives up at once)…", file=sys.stderr)
    elif isinstance(event, ev.Retried):
        print(f"\nleon: {retry_line(event)}", file=sys.stderr)
    elif isinstance(event, ev.ReplyStopped):
        print(f"\nleon: {event.message}", file=sys.stderr)
    elif isinstance(event, ev.MemoryEvent) and event.event == "guard":
        print(f"\nleon: cache guard: {event.data.get('reason')}", file=sys.stderr)
    elif isinstance(event, ev.MemoryEvent):
        print(f"\nleon: {memory_commands.describe_memory_event(event)}", file=sys.stderr)


def retry_line(event: ev.Retried) -> str:
    """"no answer from the API for 60 s; retrying in 4 s (attempt 2, 3 m 40 s left)":
    the attempt about to be made, and the time left in the call's total deadline."""
    from leon.llm.base import duration_text

    left = f", {duration_text(event.left)} left" if event.left is not None else ""
    return (f"{event.reason}; retrying in {duration_text(event.delay)} "
            f"(attempt {event.attempt + 1}{left})")


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


# -- leon threads ------------------------------------------------------------------------
async def threads_command(args: argparse.Namespace, stores: Stores, paths: Paths,
                          settings: Settings) -> int:
    store = stores.leon
    action = args.threads_cmd
    if action == "ls":
        threads = await store.list_threads(limit=args.limit, offset=args.offset, kind=args.kind,
                                           status=args.status)
        if args.json:
            for t in threads:
                _print_json({"id": t.id, "title": t.display_title, "kind": t.kind,
                             "status": t.status, "messages": t.message_count,
                             "updated_at": t.updated_at, "name": t.name})
            return 0
        if not threads:
            print("no threads yet: start one with `leon` or `leon run \"hello\"`")
            return 0
        for t in threads:
            print(f"{t.id}  {_when(t.updated_at)}  {t.kind:<8} {t.status:<9} "
                  f"{t.message_count:>5} msgs  {one_line(t.display_title)}")
        return 0
    if action == "restore":
        return await lifecycle_commands.restore_command(args, stores, paths)
    if action == "import":
        return await import_command(args, stores)
    thread = await store.find_thread(args.thread)
    if action == "show":
        head = await store.head(thread.id)
        summary = await store.get_summary(head.summary_id) if head and head.summary_id else None
        messages = await store.branch(thread.id,
                                      after_message_id=summary.upto_message_id if summary else None)
        print(export_markdown(thread.display_title, messages, summary.text if summary else None))
        tip = messages[-1].id if messages else None
        for draft in await store.drafts(thread.id):
            if draft.parent_id == tip and draft.text:
                print(f"## Claude *(interrupted, or still streaming in another leon)*\n\n"
                      f"{draft.text}\n")
        return 0
    if action == "rename":
        await store.update_thread(thread.id, title=args.title)
        print(f"renamed {thread.id}: {one_line(args.title)}")
        return 0
    if action == "export":
        if args.format == "json":
            text = json.dumps(await export_json(store, thread.id), ensure_ascii=False, indent=1)
        else:
            text = export_markdown(thread.display_title, await store.branch(thread.id))
        if args.output:  # the exact content: a file is not a terminal
            # 0600 from the first byte (write-then-chmod left a window at the umask's mode)
            fd = os.open(args.output, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            print(f"exported {thread.id} to {args.output}", file=sys.stderr)
        else:  # JSON's data stays exact (escaped); markdown is cleaned on its way out
            print(escape_json(text) if args.format == "json" else text)
        return 0
    if action == "rm":
        if not args.yes:
            if not sys.stdin.isatty():
                err(f"not removing {thread.id} without --yes (stdin is not a terminal)")
                return EXIT_USAGE
            # input() writes its prompt straight to the terminal, past sys.stdout
            answer = input(f"Delete thread {thread.id} ({one_line(thread.display_title)}, "
                           f"{thread.message_count} messages)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("kept")
                return 0
        await lifecycle_commands.rm_command(stores, paths, thread)
        return 0
    raise AssertionError(action)


async def import_command(args: argparse.Namespace, stores: Stores) -> int:
    """Checked in full before anything is written (:mod:`leon.store.export_schema`): a
    bad export is one line naming the field, exit 1, and the databases are unchanged."""
    try:
        data = read_export(args.file)
        tid = await import_json(stores.leon, data)
    except Invalid as exc:
        err(f"{args.file}: not imported: {exc}")
        return EXIT_FAILED
    except OSError as exc:
        err(f"{args.file}: cannot read: {exc.strerror or exc}")
        return EXIT_FAILED
    print(f"imported thread {tid}")
    return 0


# -- checkpoints and rollback ---------------------------------------------------------------
async def checkpoints_command(args: argparse.Namespace, stores: Stores, paths: Paths,
                              settings: Settings) -> int:
    store = stores.leon
    thread = await store.find_thread(args.thread)
    head = await store.head(thread.id)
    checkpoints = await store.checkpoints(thread.id)
    on_branch = {c.id for c in await _ancestors(store, thread.id, head.id if head else None)}
    messages = {m.id: m for m in await store.branch(thread.id)}
    for c in checkpoints:
        mark = "*" if head and c.id == head.id else ("|" if c.id in on_branch else " ")
        preview = ""
        if c.message_id is not None:
            msg = messages.get(c.message_id) or await store.get_message(c.message_id)
            preview = one_line(msg.text or _tools_line(msg.content))[:60]
        label = f" [{one_line(c.label)}]" if c.label else ""
        print(f"{mark} {c.id:>6}  {_when(c.created_at)}  {c.kind:<11}{label} {preview}")
    return 0


def _tools_line(content: list[dict[str, Any]]) -> str:
    names = [b.get("name", "") for b in content if b.get("type") == "tool_use"]
    results = sum(1 for b in content if b.get("type") == "tool_result")
    if names:
        return "calls " + ", ".join(names)
    return f"{results} tool result(s)" if results else ""


async def _ancestors(store: Any, thread_id: str, checkpoint_id: int | None) -> list[Any]:
    if checkpoint_id is None:
        return []
    by_id = {c.id: c for c in await store.checkpoints(thread_id)}
    chain = []
    cur = by_id.get(checkpoint_id)
    while cur is not None:
        chain.append(cur)
        cur = by_id.get(cur.parent_id) if cur.parent_id else None
    return chain


@contextlib.asynccontextmanager
async def _between_turns(stores: Stores, thread_id: str) -> Any:
    """Move a thread's head only while no leon is answering on it (its turn lock);
    otherwise say who is, and do nothing."""
    from leon.store.turnlock import ThreadBusy

    lock = stores.leon.turn_lock(thread_id)
    try:
        await lock.acquire(0)
    except ThreadBusy as exc:
        raise StoreError(f"{exc}; try again when it has answered") from None
    try:
        yield
    finally:
        lock.release()


async def rollback_command(args: argparse.Namespace, stores: Stores, paths: Paths,
                           settings: Settings) -> int:
    thread = await stores.leon.find_thread(args.thread)
    async with _between_turns(stores, thread.id):
        return await _rollback(args, stores, thread)


async def _rollback(args: argparse.Namespace, stores: Stores, thread: Any) -> int:
    if args.files:
        # Rows that do not record their workspace (older, imported) are confined to this one.
        workspace = (getattr(args, "rollback_workspace", None) or args.workspace
                     or Path.cwd()).resolve()
        if not await tool_commands.rollback_files(stores, thread.id, args.checkpoint, args.force,
                                                  workspace):
            return EXIT_FAILED
    elif args.force or getattr(args, "rollback_workspace", None):
        err(f"{'--force' if args.force else '--workspace'} only makes sense with --files")
        return EXIT_USAGE
    target = await stores.leon.rollback(thread.id, args.checkpoint)
    print(f"{thread.id}: head moved to checkpoint {target.id} ({target.kind}); nothing was "
          f"deleted — `leon rollforward {thread.id}` moves it forward again")
    return 0


async def rollforward_command(args: argparse.Namespace, stores: Stores, paths: Paths,
                              settings: Settings) -> int:
    thread = await stores.leon.find_thread(args.thread)
    async with _between_turns(stores, thread.id):
        target = await stores.leon.rollforward(thread.id)
    if target is None:
        print(f"{thread.id}: already at the newest checkpoint of its branch")
        return 0
    print(f"{thread.id}: head moved forward to checkpoint {target.id} ({target.kind})")
    return 0


# -- doctor and config ------------------------------------------------------------------
async def doctor_command(args: argparse.Namespace, paths: Paths, settings: Settings) -> int:
    """Check the three databases without opening them for writing (so it also works on
    one leon refuses), the config, agent profiles and the API key; exit 1 on a problem."""
    from leon.store import ChatStore, LeonStore, SandboxStore
    from leon.store.doctor import diagnose

    problems = 0
    print(f"home   {paths.home}")
    print(f"cache  {paths.cache}")
    for store_cls, path in ((LeonStore, paths.leon_db), (SandboxStore, paths.sandbox_db),
                            (ChatStore, paths.chat_db)):
        found = await asyncio.to_thread(diagnose, path, store_cls.NAME, len(store_cls.MIGRATIONS))
        problems += 0 if found.ok else 1
        print(f"{'ok ' if found.ok else 'BAD'}    {path.name}: {found.summary}")
        for line in found.details:
            print(f"         {line}")
        for line in found.advice:
            print(f"  fix: {line}")
    print(f"ok     config: {paths.config if paths.config.exists() else 'none (defaults)'}; "
          f"model {settings['model']}")
    problems += tool_commands.doctor_agents(paths)
    from leon.llm.base import safe_url
    from leon.runtime import credentials

    creds = credentials()
    if creds.any:  # which variables and headers, never their values
        base = safe_url(creds.base_url or "https://api.anthropic.com")
        print(f"ok     credentials: {creds.describe()}; API at {base}")
    else:
        print("note   neither ANTHROPIC_API_KEY nor ANTHROPIC_AUTH_TOKEN is set: leon uses "
              "the offline demo model")
    if problems:
        err(f"{problems} problem(s) found; see the 'fix:' lines above")
    return EXIT_FAILED if problems else 0


def config_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.config_cmd == "keys":
        print(describe_keys())
    elif args.config_cmd == "show":
        for name, value in settings.as_dict().items():
            print(f"{name} = {json.dumps(value)}")
    elif args.config_cmd == "set":
        try:
            value = settings.set(args.key, args.value, persist=True)
        except ConfigError as exc:
            err(str(exc))
            return EXIT_USAGE
        print(f"{args.key} = {json.dumps(value)} (saved to {settings.path})")
    return 0
