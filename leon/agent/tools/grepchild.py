"""The ``grep`` tool's matching, done in a child process that is killed at a time limit.

Why a process: a regular expression comes from the model, and Python's ``re`` holds the
interpreter lock for as long as one match runs — ``(a+)+$`` over forty ``a`` runs for
hours, and while it does neither the event loop nor a signal handler gets to run. RE2
(linear time) handles most patterns, but even RE2 can take minutes on a 5 MB line with a
large pattern, and a thread cannot be stopped. A process can: it is killed at the
deadline, when the tool call is cancelled, and (through :mod:`leon.interrupts`) when leon
exits. It starts in ~30 ms (``python -I linematch.py``: standard library and ``re2``
only).

The parent walks the tree and reads the files (confinement, filters and size checks stay
in :mod:`leon.agent.tools.readonly`), in a worker thread that streams them into the
child's stdin; the child (:func:`leon.agent.tools.linematch.serve`) matches and renders.
The worker thread does only bounded steps (stat, read up to 5 MB, write to a pipe) and
checks a stop flag between files; once the child is dead its writes fail at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from leon import interrupts

from .base import ToolError
from .linematch import FRAME_HEAD

CHILD_SCRIPT = Path(__file__).with_name("linematch.py")
CHILD_ENV_KEYS = ("PATH", "LD_LIBRARY_PATH", "SYSTEMROOT")  # all the child may need
PIPE_BYTES = 1 << 20
T = TypeVar("T")


class GrepTimedOut(Exception):
    """The search did not finish within its time limit; the child was killed."""

    def __init__(self, limit: float, files_sent: int, why_python: str | None):
        super().__init__(f"grep took longer than {limit:g} s")
        self.limit = limit
        self.files_sent = files_sent
        self.why_python = why_python


@dataclass
class GrepOutcome:
    """What the child found (see ``GrepRun.result``)."""

    out: list[str]
    matches: int
    shown: int
    files: int
    engines: list[str] = field(default_factory=list)
    why_python: list[str] = field(default_factory=list)


class _Stopped(Exception):
    pass


class FileSender:
    """Handed to the producer (in the worker thread): :meth:`send` one file's bytes to
    the child; raises once the search was stopped (deadline, cancellation)."""

    def __init__(self, pipe: BinaryIO, stop: threading.Event):
        self._pipe = pipe
        self._stop = stop
        self.files = 0

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def send(self, name: str, data: bytes) -> None:
        if self._stop.is_set():
            raise _Stopped
        raw = name.encode("utf-8", "surrogateescape")
        self._pipe.write(FRAME_HEAD.pack(len(raw), len(data)))
        self._pipe.write(raw)
        self._pipe.write(data)
        self.files += 1


def _feed(pipe: BinaryIO, header: dict[str, Any], produce: Callable[[FileSender], T],
          stop: threading.Event, sender_box: list[FileSender]) -> T | None:
    """The worker thread: the header, then every file the producer sends; always closes
    the pipe (EOF tells the child that was all)."""
    sender = FileSender(pipe, stop)
    sender_box.append(sender)
    try:
        pipe.write(json.dumps(header).encode() + b"\n")
        pipe.flush()
        return produce(sender)
    except (BrokenPipeError, _Stopped):
        return None  # the child is gone (killed, or it refused the pattern)
    finally:
        with contextlib.suppress(OSError):
            pipe.close()


async def run_grep(header: dict[str, Any], produce: Callable[[FileSender], T],
                   time_limit: float) -> tuple[GrepOutcome, T | None]:
    """Search the files ``produce`` sends with the pattern in ``header`` (see
    ``linematch.serve``), all within ``time_limit`` seconds. Returns the child's result
    and what ``produce`` returned. Raises :class:`ToolError` for a pattern Python refuses,
    :class:`GrepTimedOut` at the deadline; the child is killed on every way out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + time_limit
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(AttributeError, OSError):  # Linux: fewer stalls on a full pipe
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    env = {k: os.environ[k] for k in CHILD_ENV_KEYS if k in os.environ}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", str(CHILD_SCRIPT), stdin=read_fd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, env=env)
    except OSError as exc:
        os.close(write_fd)
        raise ToolError(f"could not start the search process: {exc}") from exc
    finally:
        os.close(read_fd)
    interrupts.track_group(proc.pid)
    stop = threading.Event()
    sender_box: list[FileSender] = []
    pipe = os.fdopen(write_fd, "wb", buffering=PIPE_BYTES)  # many small files per write
    feeder = asyncio.ensure_future(
        asyncio.to_thread(_feed, pipe, header, produce, stop, sender_box))
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.ensure_future(proc.stderr.read())
    ready: dict[str, Any] = {}
    try:
        async with asyncio.timeout_at(deadline):
            ready = _json_line(await proc.stdout.readline())
            if ready.get("ok") is False:
                raise ToolError(f"invalid regular expression {header['pattern']!r}: "
                                f"{ready.get('error')}")
            if not ready:
                raise ToolError(_crashed(await errors))
            result = _json_line(await proc.stdout.read())
            await proc.wait()
            produced = await feeder
        if not result:
            raise ToolError(_crashed(await errors))
    except TimeoutError:
        sent = sender_box[0].files if sender_box else 0
        raise GrepTimedOut(time_limit, sent, ready.get("why")) from None
    finally:
        stop.set()
        _kill(proc.pid)
        interrupts.untrack_group(proc.pid)
        errors.cancel()
        if not feeder.done():
            # The thread ends by itself at its next write (the child is dead) or file.
            feeder.add_done_callback(_ignore_result)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), 1.0)
    outcome = GrepOutcome(result["out"], result["matches"], result["shown"], result["files"],
                          result.get("engines", []), result.get("why_python", []))
    return outcome, produced


def _json_line(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _crashed(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    last = lines[-1][:300] if lines else "no message"
    return f"the search process failed ({last})"


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it
