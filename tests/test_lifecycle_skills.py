"""Skills: front matter, the system context, one stored copy however many threads."""

from __future__ import annotations

import os

from lifecycle_helpers import make_thread

from leon.agent.tools import ToolRegistry, read_only_tools
from leon.agent.turn import Agent
from leon.config import Settings
from leon.lifecycle.archive import find_archive, restore_archive
from leon.lifecycle.deletion import delete_thread
from leon.lifecycle.skills import load_skills, parse_skill, record_snapshot
from leon.llm.demo import DemoProvider

RELEASE = """---
name: release
description: How to cut a release of this project
---
1. Bump the version in pyproject.toml.
2. Tag it v1.2.3 and push the tag.
"""


def _write(dirpath, name, text):
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / name).write_text(text)


def test_front_matter_is_parsed_and_problems_are_named(tmp_path):
    skill, problem = parse_skill(tmp_path / "release.md", RELEASE)
    assert (skill.name, skill.description) == ("release", "How to cut a release of this project")
    assert skill.body.strip().startswith("1. Bump") and problem is None
    skill, problem = parse_skill(tmp_path / "notes.md", "just text")
    assert skill.name == "notes" and "no description" in problem
    _, problem = parse_skill(tmp_path / "bad.md", "---\nname: x\n")
    assert "closing" in problem


def test_skills_load_sorted_cached_and_reloaded_on_change(tmp_path):
    d = tmp_path / "skills"
    assert load_skills(d).text == "" and load_skills(d).hash is None
    _write(d, "b.md", RELEASE)
    _write(d, "a.md", "---\nname: style\ndescription: House style\n---\nUse tabs.\n")
    first = load_skills(d)
    assert [s.name for s in first.skills] == ["style", "release"]
    assert load_skills(d) is first  # cached
    assert "## release\nHow to cut a release" in first.text and "Use tabs." in first.text
    _write(d, "a.md", "---\nname: style\ndescription: House style\n---\nUse spaces, 4.\n")
    os.utime(d / "a.md", ns=(1, 1))
    second = load_skills(d)
    assert second.hash != first.hash and "Use spaces" in second.text


async def test_the_agent_sends_skills_and_the_thread_records_its_snapshot(stores, leon_paths,
                                                                           tmp_path):
    _write(leon_paths.skills, "release.md", RELEASE)
    thread = await stores.leon.create_thread("scoped")
    agent = Agent(store=stores.leon, provider=DemoProvider(), tools=ToolRegistry(read_only_tools()),
                  settings=Settings(), thread=thread, workspace=tmp_path, model="demo")
    agent.skills = load_skills(leon_paths.skills)
    sent = []
    stream = agent.provider.stream
    agent.provider.stream = lambda request: (sent.append(request), stream(request))[1]
    await agent.load()
    await agent.send("hello")
    assert "Tag it v1.2.3" in sent[0].system and sent[0].system.endswith(agent.skills.text)
    stored = await stores.leon.get_thread(thread.id)
    assert stored.skills_hash == agent.skills.hash
    assert (await stores.leon.get_blob(stored.skills_hash)).decode() == agent.skills.text
    # the system prompt blob is stored without the skills: not a second copy
    system = (await stores.leon.get_blob(stored.system_hash)).decode()
    assert "Tag it v1.2.3" not in system and system in agent.system


async def test_a_thousand_threads_with_the_same_skills_store_one_copy(stores, leon_paths):
    for i in range(4):  # a 41 KB snapshot
        _write(leon_paths.skills, f"s{i}.md", RELEASE + "x" * 10_000)
    skills = load_skills(leon_paths.skills)
    for _ in range(1000):
        thread = await stores.leon.create_thread("subagent")
        await record_snapshot(stores.leon, thread, skills)
    rows = await stores.leon.db.fetchall("SELECT hash, size FROM blobs WHERE kind = 'skills'")
    assert len(rows) == 1 and rows[0]["size"] > 40_000
    hashes = await stores.leon.db.fetchall("SELECT DISTINCT skills_hash FROM threads")
    assert [r[0] for r in hashes] == [skills.hash]
    from leon.lifecycle.stats import collect

    data = await collect(stores, leon_paths)
    assert data["blobs"]["dedup_saved_bytes"] >= 999 * 40_000


async def test_archive_and_restore_keep_the_skills_snapshot(stores, leon_paths):
    _write(leon_paths.skills, "release.md", RELEASE)
    skills = load_skills(leon_paths.skills)
    tid = await make_thread(stores, leon_paths)
    await record_snapshot(stores.leon, await stores.leon.get_thread(tid), skills)
    await delete_thread(stores, leon_paths, await stores.leon.get_thread(tid), "ephemeral")
    await stores.leon.db.execute("DELETE FROM blobs WHERE kind = 'skills'")
    await restore_archive(stores, leon_paths, find_archive(leon_paths, tid))
    thread = await stores.leon.get_thread(tid)
    assert thread.skills_hash == skills.hash
    assert (await stores.leon.get_blob(skills.hash)).decode() == skills.text
