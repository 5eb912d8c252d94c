"""Credentials that proxies and gateways accept, and servers of other shapes.

The SDK sends ``api_key=`` only as ``Authorization: Bearer``, so a proxy that reads the
``x-api-key`` header the Messages API documents refused leon ("missing x-api-key
header"), and ``ANTHROPIC_AUTH_TOKEN`` alone fell back to the demo model. These run the
real SDK (and the real ``leon``) against servers that read one header or the other, and
that report usage in the shapes proxies do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakeapi import FakeAnthropic, text

from leon.agent import events as ev
from leon.agent.tools import ToolRegistry, read_only_tools
from leon.agent.turn import Agent
from leon.config import Settings
from leon.llm.anthropic_provider import AnthropicProvider
from leon.llm.base import Completed, ModelRequest, ProviderError
from leon.runtime import choose_provider

MODEL = "claude-sonnet-4-6"
KEY = "sk-ant-api03-KEY-never-printed-0123456789"
TOKEN = "gw-TOKEN-never-printed-9876543210"


def request() -> ModelRequest:
    return ModelRequest(model=MODEL, system="be brief",
                        messages=[{"role": "user", "content": "hello"}])


async def one_call(provider: AnthropicProvider) -> Completed:
    try:
        events = [e async for e in provider.stream(request())]
    finally:
        await provider.aclose()
    assert isinstance(events[-1], Completed)
    return events[-1]


# ------------------------------------------------------------------- on the wire


@pytest.mark.parametrize(("key", "token", "want_key_header", "want_bearer"), [
    (KEY, None, KEY, KEY),          # the key in x-api-key, and as the SDK sends it
    (None, TOKEN, None, TOKEN),     # a gateway token alone: Authorization only
    (KEY, TOKEN, KEY, TOKEN),       # both: each in its own header
])
async def test_headers_on_the_wire(key, token, want_key_header, want_bearer):
    with FakeAnthropic(KEY, auth_token=TOKEN) as api:
        await one_call(AnthropicProvider(key, api.base_url, auth_token=token))
        headers = api.message_requests()[0]["headers"]
    assert headers.get("x-api-key") == want_key_header
    assert headers.get("authorization") == f"Bearer {want_bearer}"


async def test_the_sdk_reads_no_credential_of_its_own(monkeypatch):
    # Whatever else the environment holds, only the credentials leon passed are sent:
    # the SDK reads ANTHROPIC_* variables (and profile files) only when given none.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "tok-from-the-environment")
    with FakeAnthropic(KEY, auth="bearer", auth_token=TOKEN) as api:
        await one_call(AnthropicProvider(None, api.base_url, auth_token=TOKEN))
        headers = api.message_requests()[0]["headers"]
    assert "x-api-key" not in headers
    assert headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(("auth", "key", "token"), [
    ("x-api-key", KEY, None),   # the proxy of the issue
    ("bearer", KEY, None),      # a proxy that reads only the Authorization header
    ("bearer", None, TOKEN),    # a gateway with its own token
    ("x-api-key", KEY, TOKEN),  # key for the proxy, token alongside
    ("bearer", KEY, TOKEN),
    ("either", None, TOKEN),
])
async def test_each_server_shape_accepts_leon(auth, key, token):
    # The server's bearer token is the gateway's own when the client has one, else the key.
    with FakeAnthropic(KEY, auth=auth, auth_token=token) as api:
        api.script(text("accepted"))
        done = await one_call(AnthropicProvider(key, api.base_url, auth_token=token))
    assert done.response.content == [{"type": "text", "text": "accepted"}]


async def test_a_refusal_names_the_headers_sent_never_the_values():
    with FakeAnthropic(KEY, auth="x-api-key") as api:
        provider = AnthropicProvider(None, api.base_url, auth_token=TOKEN)
        with pytest.raises(ProviderError) as info:
            await one_call(provider)
        base = api.base_url
    assert info.value.message == (
        f"the server at {base} refused the credentials (401 missing x-api-key header): "
        "sent Authorization: Bearer from ANTHROPIC_AUTH_TOKEN")
    assert TOKEN not in repr(info.value) and info.value.__context__ is None


def test_a_base_url_with_credentials_in_it_is_printed_without_them():
    provider = AnthropicProvider(KEY, "http://user:hunter2@127.0.0.1:9/v?key=sk-x#frag")
    assert provider.where == "http://127.0.0.1:9/v"
    assert "hunter2" not in repr(provider) and "sk-x" not in repr(provider)


def test_choose_provider_takes_a_gateway_token_alone():
    settings = Settings()
    demo = choose_provider(MODEL, settings, env={})
    assert demo.model == "demo" and "ANTHROPIC_AUTH_TOKEN" in (demo.notice or "")
    for env in ({"ANTHROPIC_AUTH_TOKEN": TOKEN}, {"ANTHROPIC_API_KEY": KEY},
                {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_AUTH_TOKEN": TOKEN}):
        choice = choose_provider(MODEL, settings, env={**env, "ANTHROPIC_BASE_URL": "http://x"})
        assert choice.model == MODEL and not choice.provider.is_demo and choice.notice is None
    blank = choose_provider(MODEL, settings, env={"ANTHROPIC_AUTH_TOKEN": "  "})
    assert blank.model == "demo"  # a blank variable is no credential


# ------------------------------------------------------------------- usage shapes


@pytest.mark.parametrize("shape", ["full", "no_cache", "null_cache", "minimal"])
async def test_usage_in_every_proxy_shape(shape, stores, tmp_path):
    """A proxy that omits the cache fields, sends them as null, or reports no input
    usage at all: the turn completes, usage is stored as what was reported (0 for what
    was not), and a missing input count never passes for a measurement (the gauge would
    show the output tokens as the whole context)."""
    with FakeAnthropic(KEY, usage_shape=shape) as api:
        api.script(text("first answer"), text("second answer"))
        provider = AnthropicProvider(KEY, api.base_url)
        thread = await stores.leon.create_thread("scoped")
        agent = Agent(store=stores.leon, provider=provider,
                      tools=ToolRegistry(read_only_tools()), settings=Settings(),
                      thread=thread, workspace=tmp_path, model=MODEL)
        seen: list[ev.AgentEvent] = []
        agent.subscribe(seen.append)
        await agent.load()
        try:
            for prompt in ("one", "two"):
                result = await agent.send(prompt)
                assert result.stop_reason == "end_turn"
            gauge = await agent.gauge()
        finally:
            await provider.aclose()
    usage = [e for e in seen if isinstance(e, ev.UsageRecorded)]
    assert len(usage) == 2 and all(u.output_tokens > 0 for u in usage)
    if shape == "full":
        assert usage[1].cache_read_input_tokens > 0 and gauge.measured
    else:
        assert all(u.cache_read_input_tokens == 0 == u.cache_creation_input_tokens
                   for u in usage)
    if shape == "minimal":
        assert all(u.input_tokens == 0 for u in usage)
        assert not gauge.measured and gauge.total > usage[-1].output_tokens * 10


# ------------------------------------------------------------ the real `leon run`


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def env(leon_paths, tmp_path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    e.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache))
    return e


def leaked(home: Path, *secrets: str) -> list[str]:
    """Files under ``home`` that contain any of ``secrets``."""
    out = []
    for path in home.rglob("*"):
        if path.is_file() and any(s.encode() in path.read_bytes() for s in secrets):
            out.append(str(path))
    return out


@pytest.mark.parametrize(("auth", "shape", "creds"), [
    ("x-api-key", "no_cache", {"ANTHROPIC_API_KEY": KEY}),
    ("bearer", "null_cache", {"ANTHROPIC_AUTH_TOKEN": TOKEN}),
    ("either", "minimal", {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_AUTH_TOKEN": TOKEN}),
])
def test_leon_run_against_each_server_shape(env, leon_paths, auth, shape, creds):
    with FakeAnthropic(KEY, auth=auth, auth_token=TOKEN, usage_shape=shape) as api:
        api.script(text(f"answer from a {auth} server"))
        out = run({**env, **creds, "ANTHROPIC_BASE_URL": api.base_url},
                  "run", "-m", MODEL, "hello")
        requests = api.message_requests()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"answer from a {auth} server"
    assert "demo" not in out.stderr and len(requests) == 1
    assert not leaked(leon_paths.home, KEY, TOKEN)


def test_leon_run_refused_says_which_header_and_keeps_the_message(env, leon_paths):
    with FakeAnthropic(KEY, auth="x-api-key") as api:
        base = api.base_url
        out = run({**env, "ANTHROPIC_AUTH_TOKEN": TOKEN, "ANTHROPIC_BASE_URL": base},
                  "run", "-m", MODEL, "--thread", "t", "hello there")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"leon: the server at {base} refused the credentials (401 missing x-api-key header): "
        "sent Authorization: Bearer from ANTHROPIC_AUTH_TOKEN")
    assert TOKEN not in out.stdout + out.stderr and not leaked(leon_paths.home, TOKEN)
    shown = run(env, "threads", "show", "t")
    assert "hello there" in shown.stdout


@pytest.mark.parametrize(("creds", "says"), [
    ({"ANTHROPIC_API_KEY": KEY}, "x-api-key and Authorization: Bearer, both from "
                                 "ANTHROPIC_API_KEY"),
    ({"ANTHROPIC_AUTH_TOKEN": TOKEN}, "Authorization: Bearer from ANTHROPIC_AUTH_TOKEN"),
    ({}, "neither ANTHROPIC_API_KEY nor ANTHROPIC_AUTH_TOKEN is set"),
])
def test_doctor_says_which_credential_without_printing_it(env, creds, says):
    url = "http://proxy-user:proxy-pass@127.0.0.1:9/v1?key=sk-in-url"
    out = run({**env, **creds, "ANTHROPIC_BASE_URL": url}, "doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert says in out.stdout
    for secret in (KEY, TOKEN, "proxy-pass", "sk-in-url"):
        assert secret not in out.stdout + out.stderr
    if creds:
        assert "API at http://127.0.0.1:9/v1" in out.stdout
