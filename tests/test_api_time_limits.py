"""Time limits a person accepts, against servers that stop answering.

Before, the SDK's 600 s read timeout (times its retries) held leon for the better part
of an hour on a server that accepted the connection and sent nothing, and a stream that
stalled mid-reply was noticed after 603 s. Now: a connect timeout, a limit to the first
event and between events, and retries within a total deadline. The tests use limits of
half a second and assert what happened and what was said, never how long it took.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from fakeapi import BlackHole, FakeAnthropic, error, stall, text

from leon.agent import events as ev
from leon.commands import retry_line
from leon.config import KEYS, ConfigError, Settings, describe_keys
from leon.llm.anthropic_provider import AnthropicProvider
from leon.llm.base import (
    Completed,
    Limits,
    ModelRequest,
    ProviderError,
    Retrying,
    StreamInterrupted,
    TextDelta,
    duration_text,
)
from leon.runtime import api_limits
from leon.ui.widgets.events import describe

MODEL = "claude-sonnet-4-6"
SHORT = Limits(connect=0.5, first_event=0.5, idle=0.5, total=2.0)


def request() -> ModelRequest:
    return ModelRequest(model=MODEL, system="be brief",
                        messages=[{"role": "user", "content": "hello"}])


async def call(provider: AnthropicProvider) -> tuple[list, BaseException | None, float]:
    """Every event of one call, the error it ended with (or None), and its duration."""
    events: list = []
    started = time.monotonic()
    try:
        async for event in provider.stream(request()):
            events.append(event)
    except ProviderError as exc:
        return events, exc, time.monotonic() - started
    finally:
        await provider.aclose()
    return events, None, time.monotonic() - started


def provider_for(base_url: str, limits: Limits = SHORT) -> AnthropicProvider:
    return AnthropicProvider("sk-test-key", base_url, base_delay=0.05, max_delay=0.2,
                             limits=limits)


# ----------------------------------------------------------------- the provider


@pytest.mark.parametrize("after", [None, 0], ids=["never-answers", "headers-then-nothing"])
async def test_a_silent_server_fails_within_the_deadline(after):
    with FakeAnthropic() as api:
        api.script(*[stall(after) for _ in range(8)])
        events, err, took = await call(provider_for(api.base_url))
        attempts = len(api.message_requests())
        # leon hangs up on every stalled attempt: no connection is left waiting.
        hung_up = [api.wait_for_disconnect(10) for _ in range(attempts)]
    print(f"silent server ({after=}): gave up after {took:.2f} s, {attempts} attempts")
    assert isinstance(err, ProviderError) and not isinstance(err, StreamInterrupted)
    retries = [e for e in events if isinstance(e, Retrying)]
    assert attempts == len(retries) + 1 >= 2 and all(hung_up)
    assert all(r.reason == "no answer from the API for 0.5 s" and r.status is None
               for r in retries)
    lefts = [r.left for r in retries]
    assert all(left is not None and 0 < left <= 2.0 for left in lefts)
    assert lefts == sorted(lefts, reverse=True)
    assert err.message.startswith(
        f"no answer from the API for 0.5 s; gave up after {attempts} attempts in ")
    assert err.message.endswith("(the total deadline is 2 s: api.total_deadline)")


async def test_a_stall_mid_reply_keeps_what_arrived():
    # events: message_start, content_block_start, ping, "alpha ", "beta " | nothing more
    with FakeAnthropic() as api:
        api.script(stall(5, text("alpha beta gamma delta")), text("never asked for"))
        events, err, took = await call(provider_for(api.base_url))
        assert api.wait_for_disconnect(10)
        assert len(api.message_requests()) == 1  # output was shown: no replay
    print(f"stall mid-reply: noticed after {took:.2f} s")
    assert isinstance(err, StreamInterrupted)
    assert err.message == "stream interrupted: the API stopped sending for 0.5 s"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["alpha ", "beta "]
    assert err.partial == [{"type": "text", "text": "alpha beta "}]


async def test_a_stall_before_any_output_is_retried():
    # message_start and the block's start arrive, then nothing: nothing reached the user,
    # so another attempt is safe.
    with FakeAnthropic() as api:
        api.script(stall(2, text("lost")), text("second try"))
        events, err, _ = await call(provider_for(api.base_url))
    assert err is None
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert retry.reason == "the API stopped sending for 0.5 s"
    assert isinstance(events[-1], Completed)
    assert events[-1].response.content == [{"type": "text", "text": "second try"}]


async def test_a_connection_that_never_opens_hits_the_connect_timeout():
    with BlackHole() as hole:
        limits = Limits(connect=0.5, first_event=5.0, idle=5.0, total=3.0)
        events, err, took = await call(provider_for(hole.base_url, limits))
    print(f"connect timeout: gave up after {took:.2f} s")
    retries = [e for e in events if isinstance(e, Retrying)]
    assert retries and all(r.reason == "could not connect within 0.5 s" for r in retries)
    assert isinstance(err, ProviderError)
    assert err.message.startswith("could not connect within 0.5 s; gave up after ")


async def test_a_reply_that_keeps_streaming_outlives_the_deadline():
    # Twenty events 0.15 s apart: about 3 s in all, past a 1 s total deadline, but never
    # idle for the 0.5 s limit. The deadline bounds retries, not a healthy reply.
    words = " ".join(f"w{i}" for i in range(16))
    with FakeAnthropic() as api:
        api.script(text(words, delay=0.15))
        limits = Limits(connect=0.5, first_event=0.5, idle=0.5, total=1.0)
        events, err, took = await call(provider_for(api.base_url, limits))
    print(f"slow healthy stream: {took:.2f} s against a 1 s deadline")
    assert err is None and isinstance(events[-1], Completed)
    assert events[-1].response.content == [{"type": "text", "text": words}]


async def test_a_wait_the_server_asks_for_beyond_the_deadline_is_not_waited():
    with FakeAnthropic() as api:
        api.script(error(429, retry_after="20"), text("too late"))
        provider = AnthropicProvider("sk-test-key", api.base_url, max_delay=60.0,
                                     limits=SHORT)
        events, err, _ = await call(provider)
        assert len(api.message_requests()) == 1
    assert not [e for e in events if isinstance(e, Retrying)]
    assert isinstance(err, ProviderError) and err.status == 429
    assert err.message.startswith("rate limited (429): Number of request tokens")
    assert "gave up after 1 attempt in " in err.message


async def test_limits_are_read_at_each_call():
    settings = Settings()
    with FakeAnthropic() as api:
        api.script(stall(), text("patient"))
        provider = AnthropicProvider("sk-test-key", api.base_url, base_delay=0.05,
                                     limits=lambda: api_limits(settings))
        settings.set("api.first_event_timeout", 0.5)
        settings.set("api.total_deadline", 0.8)  # too short for a second attempt
        events, err, _ = await call(provider)
        assert isinstance(err, ProviderError) and "gave up after 1 attempt" in err.message
        settings.set("api.total_deadline", 30.0)
        provider = AnthropicProvider("sk-test-key", api.base_url, base_delay=0.05,
                                     limits=lambda: api_limits(settings))
        events, err, _ = await call(provider)
        assert err is None and isinstance(events[-1], Completed)


# ------------------------------------------------------------- words and settings


def test_the_retry_line_says_the_wait_the_attempt_and_the_time_left():
    event = ev.Retried(1, 4.0, "no answer from the API for 60 s", None, 220.0)
    want = "no answer from the API for 60 s; retrying in 4 s (attempt 2, 3 m 40 s left)"
    assert retry_line(event) == want
    described = describe(event)
    assert described is not None and described.text == want
    limited = describe(ev.Retried(2, 0.5, "rate limited (429): slow down", 429, 7.25))
    assert limited is not None
    assert limited.text == "rate limited (429): retrying in 0.5 s (attempt 3, 7.2 s left)"


def test_durations_read_as_a_person_says_them():
    assert [duration_text(s) for s in (0.5, 4, 9.96, 60, 99.4, 220, 300, 3600)] == [
        "0.5 s", "4 s", "10 s", "60 s", "99 s", "3 m 40 s", "5 m", "60 m"]


def test_the_time_limits_are_settings_with_sane_bounds():
    assert api_limits(Settings()) == Limits(connect=10.0, first_event=60.0, idle=60.0,
                                            total=300.0)
    listing = describe_keys()
    for name in ("api.connect_timeout", "api.first_event_timeout", "api.idle_timeout",
                 "api.total_deadline"):
        assert name in listing and KEYS[name].doc
        with pytest.raises(ConfigError):
            Settings({name: 0})  # no limit at all is not a limit
        with pytest.raises(ConfigError):
            Settings({name: "soon"})
    assert api_limits(Settings({"api.idle_timeout": 2})).idle == 2.0


# ------------------------------------------------------------ the real `leon run`


@pytest.fixture
def env(leon_paths, tmp_path) -> dict[str, str]:
    leon_paths.home.mkdir(parents=True, exist_ok=True)
    (leon_paths.home / "config.toml").write_text(
        "[api]\nconnect_timeout = 0.5\nfirst_event_timeout = 0.5\nidle_timeout = 0.5\n"
        "total_deadline = 3.0\n")
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    e.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache),
             ANTHROPIC_API_KEY="sk-test-key")
    return e


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("after", [None, 0], ids=["never-answers", "headers-then-nothing"])
def test_leon_run_gives_up_on_a_silent_server_and_says_so(env, after):
    with FakeAnthropic() as api:
        api.script(*[stall(after) for _ in range(8)])
        started = time.monotonic()
        out = run({**env, "ANTHROPIC_BASE_URL": api.base_url},
                  "run", "-m", MODEL, "--thread", "t", "are you there?")
        took = time.monotonic() - started
    print(f"leon run, silent server ({after=}): exit {out.returncode} after {took:.2f} s")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert any(line.startswith("leon: no answer from the API for 0.5 s; retrying in ")
               and "(attempt 2, " in line and " left)" in line for line in lines)
    assert lines[-1].startswith("leon: no answer from the API for 0.5 s; gave up after ")
    shown = run(env, "threads", "show", "t")
    assert "are you there?" in shown.stdout  # the user's message is kept


def test_leon_run_keeps_a_reply_that_stalls_midway(env):
    with FakeAnthropic() as api:
        api.script(stall(6, text("alpha beta gamma delta")))
        out = run({**env, "ANTHROPIC_BASE_URL": api.base_url},
                  "run", "-m", MODEL, "--thread", "t", "tell me")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stdout.startswith("alpha beta gamma ")
    assert out.stderr.strip().splitlines()[-1] == (
        "leon: reply cut off: stream interrupted: the API stopped sending for 0.5 s "
        "(the partial reply is kept)")
    shown = run(env, "threads", "show", "t").stdout
    assert f"## Claude ({MODEL}) *(interrupted)*" in shown and "alpha beta gamma" in shown


async def test_an_attempt_cut_short_by_the_deadline_says_so():
    # The second attempt may wait only what is left of the deadline (about 2 s of its
    # 3 s): when that runs out, the error names the deadline, not the count of retries.
    with FakeAnthropic() as api:
        api.script(*[stall() for _ in range(4)])
        limits = Limits(connect=0.5, first_event=3.0, idle=3.0, total=5.0)
        provider = AnthropicProvider("sk-test-key", api.base_url, base_delay=0.01,
                                     max_retries=1, limits=limits)
        events, err, took = await call(provider)
    print(f"deadline cut the last attempt: gave up after {took:.2f} s")
    assert len([e for e in events if isinstance(e, Retrying)]) == 1
    assert isinstance(err, ProviderError) and err.message.startswith("no answer from the API")
    assert "; gave up after 2 attempts in " in err.message
    assert err.message.endswith("(the total deadline is 5 s: api.total_deadline)")
