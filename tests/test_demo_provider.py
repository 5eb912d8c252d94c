"""The offline demo model: streaming, tool calls, tool-result replies, summaries, usage."""

from __future__ import annotations

import asyncio
import re

import pytest

from leon.llm.base import Completed, ModelRequest, ModelResponse, TextDelta, ToolUseStarted
from leon.llm.demo import DemoProvider
from leon.llm.demo_summary import SECTIONS, render_messages, summarise
from leon.llm.identifiers import extract_identifiers, missing_identifiers


def tool(name: str, *required: str, optional: tuple[str, ...] = ()) -> dict:
    props = {key: {"type": "string"} for key in (*required, *optional)}
    return {
        "name": name,
        "description": f"the {name} tool",
        "input_schema": {"type": "object", "properties": props, "required": list(required)},
    }


ALL_TOOLS = [
    tool("read_file", "path"),
    tool("grep", "pattern", optional=("path",)),
    tool("list_dir", optional=("path",)),
    tool("glob", "pattern", optional=("path",)),
    tool("write_file", "path", "content"),
    tool("edit_file", "path", "old_string", "new_string"),
    tool("bash", "command"),
    tool("task", "description", "prompt"),
]


def request(messages, tools=ALL_TOOLS, system="You are leon, a helpful assistant.") -> ModelRequest:
    return ModelRequest(model="demo-model", system=system, messages=messages, tools=list(tools))


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def run(req: ModelRequest, delay: float = 0.0) -> tuple[list, ModelResponse]:
    events = [event async for event in DemoProvider(delay=delay).stream(req)]
    assert isinstance(events[-1], Completed)
    assert not any(isinstance(e, Completed) for e in events[:-1])
    return events, events[-1].response


def text_of(response: ModelResponse) -> str:
    return "".join(b["text"] for b in response.content if b["type"] == "text")


def tool_uses(response: ModelResponse) -> list[dict]:
    return [b for b in response.content if b["type"] == "tool_use"]


# --- streaming and determinism ---------------------------------------------------


def test_provider_identity():
    provider = DemoProvider()
    assert provider.name == "demo" and provider.is_demo is True


@pytest.mark.parametrize(
    "messages",
    [
        user("Hello! What can you do?"),
        user("read README.md and grep TODO"),
        user("Please summarise our conversation."),
    ],
)
async def test_deltas_concatenate_to_the_text_block(messages):
    events, response = await run(request(messages))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert "".join(deltas) == text_of(response)
    # One word per delta: never two words, never a bare fragment of whitespace mid-stream.
    assert all(len(d.split()) == 1 for d in deltas)


async def test_same_request_same_output():
    messages = user("read src/app.py then search for \"def main\" and list files")
    first_events, first = await run(request(messages))
    second_events, second = await run(request(messages))
    assert [e for e in first_events if not isinstance(e, Completed)] == [
        e for e in second_events if not isinstance(e, Completed)
    ]
    assert first.content == second.content
    assert first.stop_reason == second.stop_reason == "tool_use"
    assert first.usage == second.usage


async def test_different_prompts_get_different_replies():
    _, a = await run(request(user("How do I configure the theme?")))
    _, b = await run(request(user("Tell me about src/main.py please")))
    assert text_of(a) != text_of(b)
    assert "How do I configure the theme?" in text_of(a)
    assert "`src/main.py`" in text_of(b)


async def test_delay_streams_and_can_be_cancelled():
    req = request(user("Tell me everything you can do for me today."))
    _, full = await run(req)
    total = len(re.findall(r"\S+\s*", text_of(full)))
    seen: list[str] = []

    async def consume():
        async for event in DemoProvider(delay=0.02).stream(req):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(consume(), timeout=0.2)
    assert 0 < len(seen) < total


async def test_zero_delay_still_yields_to_the_loop():
    req = request(user("Tell me everything you can do for me today."))
    seen: list[str] = []

    async def consume():
        async for event in DemoProvider().stream(req):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    task = asyncio.create_task(consume())
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    _, full = await run(req)
    assert len(seen) < len(re.findall(r"\S+\s*", text_of(full)))


