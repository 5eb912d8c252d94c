"""The real model: Claude through the official ``anthropic`` SDK, streamed.

Why leon wraps the SDK rather than using it bare:

* **Retries it can report.** The SDK is built with ``max_retries=0``; this module
  retries 429 / 529 / 5xx / connection failures itself so each wait can be shown to
  the user as a :class:`~leon.llm.base.Retrying` event. It only retries while nothing
  has reached the caller yet -- once text was shown, replaying the call would show it
  twice, so a broken stream becomes :class:`~leon.llm.base.StreamInterrupted` with the
  partial reply instead.
* **Prompt caching.** Breakpoints go on the system prompt, the last tool and the last
  block of the last user message, so each turn re-reads the previous turn's prefix.
* **One-line errors.** SDK exceptions carry whole response bodies; the UI needs
  ``"rate limited (429) after 4 retries: <the API's own message>"``. A server that
  refuses the credentials (401/403) is named with the headers leon sent (never their
  values), since a proxy that reads another header is the usual cause.
* **Time limits a person accepts** (:class:`~leon.llm.base.Limits`): a connect timeout
  (httpx), and leon's own watchdog on the stream: a limit to the first event and one
  between events, then retries within a total deadline. The SDK's 600 s read timeout,
  multiplied by its retries, held a silent server for the better part of an hour.
* **Credentials sent the way proxies read them.** The key goes in ``x-api-key`` (the
  header the Messages API documents) *and*, as the SDK sends it, in ``Authorization:
  Bearer``; a gateway token (``ANTHROPIC_AUTH_TOKEN``) takes the ``Authorization`` header.

Notes on the SDK (anthropic 2.x, transport ``httpx2``):

* ``api_key=`` is sent only as ``Authorization: Bearer <key>`` (``_api_key_auth`` in
  ``anthropic/_client.py``), and so is ``auth_token=``; the two are mutually exclusive,
  and without either the SDK reads ``ANTHROPIC_*`` variables and profile files itself.
  leon passes exactly one so the SDK never looks further, and sets the headers it wants
  through ``default_headers``, which are merged after the SDK's auth headers.
* An HTTP error status before the stream starts raises an ``APIStatusError``
  subclass (``RateLimitError``, ``OverloadedError``, ...) from ``__aenter__``.
* An SSE ``event: error`` mid-stream raises a plain ``APIStatusError`` whose
  ``status_code`` is the stream's **200**; the real cause is only in
  ``body["error"]["type"]`` (e.g. ``overloaded_error``), mapped back to a status here.
* A connection dropped mid-body is *not* wrapped by the SDK: iterating raises the
  transport's own ``httpx2.RemoteProtocolError`` / ``ReadTimeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anthropic

try:  # anthropic >= 2 ships its own fork of httpx; older releases use httpx itself.
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx as _httpx  # type: ignore[no-redef]

from leon.llm.base import (
    Completed,
    Limits,
    ModelRequest,
    ModelResponse,
    ProviderError,
    Retrying,
    StreamEvent,
    StreamInterrupted,
    TextDelta,
    ToolUseStarted,
    Usage,
    auth_description,
    duration_text,
    safe_url,
)

log = logging.getLogger(__name__)

EPHEMERAL = {"type": "ephemeral"}

# Statuses worth another try: rate limits, overload, and transient server/gateway errors.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})

# How the user sees each status, before the API's own message.
_STATUS_LABELS = {
    400: "invalid request",
    401: "authentication failed",
    403: "permission denied",
    404: "not found",
    413: "request too large",
    429: "rate limited",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
    529: "API overloaded",
}

# An SSE ``event: error`` arrives on a 200 response; its ``error.type`` says what it
# would have been as an HTTP status.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


# ----------------------------------------------------------------- request shaping


def _strip_cache_control(blocks: Any) -> None:
    """Remove caller-supplied breakpoints (in place, on our copy) so ours stay <= 4."""
    if isinstance(blocks, list):
        for block in blocks:
            if isinstance(block, dict):
                block.pop("cache_control", None)


def build_request_params(request: ModelRequest) -> dict[str, Any]:
    """Keyword arguments for ``client.messages.stream`` with prompt-cache breakpoints.

    Breakpoints (at most 3, the API allows 4): the system prompt, the last tool
    definition, and the last content block of the last user message. Caller-supplied
    ``cache_control`` markers are removed first. The caller's request is never mutated:
    everything changed is a deep copy.
    """
    messages = copy.deepcopy(request.messages)
    tools = copy.deepcopy(request.tools)
    for message in messages:
        _strip_cache_control(message.get("content"))
    _strip_cache_control(tools)

    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": messages,
    }

    system: Any = request.system
    if isinstance(system, str):
        if system:
            params["system"] = [{"type": "text", "text": system, "cache_control": dict(EPHEMERAL)}]
    elif system:  # already a list of blocks; tolerate it, but own the breakpoints
        blocks = copy.deepcopy(list(system))
        _strip_cache_control(blocks)
        blocks[-1]["cache_control"] = dict(EPHEMERAL)
        params["system"] = blocks

    if tools:
        tools[-1]["cache_control"] = dict(EPHEMERAL)
        params["tools"] = tools

    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            if content:
                message["content"] = [
                    {"type": "text", "text": content, "cache_control": dict(EPHEMERAL)}
                ]
        elif isinstance(content, list) and content and isinstance(content[-1], dict):
            content[-1]["cache_control"] = dict(EPHEMERAL)
        break

    return params


# ------------------------------------------------------------------ failures


@dataclass
class _Failure:
    """One failed attempt, reduced to what the retry loop and the user need."""

    label: str  # e.g. "rate limited (429)" or "connection error"
    detail: str  # the API's own message, or the transport's
    status: int | None
    retryable: bool
    retry_after: float | None = None  # seconds the server asked us to wait

    @property
    def summary(self) -> str:
        return f"{self.label}: {self.detail}" if self.detail else self.label


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def _api_error_fields(body: Any) -> tuple[str | None, str | None]:
    """``(error.type, error.message)`` from an API error body, if it has them."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            etype = err.get("type")
            message = err.get("message")
            return (
                etype if isinstance(etype, str) else None,
                message if isinstance(message, str) else None,
            )
    return None, None


