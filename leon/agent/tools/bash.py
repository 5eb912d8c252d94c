"""The ``bash`` tool: one shell command in the thread's sandbox directory.

Each call is a fresh ``bash -c`` in its own process group (nothing carries over between
calls but files), with stdin closed, stdout and stderr merged, an environment built from
an allowlist (:func:`command_env`: API keys, tokens and passwords stay out), and a
timeout after which the whole process group is killed. Output is capped (head and tail
kept), made safe to send (undecodable bytes replaced, a note says so) and the exit code
is always in the result. Processes the command leaves behind in its process group are
killed when it ends.

What this does *not* do: confine the command. It runs as the user, and can read and
change any file the user can (``cd /`` works). The sandbox directory is a starting
point and scratch space, not a security boundary; the permission prompt is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leon import interrupts

from .base import ToolContext, ToolError, ToolResult
from .paths import is_binary
from .readonly import _str_arg
from .write import session_of

KILL_GRACE = 1.0      # seconds between SIGTERM and SIGKILL on timeout
DRAIN_GRACE = 0.5     # seconds to collect output after the shell exits
READ_CHUNK = 65536
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")

# What a command gets from leon's environment: only what programs need to find
# themselves, their user, locale, time zone and temporary directory. A denylist of
# secret-looking names cannot be complete (PGPASSWORD, MYSQL_PWD, DATABASE_URL, GH_PAT,
# SENTRY_DSN …), so nothing else passes unless the user names it in tools.bash_env_pass.
#   LOGNAME  the POSIX twin of USER (some programs read one, some the other)
#   LANGUAGE GNU gettext's message-language list, part of the locale like LANG and LC_*
#   TZ       so dates a command prints are in the user's time zone
PASSED_ENV = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TMPDIR",
                        "SHELL", "TZ"})
_LOCALE = re.compile(r"LC_[A-Z_]+")
# Never passed, even when listed: the API key and everything else leon's provider reads.
NEVER_PASSED_PREFIX = "ANTHROPIC_"
# Set for every command: no pager or colour, no terminal prompts (there is no terminal).
FORCED_ENV = {"PAGER": "cat", "GIT_PAGER": "cat", "NO_COLOR": "1", "TERM": "dumb",
              "GIT_TERMINAL_PROMPT": "0"}


def _absolute_path_entries(value: str) -> str:
    """PATH without empty or relative entries: those name the command's working
    directory (the sandbox or the workspace, where the model can write files), so
    ``git`` under the rule ``bash:git status*`` could be a ``./git`` the model made."""
    kept = [p for p in value.split(os.pathsep) if p.startswith("/")]
    return os.pathsep.join(kept) if kept else os.defpath


def command_env(extra: dict[str, str] | None = None, base: dict[str, str] | None = None,
                passed: Iterable[str] = ()) -> dict[str, str]:
    """The environment a command gets: from ``base`` (default: leon's own) only the
    allowlisted names (:data:`PASSED_ENV`, ``LC_*``) and the names in ``passed`` (the
    user's ``tools.bash_env_pass``), never ``ANTHROPIC_*``; then pagers and colours
    turned off, then ``extra``."""
    source = os.environ if base is None else base
    wanted = set(passed)
    env = {k: v for k, v in source.items()
           if (k in PASSED_ENV or _LOCALE.fullmatch(k) or k in wanted)
           and not k.upper().startswith(NEVER_PASSED_PREFIX)}
    if "PATH" in env:
        env["PATH"] = _absolute_path_entries(env["PATH"])
    env.update(FORCED_ENV)
    env.update(extra or {})
    return env


@dataclass
class ShellOutcome:
    exit_code: int | None     # None: killed by leon (timeout)
    output: bytes             # what was kept (head + tail when capped)
    total_bytes: int          # everything the command wrote
    timed_out: bool
    duration: float


class _Sink:
    """Keeps the first ``head`` bytes and the last ``tail`` bytes of a stream."""

    def __init__(self, cap: int):
        self.head_cap = cap - cap // 4
        self.tail_cap = cap // 4
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk and self.tail_cap:
            self.tail += chunk
            if len(self.tail) > self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    def result(self) -> tuple[bytes, int]:
        dropped = self.total - len(self.head) - len(self.tail)
        if dropped <= 0:
            return bytes(self.head + self.tail), 0
        note = f"\n\n[... {dropped} bytes of output omitted ...]\n\n".encode()
        return bytes(self.head) + note + bytes(self.tail), dropped


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_shell(command: str, *, cwd: Path, env: dict[str, str], timeout: float,
                    cap: int) -> ShellOutcome:
    """Run ``command`` with ``bash -c``; never raises for the command's own failures."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        "/bin/bash", "-c", command, cwd=str(cwd), env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    interrupts.track_group(proc.pid)  # a forced exit kills the group too
    sink = _Sink(cap)
    assert proc.stdout is not None
    stdout = proc.stdout

    async def pump() -> None:
        while chunk := await stdout.read(READ_CHUNK):
            sink.add(chunk)

    reader = asyncio.create_task(pump())
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
            _killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), KILL_GRACE)
            except TimeoutError:
                _killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        # Children that still hold the pipe open would keep the reader waiting forever.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), DRAIN_GRACE)
    except asyncio.CancelledError:
        _killpg(proc.pid, signal.SIGKILL)
        reader.cancel()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    finally:
        # Whatever the command started in its process group does not outlive it.
        _killpg(proc.pid, signal.SIGKILL)
        interrupts.untrack_group(proc.pid)
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    output, _ = sink.result()
    return ShellOutcome(None if timed_out else proc.returncode, output, sink.total, timed_out,
                        time.monotonic() - started)


