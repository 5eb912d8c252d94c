"""A fake Anthropic Messages API served over real HTTP on 127.0.0.1.

Tests talk to it through the real ``anthropic`` SDK (or plain HTTP), so the whole
stack -- request building, headers, SSE parsing, error mapping, connection reuse --
runs for real; only the model is fake.

Usage::

    with FakeAnthropic() as api:
        api.script(error(429, retry_after="0"), text("hello world"))
        client = anthropic.AsyncAnthropic(api_key=api.api_key, base_url=api.base_url)
        ...
        assert api.requests[-1]["body"]["model"] == "claude-sonnet-4-5"

What it implements
------------------
* ``POST /v1/messages`` (``stream`` true or false) and ``POST /v1/messages/count_tokens``.
* Auth (``auth=``): ``"either"`` (default) accepts ``x-api-key: KEY`` or
  ``Authorization: Bearer KEY``; ``"x-api-key"`` accepts only the former and ``"bearer"``
  only the latter (as proxies and gateways do; ``auth_token=`` sets the bearer token a
  gateway expects, by default the key). Anything else is a 401 ``authentication_error``
  worded like such a server ("missing x-api-key header", "invalid bearer token", ...).
* ``usage_shape=``: ``"full"`` (the real API's usage), ``"no_cache"`` (a proxy that omits
  the cache fields), ``"null_cache"`` (sends them as null), ``"minimal"`` (only
  ``output_tokens``: no input-side usage at all).
* Validation of the shapes the real API rejects with 400 ``invalid_request_error``,
  worded like the real messages (see :func:`validate_messages_request`).
* Scripted responses (:meth:`FakeAnthropic.script`), consumed one per valid
  ``/v1/messages`` call; requests that fail auth or validation do not consume one.
  With an empty queue it replies ``"ok: <first 40 chars of the last user text>"``.
* Failure shapes: errors, dropped connections, SSE errors, and stalls (:func:`stall`:
  never answer, send the headers and then nothing, or stop mid-stream); a stalled
  handler waits until the client hangs up (counted in ``disconnects``) or the server stops.
* Replies cut off by the output limit (:func:`cut_tool_use`: stop reason ``max_tokens``
  with the last tool call's ``input_json_delta`` cut mid-JSON) and refusals
  (``text(..., stop_reason="refusal")``).

Token counting (deliberately *not* tiktoken, so nobody mistakes it for real numbers)
-----------------------------------------------------------------------------------
The request is flattened into *units*, in prompt order: each tool definition, each
system text block, then each message content block (a plain-string content counts as
one text block; each unit is ``{"role": ..., "block": ...}`` so roles matter). A
unit's size is the UTF-8 byte length of its canonical JSON (sorted keys, no spaces,
``cache_control`` removed -- markers are not tokens). Then::

    tokens(prefix) = ceil(bytes of the units in the prefix / 3.6)
    input total    = tokens(all units)

Prompt caching is simulated per model: every unit with ``cache_control`` is a
breakpoint. For each breakpoint the fake looks back (up to 20 units, like the real
API) for the longest prefix whose hash was *written* by an earlier request; that
prefix counts as ``cache_read_input_tokens``. The span from there to the last
breakpoint is ``cache_creation_input_tokens`` and is written (each breakpoint's prefix
hash is remembered). What follows the last breakpoint is ``input_tokens``. Because all
three are differences of the same monotone ``tokens(prefix)`` function, they add up to
the ``count_tokens`` total exactly. Output tokens are ``ceil(bytes of the reply / 3.6)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import queue
import select
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_API_KEY = "sk-test-key"
BYTES_PER_TOKEN = 3.6
AUTH_MODES = ("either", "x-api-key", "bearer")
CACHE_LOOKBACK_UNITS = 20
MAX_CACHE_BREAKPOINTS = 4

# Default ``error.type`` and message per HTTP status, as the real API words them.
_ERROR_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not Found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
    ),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    504: ("api_error", "Gateway timeout"),
    529: ("overloaded_error", "Overloaded"),
}


# --------------------------------------------------------------------------- specs


@dataclass
class Reply:
    """A successful assistant message: ``blocks`` streamed as the real API would.

    ``chunks`` controls how each text block is split into ``text_delta`` events:
    ``None`` splits after each word, an int splits into that many pieces, a sequence of
    strings is used as-is (only for a single text block). ``delay`` is the pause in
    seconds between SSE events.
    """

    blocks: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    chunks: int | Sequence[str] | None = None
    delay: float = 0.0
    model: str | None = None


@dataclass
class ErrorReply:
    """An HTTP error response with the real API's JSON error body."""

    status: int
    type: str
    message: str
    retry_after: str | None = None
    retry_after_ms: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class DropAfter:
    """Stream the first ``n_events`` SSE events of ``spec``, then close the socket
    without finishing the chunked body (the client sees a broken connection)."""

    n_events: int
    spec: Reply


