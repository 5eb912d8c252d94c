"""Timing marks for ``bench/startup.py``; does nothing unless ``LEON_BENCH_FIRST_PAINT`` is set.

The benchmark starts the real ``leon`` on a pseudo-terminal with
``LEON_BENCH_FIRST_PAINT=/some/file`` and measures from before the process starts to the
moments the app reports here:

* ``first_paint``: the first frame is on the terminal. Call :func:`on_first_paint` from
  the app's ``on_ready`` (Textual posts ``Ready`` right after writing its first frame).
* ``thread_painted``: the transcript of the opened thread has been drawn. Call
  ``mark(app, "thread_painted")`` from a ``call_after_refresh`` once the messages of a
  loaded thread are mounted.
* ``gauge_drawn``: the context gauge shows its first figures (it counts the whole view,
  and the counts it made are saved in the rows).

Each mark appends one JSON line ``{"event", "t" (time.time()), "rss_kb", "pid"}``; when the
event is the one named by ``LEON_BENCH_EXIT_ON`` (default ``first_paint``) the app exits.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

ENV_FILE = "LEON_BENCH_FIRST_PAINT"
ENV_EXIT = "LEON_BENCH_EXIT_ON"


def enabled() -> bool:
    return bool(os.environ.get(ENV_FILE))


def rss_kb() -> int:
    """Resident memory of this process now, in KiB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def mark(app: Any, event: str = "first_paint") -> None:
    """Record that ``event`` happened now; exit the app if it is the awaited one."""
    path = os.environ.get(ENV_FILE)
    if not path:
        return
    record = {"event": event, "t": time.time(), "rss_kb": rss_kb(), "pid": os.getpid()}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    if os.environ.get(ENV_EXIT, "first_paint") == event:
        app.exit()


def on_first_paint(app: Any) -> None:
    """Call from the app's ``on_ready``."""
    mark(app, "first_paint")


def install_on_textual() -> None:
    """Make every Textual app report ``first_paint`` on ``Ready``, for an app that does not
    call :func:`on_first_paint` itself. Textual calls ``on_ready`` of every class in the
    app's MRO, so this adds to the app's own handler instead of replacing it."""
    from textual.app import App

    def on_ready(self: Any) -> None:
        on_first_paint(self)

    App.on_ready = on_ready  # type: ignore[attr-defined]
