"""The fake Anthropic server itself: auth, validation, SSE shape, usage arithmetic.

These talk raw HTTP (stdlib ``http.client``) so they check the wire format, not what
an SDK makes of it.
"""

from __future__ import annotations

import copy
import http.client
import json
import math
import time
from typing import Any
from urllib.parse import urlparse

import pytest
from fakeapi import (
    FakeAnthropic,
    canonical_json,
    drop_after,
    error,
    sse_error_after,
    text,
    tool_use,
)

MODEL = "claude-sonnet-4-6"


def _conn(api: FakeAnthropic) -> http.client.HTTPConnection:
    url = urlparse(api.base_url)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=5)


def post(
    api: FakeAnthropic,
    body: Any,
    *,
    path: str = "/v1/messages",
    key: str | None = "default",
    auth: str = "x-api-key",
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """POST JSON; returns (status, lower-cased headers, raw body)."""
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    if key == "default":
        key = api.api_key
    if key is not None:
        if auth == "bearer":
            headers["authorization"] = f"Bearer {key}"
        else:
            headers["x-api-key"] = key
    own = conn is None
    conn = conn or _conn(api)
    try:
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        if own:
            conn.close()


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs from an SSE body."""
    events = []
    for chunk in raw.decode().split("\n\n"):
        if not chunk.strip():
            continue
        fields = dict(line.split(": ", 1) for line in chunk.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def body(messages: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": messages if messages is not None else [{"role": "user", "content": "hi"}],
    }
    b.update(extra)
    return b


def assert_api_error(status: int, raw: bytes, want_status: int, want_type: str, message: str):
    assert status == want_status, raw
    payload = json.loads(raw)
    assert payload["type"] == "error"
    assert payload["error"]["type"] == want_type
    assert message in payload["error"]["message"], payload["error"]["message"]


# ------------------------------------------------------------------------ auth


def test_missing_key_is_401(fake_api: FakeAnthropic) -> None:
    status, _, raw = post(fake_api, body(), key=None)
    assert_api_error(status, raw, 401, "authentication_error", "invalid x-api-key")
    assert json.loads(raw)["error"] == {
        "type": "authentication_error",
        "message": "invalid x-api-key",
    }


@pytest.mark.parametrize("auth", ["x-api-key", "bearer"])
def test_wrong_key_is_401_right_key_is_200(fake_api: FakeAnthropic, auth: str) -> None:
    status, _, raw = post(fake_api, body(), key="sk-wrong", auth=auth)
    assert_api_error(status, raw, 401, "authentication_error", "invalid x-api-key")
    status, _, raw = post(fake_api, body(), auth=auth)
    assert status == 200, raw


def test_requests_are_recorded(fake_api: FakeAnthropic) -> None:
    post(fake_api, body(), auth="bearer")
    (req,) = fake_api.requests
    assert req["path"] == "/v1/messages"
    assert req["headers"]["authorization"] == f"Bearer {fake_api.api_key}"
    assert req["body"]["messages"] == [{"role": "user", "content": "hi"}]


def test_unknown_path_is_404(fake_api: FakeAnthropic) -> None:
    status, _, raw = post(fake_api, body(), path="/v1/complete-me")
    assert_api_error(status, raw, 404, "not_found_error", "Not Found")


# ------------------------------------------------------------------ validation

_TOOL = {"name": "read_file", "description": "Read", "input_schema": {"type": "object"}}
_USE = {"type": "tool_use", "id": "toolu_01A", "name": "read_file", "input": {"path": "x"}}
_RESULT = {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "data"}

INVALID = {
    "missing model": (
        {k: v for k, v in body().items() if k != "model"},
        "model: Field required",
    ),
    "missing max_tokens": (
        {k: v for k, v in body().items() if k != "max_tokens"},
        "max_tokens: Field required",
    ),
    "missing messages": (
        {k: v for k, v in body().items() if k != "messages"},
        "messages: Field required",
    ),
    "empty messages": (body([]), "messages: at least one message is required"),
    "first message not user": (
        body([{"role": "assistant", "content": "hello"}]),
        'messages: first message must use the "user" role',
    ),
    "two user messages in a row": (
        body([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]),
        'roles must alternate between "user" and "assistant", but found multiple "user" roles',
    ),
    "empty text block": (
        body([{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        "messages: text content blocks must be non-empty",
    ),
    "tool_use never answered": (
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [_USE]},
                {"role": "user", "content": "well?"},
            ],
            tools=[_TOOL],
        ),
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately "
        "after: toolu_01A",
    ),
    "tool_result not at the start": (
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [_USE]},
                {"role": "user", "content": [{"type": "text", "text": "here"}, _RESULT]},
            ],
            tools=[_TOOL],
        ),
        "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_01A",
    ),
    "tool_use as the last message": (
        body(
            [{"role": "user", "content": "go"}, {"role": "assistant", "content": [_USE]}],
            tools=[_TOOL],
        ),
        "messages.1: `tool_use` ids were found without `tool_result` blocks",
    ),
    "tool_result for an unknown id": (
        body(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [_USE]},
                {"role": "user", "content": [_RESULT, dict(_RESULT, tool_use_id="toolu_01B")]},
            ],
            tools=[_TOOL],
        ),
        "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_01B",
    ),
    "tool_result without any tool_use": (
        body([{"role": "user", "content": [_RESULT]}]),
        "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks",
    ),
    "five cache breakpoints": (
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": f"part {i}",
                            "cache_control": {"type": "ephemeral"},
                        }
                        for i in range(4)
                    ],
                }
            ],
            system=[{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        ),
        "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    ),
    "tool without name": (
        body(tools=[{"description": "x", "input_schema": {"type": "object"}}]),
        "tools.0.name: Field required",
    ),
    "tool without input_schema": (
        body(tools=[_TOOL, {"name": "other", "description": "x"}]),
        "tools.1.input_schema: Field required",
    ),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_invalid_requests_are_rejected(fake_api: FakeAnthropic, case: str) -> None:
    request, message = INVALID[case]
    status, _, raw = post(fake_api, request)
    assert_api_error(status, raw, 400, "invalid_request_error", message)


def test_valid_tool_exchange_is_accepted(fake_api: FakeAnthropic) -> None:
    request = body(
        [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "text", "text": "sure"}, _USE]},
            {"role": "user", "content": [_RESULT, {"type": "text", "text": "and?"}]},
        ],
        tools=[_TOOL],
    )
    status, _, raw = post(fake_api, request)
    assert status == 200, raw
    assert json.loads(raw)["content"] == [{"type": "text", "text": "ok: and?"}]


def test_four_breakpoints_are_allowed(fake_api: FakeAnthropic) -> None:
    cc = {"type": "ephemeral"}
    request = body(
        [{"role": "user", "content": [{"type": "text", "text": "q", "cache_control": cc}]}],
        system=[{"type": "text", "text": "s", "cache_control": cc}],
        tools=[dict(_TOOL, cache_control=cc), dict(_TOOL, name="t2", cache_control=cc)],
    )
    status, _, raw = post(fake_api, request)
    assert status == 200, raw


def test_invalid_request_does_not_consume_the_script(fake_api: FakeAnthropic) -> None:
    fake_api.script(text("scripted"))
    status, _, _ = post(fake_api, body([]))
    assert status == 400
    assert fake_api.pending == 1
    status, _, raw = post(fake_api, body())
    assert json.loads(raw)["content"][0]["text"] == "scripted"
    assert fake_api.pending == 0


# ------------------------------------------------------------------ responses


def test_non_streaming_default_reply(fake_api: FakeAnthropic) -> None:
    long = "tell me about " + "x" * 100
    status, headers, raw = post(fake_api, body([{"role": "user", "content": long}]))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["request-id"].startswith("req_")
    msg = json.loads(raw)
    assert msg["type"] == "message" and msg["role"] == "assistant"
    assert msg["id"].startswith("msg_")
    assert msg["model"] == MODEL
    assert msg["content"] == [{"type": "text", "text": "ok: " + long[:40]}]
    assert msg["stop_reason"] == "end_turn"
    assert set(msg["usage"]) == {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    }


def test_sse_text_stream_shape(fake_api: FakeAnthropic) -> None:
    fake_api.script(text("Hello there world", chunks=["Hello", " there", " world"]))
    status, headers, raw = post(fake_api, body(stream=True))
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    events = parse_sse(raw)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for name, data in events:
        assert data["type"] == name
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["model"] == MODEL and start["id"].startswith("msg_")
    assert {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"} <= set(
        start["usage"]
    )
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    assert [d["text"] for d in deltas] == ["Hello", " there", " world"]
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] == math.ceil(len(b"Hello there world") / 3.6)


def test_sse_tool_use_streams_input_json_in_pieces(fake_api: FakeAnthropic) -> None:
    args = {"path": "notes/today.md", "lines": [1, 2, 3], "note": "héllo"}
    fake_api.script(tool_use("read_file", args, text_before="Let me look.", id="toolu_01X"))
    _, _, raw = post(fake_api, body(stream=True, tools=[_TOOL]))
    events = parse_sse(raw)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert starts == [
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_01X", "name": "read_file", "input": {}},
    ]
    pieces = [
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    ]
    assert len([p for p in pieces if p]) >= 3
    assert json.loads("".join(pieces)) == args
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_tool_use_gets_a_generated_id(fake_api: FakeAnthropic) -> None:
    fake_api.script(tool_use("read_file", {"path": "a"}))
    _, _, raw = post(fake_api, body(tools=[_TOOL]))
    (block,) = json.loads(raw)["content"]
    assert block["id"].startswith("toolu_") and block["input"] == {"path": "a"}


@pytest.mark.parametrize(
    ("spec", "status", "etype", "message"),
    [
        (error(429, retry_after="7"), 429, "rate_limit_error", "per-minute rate limit"),
        (error(529), 529, "overloaded_error", "Overloaded"),
        (error(500), 500, "api_error", "Internal server error"),
        (error(400, "invalid_request_error", "bad thing"), 400, "invalid_request_error", "bad"),
    ],
)
def test_error_specs(fake_api: FakeAnthropic, spec, status, etype, message) -> None:
    fake_api.script(spec)
    got, headers, raw = post(fake_api, body(stream=True))
    assert_api_error(got, raw, status, etype, message)
    payload = json.loads(raw)
    assert set(payload) == {"type", "error", "request_id"}
    assert set(payload["error"]) == {"type", "message"}
    if status == 429:
        assert headers["retry-after"] == "7"


def test_drop_after_cuts_the_connection(fake_api: FakeAnthropic) -> None:
    fake_api.script(drop_after(4, text("one two three four")))
    conn = _conn(fake_api)
    conn.request(
        "POST",
        "/v1/messages",
        body=json.dumps(body(stream=True)),
        headers={"x-api-key": fake_api.api_key, "content-type": "application/json"},
    )
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    events = parse_sse(info.value.partial)
    assert [n for n, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
    ]
    conn.close()


def test_sse_error_after(fake_api: FakeAnthropic) -> None:
    fake_api.script(sse_error_after(4, text("one two three")))
    status, _, raw = post(fake_api, body(stream=True))
    assert status == 200
    events = parse_sse(raw)
    assert [n for n, _ in events][-2:] == ["content_block_delta", "error"]
    assert events[-1][1]["type"] == "error"
    assert events[-1][1]["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_delay_between_events(fake_api: FakeAnthropic) -> None:
    fake_api.script(text("a b c", delay=0.05))  # 9 events -> 8 pauses
    started = time.monotonic()
    post(fake_api, body(stream=True))
    assert time.monotonic() - started >= 0.35


def test_keep_alive_across_streamed_and_plain_responses(fake_api: FakeAnthropic) -> None:
    conn = _conn(fake_api)
    try:
        for stream in (True, False, True):
            status, _, raw = post(fake_api, body(stream=stream), conn=conn)
            assert status == 200, raw
        fake_api.script(error(429))
        status, _, _ = post(fake_api, body(), conn=conn)
        assert status == 429
        status, _, _ = post(fake_api, body(), conn=conn)
        assert status == 200
    finally:
        conn.close()


# ------------------------------------------------------------ token counting


def _expected_total(request: dict[str, Any]) -> int:
    """The documented formula, computed independently of the fake's helpers."""

    def strip(b: Any) -> Any:
        return {k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b

    def blocks(content: Any) -> list[Any]:
        return [{"type": "text", "text": content}] if isinstance(content, str) else content

    size = sum(len(canonical_json(strip(t)).encode()) for t in request.get("tools", []))
    size += sum(len(canonical_json(strip(b)).encode()) for b in blocks(request.get("system", [])))
    for m in request["messages"]:
        for b in blocks(m["content"]):
            size += len(canonical_json({"role": m["role"], "block": strip(b)}).encode())
    return math.ceil(size / 3.6)


def test_count_tokens_endpoint(fake_api: FakeAnthropic) -> None:
    request = body(
        [{"role": "user", "content": "Grüße — wie geht's? " * 20}],
        system="You are terse.",
        tools=[_TOOL],
    )
    del request["max_tokens"]  # count_tokens does not need it
    status, _, raw = post(fake_api, request, path="/v1/messages/count_tokens")
    assert status == 200, raw
    assert json.loads(raw) == {"input_tokens": _expected_total(request)}
    # cache_control markers are not tokens
    marked = copy.deepcopy(request)
    marked["tools"][0]["cache_control"] = {"type": "ephemeral"}
    _, _, raw = post(fake_api, marked, path="/v1/messages/count_tokens")
    assert json.loads(raw)["input_tokens"] == _expected_total(request)
    # counting does not consume a scripted reply
    assert all(r["path"].endswith("count_tokens") for r in fake_api.requests)


def test_count_tokens_validates(fake_api: FakeAnthropic) -> None:
    status, _, raw = post(fake_api, {"model": MODEL}, path="/v1/messages/count_tokens")
    assert_api_error(status, raw, 400, "invalid_request_error", "messages: Field required")


def _usage(api: FakeAnthropic, request: dict[str, Any]) -> dict[str, int]:
    status, _, raw = post(api, request)
    assert status == 200, raw
    return json.loads(raw)["usage"]


CC = {"type": "ephemeral"}


def _conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for i in range(turns):
        messages.append({"role": "user", "content": [{"type": "text", "text": f"question {i}"}]})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": f"answer {i}"}]})
    messages.append({"role": "user", "content": [{"type": "text", "text": "final question"}]})
    messages[-1]["content"][-1]["cache_control"] = CC
    return messages


def _cached_request(turns: int) -> dict[str, Any]:
    return body(
        _conversation(turns),
        system=[
            {"type": "text", "text": "You are a helpful assistant. " * 10, "cache_control": CC}
        ],
        tools=[dict(_TOOL, cache_control=CC)],
    )


def test_usage_without_breakpoints_is_all_input(fake_api: FakeAnthropic) -> None:
    request = body(system="plain system")
    usage = _usage(fake_api, request)
    assert usage["cache_creation_input_tokens"] == 0
    assert usage["cache_read_input_tokens"] == 0
    assert usage["input_tokens"] == fake_api.count_tokens(request)
    # repeating it reads nothing either: nothing was ever written
    assert _usage(fake_api, request)["cache_read_input_tokens"] == 0


def test_usage_cache_write_then_read(fake_api: FakeAnthropic) -> None:
    request = _cached_request(1)
    # Move the last-user breakpoint off so some tokens come after the last breakpoint.
    request["messages"][-1]["content"][-1].pop("cache_control")
    total = fake_api.count_tokens(request)

    first = _usage(fake_api, request)
    assert first["cache_read_input_tokens"] == 0
    assert first["cache_creation_input_tokens"] > 0
    assert first["input_tokens"] > 0
    assert sum(first[k] for k in ("input_tokens", "cache_creation_input_tokens")) == total
    # The created part is exactly tools + system.
    prefix = {"messages": [], "tools": request["tools"], "system": request["system"]}
    assert first["cache_creation_input_tokens"] == fake_api.count_tokens(prefix)

    second = _usage(fake_api, request)
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0
    assert second["input_tokens"] == first["input_tokens"]

    fake_api.reset_cache()
    assert _usage(fake_api, request) == first | {"output_tokens": first["output_tokens"]}


def test_usage_multi_turn_reads_previous_turn_prefix(fake_api: FakeAnthropic) -> None:
    turn1 = _cached_request(1)
    u1 = _usage(fake_api, turn1)
    assert u1["cache_read_input_tokens"] == 0
    assert u1["cache_creation_input_tokens"] == fake_api.count_tokens(turn1)
    assert u1["input_tokens"] == 0  # the last breakpoint is the very last block

    # Next turn: the old last user block is no longer marked, but the lookback finds it.
    turn2 = copy.deepcopy(turn1)
    turn2["messages"][-1]["content"][-1].pop("cache_control")
    turn2["messages"] += [
        {"role": "assistant", "content": [{"type": "text", "text": "final answer"}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": "one more", "cache_control": CC}],
        },
    ]
    u2 = _usage(fake_api, turn2)
    total2 = fake_api.count_tokens(turn2)
    assert u2["cache_read_input_tokens"] == fake_api.count_tokens(turn1)
    assert u2["cache_creation_input_tokens"] == total2 - u2["cache_read_input_tokens"]
    assert (
        u2["input_tokens"] + u2["cache_creation_input_tokens"] + u2["cache_read_input_tokens"]
        == total2
    )


def test_usage_changed_system_invalidates_later_prefix(fake_api: FakeAnthropic) -> None:
    request = _cached_request(2)
    _usage(fake_api, request)
    changed = copy.deepcopy(request)
    changed["system"][0]["text"] = "Something else entirely."
    usage = _usage(fake_api, changed)
    # Only the tools (before the system prompt) are still cached.
    tools_only = fake_api.count_tokens({"messages": [], "tools": request["tools"]})
    assert usage["cache_read_input_tokens"] == tools_only
    assert usage["input_tokens"] + usage[
        "cache_creation_input_tokens"
    ] + tools_only == fake_api.count_tokens(changed)


def test_usage_cache_is_per_model(fake_api: FakeAnthropic) -> None:
    request = _cached_request(1)
    _usage(fake_api, request)
    other = dict(request, model="claude-haiku-4-5")
    assert _usage(fake_api, other)["cache_read_input_tokens"] == 0
