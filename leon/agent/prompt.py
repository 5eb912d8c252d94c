"""leon's system prompt. Kept stable across turns so the prompt cache keeps hitting."""

from __future__ import annotations

from leon.textsafe import repair

BASE_PROMPT = """You are Claude, working inside leon, a terminal chat client. You help the user with \
their work in the workspace directory {workspace}.

- Use the tools to look at files before you answer questions about them; quote paths and line numbers.
- Tool output may be shortened to save context: a trimmed result keeps its head and tail, and a \
large output is saved to a file whose path is given. Read such a file with read_file (offset/limit) \
or search it with grep rather than asking for the whole output again.
- Be concise. Use Markdown; the terminal renders it."""


def system_prompt(workspace: str, extra: str = "") -> str:
    """The system prompt for one workspace, with the user's extra instructions appended.
    A workspace path with bytes that are not UTF-8 is named with U+FFFD for them: the
    prompt is stored and sent as text."""
    text = BASE_PROMPT.format(workspace=repair(workspace)[0])
    if extra.strip():
        text += "\n\n" + extra.strip()
    return text
