"""The ``task`` tool: hand a self-contained piece of work to a sub-agent.

The sub-agent runs on its own ``subagent`` thread (linked to this one) with its own
context and a subset of the tools, to the end of its turn; its final answer is this
tool's result. See :mod:`leon.agent.subagent`.
"""

from __future__ import annotations

from typing import Any

from .base import ToolContext, ToolError, ToolResult
from .readonly import _str_arg
from .write import session_of


class TaskTool:
    name = "task"
    read_only = False
    needs_permission = False  # the sub-agent's own tool calls ask, one by one
    input_schema = {
        "type": "object",
        "properties": {
            "description": {"type": "string",
                            "description": "A short title for the task (3-7 words), shown to "
                            "the user."},
            "prompt": {"type": "string",
                       "description": "Complete instructions for the sub-agent: what to do, "
                       "where to look, and what to report back. It sees nothing of this "
                       "conversation but this text."},
            "agent": {"type": "string",
                      "description": "Agent profile to use (default 'default')."},
        },
        "required": ["description", "prompt"],
    }

    def __init__(self, profiles: dict[str, str] | None = None):
        """``profiles``: name → one-line description, listed for the model."""
        listed = ""
        if profiles:
            listed = " Profiles: " + "; ".join(
                f"'{name}'" + (f": {about}" if about else "") for name, about in profiles.items())
        self.description = (
            "Delegate a self-contained task to a sub-agent and wait for its answer. The "
            "sub-agent starts with an empty context (only your `prompt`), has the same kinds of "
            "tools (its file changes and commands are asked for like yours), works until it is "
            "done and returns its final answer as this tool's result. Use it for side work "
            "whose details would clutter this conversation: a survey of many files, a focused "
            "investigation, a contained change. Write the prompt as a complete brief and say "
            "what the answer should contain." + listed +
            ' Example: {"description": "Find uses of parse_date", "prompt": "List every call '
            'of parse_date in src/ with file:line and the format string passed."}.'
        )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        session = session_of(ctx, self.name)
        description = _str_arg(args, "description").strip()
        prompt = _str_arg(args, "prompt")
        if not prompt.strip():
            raise ToolError("'prompt' is empty; give the sub-agent complete instructions")
        profile = _str_arg(args, "agent", "default").strip() or "default"
        description = description or " ".join(prompt.split()[:6])
        return await session.run_subagent(description, prompt, profile)