def _classify(err: BaseException, limits: Limits | None = None) -> _Failure:
    """Map an SDK or transport exception to a :class:`_Failure`."""
    if isinstance(err, _Stalled):
        return _Failure(str(err), "", None, True)
    cause = err.__cause__ if isinstance(err, anthropic.APITimeoutError) else err
    if isinstance(cause, _httpx.ConnectTimeout) and limits is not None:
        return _Failure(f"could not connect within {duration_text(limits.connect)}", "",
                        None, True)
    if isinstance(err, anthropic.APIStatusError):
        etype, message = _api_error_fields(err.body)
        status = err.status_code
        if status < 400:
            # SSE `event: error` on a 200 stream: recover the status from error.type.
            status = _ERROR_TYPE_STATUS.get(etype or "", 500)
        label = f"{_STATUS_LABELS.get(status, 'API error')} ({status})"
        detail = message or etype or ""
        retry_after = _parse_retry_after(getattr(err.response, "headers", None))
        return _Failure(label, detail, status, status in RETRYABLE_STATUSES, retry_after)
    if isinstance(err, (anthropic.APITimeoutError, _httpx.TimeoutException)):
        return _Failure("request timed out", "", None, True)
    if isinstance(err, anthropic.APIConnectionError):
        cause = err.__cause__
        detail = str(cause) if cause is not None and str(cause) else ""
        return _Failure("connection error", detail, None, True)
    if isinstance(err, _httpx.TransportError):
        return _Failure("connection error", str(err), None, True)
    if isinstance(err, _IncompleteStream):
        return _Failure("connection error", str(err), None, True)
    # Anything else (a malformed event, a JSON error in tool input, ...) is a bug or
    # a protocol surprise; retrying would not help.
    return _Failure("unexpected error", f"{type(err).__name__}: {err}", None, False)


class _IncompleteStream(Exception):
    """The HTTP body ended cleanly but before ``message_stop``."""


class _Stalled(Exception):
    """leon's watchdog: no event within the first-event or the idle limit."""

    def __init__(self, waited: float, *, started: bool):
        what = "the API stopped sending" if started else "no answer from the API"
        super().__init__(f"{what} for {duration_text(waited)}")


