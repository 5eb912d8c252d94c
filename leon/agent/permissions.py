"""Asking before a tool changes something. The turn loop asks an :data:`Asker`; the TUI
answers with a prompt, `leon run` with its --yes flag and the config allowlist."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


class Decision(enum.Enum):
    ALLOW_ONCE = "allow_once"
    ALLOW_ALWAYS = "allow_always"   # for this thread, this tool (and command prefix for bash)
    DENY = "deny"


@dataclass(frozen=True)
class PermissionRequest:
    """One tool call waiting for the user's word."""

    thread_id: str
    tool: str
    input: dict[str, Any]
    title: str      # one line: "Run `pytest -q`", "Edit src/app.py"
    detail: str     # the exact command, or the unified diff / new file content


Asker = Callable[[PermissionRequest], Awaitable[Decision]]