async def test_usage_is_positive_deterministic_and_tracks_size():
    _, short = await run(request(user("hi")))
    _, again = await run(request(user("hi")))
    _, long = await run(request(user("hi " + "and more words " * 200)))
    assert short.usage == again.usage
    assert short.usage.input_tokens > 0 and short.usage.output_tokens > 0
    assert short.usage.cache_read_input_tokens == short.usage.cache_creation_input_tokens == 0
    assert long.usage.input_tokens > short.usage.input_tokens + 400
    assert short.model == "demo-model"
    assert short.latency_ms >= 0


# --- tool calls ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "name", "args"),
    [
        ("read README.md", "read_file", {"path": "README.md"}),
        ("Could you open src/app.py:42 for me?", "read_file", {"path": "src/app.py"}),
        ("SHOW docs/guide.md", "read_file", {"path": "docs/guide.md"}),
        ("grep TODO", "grep", {"pattern": "TODO"}),
        ('please grep "foo bar" in src', "grep", {"pattern": "foo bar", "path": "src"}),
        ("search for parse_intents", "grep", {"pattern": "parse_intents"}),
        ("list files", "list_dir", {"path": "."}),
        ("ls leon/llm", "list_dir", {"path": "leon/llm"}),
        ("list src", "list_dir", {"path": "src"}),
        ("glob **/*.py", "glob", {"pattern": "**/*.py"}),
        ("find files *.md", "glob", {"pattern": "*.md"}),
        ("write notes.txt with hello world", "write_file",
         {"path": "notes.txt", "content": "hello world"}),
        ('create out.md containing "# Title"', "write_file",
         {"path": "out.md", "content": "# Title"}),
        ("replace foo with bar in x.py", "edit_file",
         {"path": "x.py", "old_string": "foo", "new_string": "bar"}),
        ('replace "a b" with "c d" in "my notes.txt"', "edit_file",
         {"path": "my notes.txt", "old_string": "a b", "new_string": "c d"}),
        ("run `ls -la`", "bash", {"command": "ls -la"}),
        ("run: pytest -q tests", "bash", {"command": "pytest -q tests"}),
        ("delegate auditing the test suite for flaky tests", "task",
         {"description": "auditing the test suite for",
          "prompt": "auditing the test suite for flaky tests"}),
        ("ask a sub-agent to find every TODO", "task",
         {"description": "find every TODO", "prompt": "find every TODO"}),
    ],
)
async def test_tool_phrases(prompt, name, args):
    events, response = await run(request(user(prompt)))
    uses = tool_uses(response)
    assert [(u["name"], u["input"]) for u in uses] == [(name, args)]
    assert response.stop_reason == "tool_use"
    assert text_of(response).startswith("I'll ")
    started = [e for e in events if isinstance(e, ToolUseStarted)]
    assert [(s.id, s.name) for s in started] == [(u["id"], u["name"]) for u in uses]
    assert re.fullmatch(r"toolu_demo_[0-9a-f]{8}", uses[0]["id"])


@pytest.mark.parametrize(
    "prompt",
    ["Here is my list of tasks", "show me how this works", "what should I read next?",
     "list your capabilities", "hello there"],
)
async def test_ordinary_sentences_do_not_call_tools(prompt):
    _, response = await run(request(user(prompt)))
    assert tool_uses(response) == []
    assert response.stop_reason == "end_turn"


async def test_several_requests_give_several_tool_uses():
    _, response = await run(request(user("read README.md and grep TODO, then run `make test`")))
    uses = tool_uses(response)
    assert [(u["name"], u["input"]) for u in uses] == [
        ("read_file", {"path": "README.md"}),
        ("grep", {"pattern": "TODO"}),
        ("bash", {"command": "make test"}),
    ]
    assert len({u["id"] for u in uses}) == 3
    assert text_of(response) == "I'll read `README.md`, search for `TODO` and run `make test`."


