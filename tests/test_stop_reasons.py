"""Stop reasons are honoured: a reply cut off by the output limit never runs the tool call
it was writing, and cut-off, declined and paused replies are marked where they show.

The reproduction: a ``write_file`` whose input JSON was cut off by ``max_tokens`` arrives
as ``{"path": "big.py"}`` (the SDK parses what came); nothing told the user, and the exit
status was 0. These drive the real SDK (and the real ``leon``) against the local server,
which streams the tool input cut mid-JSON as the real API does.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakeapi import FakeAnthropic, Reply, cut_tool_use, text
from toolrig import RecordingAsker, make_agent, result_text, results_of

from leon.agent import events as ev
from leon.agent import stops
from leon.store.export import export_markdown

MODEL = "claude-sonnet-4-6"
BIG = {"path": "big.py", "content": "def f():\n    return 1\n" * 400}
ORIGINAL = "print('the user wrote this')\n"


def tree_hash(root: Path) -> str:
    """Names and bytes of every file under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def ws(tmp_path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "big.py").write_text(ORIGINAL)  # what a cut-off write would have emptied
    return root


async def agent_with(stores, leon_paths, ws, api, asker=None):
    agent = await make_agent(stores, leon_paths, ws, fake_api=api,
                             asker=asker or RecordingAsker())
    seen: list[ev.AgentEvent] = []
    agent.subscribe(seen.append)
    return agent, seen


# ----------------------------------------------------------- cut-off tool calls


async def test_a_tool_call_cut_off_by_max_tokens_is_never_run(stores, leon_paths, ws):
    asker = RecordingAsker()
    before = tree_hash(ws)
    with FakeAnthropic() as api:
        # '{"path": "big.py", "content": "def f():\\n' -- cut inside the content string
        api.script(cut_tool_use("write_file", BIG, keep=45, text_before="Writing it now."),
                   text("I will write it in parts."))
        agent, seen = await agent_with(stores, leon_paths, ws, api, asker)
        result = await agent.send("write big.py")
        requests = api.message_requests()
    assert tree_hash(ws) == before and (ws / "big.py").read_text() == ORIGINAL
    assert asker.requests == []  # not even offered for permission
    # The model was told, in the result of that very call, and went on.
    assert len(requests) == 2
    (result_block,) = results_of(requests[1])
    assert result_block["is_error"] is True
    assert "cut off at the output limit (8,192 tokens)" in result_text(result_block)
    assert "write_file the first part" in result_text(result_block)
    assert result.stop_reason == "end_turn" and result.text == "I will write it in parts."
    # The user was told, and it is on record.
    (stopped,) = [e for e in seen if isinstance(e, ev.ReplyStopped)]
    assert stopped.stop_reason == "max_tokens" and stopped.not_run == ["write_file"]
    assert "cut off at the output limit (max_tokens = 8,192)" in stopped.message
    finished = [e for e in seen if isinstance(e, ev.ToolCallFinished)]
    assert [(f.name, f.is_error, f.meta) for f in finished] == [
        ("write_file", True, {"not_run": "max_tokens"})]
    events = [e for e in await stores.leon.events(agent.thread.id) if e.kind == "stopped"]
    assert [e.data["stop_reason"] for e in events] == ["max_tokens"]
    cut = next(m for m in agent.branch if m.role == "assistant")
    assert cut.stop_reason == "max_tokens" and cut.stop_mark == "cut off at the output limit"
    assert (await stores.leon.get_message(cut.id)).stop_reason == "max_tokens"


async def test_no_call_of_a_cut_off_reply_runs_not_even_the_complete_ones(
        stores, leon_paths, ws):
    before = tree_hash(ws)
    reply = Reply([{"type": "tool_use", "id": None, "name": "write_file",
                    "input": {"path": "small.txt", "content": "complete"}},
                   {"type": "tool_use", "id": None, "name": "write_file", "input": BIG,
                    "_partial_json": '{"path": "big.py", "cont'}],
                  stop_reason="max_tokens")
    with FakeAnthropic() as api:
        api.script(reply, text("ok"))
        agent, seen = await agent_with(stores, leon_paths, ws, api)
        await agent.send("write two files")
        first, second = results_of(api.message_requests()[1])
    assert tree_hash(ws) == before and not (ws / "small.txt").exists()
    assert "make the call again" in result_text(first)
    assert "cut off at the output limit" in result_text(second)
    assert first["is_error"] and second["is_error"]


