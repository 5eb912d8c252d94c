"""Where unexpected errors go: one line for the user, the details in a private log file.

A bug must never put a traceback on the user's screen, and the log must never hold the
API key: every secret-looking environment value is replaced before anything is written.
"""

from __future__ import annotations

import datetime as dt
import os
import traceback
from pathlib import Path

from leon.paths import default_paths, make_private_dir

LOG_NAME = "leon.log"
MAX_LOG_BYTES = 1_000_000


def _secrets() -> list[str]:
    names = ("KEY", "TOKEN", "SECRET", "PASSWORD")
    return [v for k, v in os.environ.items()
            if any(n in k.upper() for n in names) and len(v) >= 8]


def redact(text: str) -> str:
    """``text`` with every secret from the environment replaced."""
    for value in _secrets():
        text = text.replace(value, "[redacted]")
    return text


def log_path() -> Path:
    return default_paths().home / LOG_NAME


def record(exc: BaseException) -> Path | None:
    """Append the exception with its traceback to ``LEON_HOME/leon.log`` (0600, rotated
    at 1 MB). Returns the path, or None if even that failed."""
    path = log_path()
    try:
        make_private_dir(path.parent)
        if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
            path.replace(path.with_suffix(".log.1"))
        details = "".join(traceback.format_exception(exc))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(f"--- {dt.datetime.now().isoformat(timespec='seconds')}\n")
            fh.write(redact(details))
        return path
    except OSError:
        return None


def one_line(exc: BaseException) -> str:
    """What the user sees for an unexpected error."""
    where = record(exc)
    detail = redact(str(exc).splitlines()[0] if str(exc) else "")
    tail = f"; details in {where}" if where else ""
    return f"internal error: {type(exc).__name__}: {detail}{tail}"