async def test_only_offered_tools_are_called():
    read_only = [tool("read_file", "path"), tool("grep", "pattern")]
    _, response = await run(request(user("read a.py and run `rm -rf build` and write b.txt with x"),
                                    tools=read_only))
    assert [u["name"] for u in tool_uses(response)] == ["read_file"]
    assert "isn't available" in text_of(response) or "aren't available" in text_of(response)

    _, none = await run(request(user("read README.md"), tools=[]))
    assert tool_uses(none) == [] and none.stop_reason == "end_turn"
    assert "read `README.md`" in text_of(none) and "isn't available" in text_of(none)


async def test_help_lists_only_offered_tools():
    _, response = await run(request(user("what now?"), tools=[tool("read_file", "path")]))
    text = text_of(response)
    assert "offline demo model" in text and "`read README.md`" in text and "summarise" in text
    assert "run `" not in text and "grep" not in text


async def test_schema_property_names_are_followed():
    tools = [
        tool("read_file", "file_path"),
        tool("edit_file", "file_path", "old_str", "new_str"),
        tool("bash", "cmd"),
    ]
    prompt = "read a.py and replace x with y in b.py, run: ls"
    _, response = await run(request(user(prompt), tools=tools))
    assert [u["input"] for u in tool_uses(response)] == [
        {"file_path": "a.py"},
        {"file_path": "b.py", "old_str": "x", "new_str": "y"},
        {"cmd": "ls"},
    ]


# --- tool results --------------------------------------------------------------------


async def test_tool_results_are_described_concretely():
    first = user("read README.md and grep TODO and run: false")
    _, call = await run(request(first))
    ids = [u["id"] for u in tool_uses(call)]
    results = [
        {"type": "tool_result", "tool_use_id": ids[0],
         "content": "# leon\n\nA terminal chat client.\nSecond line\nFourth line\n"},
        {"type": "tool_result", "tool_use_id": ids[1],
         "content": [{"type": "text",
                      "text": "a.py:3: # TODO one\nb.py:9: TODO two\nc.py:1: TODO 3"}]},
        {"type": "tool_result", "tool_use_id": ids[2], "is_error": True,
         "content": "bash: command exited with status 1"},
    ]
    messages = [*first, {"role": "assistant", "content": call.content},
                {"role": "user", "content": results}]
    _, response = await run(request(messages))
    text = text_of(response)
    assert response.stop_reason == "end_turn" and tool_uses(response) == []
    assert "**read_file** on `README.md` succeeded: 5 lines" in text
    assert "```\n# leon\nA terminal chat client.\nSecond line\n```" in text
    assert "Fourth line" not in text
    assert "**grep** for `TODO` succeeded: 3 lines, 3 matches" in text
    assert "**bash** running `false` failed: bash: command exited with status 1" in text


async def test_grep_matches_are_counted_without_context_lines():
    first = user("grep TODO")
    _, call = await run(request(first))
    output = ("a.py-2-before\na.py:3:# TODO one\n--\nb.py:9:TODO two\n"
              "[4 more matches not shown; narrow the pattern]")
    messages = [*first, {"role": "assistant", "content": call.content},
                {"role": "user", "content": [{"type": "tool_result",
                                              "tool_use_id": tool_uses(call)[0]["id"],
                                              "content": output}]}]
    _, response = await run(request(messages))
    assert "succeeded: 5 lines, 6 matches" in text_of(response)

    messages[-1]["content"][0]["content"] = "no matches for 'TODO' in ."
    _, response = await run(request(messages))
    assert "succeeded: 1 line, 0 matches" in text_of(response)


# --- summaries -------------------------------------------------------------------------


