"""Skills: markdown files in ``LEON_HOME/skills/`` loaded into the agent's system context,
stored once by hash.

A skill file starts with front matter::

    ---
    name: release
    description: How to cut a release of this project
    ---
    1. Bump the version in pyproject.toml ...

``name`` defaults to the file's stem; ``description`` should say when the skill applies.
The files (sorted by name) make one *snapshot*: its text goes at the end of the system
prompt (a stable suffix, so the prompt cache keeps hitting), and it is stored as one blob
of kind ``skills``; each thread records the hash of the snapshot it used
(``threads.skills_hash``). A thousand threads with the same skills share one copy, and
the system-prompt blob is stored without the skills, so it is not a second copy either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

MAX_SKILL_CHARS = 20_000     # one skill's body beyond this is cut, with a note
MAX_TOTAL_CHARS = 60_000     # past this, further skills are listed by name only
HEADER = ("\n\n# Skills\n\nThe user installed these skills. When a task matches a skill's "
          "description, follow it.")


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    body: str
    path: str


@dataclass(frozen=True)
class SkillSet:
    skills: tuple[Skill, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @cached_property
    def text(self) -> str:
        """The section appended to the system prompt ('' without skills)."""
        if not self.skills:
            return ""
        parts, used = [HEADER], 0
        for s in self.skills:
            body = s.body.strip()
            if len(body) > MAX_SKILL_CHARS:
                body = body[:MAX_SKILL_CHARS] + f"\n[... cut: the whole skill is {s.path}]"
            entry = f"\n\n## {s.name}\n{s.description}".rstrip()
            if used + len(body) > MAX_TOTAL_CHARS:
                entry += f"\n(not loaded to save context: read {s.path} when it applies)"
            elif body:
                entry += "\n\n" + body
                used += len(body)
            parts.append(entry)
        return "".join(parts)

    @property
    def snapshot(self) -> str:
        """What is stored as the blob: the section itself (deterministic)."""
        return self.text

    @cached_property
    def hash(self) -> str | None:
        text = self.snapshot
        return hashlib.sha256(text.encode()).hexdigest() if text else None


def parse_skill(path: Path, text: str) -> tuple[Skill, str | None]:
    """A skill and a problem to report (None when fine)."""
    meta: dict[str, str] = {}
    body = text
    problem = None
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            problem = f"{path.name}: front matter has no closing '---'"
        else:
            for line in lines[1:end]:
                key, sep, value = line.partition(":")
                if sep and key.strip():
                    meta[key.strip().lower()] = value.strip().strip("\"'")
            body = "\n".join(lines[end + 1:])
    if not meta.get("description") and problem is None:
        problem = f"{path.name}: no description in the front matter"
    name = meta.get("name") or path.stem
    return Skill(name, meta.get("description", ""), body, str(path)), problem


_cache: dict[str, tuple[Any, SkillSet]] = {}


def load_skills(directory: Path) -> SkillSet:
    """Every ``*.md`` in ``directory``, sorted by file name. Cached until a file changes."""
    if not directory.is_dir():
        return SkillSet()
    files = sorted(p for p in directory.glob("*.md") if p.is_file())
    key = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    hit = _cache.get(str(directory))
    if hit is not None and hit[0] == key:
        return hit[1]
    skills, problems = [], []
    for p in files:
        try:
            skill, problem = parse_skill(p, p.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            problems.append(f"{p.name}: {exc}")
            continue
        skills.append(skill)
        if problem:
            problems.append(problem)
    result = SkillSet(tuple(skills), tuple(problems))
    _cache[str(directory)] = (key, result)
    return result


async def record_snapshot(store: Any, thread: Any, skills: SkillSet | None) -> Any:
    """Store the snapshot (once, by hash) and point the thread at it; returns the thread
    (updated when the hash changed)."""
    digest = skills.hash if skills is not None else None
    if digest == thread.skills_hash:
        return thread
    if digest is not None:
        await store.put_blob("skills", skills.snapshot)  # type: ignore[union-attr]
    return await store.update_thread(thread.id, skills_hash=digest)