async def test_a_model_that_keeps_hitting_the_limit_is_stopped(stores, leon_paths, ws):
    with FakeAnthropic() as api:
        api.script(*[cut_tool_use("write_file", BIG, keep=30) for _ in range(3)], text("fine"))
        agent, seen = await agent_with(stores, leon_paths, ws, api)
        result = await agent.send("write big.py")
        asked = len(api.message_requests())
        # Every call has its result, so the next turn's request is valid.
        assert (await agent.send("smaller steps then")).text == "fine"
    assert asked == stops.MAX_CUT_ROUNDS == 3
    assert result.stop_reason == "max_tokens"
    notices = [e.message for e in seen if isinstance(e, ev.ReplyStopped)]
    assert len(notices) == 3 and "stopped after 3 cut-off replies in a row" in notices[-1]
    assert (ws / "big.py").read_text() == ORIGINAL


# ------------------------------------------------------------- marked replies


@pytest.mark.parametrize(("stop", "mark", "says"), [
    ("max_tokens", "cut off at the output limit", "raise it (`leon config set max_tokens N`)"),
    ("refusal", "declined", "Claude declined to answer"),
    ("model_context_window_exceeded", "cut off: the context window is full", "compact"),
    ("pause_turn", "paused by the API", "send a message to let Claude go on"),
])
async def test_a_reply_that_ends_short_is_marked(stores, leon_paths, ws, stop, mark, says):
    with FakeAnthropic() as api:
        api.script(text("Here is the first half of", stop_reason=stop))
        agent, seen = await agent_with(stores, leon_paths, ws, api)
        result = await agent.send("tell me everything")
    assert result.stop_reason == stop
    reply = agent.branch[-1]
    assert reply.role == "assistant" and reply.stop_reason == stop and reply.stop_mark == mark
    (stopped,) = [e for e in seen if isinstance(e, ev.ReplyStopped)]
    assert says in stopped.message and stopped.not_run == []
    stored = [e for e in seen if isinstance(e, ev.MessageStored) and e.role == "assistant"]
    assert stored[-1].stop_reason == stop
    shown = export_markdown("t", await stores.leon.branch(agent.thread.id))
    assert f"## Claude ({MODEL}) *({mark})*\n\nHere is the first half of" in shown


async def test_an_ordinary_end_is_not_marked(stores, leon_paths, ws):
    with FakeAnthropic() as api:
        api.script(text("All of it.", stop_reason="end_turn"),
                   text("Stopped at the sequence.", stop_reason="stop_sequence"))
        agent, seen = await agent_with(stores, leon_paths, ws, api)
        await agent.send("one")
        await agent.send("two")
    assert [m.stop_reason for m in agent.branch if m.role == "assistant"] == [None, None]
    assert not [e for e in seen if isinstance(e, ev.ReplyStopped)]


async def test_a_declined_reply_runs_no_tool_it_asked_for(stores, leon_paths, ws):
    before = tree_hash(ws)
    with FakeAnthropic() as api:
        api.script(Reply([{"type": "text", "text": "No."},
                          {"type": "tool_use", "id": None, "name": "write_file",
                           "input": {"path": "big.py", "content": ""}}],
                         stop_reason="refusal"), text("after"))
        agent, seen = await agent_with(stores, leon_paths, ws, api)
        result = await agent.send("empty big.py")
        await agent.send("and now?")  # the next request is valid: the call has a result
        (block,) = results_of(api.message_requests()[1])[:1]
    assert tree_hash(ws) == before and result.stop_reason == "refusal"
    assert "stop reason 'refusal'" in result_text(block) and block["is_error"]


