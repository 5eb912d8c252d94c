"""Turns that stay correct across failures and processes, through the real `leon`
against the local Messages API: a failed message is never resent behind the user's
back, the cache guard remembers between `leon run`s, threads are named the way users
name them, and each reply says which model wrote it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from fakeapi import error, text

MODEL = "claude-sonnet-4-6"


def run(env, *args, input=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(leon_paths, tmp_path, fake_api):
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    e.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache),
             ANTHROPIC_API_KEY=fake_api.api_key, ANTHROPIC_BASE_URL=fake_api.base_url)
    return e


def rate_limited_for_good():
    """A 429 on the first attempt and on each of the provider's four retries."""
    return [error(429, retry_after="0") for _ in range(5)]


def user_texts(body):
    """The text of every user text block a request carries, in order."""
    return [b["text"] for m in body["messages"] if m["role"] == "user"
            for b in m["content"] if b.get("type") == "text"]


def db_rows(home, sql, params=()):
    with sqlite3.connect(home / "leon.db") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


def test_a_failed_prompt_is_not_merged_into_the_next_run(env, fake_api, leon_paths):
    fake_api.script(*rate_limited_for_good())
    out = run(env, "run", "-m", MODEL, "--thread", "work", "summarise the logs")
    assert out.returncode == 1
    assert "not sent" in out.stderr and "Traceback" not in out.stderr

    fake_api.script(text("Here is the weather."))
    out = run(env, "run", "-m", MODEL, "--thread", "work", "what is the weather")
    assert out.returncode == 0, out.stderr
    body = fake_api.message_requests()[-1]["body"]
    assert user_texts(body) == ["what is the weather"]  # the failed prompt stays out

    shown = run(env, "threads", "show", "work")
    assert "summarise the logs" in shown.stdout and "not sent" in shown.stdout
    assert "Here is the weather." in shown.stdout
    # Both prompts are stored; only the failed one is marked.
    rows = db_rows(leon_paths.home, "SELECT content, unsent FROM messages WHERE role = 'user'"
                   " ORDER BY id")
    assert [(json.loads(r["content"])[0]["text"], r["unsent"]) for r in rows] == [
        ("summarise the logs", 1), ("what is the weather", 0)]


def test_running_the_same_prompt_again_sends_the_stored_message(env, fake_api, leon_paths):
    fake_api.script(*rate_limited_for_good())
    assert run(env, "run", "-m", MODEL, "--thread", "w", "deploy the docs").returncode == 1
    fake_api.script(text("Deployed."))
    out = run(env, "run", "-m", MODEL, "--thread", "w", "deploy the docs")
    assert out.returncode == 0, out.stderr
    assert user_texts(fake_api.message_requests()[-1]["body"]) == ["deploy the docs"]
    rows = db_rows(leon_paths.home, "SELECT unsent FROM messages WHERE role = 'user'")
    assert [r["unsent"] for r in rows] == [0]  # stored once, and sent now
    assert "not sent" not in run(env, "threads", "show", "w").stdout


def test_compaction_never_summarises_an_unsent_message(env, fake_api, leon_paths):
    for i in range(3):
        fake_api.script(text(f"answer {i}"))
        assert run(env, "run", "-m", MODEL, "--thread", "c", f"question {i}").returncode == 0
    fake_api.script(*rate_limited_for_good())
    assert run(env, "run", "-m", MODEL, "--thread", "c", "SECRET-UNSENT-9").returncode == 1
    fake_api.script(text("## Goal\nanswer questions 0 to 2"))
    out = run(env, "compact", "c")
    bodies = [r["body"] for r in fake_api.message_requests()]
    summary_requests = [b for b in bodies if not b.get("tools")]
    assert summary_requests, out.stdout + out.stderr
    assert all("SECRET-UNSENT-9" not in json.dumps(b) for b in summary_requests)


def test_the_cache_guard_acts_on_the_next_run(env, fake_api, leon_paths):
    # The first call writes the whole prompt to the cache (system prompt and tools: a
    # few thousand tokens), far over this threshold.
    leon_paths.home.mkdir(parents=True, exist_ok=True)
    (leon_paths.home / "config.toml").write_text(
        "[lifecycle]\ncache_creation_threshold = 1000\n")
    fake_api.script(text("first answer " + "x" * 400))
    first = run(env, "run", "-m", MODEL, "--thread", "g", "first question")
    assert first.returncode == 0 and "cache guard" not in first.stderr
    state = db_rows(leon_paths.home, "SELECT guard_cache_creation FROM threads WHERE name = 'g'")
    assert state[0]["guard_cache_creation"] > 1000

    fake_api.script(text("## Open threads\nfirst question answered"), text("second answer"))
    second = run(env, "run", "-m", MODEL, "--thread", "g", "second question")
    assert second.returncode == 0, second.stderr
    assert "cache guard" in second.stderr and "prompt-cache tokens" in second.stderr
    last = fake_api.message_requests()[-1]["body"]
    # A fresh segment: the old exchange is summarised, not resent.
    assert "first answer" not in json.dumps(last["messages"])
    assert user_texts(last)[-1] == "second question"