@dataclass
class SSEErrorAfter:
    """Stream the first ``n_events`` SSE events of ``spec``, then an ``event: error``."""

    n_events: int
    spec: Reply
    error_type: str = "overloaded_error"
    message: str = "Overloaded"


@dataclass
class StallAfter:
    """Stream the first ``n_events`` SSE events of ``spec``, then send nothing more (the
    connection stays open) until the server stops: a stalled stream."""

    n_events: int
    spec: Reply


@dataclass
class Disconnect:
    """Read the request, then close the connection without sending any response."""

    delay: float = 0.0


@dataclass
class Stall:
    """Stop answering: ``after_events`` None reads the request and sends nothing (not even
    the status line); 0 sends the headers of a stream and then nothing; ``n`` streams the
    first ``n`` SSE events of ``spec`` and then nothing. The handler waits until the client
    hangs up or the server stops."""

    after_events: int | None = None
    spec: Reply | None = None


Spec = Reply | ErrorReply | DropAfter | SSEErrorAfter | StallAfter | Disconnect | Stall


def text(
    value: str,
    chunks: int | Sequence[str] | None = None,
    *,
    delay: float = 0.0,
    stop_reason: str = "end_turn",
    model: str | None = None,
) -> Reply:
    """A plain text reply."""
    return Reply(
        [{"type": "text", "text": value}],
        stop_reason=stop_reason,
        chunks=chunks,
        delay=delay,
        model=model,
    )


def tool_use(
    name: str,
    input: dict[str, Any],
    text_before: str | None = None,
    id: str | None = None,
    *,
    delay: float = 0.0,
    chunks: int | Sequence[str] | None = None,
) -> Reply:
    """A reply that calls one tool (optionally after some text); stop_reason ``tool_use``.

    ``id`` defaults to a deterministic ``toolu_...`` id assigned when served.
    """
    blocks: list[dict[str, Any]] = []
    if text_before:
        blocks.append({"type": "text", "text": text_before})
    blocks.append({"type": "tool_use", "id": id, "name": name, "input": input})
    return Reply(blocks, stop_reason="tool_use", chunks=chunks, delay=delay)


def error(
    status: int,
    type: str | None = None,
    message: str | None = None,
    retry_after: str | float | None = None,
    *,
    retry_after_ms: str | float | None = None,
    headers: dict[str, str] | None = None,
) -> ErrorReply:
    """An API error. ``type``/``message`` default to what the real API sends for
    ``status`` (429 -> ``rate_limit_error``, 529 -> ``overloaded_error``, ...)."""
    default_type, default_message = _ERROR_DEFAULTS.get(status, ("api_error", "Error"))
    return ErrorReply(
        status=status,
        type=type or default_type,
        message=message if message is not None else default_message,
        retry_after=None if retry_after is None else str(retry_after),
        retry_after_ms=None if retry_after_ms is None else str(retry_after_ms),
        headers=dict(headers or {}),
    )