def long_conversation(turns: int = 60) -> list[dict]:
    messages: list[dict] = [{"role": "user", "content":
                             "I want to migrate the ledger service to Postgres. It is slow today."}]
    for i in range(turns):
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": (
                f"We decided to use PgBouncer for pool {i}. "
                f"The handler in src/ledger/handler_{i}.py:{100 + i} "
                f"calls LedgerStore{i}.flush_batch_{i}() with `batch_size={i * 7}`. "
                "This sentence is filler text meant to make the conversation long. "
                "More filler words keep coming so that the summary has to cut sentences.")},
            {"type": "tool_use", "id": f"toolu_01ABC{i:04d}", "name": "read_file",
             "input": {"path": f"config/ledger_{i}.toml"}},
        ]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_01ABC{i:04d}",
             "content": f"pool_size = {20 + i}\nrun_id = 9f86d081-884c-4d63-a5e1-{i:012d}"},
            {"type": "text", "text": (
                f"The migration failed with TimeoutError at step {i + 10}. "
                f"TODO: re-run job deadbeef{i:02d} next. We need to check commit a1b2c3d{i}.")},
        ]})
    return messages


async def test_summary_keeps_every_identifier_and_is_bounded():
    conversation = long_conversation()
    instruction = {"role": "user", "content": "Please summarise the conversation so far."}
    messages = [*conversation, instruction]
    _, response = await run(request(messages))
    summary = text_of(response)
    original = render_messages(conversation)
    assert len(extract_identifiers(original)) > 400
    assert missing_identifiers(original, summary) == []
    for heading in SECTIONS:
        assert f"## {heading}\n" in summary
    assert summary.index("## Goal") < summary.index("## Decisions") < summary.index("## Next step")
    assert "I want to migrate the ledger service to Postgres." in summary
    assert len(summary.split()) <= 2000
    assert len(summary.split()) < len(original.split())
    assert "Please summarise" not in summary
    assert response.stop_reason == "end_turn"


def test_summary_trims_sentences_but_never_identifiers():
    conversation = long_conversation(30)
    full = summarise(conversation)
    tight = summarise(conversation, max_words=350)
    original = render_messages(conversation)
    assert missing_identifiers(original, tight) == []
    assert len(tight.split()) < len(full.split())
    assert tight.count("\n- We decided") < full.count("\n- We decided")
    assert all(f"## {h}\n" in tight for h in SECTIONS)


async def test_instruction_sent_with_tool_results_keeps_their_identifiers():
    conversation = long_conversation(2)
    last = conversation.pop()
    last["content"].append({"type": "text", "text": "Now write a handoff summary."})
    _, response = await run(request([*conversation, last]))
    summary = text_of(response)
    assert "## Goal" in summary and "handoff" not in summary
    original = render_messages([*conversation, {"role": "user", "content": last["content"][:-1]}])
    assert "run_id" in original
    assert missing_identifiers(original, summary) == []


async def test_summary_sections_are_extractive():
    messages = [
        {"role": "user", "content": "Add retries to fetch.py. Keep it simple."},
        {"role": "assistant", "content": "I chose exponential backoff with MAX_RETRIES = 5."},
        {"role": "user",
         "content": "It raised ConnectionError in a test. We need to mock the clock."},
        {"role": "user", "content": "compact this conversation into a handoff note"},
    ]
    _, response = await run(request(messages))
    summary = text_of(response)
    goal = summary.split("## Goal\n")[1].split("\n")[0]
    assert goal == "Add retries to fetch.py."
    decisions = summary.split("## Decisions\n")[1].split("##")[0]
    assert "I chose exponential backoff with MAX_RETRIES = 5." in decisions
    errors = summary.split("## Errors and fixes\n")[1].split("##")[0]
    assert "It raised ConnectionError in a test." in errors
    assert "We need to mock the clock." in summary.split("## Open tasks\n")[1]
    assert missing_identifiers(render_messages(messages[:-1]), summary) == []


async def test_summary_from_system_prompt_and_pasted_transcript():
    transcript = ("user: Fix the crash in app/server.py:88 when PORT is unset.\n"
                  "assistant: I will use os.environ.get with default 8080 in load_config().")
    req = request(user(transcript), tools=[],
                  system="You write handoff summaries of conversations.")
    _, response = await run(req)
    summary = text_of(response)
    assert all(f"## {h}" in summary for h in SECTIONS)
    assert missing_identifiers(transcript, summary) == []

    # A chat system prompt that merely mentions compaction does not make every reply a summary.
    _, chat = await run(request(user("hello"), system="Old turns may be compacted."))
    assert "## Goal" not in text_of(chat)