def test_rate_limit_strikes_add_up_across_runs(env, fake_api, leon_paths):
    leon_paths.home.mkdir(parents=True, exist_ok=True)
    (leon_paths.home / "config.toml").write_text("[lifecycle]\nrate_limit_strikes = 2\n")
    for prompt in ("one", "two"):
        fake_api.script(*rate_limited_for_good())
        out = run(env, "run", "-m", MODEL, "--thread", "r", prompt)
        assert out.returncode == 1 and "cache guard" not in out.stderr
    fake_api.script(text("three answered"))
    out = run(env, "run", "-m", MODEL, "--thread", "r", "three")
    assert out.returncode == 0, out.stderr
    assert "cache guard" in out.stderr and "rate-limited" in out.stderr


def test_an_empty_thread_argument_is_refused(env, fake_api, leon_paths):
    assert run(env, "run", "-m", MODEL, "--thread", "only", "hello").returncode == 0
    for args in (["threads", "rm", "", "--yes"], ["threads", "show", " "],
                 ["run", "--thread", "", "hi"], ["rollback", "", "1"]):
        out = run(env, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert "empty" in out.stderr
    assert "only" in run(env, "threads", "ls").stdout  # nothing was removed


def test_a_short_thread_argument_never_lands_in_an_unrelated_thread(env, fake_api, leon_paths):
    assert run(env, "run", "-m", MODEL, "--thread", "alpha", "hello").returncode == 0
    tid = db_rows(leon_paths.home, "SELECT id FROM threads WHERE name = 'alpha'")[0]["id"]
    out = run(env, "run", "-m", MODEL, "--thread", tid[0], "second")
    assert out.returncode == 0, out.stderr
    names = {r["name"] for r in db_rows(leon_paths.home, "SELECT name FROM threads")}
    assert names == {"alpha", tid[0]}  # a new thread of that name, not a turn in alpha
    # An id prefix long enough to be meant, and the exact title, do find it.
    assert "hello" in run(env, "threads", "show", tid[:6]).stdout
    run(env, "threads", "rename", "alpha", "General 2026-12-04")
    assert "hello" in run(env, "threads", "show", "General 2026-12-04").stdout


def test_continue_works_for_run(env, fake_api, leon_paths):
    assert run(env, "run", "-m", MODEL, "--thread", "proj", "remember 42").returncode == 0
    for args in (["-c", "run", "-m", MODEL, "what number?"],
                 ["run", "-c", "-m", MODEL, "and again?"]):
        out = run(env, *args)
        assert out.returncode == 0, out.stderr
        assert user_texts(fake_api.message_requests()[-1]["body"])[0] == "remember 42"
    rows = db_rows(leon_paths.home, "SELECT count(*) AS n FROM threads")
    assert rows[0]["n"] == 1


def test_each_reply_names_the_model_that_wrote_it(env, fake_api, leon_paths):
    assert run(env, "run", "-m", "claude-haiku-4-5", "--thread", "m", "one").returncode == 0
    assert run(env, "run", "-m", MODEL, "--thread", "m", "two").returncode == 0
    shown = run(env, "threads", "show", "m").stdout
    assert shown.index("Claude (claude-haiku-4-5)") < shown.index(f"Claude ({MODEL})")


def test_unsent_marks_and_models_survive_export_and_import(env, fake_api, leon_paths, tmp_path):
    fake_api.script(*rate_limited_for_good())
    assert run(env, "run", "-m", MODEL, "--thread", "x", "lost prompt").returncode == 1
    fake_api.script(text("kept answer"))
    assert run(env, "run", "-m", MODEL, "--thread", "x", "kept prompt").returncode == 0
    dump = tmp_path / "x.json"
    assert run(env, "threads", "export", "x", "-f", "json", "-o", str(dump)).returncode == 0
    out = run(env, "threads", "import", str(dump))
    assert out.returncode == 0, out.stderr
    new_id = out.stdout.split()[-1]
    shown = run(env, "threads", "show", new_id).stdout
    assert "lost prompt" in shown and "not sent" in shown
    assert f"## Claude ({MODEL})" in shown
    # ... and a request on the imported thread still leaves the unsent prompt out.
    fake_api.script(text("again"))
    assert run(env, "run", "-m", MODEL, "--thread", new_id, "next").returncode == 0
    assert user_texts(fake_api.message_requests()[-1]["body"]) == ["kept prompt", "next"]
