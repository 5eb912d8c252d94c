"""What Ctrl+C (SIGINT) and SIGTERM do to a running leon, whatever it is doing.

The first signal asks the running command to stop the way a user would: ``leon run``'s
task is cancelled (the turn stores what had arrived, marked interrupted; a running
command's process group and the grep child are killed); the TUI stops the reply and
quits (:func:`current` lets it take the signal over). Once that cleanup has run, leon
leaves with ``os._exit``: it does not wait for worker threads — a thread started with
``asyncio.to_thread`` that is still busy would otherwise be joined at interpreter exit.

A watchdog thread, started before any signal can arrive (starting a thread inside a
signal handler could deadlock), makes sure leon is gone :data:`GRACE` seconds after the
signal even when the cleanup is stuck (say, on a database another process has locked):
it kills the process groups leon started, puts the terminal back and exits with the
same status; a reply that could not be stored then is sealed as interrupted the next
time its thread is used. A second signal does the same at once. As a last resort, for
the case where the watchdog cannot even run (C code holding the interpreter lock),
``faulthandler`` ends the process two seconds later with status 1.

Exit status: 128 + the signal number, i.e. 130 for SIGINT and 143 for SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

GRACE = 1.5  # seconds from the signal to the forced exit; the promise is 2 s in all
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_groups: set[int] = set()
_groups_lock = threading.Lock()
_current: Interrupts | None = None


def exit_status(signum: int) -> int:
    """The documented exit status after ``signum``: 130 (SIGINT), 143 (SIGTERM)."""
    return 128 + signum


def track_group(pgid: int) -> None:
    """Remember a process group leon started (a ``bash`` command, the grep child), so a
    forced exit can kill it."""
    with _groups_lock:
        _groups.add(pgid)


def untrack_group(pgid: int) -> None:
    with _groups_lock:
        _groups.discard(pgid)


def kill_groups() -> None:
    """SIGKILL every tracked process group (they are gone or going anyway)."""
    with _groups_lock:
        groups = list(_groups)
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)


def current() -> Interrupts | None:
    """The handler of this process's signals while a command runs (None in tests that
    build the app or the agent themselves)."""
    return _current


class Interrupts:
    """Runs the CLI's main coroutine with SIGINT and SIGTERM handled as described in the
    module docstring. One per process."""

    def __init__(self, grace: float = GRACE):
        self.grace = grace
        self.signum: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._handler: Callable[[int], bool] | None = None
        self._restorers: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}
        self._fired = threading.Event()
        self._now = threading.Event()
        self._devnull: Any = None

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else exit_status(self.signum)

    async def run(self, main: Awaitable[int]) -> int:
        """Await ``main`` (the command) and return its exit status. After a signal this
        does not return: it exits the process once ``main`` has finished its cleanup."""
        global _current
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        _current = self
        self._install()
        try:
            code = await main
        except asyncio.CancelledError:
            if self.signum is None:
                raise
            code = self.exit_code or 1
        except Exception as exc:
            if self.signum is None:
                raise
            from leon.crashlog import record  # a failure while stopping: log it, stop anyway

            record(exc)
            code = self.exit_code or 1
        if self.signum is not None:
            self.leave(exit_status(self.signum))
        self._uninstall()
        _current = None
        return code

    # -- what the TUI uses --------------------------------------------------------------
    def take_over(self, handler: Callable[[int], bool] | None,
                  restore: Callable[[], None] | None = None) -> None:
        """Call ``handler(signum)`` on the event loop first; the main task is cancelled
        only when it returns False (None gives the signals back). ``restore`` runs before
        a forced exit (the terminal)."""
        self._handler = handler
        if restore is not None:
            self._restorers.append(restore)
        elif handler is None:
            self._restorers.clear()

    def trigger(self, signum: int) -> None:
        """Behave as if ``signum`` had arrived (the TUI's Ctrl+C key)."""
        self._on_signal(signum, None)

    # -- the machinery ----------------------------------------------------------------
    def _install(self) -> None:
        self._devnull = open(os.devnull, "w")  # noqa: SIM115 - kept open for faulthandler
        threading.Thread(target=self._watch, name="leon-interrupt-watchdog",
                         daemon=True).start()
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may handle signals (a test calling main())
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def _uninstall(self) -> None:
        for sig, previous in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)
        self._previous.clear()
        self._fired.set()  # no signal came: the watchdog sees signum None and ends
        if self._devnull is not None:
            self._devnull.close()
            self._devnull = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Runs in the main thread between two bytecodes: set flags, wake the loop, return.
        if self.signum is not None:
            self._now.set()
            return
        self.signum = signum
        if self._devnull is not None:
            faulthandler.dump_traceback_later(self.grace + 2.0, exit=True, file=self._devnull)
        self._fired.set()
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._dispatch, signum)

    def _dispatch(self, signum: int) -> None:
        if self._handler is not None and self._handler(signum):
            return
        if self._task is not None:
            self._task.cancel()

    def _watch(self) -> None:
        self._fired.wait()
        if self.signum is None:
            return
        self._now.wait(self.grace)
        self._force()

    def _force(self) -> None:
        """Exit now: kill the child groups, put the terminal back, say so in one line."""
        kill_groups()
        for restore in self._restorers:
            with contextlib.suppress(Exception):
                restore()
        with contextlib.suppress(OSError):
            os.write(2, f"\nleon: {self._what()}; exiting without waiting for the rest (an "
                        "unfinished reply is marked interrupted when its thread is next "
                        "used)\n".encode())
        os._exit(self.exit_code or 1)

    def leave(self, code: int) -> None:
        """The cleanup is done: say so, kill what is left, exit without joining threads."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            os.write(2, f"\nleon: {self._what()} (what had arrived is kept)\n".encode())
        kill_groups()
        os._exit(code)

    def _what(self) -> str:
        return "interrupted" if self.signum == signal.SIGINT else "stopped by SIGTERM"