async def test_names_containing_trigger_words_are_not_summary_requests():
    _, response = await run(request(user("read compact.py")))
    assert [u["input"] for u in tool_uses(response)] == [{"path": "compact.py"}]


# --- odd input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "user", "content": []}],
        [{"role": "user", "content": None}],
        [{"role": "user",
          "content": [{"type": "image", "source": {"type": "base64", "data": "AAAA"}}]}],
        [{"role": "assistant", "content": "only an assistant message"}],
        ["not a dict", 42],
        [{"role": "user", "content": [{"type": "tool_result"}]}],
        user("<|endoftext|> odd tokens"),
    ],
)
async def test_odd_input_never_raises(messages):
    events, response = await run(request(messages))
    assert text_of(response)
    assert response.stop_reason == "end_turn"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text_of(response)


# --- identifiers -----------------------------------------------------------------------


def test_extract_identifiers_tricky_strings():
    text = (
        "The fix is in src/app.py:42 and README.md, see `load_config()` too. "
        "Run 123e4567-e89b-12d3-a456-426614174000 with toolu_01ABC and commit a1b2c3d. "
        "ToolRegistry calls get_user and getUser; pi is 3.14, the answer is 42. "
        "Also ~/.config/leon/config.toml, ../up/there and .env. Globs: **/*.py and *.md. "
        "Then parse() and cfg.load() on x86 with py311, v1.2.3, utf-8 and `git status`."
    )
    assert extract_identifiers(text) == [
        "src/app.py", "README.md", "load_config()",
        "123e4567-e89b-12d3-a456-426614174000", "toolu_01ABC", "a1b2c3d",
        "ToolRegistry", "get_user", "getUser",
        "~/.config/leon/config.toml", "../up/there", ".env", "**/*.py", "*.md",
        "parse()", "cfg.load()", "x86", "py311", "v1.2.3", "utf-8", "git status",
    ]


def test_bare_numbers_quantities_and_plain_words_are_never_identifiers():
    # The summariser of the bug report dropped "11" and "13" from "note 11: ...":
    # that must not count against a summary.
    text = ("note 11: the build took 13 seconds, 3.14 on 2024-01-15 at 12:30 from "
            "127.0.0.1:8080 and localhost:8080; 100ms, 10KB, 2nd, 1.5s, 50%, $20, 1,000, "
            "`42`, `open`, `None`, deadbeef and 1234567.")
    assert extract_identifiers(text) == []


def test_a_line_suffix_is_not_part_of_the_path():
    grep = "src/app.py:42:    x = 1\nsrc/app.py:97:    y = 2\napp.py:7:3: warning"
    assert extract_identifiers(grep) == ["src/app.py", "app.py"]


def test_extract_identifiers_ignores_plain_english():
    prose = ("The quick brown fox jumps over the lazy dog. It was 7 days, e.g. a week! "
             "Mr. Smith said URLs and APIs are fine... Then we decided, i.e. we chose. "
             "This is **important** and *really* (honestly) fine.")
    assert extract_identifiers(prose) == []
    assert extract_identifiers("") == []


def test_extract_identifiers_dedupes_in_first_seen_order():
    assert extract_identifiers("b_c then a.py then b_c, a.py and 42 42") == ["b_c", "a.py"]


def test_missing_identifiers():
    original = "Edit src/app.py:42 and set MAX_TOKENS to 4096."
    assert missing_identifiers(original, "Edited `src/app.py`; MAX_TOKENS=4096") == []
    assert missing_identifiers(original, "Edited src/app.py and MAX_TOKENS") == []
    near_miss = "Edited src/app.pyc, MAX_TOKENS_2"
    assert missing_identifiers(original, near_miss) == ["src/app.py", "MAX_TOKENS"]
    assert missing_identifiers(original, "nothing") == ["src/app.py", "MAX_TOKENS"]
