"""What each CLI command does. Every command loads the config first (a bad config exits
2 before any database is touched), then opens the stores."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from leon import memory_commands, tool_commands
from leon.agent import events as ev
from leon.agent.turn import TurnError
from leon.cli import EXIT_FAILED, EXIT_USAGE
from leon.config import ConfigError, Settings, describe_keys, load_settings
from leon.lifecycle import commands as lifecycle_commands
from leon.paths import Paths, default_paths
from leon.store import NotFound, StoreError, Stores
from leon.store.export import export_json, export_markdown, import_json


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
    if command == "config":
        return config_command(args, settings)
    if command is None:
        return await open_tui(args, paths, settings)
    try:
        stores = await Stores.open(paths)
    except StoreError as exc:
        err(str(exc))
        return EXIT_FAILED
    try:
        handler = {
            "run": run_command, "threads": threads_command, "checkpoints": checkpoints_command,
            "rollback": rollback_command, "rollforward": rollforward_command,
            "doctor": doctor_command, "sandbox": tool_commands.sandbox_command,
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
async def run_command(args: argparse.Namespace, stores: Stores, paths: Paths,
                      settings: Settings) -> int:
    from leon.runtime import choose_provider, make_agent, resolve_thread

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        err("empty prompt")
        return EXIT_USAGE
    workspace = (args.run_workspace or args.workspace or Path.cwd()).resolve()
    if not workspace.is_dir():
        err(f"workspace {workspace} is not a directory")
        return EXIT_USAGE
    choice = choose_provider(args.run_model or args.model, settings)
    thread_name = args.run_thread or args.thread
    thread = await resolve_thread(stores, thread=thread_name, kind=None if thread_name else "oneshot",
                                  model=choice.model)
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
    agent.subscribe(_json_printer if as_json else _TextPrinter())

    # Ctrl+C and SIGTERM cancel this task (leon.interrupts): the turn stores what had
    # arrived, marked interrupted, and kills what its tools started; then the lease goes.
    try:
        result = await agent.send(prompt)
    except TurnError as exc:
        if as_json:
            _print_json({"kind": "error", "error": str(exc), "status": exc.status})
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
    return 0


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


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
        print(f"  {state}, {_size(event.bytes)}", file=sys.stderr)
    elif isinstance(event, ev.Retried):
        print(f"\nleon: {event.reason}; retrying in {event.delay:.1f}s (attempt {event.attempt})",
              file=sys.stderr)
    elif isinstance(event, ev.MemoryEvent) and event.event == "guard":
        print(f"\nleon: cache guard: {event.data.get('reason')}", file=sys.stderr)
    elif isinstance(event, ev.MemoryEvent):
        print(f"\nleon: {memory_commands.describe_memory_event(event)}", file=sys.stderr)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


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
                  f"{t.message_count:>5} msgs  {t.display_title}")
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
        print(f"renamed {thread.id}: {args.title}")
        return 0
    if action == "export":
        if args.format == "json":
            text = json.dumps(await export_json(store, thread.id), ensure_ascii=False, indent=1)
        else:
            text = export_markdown(thread.display_title, await store.branch(thread.id))
        if args.output:
            args.output.write_text(text + "\n", encoding="utf-8")
            os.chmod(args.output, 0o600)
            print(f"exported {thread.id} to {args.output}", file=sys.stderr)
        else:
            print(text)
        return 0
    if action == "rm":
        if not args.yes:
            if not sys.stdin.isatty():
                err(f"not removing {thread.id} without --yes (stdin is not a terminal)")
                return EXIT_USAGE
            answer = input(f"Delete thread {thread.id} ({thread.display_title}, "
                           f"{thread.message_count} messages)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("kept")
                return 0
        await lifecycle_commands.rm_command(stores, paths, thread)
        return 0
    raise AssertionError(action)


async def import_command(args: argparse.Namespace, stores: Stores) -> int:
    raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        data = json.loads(raw)
        tid = await import_json(stores.leon, data)
    except (json.JSONDecodeError, ValueError, KeyError) as exc:
        err(f"{args.file}: not a leon thread export ({exc})")
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
            preview = " ".join((msg.text or _tools_line(msg.content)).split())[:60]
        label = f" [{c.label}]" if c.label else ""
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


async def rollback_command(args: argparse.Namespace, stores: Stores, paths: Paths,
                           settings: Settings) -> int:
    thread = await stores.leon.find_thread(args.thread)
    if args.files:
        if not await tool_commands.rollback_files(stores, thread.id, args.checkpoint, args.force):
            return EXIT_FAILED
    elif args.force:
        err("--force only makes sense with --files")
        return EXIT_USAGE
    target = await stores.leon.rollback(thread.id, args.checkpoint)
    print(f"{thread.id}: head moved to checkpoint {target.id} ({target.kind}); nothing was "
          f"deleted — `leon rollforward {thread.id}` moves it forward again")
    return 0


async def rollforward_command(args: argparse.Namespace, stores: Stores, paths: Paths,
                              settings: Settings) -> int:
    thread = await stores.leon.find_thread(args.thread)
    target = await stores.leon.rollforward(thread.id)
    if target is None:
        print(f"{thread.id}: already at the newest checkpoint of its branch")
        return 0
    print(f"{thread.id}: head moved forward to checkpoint {target.id} ({target.kind})")
    return 0


# -- doctor and config ------------------------------------------------------------------
async def doctor_command(args: argparse.Namespace, stores: Stores, paths: Paths,
                         settings: Settings) -> int:
    problems = 0
    print(f"home   {paths.home}")
    print(f"cache  {paths.cache}")
    for store in (stores.leon, stores.sandbox, stores.chat):
        result = await store.integrity_check()
        version = await store.schema_version()
        mode = oct(store.path.stat().st_mode & 0o777)
        ok = result == "ok" and mode == "0o600"
        problems += 0 if ok else 1
        print(f"{'ok ' if ok else 'BAD'}    {store.path.name}: integrity {result}, schema v{version}, "
              f"mode {mode[2:]}, {_size(store.db.size_bytes())}")
    print(f"ok     config: {paths.config if paths.config.exists() else 'none (defaults)'}; "
          f"model {settings['model']}")
    problems += tool_commands.doctor_agents(paths)
    if os.environ.get("ANTHROPIC_API_KEY", "").strip():
        base = os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
        print(f"ok     ANTHROPIC_API_KEY is set; API at {base}")
    else:
        print("note   ANTHROPIC_API_KEY is not set: leon uses the offline demo model")
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
