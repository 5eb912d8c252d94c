"""What the turn loop does when the API ends a reply short of an answer, in words: the
notice for the user, and the error a tool call gets instead of being run.

A reply cut off by the output limit (stop reason ``max_tokens``) while it wrote a tool
call holds an incomplete input: the SDK parses what arrived, so ``write_file`` would get
``{"path": "big.py"}`` without its content. Such a call is never run; the model is told
why, and to split the work, and the user is told too.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from leon.store.models import STOP_MARKS

# Stop reasons after which the reply is stored marked and the user is told.
MARKED = frozenset(STOP_MARKS)
# Cut off while writing: the last block (a tool call's input too) may be incomplete.
CUT_OFF = frozenset({"max_tokens", "model_context_window_exceeded"})
# Cut-off tool calls in a row after which the turn stops instead of letting the model
# try again: each try costs a whole reply at the output limit.
MAX_CUT_ROUNDS = 3


def call_names(calls: list[dict[str, Any]]) -> list[str]:
    """The tool names of ``calls``, fit to print (a name comes from the model: control
    characters could drive the terminal)."""
    return ["".join(c for c in str(call.get("name", "?"))[:64]
                    if not unicodedata.category(c).startswith("C")) or "?"
            for call in calls]


def not_run_result(stop_reason: str, call: dict[str, Any], *, last: bool,
                   max_tokens: int) -> str:
    """The error the model gets for a tool call of a reply that ended with
    ``stop_reason`` (``last``: the call the reply ended in, the one that was cut)."""
    if stop_reason == "max_tokens" and last:
        return (f"Not run: your output was cut off at the output limit ({max_tokens:,} "
                "tokens) while you were writing this tool call, so its input is "
                "incomplete. Split the work into smaller steps, each well under the "
                "limit: for a large file, write_file the first part, then add the rest "
                "in parts with edit_file.")
    if stop_reason == "max_tokens":
        return ("Not run: the reply that made this call was cut off at the output limit "
                "before it ended; make the call again if it is still needed.")
    if stop_reason == "model_context_window_exceeded":
        return ("Not run: the reply was cut off because the context window is full; the "
                "input of this call may be incomplete.")
    return f"Not run: the reply ended with stop reason '{stop_reason}', not 'tool_use'."


def user_notice(stop_reason: str, not_run: list[str], *, max_tokens: int,
                giving_up: bool = False) -> str:
    """One line for the user about a reply that ended with ``stop_reason``."""
    calls = ", ".join(not_run)
    if stop_reason == "max_tokens":
        text = f"the reply was cut off at the output limit (max_tokens = {max_tokens:,})"
        if not not_run:
            return text + ("; raise it (`leon config set max_tokens N`) or ask for a "
                           "shorter answer")
        text += f" while it wrote a tool call: {calls} not run"
        if giving_up:
            return (text + f"; stopped after {MAX_CUT_ROUNDS} cut-off replies in a row: "
                    "raise max_tokens or ask for smaller steps")
        return text + "; Claude was told to split the work into smaller steps"
    if stop_reason == "model_context_window_exceeded":
        text = "the reply was cut off: the context window is full"
        if not_run:
            text += f"; {calls} not run"
        return text + "; compact the thread (/compact or `leon compact`) and ask again"
    if stop_reason == "refusal":
        text = "Claude declined to answer (stop reason: refusal)"
        return text + (f"; {calls} not run" if not_run else "")
    if stop_reason == "pause_turn":
        text = "the API paused this turn (pause_turn); send a message to let Claude go on"
        return text + (f"; {calls} not run" if not_run else "")
    return (f"the reply ended with stop reason '{stop_reason}' but asked for tools: "
            f"{calls} not run")
