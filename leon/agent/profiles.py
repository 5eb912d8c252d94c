"""Agent profiles: ``LEON_HOME/agents/*.toml``, plus the built-in ``default``.

A profile file::

    name = "reviewer"                       # default: the file name without .toml
    description = "Reviews a diff for bugs" # shown to the model in the task tool
    model = "claude-haiku-4-5"              # default: the parent's model
    system_prompt = "You review code..."     # appended to leon's system prompt
    tools = ["read_file", "grep", "glob"]   # default: all of the parent's tools

A file named like the built-in (``default.toml``) replaces it. A file that cannot be used
is skipped and named in :func:`load_profiles`'s problems (``leon doctor`` prints them).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

_KEYS = {"name", "description", "model", "system_prompt", "tools"}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    model: str = ""                       # "" = the parent's model
    system_prompt: str = ""
    tools: tuple[str, ...] | None = None  # None = all of the parent's tools
    source: str = "built-in"


DEFAULT_PROFILE = Profile(
    "default", "a general-purpose agent with the same tools as you")


def _parse(path: Path) -> Profile:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(_KEYS))})")
    for key in ("name", "description", "model", "system_prompt"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"'{key}' must be a string")
    tools = data.get("tools")
    if tools is not None and not (isinstance(tools, list)
                                  and all(isinstance(t, str) for t in tools)):
        raise ValueError("'tools' must be a list of tool names")
    name = (data.get("name") or path.stem).strip()
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"'name' must be one word, got {name!r}")
    return Profile(name=name, description=data.get("description", "").strip(),
                   model=data.get("model", "").strip(),
                   system_prompt=data.get("system_prompt", "").strip(),
                   tools=tuple(tools) if tools is not None else None, source=str(path))


def load_profiles(directory: Path | None) -> tuple[dict[str, Profile], list[str]]:
    """The profiles by name (``default`` always present) and one line per skipped file."""
    profiles = {DEFAULT_PROFILE.name: DEFAULT_PROFILE}
    problems: list[str] = []
    if directory is None or not directory.is_dir():
        return profiles, problems
    for path in sorted(directory.glob("*.toml")):
        try:
            profile = _parse(path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        if profile.name in profiles and profiles[profile.name].source != "built-in":
            problems.append(f"{path}: profile '{profile.name}' is already defined in "
                            f"{profiles[profile.name].source}")
            continue
        profiles[profile.name] = profile
    return profiles, problems