def cut_tool_use(
    name: str,
    input: dict[str, Any],
    keep: int,
    text_before: str | None = None,
    id: str | None = None,
) -> Reply:
    """A reply cut off by the output limit while it wrote a tool call: stop reason
    ``max_tokens``, and the tool call's ``input_json_delta`` events carry only the first
    ``keep`` characters of ``json.dumps(input)`` (cut mid-JSON when ``keep`` is short)."""
    blocks: list[dict[str, Any]] = []
    if text_before:
        blocks.append({"type": "text", "text": text_before})
    partial = json.dumps(input, ensure_ascii=False)[:keep]
    blocks.append({"type": "tool_use", "id": id, "name": name, "input": input,
                   "_partial_json": partial})
    return Reply(blocks, stop_reason="max_tokens")


def stall(after_events: int | None = None, spec: Reply | None = None) -> Stall:
    """Stop answering (see :class:`Stall`): ``stall()`` never answers, ``stall(0)`` sends
    the headers then nothing, ``stall(n, text(...))`` stops after ``n`` events."""
    return Stall(after_events, spec)


def drop_after(n_events: int, spec: Reply) -> DropAfter:
    """Stream ``n_events`` SSE events of ``spec``, then drop the connection."""
    return DropAfter(n_events, spec)


def sse_error_after(
    n_events: int,
    spec: Reply,
    *,
    error_type: str = "overloaded_error",
    message: str = "Overloaded",
) -> SSEErrorAfter:
    """Stream ``n_events`` SSE events of ``spec``, then an ``event: error``."""
    return SSEErrorAfter(n_events, spec, error_type, message)


def stall_after(n_events: int, spec: Reply) -> StallAfter:
    """Stream ``n_events`` SSE events of ``spec``, then stall until the server stops."""
    return StallAfter(n_events, spec)


def disconnect(delay: float = 0.0) -> Disconnect:
    """Close the connection without answering (a connection error before any output)."""
    return Disconnect(delay)


