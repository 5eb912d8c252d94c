"""The tool contract: a schema the model sees and an async ``run`` that never raises
into the turn loop — failures come back as ``is_error`` results the model can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from leon.textsafe import repair


class ToolError(Exception):
    """A tool refused or failed; the message is sent to the model as an error result."""


@dataclass
class ToolResult:
    """What a tool returns. ``content`` is plain text (never bytes), and valid Unicode:
    a lone surrogate (a byte that was not UTF-8, in a file name, an error message or a
    diff of such a file) becomes U+FFFD here, once for every tool, since the database and
    the API refuse it."""

    content: str
    is_error: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.content = repair(self.content)[0]


@dataclass
class ToolContext:
    """Where a tool runs. ``extra_read_roots`` are directories read-only tools may also
    read (the thread's spill directory), besides the workspace."""

    workspace: Path
    thread_id: str = ""
    extra_read_roots: tuple[Path, ...] = ()
    # The agent's ToolSession (leon.agent.session): permissions, file history, sandbox,
    # sub-agents. Tools that change things refuse to run without one.
    session: Any = None


class Tool(Protocol):
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult: ...


class ToolRegistry:
    """The tools one agent may use, by name."""

    def __init__(self, tools: list[Tool] | None = None):
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def schemas(self) -> list[dict[str, Any]]:
        """Tool definitions in Messages API form, in a stable order (good for caching)."""
        return [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in self._tools.values()
        ]

    async def call(self, name: str, args: Any, ctx: ToolContext) -> ToolResult:
        """Run a tool; unknown tools, bad arguments and exceptions become error results."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolResult(f"unknown tool {name!r}; available tools: {known}", is_error=True)
        if not isinstance(args, dict):
            return ToolResult(f"{name}: arguments must be a JSON object", is_error=True)
        missing = [k for k in tool.input_schema.get("required", []) if k not in args]
        if missing:
            return ToolResult(f"{name}: missing required argument(s): {', '.join(missing)}", is_error=True)
        try:
            return await tool.run(args, ctx)
        except ToolError as exc:
            return ToolResult(f"{name}: {exc}", is_error=True)
        except (OSError, ValueError, TypeError) as exc:
            return ToolResult(f"{name} failed: {exc}", is_error=True)
