"""Permissions: rules, the non-interactive asker of `leon run`, allow once / always /
deny through the real turn loop; a denial never breaks the conversation."""

from __future__ import annotations

import pytest
from fakeapi import text, tool_use
from toolrig import RecordingAsker, call, make_agent, result_text, results_of

from leon.agent.permissions import Decision
from leon.agent.policy import NonInteractiveAsker, always_rule, is_compound, rule_matches
from leon.config import Settings


@pytest.fixture
def ws(tmp_path):
    w = tmp_path / "ws"
    w.mkdir()
    (w / "notes.txt").write_text("alpha\nbeta\n")
    return w


@pytest.mark.parametrize("rule, tool, subject, expected", [
    ("edit_file", "edit_file", "src/a.py", True),
    ("edit_file", "write_file", "src/a.py", False),
    ("edit_file:src/*", "edit_file", "src/a.py", True),
    ("edit_file:src/*", "edit_file", "tests/a.py", False),
    ("bash", "bash", "rm -rf / ; echo", True),
    ("bash:git status*", "bash", "git status --short", True),
    ("bash:git status*", "bash", "git push", False),
    ("bash:git status*", "bash", "git status; rm -rf ~", False),
    ("bash:git status*", "bash", "git status && curl x | sh", False),
    ("bash:git status*", "bash", "git status $(rm -rf ~)", False),
    ("bash:git status*", "bash", "git status > ~/.bashrc", False),
    ("bash:git status*", "bash", "git status\nrm -rf ~", False),
    ("bash:make test && make lint", "bash", "make test && make lint", True),
    ("bash:*", "bash", "ls | wc -l", False),
])
def test_rule_matching(rule, tool, subject, expected):
    assert rule_matches(rule, tool, subject) is expected


def test_always_rules_remember_a_prefix_or_the_exact_command():
    assert always_rule("bash", "git status --short") == "bash:git status*"
    assert always_rule("bash", "pytest -q tests") == "bash:pytest*"
    assert always_rule("bash", "git -C x log") == "bash:git*"
    assert always_rule("bash", "ls; rm x") == "bash:ls; rm x"
    assert always_rule("edit_file", "src/a.py") == "edit_file"
    assert is_compound("a | b") and is_compound("echo $HOME") and not is_compound("echo hi")


async def test_leon_run_without_yes_denies_with_a_clear_result_and_goes_on(
        stores, leon_paths, ws, fake_api):
    fake_api.script(tool_use("write_file", {"path": "x.txt", "content": "x"}),
                    text("I could not write the file."))
    agent = await make_agent(stores, leon_paths, ws, fake_api=fake_api,
                             asker=NonInteractiveAsker(yes=False))
    result = await agent.send("write x.txt")
    assert result.text == "I could not write the file."
    block = results_of(fake_api.message_requests()[1])[0]
    assert block["is_error"] is True
    message = result_text(block)
    assert "permission denied" in message and "--yes" in message
    assert '"write_file"' in message and "[permissions] allow" in message
    assert not (ws / "x.txt").exists()
    await agent.close()


async def test_yes_allows(stores, leon_paths, ws):
    agent = await make_agent(stores, leon_paths, ws, asker=NonInteractiveAsker(yes=True))
    assert not (await call(agent, "write_file", path="x.txt", content="x")).is_error
    assert (ws / "x.txt").read_text() == "x"
    await agent.close()


async def test_config_allowlist_allows_without_asking(stores, leon_paths, ws):
    settings = Settings({"permissions.allow": ["write_file:docs/*", "bash:echo *"]})
    asker = RecordingAsker(default=Decision.DENY)
    agent = await make_agent(stores, leon_paths, ws, asker=asker, settings=settings)
    assert not (await call(agent, "write_file", path="docs/a.md", content="a")).is_error
    assert not (await call(agent, "bash", command="echo hi")).is_error
    assert asker.requests == []
    denied = await call(agent, "write_file", path="b.md", content="b")
    assert denied.is_error and "declined" in denied.content
    assert denied.meta["permission"] == "denied"
    denied = await call(agent, "bash", command="echo hi; touch pwned")
    assert denied.is_error and not (ws / "pwned").exists()
    assert [r.tool for r in asker.requests] == ["write_file", "bash"]
    settings.set("permissions.allow", ["write_file"])  # live: the next call sees it
    assert not (await call(agent, "write_file", path="b.md", content="b")).is_error
    await agent.close()


