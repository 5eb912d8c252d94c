"""Binding the demo model's intents to the tools a request actually offers.

Only offered tools are ever called, and arguments are renamed to what each tool's
``input_schema`` declares (``file_path`` instead of ``path``, ``cmd`` instead of
``command``...), so the demo works with tool sets it was not written against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leon.llm.demo_intents import Intent

# Offered tool names each intent may use, preferred first.
TOOL_ALIASES: dict[str, tuple[str, ...]] = {
    "read": ("read_file", "read", "view_file", "cat"),
    "grep": ("grep", "search", "search_files"),
    "list": ("list_dir", "ls", "list_directory", "list_files"),
    "glob": ("glob", "find_files"),
    "write": ("write_file", "write", "create_file"),
    "edit": ("edit_file", "edit", "str_replace"),
    "bash": ("bash", "shell", "run_command"),
    "task": ("task", "delegate", "subagent", "agent"),
}

_PRIMARY: dict[str, tuple[str, ...]] = {
    "read": ("path",),
    "grep": ("pattern",),
    "list": ("path",),
    "glob": ("pattern",),
    "write": ("path", "content"),
    "edit": ("path", "old_string", "new_string"),
    "bash": ("command",),
    "task": ("description", "prompt"),
}

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "path": ("path", "file_path", "filepath", "file", "filename", "dir", "directory", "target"),
    "pattern": ("pattern", "regex", "query", "glob", "expression"),
    "content": ("content", "contents", "text", "data", "body"),
    "old_string": ("old_string", "old_str", "old_text", "old", "search", "find"),
    "new_string": ("new_string", "new_str", "new_text", "new", "replacement", "replace"),
    "command": ("command", "cmd", "script", "shell_command"),
    "description": ("description", "title", "summary", "name"),
    "prompt": ("prompt", "task", "instructions", "message", "input"),
}


@dataclass
class ToolCall:
    """An intent bound to an offered tool, with arguments named as its schema wants."""

    name: str
    input: dict[str, Any]
    phrase: str
    kind: str = ""


def offered_tools(tools: list[Any]) -> dict[str, dict[str, Any]]:
    """Intent kind → the offered tool definition that serves it."""
    by_name = {t.get("name"): t for t in tools if isinstance(t, dict)}
    found = {}
    for kind, aliases in TOOL_ALIASES.items():
        for alias in aliases:
            if alias in by_name:
                found[kind] = by_name[alias]
                break
    return found


def _map_args(kind: str, args: dict[str, str], schema: Any) -> dict[str, Any]:
    """Rename canonical arguments to the schema's property names; optional ones the
    schema does not know are dropped, primary ones fall back to an unused required slot."""
    schema = schema if isinstance(schema, dict) else {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = [r for r in schema.get("required", []) if isinstance(r, str)]
    if not props:
        return dict(args)
    out: dict[str, Any] = {}
    claimed = {p for key in args for p in _SYNONYMS.get(key, (key,)) if p in props}
    for key, value in args.items():
        name = next((p for p in _SYNONYMS.get(key, (key,)) if p in props and p not in out), None)
        if name is None and key in _PRIMARY[kind]:
            name = next((r for r in required if r not in out and r not in claimed), key)
        if name is not None:
            out[name] = value
    return out


def resolve(intents: list[Intent], tools: list[Any]) -> tuple[list[ToolCall], list[Intent]]:
    """Split intents into calls of offered tools and intents no offered tool serves."""
    offered = offered_tools(tools)
    calls, unavailable = [], []
    for intent in intents:
        tool = offered.get(intent.kind)
        if tool is None:
            unavailable.append(intent)
            continue
        args = _map_args(intent.kind, intent.args, tool.get("input_schema"))
        calls.append(ToolCall(tool["name"], args, intent.phrase, intent.kind))
    return calls, unavailable
