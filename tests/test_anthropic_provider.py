"""AnthropicProvider through the real ``anthropic`` SDK against the fake HTTP server.

Nothing in the SDK is patched: requests go over a real socket to tests/fakeapi.py,
so header handling, SSE parsing and exception mapping are the SDK's own.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakeapi import (
    FakeAnthropic,
    disconnect,
    drop_after,
    error,
    sse_error_after,
    text,
    tool_use,
)

from leon.llm.anthropic_provider import AnthropicProvider, build_request_params
from leon.llm.base import (
    Completed,
    Limits,
    ModelRequest,
    ModelResponse,
    Provider,
    ProviderError,
    Retrying,
    StreamEvent,
    StreamInterrupted,
    TextDelta,
    ToolUseStarted,
)

MODEL = "claude-sonnet-4-6"
TOOLS = [
    {
        "name": "read_file",
        "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
    },
    {
        "name": "search",
        "description": "Search notes",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
]


def make_request(text_: str = "Hello?", **kw: Any) -> ModelRequest:
    kw.setdefault("system", "You are Leon, a helpful assistant.")
    kw.setdefault("messages", [{"role": "user", "content": text_}])
    return ModelRequest(model=MODEL, **kw)


@pytest.fixture
async def provider(fake_api: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(
        fake_api.api_key, fake_api.base_url, base_delay=0.01, max_delay=0.05,
        limits=Limits(first_event=5.0, idle=5.0),
    )
    yield p
    await p.aclose()


async def collect(provider: AnthropicProvider, request: ModelRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


def completed(events: list[StreamEvent]) -> ModelResponse:
    assert isinstance(events[-1], Completed), events
    return events[-1].response


async def collect_until_error(
    provider: AnthropicProvider, request: ModelRequest
) -> tuple[list[StreamEvent], ProviderError]:
    events: list[StreamEvent] = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(request):
            events.append(event)
    return events, info.value


def cache_breakpoints(body: dict[str, Any]) -> int:
    n = sum("cache_control" in t for t in body.get("tools", []))
    n += sum("cache_control" in b for b in body.get("system", []))
    for m in body["messages"]:
        if isinstance(m["content"], list):
            n += sum("cache_control" in b for b in m["content"])
    return n


# ------------------------------------------------------------------- basics


def test_provider_protocol() -> None:
    p: Provider = AnthropicProvider("sk-x", "http://127.0.0.1:9")
    assert p.name == "anthropic" and p.is_demo is False


async def test_text_streaming(fake_api: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake_api.script(text("Hello there, world!", chunks=["Hello", " there,", " world!"]))
    events = await collect(provider, make_request())
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Hello", " there,", " world!"]
    assert not any(isinstance(e, Retrying) for e in events)
    response = completed(events)
    assert response.content == [{"type": "text", "text": "Hello there, world!"}]
    assert response.stop_reason == "end_turn"
    assert response.model == MODEL
    assert response.retries == 0
    assert response.latency_ms > 0
    # First call writes the cache (system + last user block are breakpoints).
    body = fake_api.message_requests()[-1]["body"]
    assert body["stream"] is True
    usage = response.usage
    assert usage.cache_read_input_tokens == 0
    assert usage.cache_creation_input_tokens > 0
    assert usage.prompt_tokens == fake_api.count_tokens(body)
    assert usage.output_tokens > 0

    # Same prompt again: now it is read from the cache.
    again = completed(await collect(provider, make_request()))
    assert again.usage.cache_read_input_tokens == usage.cache_creation_input_tokens
    assert again.usage.cache_creation_input_tokens == 0


async def test_tool_use_with_streamed_input(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    args = {"path": "notes/2024-06-01.md", "encoding": "utf-8", "lines": [1, 20]}
    fake_api.script(tool_use("read_file", args, text_before="Let me check.", id="toolu_01Q"))
    request = make_request("What did I write on June 1st?", tools=TOOLS)
    events = await collect(provider, request)
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolUseStarted") > kinds.index("TextDelta")
    started = [e for e in events if isinstance(e, ToolUseStarted)]
    assert started == [ToolUseStarted(id="toolu_01Q", name="read_file")]
    response = completed(events)
    assert response.stop_reason == "tool_use"
    assert response.content == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01Q", "name": "read_file", "input": args},
    ]

    # The content is valid history: answer the tool and the fake accepts the next call.
    follow_up = make_request(
        tools=TOOLS,
        messages=[
            *request.messages,
            {"role": "assistant", "content": response.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01Q", "content": "ok"}],
            },
        ],
    )
    final = completed(await collect(provider, follow_up))
    assert final.content[0]["type"] == "text"


async def test_cache_control_placement(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    tools = copy.deepcopy(TOOLS)
    tools[0]["cache_control"] = {"type": "ephemeral"}  # caller's own marker: stripped
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": [{"type": "text", "text": "reply"}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "c"},
            ],
        },
    ]
    request = make_request(messages=messages, tools=tools)
    before = copy.deepcopy(request)
    completed(await collect(provider, request))
    assert request == before, "the caller's request must not be mutated"

    body = fake_api.message_requests()[-1]["body"]
    assert body["system"] == [
        {
            "type": "text",
            "text": "You are Leon, a helpful assistant.",
            "cache_control": {"type": "ephemeral"},
        }
    ]
    assert "cache_control" not in body["tools"][0]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][0]["content"] == "first"  # earlier turns untouched
    last_user = body["messages"][-1]["content"]
    assert [("cache_control" in b) for b in last_user] == [False, False, True]
    assert cache_breakpoints(body) == 3 <= 4


async def test_string_user_content_gets_a_breakpoint_and_empty_parts_are_omitted(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    completed(await collect(provider, make_request("plain", system="")))
    body = fake_api.message_requests()[-1]["body"]
    assert "system" not in body and "tools" not in body
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "plain", "cache_control": {"type": "ephemeral"}}],
        }
    ]


def test_build_params_never_exceeds_four_breakpoints() -> None:
    cc = {"type": "ephemeral"}
    request = make_request(
        tools=[dict(t, cache_control=cc) for t in TOOLS],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": str(i), "cache_control": cc} for i in range(5)
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "x", "cache_control": cc}]},
            {"role": "user", "content": [{"type": "text", "text": "y", "cache_control": cc}]},
        ],
    )
    before = copy.deepcopy(request)
    params = build_request_params(request)
    assert cache_breakpoints(params) == 3
    assert request == before


# ------------------------------------------------------------------ retries


async def test_429_with_retry_after_then_success(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_api.script(error(429, retry_after="0"), text("finally"))
    events = await collect(provider, make_request())
    retrying = [e for e in events if isinstance(e, Retrying)]
    assert retrying == [
        Retrying(
            attempt=1,
            delay=0.0,
            reason="rate limited (429): Number of request tokens has exceeded your "
            "per-minute rate limit",
            status=429,
            left=retrying[0].left,
        )
    ]
    assert 0 < (retrying[0].left or 0) <= 300  # the default total deadline, 5 minutes
    assert events[0] == retrying[0]  # reported before anything else
    response = completed(events)
    assert response.retries == 1
    assert response.content == [{"type": "text", "text": "finally"}]
    assert len(fake_api.message_requests()) == 2


async def test_retry_after_ms_wins_and_waits_are_capped(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_api.script(
        error(429, retry_after="3", retry_after_ms="20"),
        error(429, retry_after="120"),  # capped at max_delay=0.05
        text("ok"),
    )
    events = await collect(provider, make_request())
    delays = [e.delay for e in events if isinstance(e, Retrying)]
    assert delays == [pytest.approx(0.02), pytest.approx(0.05)]
    assert completed(events).retries == 2


async def test_529_overloaded_is_retried(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_api.script(error(529), error(503), text("back"))
    events = await collect(provider, make_request())
    retrying = [e for e in events if isinstance(e, Retrying)]
    assert [(e.attempt, e.status) for e in retrying] == [(1, 529), (2, 503)]
    assert retrying[0].reason == "API overloaded (529): Overloaded"
    # No retry-after: exponential backoff from base_delay (0.01, 0.02), jittered down <= 25%.
    assert 0.0075 <= retrying[0].delay <= 0.01
    assert 0.015 <= retrying[1].delay <= 0.02
    assert completed(events).retries == 2


async def test_retries_exhausted(fake_api: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake_api.script(*[error(429, retry_after="0") for _ in range(5)])
    events, err = await collect_until_error(provider, make_request())
    assert [e.attempt for e in events if isinstance(e, Retrying)] == [1, 2, 3, 4]
    assert err.message == (
        "rate limited (429) after 4 retries: "
        "Number of request tokens has exceeded your per-minute rate limit"
    )
    assert err.status == 429 and err.retryable
    assert "\n" not in str(err)
    assert len(fake_api.message_requests()) == 5


async def test_400_fails_at_once_with_the_api_message(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    bad = make_request(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}])
    events, err = await collect_until_error(provider, bad)
    assert events == []
    assert str(err) == "invalid request (400): messages: text content blocks must be non-empty"
    assert err.status == 400 and not err.retryable
    assert len(fake_api.message_requests()) == 1


async def test_401_fails_at_once(fake_api: FakeAnthropic) -> None:
    p = AnthropicProvider("sk-wrong-key", fake_api.base_url, base_delay=0.01)
    try:
        events, err = await collect_until_error(p, make_request())
    finally:
        await p.aclose()
    assert events == []
    assert str(err) == (
        f"the server at {fake_api.base_url} refused the credentials (401 invalid x-api-key): "
        "sent x-api-key and Authorization: Bearer, both from ANTHROPIC_API_KEY")
    assert err.status == 401
    assert len(fake_api.message_requests()) == 1


@pytest.mark.parametrize("status", [403, 404, 413])
async def test_other_client_errors_fail_at_once(
    fake_api: FakeAnthropic, provider: AnthropicProvider, status: int
) -> None:
    fake_api.script(error(status, message=f"nope {status}"))
    events, err = await collect_until_error(provider, make_request())
    assert events == []
    if status == 403:  # a refusal names the headers that were sent
        assert err.message.endswith(f"denied access (403 nope 403): sent {provider.auth_sent}")
    else:
        assert err.status == status and f"({status}): nope {status}" in err.message
    assert err.status == status
    assert len(fake_api.message_requests()) == 1


async def test_dropped_before_output_is_retried(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    # message_start + content_block_start arrive, but no text: nothing reached the
    # caller, so it is safe to try again.
    fake_api.script(drop_after(2, text("lost")), disconnect(), text("recovered"))
    events = await collect(provider, make_request())
    retrying = [e for e in events if isinstance(e, Retrying)]
    assert len(retrying) == 2
    assert all(e.status is None and e.reason.startswith("connection error") for e in retrying)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["recovered"]
    assert completed(events).retries == 2


async def test_sse_error_before_output_is_retried(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_api.script(sse_error_after(1, text("x")), text("second try"))
    events = await collect(provider, make_request())
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert retry.status == 529 and "Overloaded" in retry.reason
    assert completed(events).content == [{"type": "text", "text": "second try"}]


async def test_timeout_before_output_is_retried(fake_api: FakeAnthropic) -> None:
    # Generous margins: the first answer comes 4 s late against a 1 s timeout, so the test
    # holds on a loaded 2-core CI machine too.
    p = AnthropicProvider(fake_api.api_key, fake_api.base_url, base_delay=0.01,
                          limits=Limits(first_event=1.0))
    fake_api.script(disconnect(delay=4.0), text("in time"))
    try:
        events = await collect(p, make_request())
    finally:
        await p.aclose()
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert retry.reason == "no answer from the API for 1 s" and retry.status is None
    assert completed(events).retries == 1


async def test_connection_refused_gives_up_with_one_line() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = AnthropicProvider("sk-x", f"http://127.0.0.1:{port}", max_retries=1, base_delay=0.01)
    try:
        events, err = await collect_until_error(p, make_request())
    finally:
        await p.aclose()
    assert len([e for e in events if isinstance(e, Retrying)]) == 1
    assert err.message.startswith("connection error after 1 retries")
    assert err.status is None and "\n" not in err.message


# ------------------------------------------------------------ interruptions


async def test_dropped_mid_stream_raises_with_partial_text(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    # events: message_start, content_block_start, ping, delta "alpha ", delta "beta " | drop
    fake_api.script(drop_after(5, text("alpha beta gamma delta")), text("never asked for"))
    events: list[StreamEvent] = []
    with pytest.raises(StreamInterrupted) as info:
        async for event in provider.stream(make_request()):
            events.append(event)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["alpha ", "beta "]
    assert info.value.partial == [{"type": "text", "text": "alpha beta "}]
    assert info.value.message.startswith("stream interrupted: connection error")
    assert len(fake_api.message_requests()) == 1  # no retry once output began
    assert fake_api.pending == 1


async def test_dropped_during_tool_input_keeps_text_only(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    # text block (start, ping, 1 delta, stop) then tool_use start + 2 json deltas | drop
    spec = tool_use("search", {"q": "groceries list"}, text_before="Searching", id="toolu_01Z")
    fake_api.script(drop_after(8, spec))
    events: list[StreamEvent] = []
    with pytest.raises(StreamInterrupted) as info:
        async for event in provider.stream(make_request(tools=TOOLS)):
            events.append(event)
    assert ToolUseStarted(id="toolu_01Z", name="search") in events
    assert info.value.partial == [{"type": "text", "text": "Searching"}]


async def test_finished_tool_use_survives_an_interruption(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    spec = tool_use("search", {"q": "x"}, id="toolu_01Y")
    # message_start, cb_start, ping, 5 json deltas ("", '{"q', '": ', '"x"', "}"),
    # cb_stop | drop before message_delta
    fake_api.script(drop_after(9, spec))
    with pytest.raises(StreamInterrupted) as info:
        await collect(provider, make_request(tools=TOOLS))
    assert info.value.partial == [
        {"type": "tool_use", "id": "toolu_01Y", "name": "search", "input": {"q": "x"}}
    ]


async def test_sse_error_mid_stream_raises_stream_interrupted(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_api.script(sse_error_after(4, text("partial answer here")))
    with pytest.raises(StreamInterrupted) as info:
        await collect(provider, make_request())
    err = info.value
    assert err.partial == [{"type": "text", "text": "partial "}]
    assert err.status == 529
    assert err.message == "stream interrupted: API overloaded (529): Overloaded"
    assert len(fake_api.message_requests()) == 1


async def test_cancellation_closes_the_stream(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_api.script(text("word " * 200, delay=0.02))
    first_text = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(make_request()):
            if isinstance(event, TextDelta):
                first_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_text.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The server notices the client hung up long before its 4 s of events are done.
    assert await asyncio.to_thread(fake_api.wait_for_disconnect, 3.0)
    assert fake_api.disconnects == 1


async def test_breaking_out_of_the_loop_closes_the_stream(
    fake_api: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_api.script(text("word " * 200, delay=0.02))
    stream = provider.stream(make_request())
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert await asyncio.to_thread(fake_api.wait_for_disconnect, 3.0)


# --------------------------------------------------------------------- secrets


async def test_api_key_never_appears_in_errors(fake_api: FakeAnthropic) -> None:
    secret = "sk-ant-api03-SECRET-do-not-leak-1234567890"
    wrong = AnthropicProvider(secret, fake_api.base_url, max_retries=1, base_delay=0.01)
    fake = FakeAnthropic(api_key=secret).start()
    right = AnthropicProvider(secret, fake.base_url, max_retries=1, base_delay=0.01)
    # Even an API message that echoes the key (it never does, but a proxy might) is
    # scrubbed from Retrying reasons and errors.
    fake.script(
        error(429, message=f"bad key {secret}", retry_after="0"),
        error(429, message=f"bad key {secret}", retry_after="0"),
        drop_after(4, text("some text here")),
    )
    errors: list[BaseException] = []
    events: list[StreamEvent] = []
    try:
        for p in (wrong, right, right):
            with pytest.raises(ProviderError) as info:
                async for event in p.stream(make_request()):
                    events.append(event)
            errors.append(info.value)
    finally:
        await wrong.aclose()
        await right.aclose()
        fake.stop()
    assert [type(e) for e in errors] == [ProviderError, ProviderError, StreamInterrupted]
    assert errors[0].status == 401 and errors[1].status == 429
    assert "[redacted]" in str(errors[1])
    assert any(isinstance(e, Retrying) for e in events)
    for err in errors:
        rendered = "".join(traceback.format_exception(err)) + repr(err) + str(err.__context__)
        assert secret not in rendered
    for e in events:
        assert secret not in repr(e)
    assert secret not in repr(right)