def render_output(data: bytes) -> tuple[str, bool]:
    """Text safe to send to the model, and whether the output looked binary."""
    binary = is_binary(data)
    text = data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    text = _ANSI.sub("", text)
    return text, binary


class BashTool:
    name = "bash"
    description = (
        "Run a shell command with bash and return its output (stdout and stderr merged) and "
        "exit code. Each call starts a fresh shell: nothing but files carries over between "
        "calls (no cd, no variables). The command starts in this conversation's sandbox "
        "directory, a private scratch directory kept between calls; the workspace is at "
        "$LEON_WORKSPACE, so run `cd \"$LEON_WORKSPACE\" && pytest -q` to work on the "
        "project. There is no stdin: interactive programs fail, so pass flags such as -y. "
        "Commands are killed after `timeout` seconds (default 120); long output keeps its "
        "beginning and end. Use read_file, grep, glob and list_dir rather than cat, grep or "
        "find to look at workspace files, and write_file/edit_file to change them (those "
        "changes can be rolled back; changes made by commands cannot). The user is asked "
        "before each command runs unless they allowed it. "
        'Example: {"command": "cd \\"$LEON_WORKSPACE\\" && git status --short"}.'
    )
    input_schema = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The bash command line to run."},
            "timeout": {"type": "number", "minimum": 1,
                        "description": "Seconds before the command is killed (default 120)."},
        },
        "required": ["command"],
    }
    read_only = False
    needs_permission = True

    async def preview(self, args: dict[str, Any], ctx: ToolContext) -> tuple[str, str, str]:
        command = self._command(args)
        session = session_of(ctx, self.name)
        first = command.strip().splitlines()[0] if command.strip() else command
        short = first if len(first) <= 80 else first[:79] + "…"
        title = f"Run `{short}`" + (" (several lines)" if "\n" in command.strip() else "")
        detail = f"{command}\n\n(in {session.command_cwd()})"
        # Rules are matched against the command exactly as bash will get it (str.strip
        # would also drop characters bash treats as part of a word, such as \x0b).
        return title, detail, command

    @staticmethod
    def _command(args: dict[str, Any]) -> str:
        command = _str_arg(args, "command")
        if not command.strip():
            raise ToolError("'command' is empty")
        if "\x00" in command:
            raise ToolError("'command' contains a NUL byte")
        return command

    def _timeout(self, args: dict[str, Any], default: float) -> float:
        value = args.get("timeout")
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ToolError(f"'timeout' must be a number of seconds, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ToolError(f"'timeout' must be a positive number of seconds, got {value!r}")
        return min(float(value), default * 10)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        command = self._command(args)
        session = session_of(ctx, self.name)
        settings = session.settings
        timeout = self._timeout(args, settings["tools.bash_timeout"])
        sandbox = await session.acquire_sandbox()
        cwd = session.command_cwd()
        env = command_env({"LEON_WORKSPACE": str(ctx.workspace), "LEON_SANDBOX": sandbox.path,
                           "LEON_THREAD": ctx.thread_id, "PWD": str(cwd)},
                          passed=settings["tools.bash_env_pass"])
        try:
            outcome = await run_shell(command, cwd=cwd, env=env, timeout=timeout,
                                      cap=settings["tools.bash_output_cap"])
        except OSError as exc:
            raise ToolError(f"could not start bash: {exc}") from exc
        text, binary = render_output(outcome.output)
        notes = []
        if binary:
            notes.append("[the output contained binary data; bytes that are not UTF-8 text "
                          "are shown as \ufffd]")
        if outcome.total_bytes > len(outcome.output):
            notes.append(f"[output capped: {outcome.total_bytes} bytes in all, the middle was "
                         f"left out (tools.bash_output_cap = {settings['tools.bash_output_cap']})]")
        if outcome.timed_out:
            notes.append(f"[timed out after {timeout:g} s: the command and its process group "
                         "were killed; run it in the background or with a larger timeout]")
            status = "killed (timeout)"
        else:
            status = f"exit code {outcome.exit_code}"
        body = text.rstrip("\n")
        trailer = "\n".join(notes + [f"[{status} · {outcome.duration:.2f} s]"])
        content = f"{body}\n{trailer}" if body else f"(no output)\n{trailer}"
        duration_ms = outcome.duration * 1000
        command_id = await session.record_command(command, outcome.exit_code, duration_ms,
                                                  outcome.total_bytes)
        meta = {"exit_code": outcome.exit_code, "timed_out": outcome.timed_out,
                "duration_ms": round(duration_ms, 1), "bytes_out": outcome.total_bytes,
                "binary": binary, "cwd": str(cwd), "command_id": command_id}
        return ToolResult(content, is_error=outcome.timed_out, meta=meta)


def bash_tools() -> list[Any]:
    return [BashTool()]