# Protocol surprises from the SDK while it parses a stream (a proxy's odd event, tool
# input that is not JSON): reported in one line, not retried.
_SURPRISES = (ValueError, TypeError, AttributeError, KeyError, IndexError, RuntimeError)


# ------------------------------------------------------------ partial content


class _Partial:
    """Content blocks received so far, for :class:`StreamInterrupted`."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, Any]] = {}
        self.finished: set[int] = set()

    def start(self, index: int, block: dict[str, Any]) -> None:
        self.blocks[index] = block

    def stop(self, index: int) -> None:
        self.finished.add(index)

    def add_text(self, index: int, text: str) -> None:
        block = self.blocks.get(index)
        if block is not None and block.get("type") == "text":
            block["text"] = block.get("text", "") + text

    def content(self) -> list[dict[str, Any]]:
        """Text blocks (possibly cut, empty ones dropped) and *finished* other blocks."""
        out: list[dict[str, Any]] = []
        for index in sorted(self.blocks):
            block = self.blocks[index]
            if block.get("type") == "text":
                if block.get("text"):
                    out.append({"type": "text", "text": block["text"]})
            elif index in self.finished and block.get("_complete", True):
                out.append({k: v for k, v in block.items() if not k.startswith("_")})
        return out


def _plain_block(block: Any) -> dict[str, Any]:
    """An SDK content block as a plain dict that can be sent back to the API."""
    data = block.to_dict() if hasattr(block, "to_dict") else dict(block)
    btype = data.get("type")
    if btype == "text":
        out: dict[str, Any] = {"type": "text", "text": data.get("text", "")}
        if data.get("citations"):
            out["citations"] = data["citations"]
        return out
    if btype == "tool_use":
        return {
            "type": "tool_use",
            "id": data["id"],
            "name": data["name"],
            "input": data.get("input") or {},
        }
    # thinking, redacted_thinking, server tool blocks...: keep what the API sent, minus
    # the SDK's own parse helpers.
    return {k: v for k, v in data.items() if v is not None and k != "parsed_output"}


def _final_content(blocks: Any) -> list[dict[str, Any]]:
    """The finished message as plain dicts. Empty text blocks are dropped: the API
    rejects them ("text content blocks must be non-empty") when the reply is sent
    back as history."""
    out = [_plain_block(b) for b in blocks]
    return [b for b in out if not (b.get("type") == "text" and not b.get("text"))]


def _as_int(value: Any) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _stop_reason(value: Any) -> str:
    """The reply's stop reason: a proxy may send none (an ordinary end) or anything at
    all, which must not reach a terminal or the store as it came."""
    if not value:
        return "end_turn"
    if isinstance(value, str) and len(value) <= 64 and value.isascii() and \
            value.replace("_", "").isalpha() and value.islower():
        return value
    return "unknown"


def _usage(usage: Any) -> Usage:
    """The reply's usage; a proxy may omit any field, send null, or send no usage."""
    def field(name: str) -> int:
        return _as_int(getattr(usage, name, None)) if usage is not None else 0

    return Usage(
        input_tokens=field("input_tokens"),
        output_tokens=field("output_tokens"),
        cache_creation_input_tokens=field("cache_creation_input_tokens"),
        cache_read_input_tokens=field("cache_read_input_tokens"),
    )


# ---------------------------------------------------------------- the provider


