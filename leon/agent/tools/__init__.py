"""Agent tools: the tool contract, workspace confinement and the read-only file tools."""

from .base import ToolContext, ToolError, ToolRegistry, ToolResult
from .paths import resolve_path
from .readonly import read_only_tools

__all__ = [
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "read_only_tools",
    "resolve_path",
]