# ------------------------------------------------------------------ token counting


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept as-is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _without_cache_control(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _has_cache_control(block: Any) -> bool:
    return isinstance(block, dict) and block.get("cache_control") is not None


def _as_blocks(content: Any) -> list[Any]:
    """Message/system content as a list of blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return content
    return []


@dataclass(frozen=True)
class _Unit:
    size: int  # UTF-8 bytes of the canonical JSON
    digest: bytes  # canonical JSON bytes, fed into the running prefix hash
    breakpoint: bool


def prompt_units(body: dict[str, Any]) -> list[_Unit]:
    """Flatten tools -> system -> messages into sized units (see module docstring)."""
    units: list[_Unit] = []

    def add(value: Any, marked: bool) -> None:
        data = canonical_json(value).encode("utf-8")
        units.append(_Unit(len(data), data, marked))

    for tool in body.get("tools") or []:
        add(_without_cache_control(tool), _has_cache_control(tool))
    for block in _as_blocks(body.get("system")):
        add(_without_cache_control(block), _has_cache_control(block))
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        for block in _as_blocks(message.get("content")):
            add({"role": role, "block": _without_cache_control(block)}, _has_cache_control(block))
    return units


def tokens_for_bytes(n_bytes: int) -> int:
    """The fake tokenizer: ceil(bytes / 3.6)."""
    return math.ceil(n_bytes / BYTES_PER_TOKEN)


def count_input_tokens(body: dict[str, Any]) -> int:
    """Total prompt tokens of a request, as ``count_tokens`` reports them."""
    return tokens_for_bytes(sum(u.size for u in prompt_units(body)))


# ------------------------------------------------------------------- validation


class ApiError(Exception):
    """Raised inside the fake to answer with an API error."""

    def __init__(self, status: int, type: str, message: str):
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def _count_cache_breakpoints(body: dict[str, Any]) -> int:
    count = 0
    for tool in body.get("tools") or []:
        count += _has_cache_control(tool)
    system = body.get("system")
    if isinstance(system, list):
        count += sum(_has_cache_control(b) for b in system)
    for message in body.get("messages") or []:
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            count += sum(_has_cache_control(b) for b in message["content"])
    return count


def validate_messages_request(body: Any, *, require_max_tokens: bool = True) -> None:
    """Reject what the real Messages API rejects, with its wording. Raises ApiError."""
    if not isinstance(body, dict):
        raise _invalid("Input should be a valid dictionary")
    if "model" not in body:
        raise _invalid("model: Field required")
    if require_max_tokens and "max_tokens" not in body:
        raise _invalid("max_tokens: Field required")
    if "messages" not in body:
        raise _invalid("messages: Field required")
    if require_max_tokens:
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _invalid("max_tokens: Input should be greater than or equal to 1")

    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _invalid("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _invalid(f"tools.{i}: Input should be a valid dictionary")
            if "type" in tool and tool["type"] not in (None, "custom"):
                continue  # server tools (web_search, ...) have their own shape
            if not tool.get("name"):
                raise _invalid(f"tools.{i}.name: Field required")
            if "input_schema" not in tool:
                raise _invalid(f"tools.{i}.input_schema: Field required")

    system = body.get("system")
    if isinstance(system, list):
        for block in system:
            if isinstance(block, dict) and block.get("type") == "text" and not block.get("text"):
                raise _invalid("system: text content blocks must be non-empty")

    messages = body["messages"]
    if not isinstance(messages, list):
        raise _invalid("messages: Input should be a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages.{i}: Input should be a valid dictionary")
        if message.get("role") not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise _invalid(f"messages.{i}.content: Field required")
    if messages[0]["role"] != "user":
        raise _invalid('messages: first message must use the "user" role')
    for prev, cur in zip(messages, messages[1:], strict=False):
        if prev["role"] == cur["role"]:
            raise _invalid(
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{cur["role"]}" roles in a row'
            )

    last = len(messages) - 1
    for i, message in enumerate(messages):
        content = message["content"]
        if isinstance(content, str):
            if not content and not (i == last and message["role"] == "assistant"):
                raise _invalid(
                    f"messages.{i}: all messages must have non-empty content except for "
                    "the optional final assistant message"
                )
            continue
        if not isinstance(content, list):
            raise _invalid(f"messages.{i}.content: Input should be a valid list")
        if not content and not (i == last and message["role"] == "assistant"):
            raise _invalid(
                f"messages.{i}: all messages must have non-empty content except for "
                "the optional final assistant message"
            )
        for block in content:
            if not isinstance(block, dict) or "type" not in block:
                raise _invalid(f"messages.{i}.content: Input tag not found")
            if block["type"] == "text" and not block.get("text"):
                raise _invalid("messages: text content blocks must be non-empty")

    # tool_use / tool_result pairing: every tool_use in an assistant message must be
    # answered by tool_result blocks at the *start* of the next user message, and every
    # tool_result must answer a tool_use of the previous assistant message.
    for i, message in enumerate(messages):
        content = _as_blocks(message["content"])
        if message["role"] == "assistant":
            use_ids = [b.get("id") for b in content if b.get("type") == "tool_use"]
            if not use_ids:
                continue
            following = _as_blocks(messages[i + 1]["content"]) if i + 1 <= last else []
            answered: set[str] = set()
            for block in following:
                if block.get("type") != "tool_result":
                    break
                answered.add(block.get("tool_use_id"))
            missing = [u for u in use_ids if u not in answered]
            if missing:
                raise _invalid(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(map(str, missing))}. Each `tool_use` block "
                    "must have a corresponding `tool_result` block in the next message."
                )
        else:
            previous = _as_blocks(messages[i - 1]["content"]) if i > 0 else []
            known = {b.get("id") for b in previous if b.get("type") == "tool_use"}
            for j, block in enumerate(content):
                if block.get("type") != "tool_result":
                    continue
                if block.get("tool_use_id") not in known:
                    raise _invalid(
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                        "block must have a corresponding `tool_use` block in the previous message."
                    )

    found = _count_cache_breakpoints(body)
    if found > MAX_CACHE_BREAKPOINTS:
        raise _invalid(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {found}."
        )


# ---------------------------------------------------------------- SSE rendering


def _split_text(value: str, chunks: int | Sequence[str] | None) -> list[str]:
    if isinstance(chunks, (list, tuple)):
        if "".join(chunks) != value:
            raise ValueError("chunks must join to the text")
        return [c for c in chunks if c]
    if isinstance(chunks, int) and chunks > 0:
        size = max(1, math.ceil(len(value) / chunks))
        return [value[i : i + size] for i in range(0, len(value), size)] or [value]
    # Default: one chunk per word, spaces kept with the word before them.
    pieces: list[str] = []
    current = ""
    for ch in value:
        current += ch
        if ch == " ":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces or [value]


def _split_json(value: str, n: int = 4) -> list[str]:
    """Input JSON in several pieces; like the real API the first delta is empty."""
    size = max(1, math.ceil(len(value) / n))
    return [""] + [value[i : i + size] for i in range(0, len(value), size)]


USAGE_SHAPES = ("full", "no_cache", "null_cache", "minimal")
_CACHE_FIELDS = ("cache_creation_input_tokens", "cache_read_input_tokens")


def shape_usage(usage: dict[str, Any], shape: str) -> dict[str, Any]:
    """``usage`` as a server of ``shape`` (see :data:`USAGE_SHAPES`) would send it."""
    if shape == "no_cache":
        return {k: v for k, v in usage.items() if k not in _CACHE_FIELDS}
    if shape == "null_cache":
        return {k: (None if k in _CACHE_FIELDS else v) for k, v in usage.items()}
    if shape == "minimal":
        return {"output_tokens": usage["output_tokens"]}
    return dict(usage)


def sse_events(
    message: dict[str, Any],
    chunks: int | Sequence[str] | None,
    *,
    usage_shape: str = "full",
) -> list[dict[str, Any]]:
    """The SSE events (``{"event", "data"}``) that stream ``message`` like the real API."""
    start_message = dict(message, content=[], stop_reason=None, stop_sequence=None)
    start_message["usage"] = dict(shape_usage(message["usage"], usage_shape), output_tokens=1)
    events: list[dict[str, Any]] = [
        {"event": "message_start", "data": {"type": "message_start", "message": start_message}}
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                {
                    "event": "content_block_start",
                    "data": {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                }
            )
            deltas = [
                {"type": "text_delta", "text": piece}
                for piece in _split_text(block["text"], chunks)
            ]
        else:
            events.append(
                {
                    "event": "content_block_start",
                    "data": {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": block["id"],
                            "name": block["name"],
                            "input": {},
                        },
                    },
                }
            )
            raw = block.get("_partial_json")
            if raw is None:
                raw = json.dumps(block["input"], ensure_ascii=False)
            deltas = [
                {"type": "input_json_delta", "partial_json": piece}
                for piece in _split_json(raw)
            ]
        if index == 0:
            # The real API sends a ping right after the first content_block_start.
            events.append({"event": "ping", "data": {"type": "ping"}})
        for delta in deltas:
            events.append(
                {
                    "event": "content_block_delta",
                    "data": {"type": "content_block_delta", "index": index, "delta": delta},
                }
            )
        events.append(
            {"event": "content_block_stop", "data": {"type": "content_block_stop", "index": index}}
        )
    events.append(
        {
            "event": "message_delta",
            "data": {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        }
    )
    events.append({"event": "message_stop", "data": {"type": "message_stop"}})
    return events


def encode_sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['event']}\ndata: {canonical_json(event['data'])}\n\n".encode()


def error_body(type: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": type, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


# ---------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so httpx can keep connections alive and read chunked SSE bodies.
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # SSE events are small separate writes; without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms stalls between them.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean

    # -- helpers ---------------------------------------------------------------

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, type: str, message: str, headers=None) -> None:
        request_id = self.server.fake._next_id("req_")
        hdrs = {"request-id": request_id}
        hdrs.update(headers or {})
        if status == 529 or status >= 500 or status == 429:
            hdrs.setdefault("x-should-retry", "true")
        self._send_json(status, error_body(type, message, request_id), hdrs)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stall(self) -> None:
        """Send nothing more until the client hangs up (counted as a disconnect) or the
        server stops; then close the connection."""
        self.close_connection = True
        fake = self.server.fake
        with contextlib.suppress(OSError):
            self.wfile.flush()
        while not fake._stopping.is_set():
            try:
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        fake._note_disconnect()  # EOF: the client gave up on us
                        return
                    time.sleep(0.05)  # unexpected bytes: ignore them, keep stalling
            except (OSError, ValueError):
                fake._note_disconnect()
                return

    def _abort_connection(self) -> None:
        """Close the socket now, mid-body, so the client sees an incomplete response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- routing -----------------------------------------------------------------

    def do_GET(self) -> None:
        self._read_body()
        self._send_error(404, "not_found_error", "Not Found")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self._read_body()
        path = self.path.split("?", 1)[0]
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
            parse_failed = True
        else:
            parse_failed = False
        fake._record(path, dict(self.headers.items()), body)

        if path not in ("/v1/messages", "/v1/messages/count_tokens"):
            self._send_error(404, "not_found_error", "Not Found")
            return
        refusal = fake._auth_refusal(self.headers)
        if refusal is not None:
            self._send_error(401, "authentication_error", refusal)
            return
        if parse_failed:
            self._send_error(400, "invalid_request_error", "There was an error parsing the body.")
            return
        try:
            validate_messages_request(body, require_max_tokens=path == "/v1/messages")
        except ApiError as err:
            self._send_error(err.status, err.type, err.message)
            return

        if path == "/v1/messages/count_tokens":
            self._send_json(200, {"input_tokens": count_input_tokens(body)})
            return

        spec = fake._next_spec(body)
        try:
            self._serve(spec, body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            # The client went away mid-response (e.g. it cancelled the stream).
            fake._note_disconnect()
            self.close_connection = True

    def _serve(self, spec: Spec, body: dict[str, Any]) -> None:
        fake = self.server.fake
        stream = bool(body.get("stream"))
        if isinstance(spec, Disconnect):
            time.sleep(spec.delay)
            self._abort_connection()
            return
        if isinstance(spec, Stall) and spec.after_events is None:
            self._stall()  # not even a status line
            return
        if isinstance(spec, ErrorReply):
            time.sleep(spec.delay)
            headers = dict(spec.headers)
            if spec.retry_after is not None:
                headers["retry-after"] = spec.retry_after
            if spec.retry_after_ms is not None:
                headers["retry-after-ms"] = spec.retry_after_ms
            self._send_error(spec.status, spec.type, spec.message, headers)
            return

        if isinstance(spec, Stall):
            reply = spec.spec or text("stalled")
        else:
            reply = spec.spec if isinstance(spec, (DropAfter, SSEErrorAfter, StallAfter)) \
                else spec
        message = fake._build_message(reply, body)
        if not stream:
            if isinstance(spec, Stall):
                self._stall()
            elif isinstance(spec, (DropAfter, StallAfter)):
                self._abort_connection()
            elif isinstance(spec, SSEErrorAfter):
                self._send_error(529, spec.error_type, spec.message)
            else:
                plain = dict(message, usage=shape_usage(message["usage"], fake.usage_shape))
                plain["content"] = [{k: v for k, v in b.items() if k != "_partial_json"}
                                    for b in message["content"]]
                self._send_json(200, plain, {"request-id": fake._next_id("req_")})
            return

        events = sse_events(message, reply.chunks, usage_shape=fake.usage_shape)
        limit = len(events)
        if isinstance(spec, (DropAfter, SSEErrorAfter, StallAfter)):
            limit = min(spec.n_events, len(events))
        elif isinstance(spec, Stall):
            limit = min(spec.after_events or 0, len(events))

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", fake._next_id("req_"))
        self.end_headers()
        self.wfile.flush()
        for n, event in enumerate(events[:limit]):
            if n and reply.delay:
                time.sleep(reply.delay)
            self._write_chunk(encode_sse(event))
        if isinstance(spec, DropAfter):
            self._abort_connection()
            return
        if isinstance(spec, Stall):
            self._stall()
            return
        if isinstance(spec, StallAfter):
            fake._stopping.wait()
            self._abort_connection()
            return
        if isinstance(spec, SSEErrorAfter):
            if reply.delay:
                time.sleep(reply.delay)
            self._write_chunk(
                encode_sse(
                    {
                        "event": "error",
                        "data": error_body(spec.error_type, spec.message, fake._next_id("req_")),
                    }
                )
            )
        self.wfile.write(b"0\r\n\r\n")  # end of the chunked body; connection stays open
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeAnthropic):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address):  # type: ignore[override]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[override]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class FakeAnthropic:
    """A scripted Anthropic Messages API on ``127.0.0.1:<random port>``.

    Attributes:
        base_url: e.g. ``"http://127.0.0.1:54321"`` (pass to the SDK's ``base_url``).
        api_key: the only key it accepts.
        requests: every request received, as ``{"path", "headers", "body"}`` dicts
            (headers with lower-case names; body parsed from JSON, or None).
        disconnects: how many times a client hung up while a response was being written.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        min_cacheable_tokens: int = 0,
        auth: str = "either",
        auth_token: str | None = None,
        usage_shape: str = "full",
    ):
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {AUTH_MODES}")
        if usage_shape not in USAGE_SHAPES:
            raise ValueError(f"usage_shape must be one of {USAGE_SHAPES}")
        self.api_key = api_key
        # Which header a server of this shape reads the credential from, and the bearer
        # token it accepts (a gateway's own token; by default the key itself).
        self.auth = auth
        self.auth_token = auth_token or api_key
        self.usage_shape = usage_shape
        self._stopping = threading.Event()
        # The real API ignores cache breakpoints below a model-specific minimum size
        # (1024+ tokens); 0 keeps tests small. Set it to exercise that behaviour.
        self.min_cacheable_tokens = min_cacheable_tokens
        self.requests: list[dict[str, Any]] = []
        self.disconnects = 0
        self._queue: list[Spec] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._cache: set[bytes] = set()
        self._disconnected: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._stopping = threading.Event()  # releases stalled streams
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeAnthropic:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-anthropic",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # stalled handlers give up
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeAnthropic is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- scripting ------------------------------------------------------------------

    def script(self, *responses: Spec) -> FakeAnthropic:
        """Queue responses; each valid ``/v1/messages`` call consumes the next one."""
        with self._lock:
            self._queue.extend(responses)
        return self

    @property
    def pending(self) -> int:
        """Scripted responses not consumed yet."""
        with self._lock:
            return len(self._queue)

    def message_requests(self) -> list[dict[str, Any]]:
        """Recorded requests to ``/v1/messages`` only."""
        with self._lock:
            return [r for r in self.requests if r["path"] == "/v1/messages"]

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        """Block until a client hangs up mid-response (True) or ``timeout`` passes."""
        try:
            self._disconnected.get(timeout=timeout)
        except queue.Empty:
            return False
        return True

    def count_tokens(self, body: dict[str, Any]) -> int:
        """What ``/v1/messages/count_tokens`` would answer for ``body``."""
        return count_input_tokens(body)

    def reset_cache(self) -> None:
        """Forget every cached prefix (as if the 5-minute TTL had passed)."""
        with self._lock:
            self._cache.clear()

    # -- internals (called from handler threads) -------------------------------------

    def _record(self, path: str, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            self.requests.append(
                {"path": path, "headers": {k.lower(): v for k, v in headers.items()}, "body": body}
            )

    def _note_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1
        self._disconnected.put(None)

    def _authorized(self, headers: Any) -> bool:
        return self._auth_refusal(headers) is None

    def _auth_refusal(self, headers: Any) -> str | None:
        """None when ``headers`` carry a credential this server accepts, else the 401
        message a server of this ``auth`` shape would send."""
        key = headers.get("x-api-key")
        bearer = headers.get("authorization") or ""
        key_ok = key == self.api_key
        bearer_ok = bearer == f"Bearer {self.auth_token}"
        if self.auth == "x-api-key":
            if key_ok:
                return None
            return "missing x-api-key header" if key is None else "invalid x-api-key"
        if self.auth == "bearer":
            if bearer_ok:
                return None
            return ("missing bearer token in the Authorization header" if not bearer
                    else "invalid bearer token")
        if key_ok or bearer == f"Bearer {self.api_key}" or bearer_ok:
            return None
        return "invalid x-api-key"

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            n = self._counter
        return f"{prefix}01Fake{n:018d}"

    def _next_spec(self, body: dict[str, Any]) -> Spec:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        return text(f"ok: {_last_user_text(body)[:40]}")

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        """Input-side usage with simulated prompt caching (see module docstring)."""
        units = prompt_units(body)
        # Running prefix hashes and byte offsets: prefix i = units[0..i] inclusive.
        model_salt = canonical_json(body.get("model")).encode()
        hashes: list[bytes] = []
        ends: list[int] = []
        h = hashlib.sha256(model_salt)
        total = 0
        for unit in units:
            h.update(len(unit.digest).to_bytes(8, "big"))
            h.update(unit.digest)
            hashes.append(h.copy().digest())
            total += unit.size
            ends.append(total)
        breakpoints = [i for i, u in enumerate(units) if u.breakpoint]
        if self.min_cacheable_tokens:
            breakpoints = [
                i for i in breakpoints if tokens_for_bytes(ends[i]) >= self.min_cacheable_tokens
            ]
        read_end = -1
        with self._lock:
            for bp in breakpoints:
                for i in range(bp, max(-1, bp - CACHE_LOOKBACK_UNITS), -1):
                    if hashes[i] in self._cache:
                        read_end = max(read_end, i)
                        break
            for bp in breakpoints:
                self._cache.add(hashes[bp])
        read_tokens = tokens_for_bytes(ends[read_end]) if read_end >= 0 else 0
        cached_end = breakpoints[-1] if breakpoints else -1
        upto_last_bp = tokens_for_bytes(ends[cached_end]) if cached_end >= 0 else 0
        upto_last_bp = max(upto_last_bp, read_tokens)
        all_tokens = tokens_for_bytes(total)
        return {
            "input_tokens": all_tokens - upto_last_bp,
            "cache_creation_input_tokens": upto_last_bp - read_tokens,
            "cache_read_input_tokens": read_tokens,
        }

    def _build_message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        for block in reply.blocks:
            block = dict(block)
            if block["type"] == "tool_use" and not block.get("id"):
                block["id"] = self._next_id("toolu_")
            content.append(block)
        output_bytes = sum(
            len((b["text"] if b["type"] == "text"
                 else b.get("_partial_json") or canonical_json(b["input"])).encode())
            for b in content
        )
        usage = self._usage(body)
        usage["output_tokens"] = max(1, tokens_for_bytes(output_bytes))
        return {
            "id": self._next_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": reply.model or body.get("model"),
            "content": content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }


class BlackHole:
    """An address that accepts no connection: a listening socket whose backlog is full,
    so a client's connect hangs (on Linux the kernel drops the SYNs) until its connect
    timeout. ``with BlackHole() as hole: ... hole.base_url``."""

    def __init__(self) -> None:
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(0)
        self._fillers: list[socket.socket] = []
        port = self._server.getsockname()[1]
        # backlog 0 still queues one connection: take that place so the next one waits.
        filler = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._fillers.append(filler)
        self.base_url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for sock in [*self._fillers, self._server]:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        texts = [
            b.get("text", "") for b in _as_blocks(message.get("content")) if b.get("type") == "text"
        ]
        return " ".join(t for t in texts if t)
    return ""


@contextlib.contextmanager
def running(api_key: str = DEFAULT_API_KEY, **options: Any) -> Iterator[FakeAnthropic]:
    """``with running() as api:`` -- a started FakeAnthropic, stopped on exit. ``options``
    go to :class:`FakeAnthropic` (``auth=``, ``usage_shape=``, ...)."""
    with FakeAnthropic(api_key, **options) as fake:
        yield fake