class AnthropicProvider:
    """Claude over the Messages API, with leon's retry policy and prompt caching.

    Args:
        api_key: the Anthropic API key, sent as ``x-api-key`` and (as the SDK does) as
            ``Authorization: Bearer`` unless ``auth_token`` takes that header. Never echoed.
        base_url: API root, e.g. a proxy or a test server; ``None`` = the SDK default.
        auth_token: a gateway's bearer token (``ANTHROPIC_AUTH_TOKEN``), sent as
            ``Authorization: Bearer``; alone or with ``api_key``. Never echoed.
        max_retries: retries after the first attempt for retryable failures.
        base_delay: first backoff in seconds; doubles per attempt, jittered.
        max_delay: cap on any single wait, including a server's ``retry-after``.
        limits: the time limits (:class:`~leon.llm.base.Limits`), or a function read at
            each call (so a changed setting applies to the next call).
    """

    name = "anthropic"
    is_demo = False

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        auth_token: str | None = None,
        max_retries: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        limits: Limits | Callable[[], Limits] | None = None,
    ) -> None:
        api_key = api_key or None
        auth_token = auth_token or None
        if api_key is None and auth_token is None:
            raise ValueError("an API key or an auth token is needed")
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        fixed = limits if isinstance(limits, Limits) else Limits()
        self._limits: Callable[[], Limits] = limits if callable(limits) else (lambda: fixed)
        # Kept only to scrub them out of any text that might reach the user.
        self.__secrets = [v for v in (api_key, auth_token) if v]
        self.auth_sent = auth_description(key=api_key is not None, token=auth_token is not None)
        headers: dict[str, str] = {}
        if api_key is not None:
            headers["X-Api-Key"] = api_key
        headers["Authorization"] = f"Bearer {auth_token or api_key}"
        # Exactly one explicit credential, so the SDK reads no environment variable or
        # profile file; the headers leon wants then override the SDK's auth header.
        credential = {"auth_token": auth_token} if api_key is None else {"api_key": api_key}
        self._client = anthropic.AsyncAnthropic(
            **credential,
            base_url=base_url,
            default_headers=headers,
            max_retries=0,  # leon retries itself so that it can report each retry
        )
        self.where = safe_url(str(self._client.base_url))

    def __repr__(self) -> str:
        return f"AnthropicProvider(base_url={self.where!r})"

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()

    # -- helpers ---------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """One line, with the credentials removed should anything ever echo them."""
        text = _one_line(text)
        for secret in self.__secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _backoff(self, attempt: int, failure: _Failure) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if failure.retry_after is not None:
            return min(failure.retry_after, self.max_delay)
        delay = min(self.base_delay * (2**attempt), self.max_delay)
        return delay * (1 - 0.25 * random.random())  # jitter so clients don't stampede

    @staticmethod
    def _http_timeout(limits: Limits) -> Any:
        """httpx's own limits: the connect timeout is the one leon relies on; the read
        timeout is only a backstop behind the watchdog (a little longer, so the watchdog
        speaks first and says which limit it was)."""
        read = max(limits.first_event, limits.idle) + 5.0
        return _httpx.Timeout(connect=limits.connect, read=read, write=read,
                              pool=limits.connect)

    def _final_message(self, failure: _Failure, retries: int, out_of_time: bool,
                       elapsed: float, limits: Limits) -> str:
        if failure.status in (401, 403):
            what = "refused the credentials" if failure.status == 401 else "denied access"
            detail = f"{failure.status} {failure.detail}".strip()
            return f"the server at {self.where} {what} ({detail}): sent {self.auth_sent}"
        if out_of_time:
            attempts = retries + 1
            return (f"{failure.summary}; gave up after {attempts} attempt"
                    f"{'s' if attempts != 1 else ''} in {duration_text(elapsed)} (the total "
                    f"deadline is {duration_text(limits.total)}: api.total_deadline)")
        if failure.retryable and retries:
            message = f"{failure.label} after {retries} retries"
            return message + (f": {failure.detail}" if failure.detail else "")
        return failure.summary

    # -- streaming -------------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream one reply: TextDelta / ToolUseStarted / Retrying ..., then Completed.

        Raises ProviderError when the call fails for good, StreamInterrupted when it
        breaks after output reached the caller. Cancelling the consumer closes the
        HTTP stream (the SDK's context manager does that on the way out); a consumer
        that merely stops iterating should ``aclose()`` the generator (or use
        ``contextlib.aclosing``) so the connection is released at once, not at GC.

        Time limits: an attempt that sends no event within ``first_event`` seconds, or
        stops for ``idle`` seconds, fails; failures before any output are retried while
        the total deadline allows. ``latency_ms`` in the result runs from this call to
        the final message, so it includes any retries and their waits (``retries`` says
        how many there were).
        """
        params = build_request_params(request)
        limits = self._limits()
        params["timeout"] = self._http_timeout(limits)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        deadline = loop.time() + limits.total
        retries = 0
        while True:
            partial = _Partial()
            emitted = False  # has anything of this attempt reached the caller?
            try:
                async with contextlib.AsyncExitStack() as stack:
                    # The first event must come within first_event (and the deadline):
                    # that covers connecting, sending, and waiting for the headers.
                    attempt_start = loop.time()
                    first_by = min(attempt_start + limits.first_event, deadline)
                    watch = asyncio.timeout_at(first_by)
                    try:
                        async with watch:
                            stream = await stack.enter_async_context(
                                self._client.messages.stream(**params))
                    except TimeoutError:
                        if not watch.expired():
                            raise
                        raise _Stalled(loop.time() - attempt_start, started=False) from None
                    events = stream.__aiter__()
                    seen = False  # any event of this attempt yet?
                    stopped = False
                    while True:
                        waiting_since = loop.time()
                        watch = asyncio.timeout_at(
                            waiting_since + limits.idle if seen else first_by)
                        try:
                            async with watch:
                                event = await events.__anext__()
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            if not watch.expired():
                                raise
                            waited = loop.time() - (waiting_since if seen else attempt_start)
                            raise _Stalled(waited, started=seen) from None
                        seen = True
                        etype = event.type
                        if etype == "content_block_start":
                            block = event.content_block
                            if block.type == "text":
                                partial.start(event.index, {"type": "text", "text": block.text})
                            elif block.type == "tool_use":
                                partial.start(
                                    event.index,
                                    {
                                        "type": "tool_use",
                                        "id": block.id,
                                        "name": block.name,
                                        "input": {},
                                        "_complete": False,
                                    },
                                )
                                emitted = True
                                yield ToolUseStarted(id=block.id, name=block.name)
                            else:
                                partial.start(event.index, {"type": block.type, "_complete": False})
                        elif etype == "content_block_delta":
                            if event.delta.type == "text_delta" and event.delta.text:
                                partial.add_text(event.index, event.delta.text)
                                emitted = True
                                yield TextDelta(event.delta.text)
                        elif etype == "content_block_stop":
                            # The SDK hands us the finished block (tool input parsed).
                            done = _plain_block(event.content_block)
                            if done.get("type") != "text":
                                partial.start(event.index, done)
                            partial.stop(event.index)
                        elif etype == "message_stop":
                            stopped = True
                    if not stopped:
                        raise _IncompleteStream("stream ended before message_stop")
                    final = await stream.get_final_message()
            except (
                anthropic.AnthropicError,
                _httpx.HTTPError,
                _IncompleteStream,
                _Stalled,
                *_SURPRISES,
            ) as err:
                failure = _classify(err, limits)
            else:
                failure = None
            # Handled outside the `except` block so that the ProviderError raised below
            # carries no __context__: SDK exceptions hold whole response bodies and
            # request objects, none of which belongs in a traceback a user may paste.
            if failure is not None:
                log.debug("anthropic attempt failed: %s", self._scrub(failure.summary))
                if emitted:
                    raise StreamInterrupted(
                        self._scrub(f"stream interrupted: {failure.summary}"),
                        partial.content(),
                        status=failure.status,
                    )
                # Did this attempt run into the deadline (its wait was cut short by it)?
                out_of_time = failure.retryable and deadline - loop.time() <= 0.05
                if failure.retryable and retries < self.max_retries and not out_of_time:
                    delay = self._backoff(retries, failure)
                    left = deadline - loop.time()
                    # Worth another attempt only if it gets a fair share of its limit.
                    if left - delay >= min(limits.first_event, 1.0):
                        retries += 1
                        yield Retrying(
                            attempt=retries,
                            delay=delay,
                            reason=self._scrub(failure.summary),
                            status=failure.status,
                            left=left,
                        )
                        await asyncio.sleep(delay)
                        continue
                    out_of_time = True
                raise ProviderError(
                    self._scrub(self._final_message(failure, retries, out_of_time,
                                                    time.monotonic() - started, limits)),
                    status=failure.status, retryable=failure.retryable)

            response = ModelResponse(
                content=_final_content(final.content),
                stop_reason=_stop_reason(getattr(final, "stop_reason", None)),
                usage=_usage(getattr(final, "usage", None)),
                model=final.model,
                latency_ms=(time.monotonic() - started) * 1000.0,
                retries=retries,
            )
            yield Completed(response)
            return