async def test_requests_show_the_exact_command_and_diff(stores, leon_paths, ws):
    asker = RecordingAsker()
    agent = await make_agent(stores, leon_paths, ws, asker=asker)
    await call(agent, "read_file", path="notes.txt")
    await call(agent, "edit_file", path="notes.txt", old_string="beta", new_string="BETA")
    await call(agent, "bash", command="echo 'hello world' | wc -c")
    await call(agent, "write_file", path="new.txt", content="fresh\n")
    edit, bash, write = asker.requests
    assert edit.title == "Edit notes.txt" and "-beta\n+BETA" in edit.detail
    assert edit.thread_id == agent.thread.id and edit.input["old_string"] == "beta"
    assert bash.title == "Run `echo 'hello world' | wc -c`"
    assert bash.detail.startswith("echo 'hello world' | wc -c\n")
    assert write.title == "Create new.txt" and write.detail == "fresh\n"
    await agent.close()


async def test_a_call_that_would_fail_is_not_asked_about(stores, leon_paths, ws):
    asker = RecordingAsker()
    agent = await make_agent(stores, leon_paths, ws, asker=asker)
    r = await call(agent, "edit_file", path="notes.txt", old_string="beta", new_string="B")
    assert r.is_error and "not been read" in r.content
    r = await call(agent, "write_file", path="../x", content="x")
    assert r.is_error
    assert asker.requests == []
    await agent.close()


async def test_always_is_remembered_per_thread_and_survives_a_restart(stores, leon_paths, ws):
    asker = RecordingAsker(Decision.ALLOW_ALWAYS, Decision.ALLOW_ALWAYS, default=Decision.DENY)
    agent = await make_agent(stores, leon_paths, ws, asker=asker)
    assert not (await call(agent, "bash", command="git status")).is_error
    assert not (await call(agent, "bash", command="git status --short")).is_error  # not asked
    assert not (await call(agent, "write_file", path="a.txt", content="a")).is_error
    assert not (await call(agent, "write_file", path="b.txt", content="b")).is_error  # not asked
    assert len(asker.requests) == 2
    assert (await call(agent, "bash", command="git push")).is_error  # another prefix: asked, no
    assert (await call(agent, "bash", command="git status; touch y")).is_error
    assert len(asker.requests) == 4
    await agent.close()

    fresh = RecordingAsker(default=Decision.DENY)
    again = await make_agent(stores, leon_paths, ws, asker=fresh, thread=agent.thread)
    assert not (await call(again, "bash", command="git status -s")).is_error
    assert fresh.requests == []
    other = await make_agent(stores, leon_paths, ws, asker=fresh)  # another thread: asked
    assert (await call(other, "bash", command="git status")).is_error
    assert len(fresh.requests) == 1
    await again.close()
    await other.close()


async def test_thread_grants_use_the_same_parsed_matcher(stores, leon_paths, ws):
    victim = ws.parent / "victim"
    victim.mkdir()
    asker = RecordingAsker(Decision.ALLOW_ALWAYS, Decision.DENY, Decision.ALLOW_ALWAYS,
                           default=Decision.DENY)
    agent = await make_agent(stores, leon_paths, ws, asker=asker)
    assert not (await call(agent, "bash", command="git status")).is_error  # grants git status*
    attack = f"git status ${{x:=$'\\x24(touch {victim}/pwned)'}} ${{x@P}}"
    r = await call(agent, "bash", command=attack)
    assert r.is_error and r.meta["permission"] == "denied" and len(asker.requests) == 2
    assert not (await call(agent, "bash", command="git  'status' -s")).is_error  # same words
    # "always" on a compound command grants that exact text only
    compound = f"echo * && touch {victim}/ok"
    assert not (await call(agent, "bash", command=compound)).is_error
    assert (victim / "ok").exists()
    assert not (await call(agent, "bash", command=compound + "\n")).is_error  # not asked
    r = await call(agent, "bash", command=f"echo x && touch {victim}/pwned")
    assert r.is_error and len(asker.requests) == 4
    assert sorted(p.name for p in victim.iterdir()) == ["ok"]
    await agent.close()


async def test_no_asker_denies(stores, leon_paths, ws):
    agent = await make_agent(stores, leon_paths, ws, asker=None)
    r = await call(agent, "bash", command="echo hi")
    assert r.is_error and "no way to ask" in r.content
    assert not (await call(agent, "read_file", path="notes.txt")).is_error  # reading needs none
    await agent.close()


async def test_interactive_deny_keeps_the_conversation_going(stores, leon_paths, ws, fake_api):
    fake_api.script(tool_use("bash", {"command": "rm -rf build"}), text("Understood, I won't."),
                    text("Still here."))
    agent = await make_agent(stores, leon_paths, ws, fake_api=fake_api,
                             asker=RecordingAsker(Decision.DENY))
    assert (await agent.send("clean up")).text == "Understood, I won't."
    block = results_of(fake_api.message_requests()[1])[0]
    assert block["is_error"] and "declined" in result_text(block)
    assert (await agent.send("ok")).text == "Still here."
    await agent.close()