async def test_a_hostile_stop_reason_or_tool_name_reaches_no_terminal(stores, leon_paths, ws):
    # A proxy sends a stop reason with an escape sequence, and a cut call whose name
    # would set the terminal's title: neither is stored or shown as it came.
    evil_name = "\x1b]0;pwned\x07write_file"
    with FakeAnthropic() as api:
        api.script(text("hi", stop_reason="\x1b[2Jend"),
                   cut_tool_use(evil_name, BIG, keep=20), text("done"))
        agent, seen = await agent_with(stores, leon_paths, ws, api)
        first = await agent.send("one")
        await agent.send("two")
    assert first.stop_reason == "unknown" and agent.branch[1].stop_reason is None
    (stopped,) = [e for e in seen if isinstance(e, ev.ReplyStopped)]
    printed = stopped.message + " ".join(e.name for e in seen
                                         if isinstance(e, ev.ToolCallStarted))
    assert "\x1b" not in printed and "\x07" not in printed
    assert stopped.not_run == ["]0;pwnedwrite_file"]


# ------------------------------------------------------------ the real `leon run`


@pytest.fixture
def env(leon_paths) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    e.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache))
    return e


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_leon_run_never_runs_a_cut_off_call_and_says_so(env, ws):
    before = tree_hash(ws)
    with FakeAnthropic() as api:
        api.script(cut_tool_use("write_file", BIG, keep=45, text_before="Writing it."),
                   text("Done, in parts."))
        api_env = {**env, "ANTHROPIC_API_KEY": api.api_key, "ANTHROPIC_BASE_URL": api.base_url}
        out = run(api_env, "run", "--yes", "--workspace", str(ws), "-m", MODEL,
                  "--thread", "t", "write big.py")
    assert tree_hash(ws) == before
    assert out.returncode == 0, out.stderr  # the model recovered: the turn succeeded
    assert "Done, in parts." in out.stdout
    assert "leon: the reply was cut off at the output limit (max_tokens = 8,192) while it " \
           "wrote a tool call: write_file not run" in out.stderr
    assert "not run: the reply ended short" in out.stderr
    shown = run(env, "threads", "show", "t").stdout
    assert f"## Claude ({MODEL}) *(cut off at the output limit)*" in shown


@pytest.mark.parametrize(("stop", "mark"), [("refusal", "declined"),
                                            ("max_tokens", "cut off at the output limit")])
def test_leon_run_exits_1_on_a_reply_that_is_no_answer(env, stop, mark):
    with FakeAnthropic() as api:
        api.script(text("Part of an answ", stop_reason=stop))
        api_env = {**env, "ANTHROPIC_API_KEY": api.api_key, "ANTHROPIC_BASE_URL": api.base_url}
        out = run(api_env, "run", "-m", MODEL, "--thread", "t", "question")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stdout.startswith("Part of an answ")
    assert out.stderr.strip().splitlines()[-1].startswith("leon: ")
    shown = run(env, "threads", "show", "t").stdout
    assert f"## Claude ({MODEL}) *({mark})*" in shown


async def test_the_mark_survives_export_and_import_and_old_exports_still_import(stores):
    from leon.store.export import export_json, import_json

    store = stores.leon
    thread = await store.create_thread("scoped")
    await store.append_message(thread.id, "user", [{"type": "text", "text": "q"}])
    draft = await store.start_draft(thread.id)
    await store.finish_draft(draft, [{"type": "text", "text": "no"}], stop_reason="refusal")
    data = await export_json(store, thread.id)
    assert [m["stop_reason"] for m in data["messages"]] == [None, "refusal"]
    copy_id = await import_json(store, data)
    assert [m.stop_mark for m in await store.branch(copy_id)] == [None, "declined"]
    for m in data["messages"]:  # an export made before the column existed
        del m["stop_reason"]
    old_id = await import_json(store, data)
    assert [m.stop_reason for m in await store.branch(old_id)] == [None, None]
