"""Helpers for the tests of the tools that change things: an agent with a tool session,
driven through the real SDK against the local API server (or the demo model)."""

from __future__ import annotations

from typing import Any

from fakeapi import Reply

from leon.agent.permissions import Decision, PermissionRequest
from leon.agent.session import ToolSession
from leon.agent.turn import Agent
from leon.config import Settings
from leon.runtime import default_tools

MODEL = "claude-sonnet-4-6"


class RecordingAsker:
    """Answers permission requests from a script (default: allow once) and keeps them."""

    def __init__(self, *answers: Decision, default: Decision = Decision.ALLOW_ONCE):
        self.answers = list(answers)
        self.default = default
        self.requests: list[PermissionRequest] = []

    async def __call__(self, request: PermissionRequest) -> Decision:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else self.default


def tool_calls(*calls: tuple[str, dict[str, Any]], text: str | None = None) -> Reply:
    """One assistant reply that calls several tools."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks += [{"type": "tool_use", "id": None, "name": n, "input": i} for n, i in calls]
    return Reply(blocks, stop_reason="tool_use")


async def make_agent(stores, paths, workspace, *, fake_api=None, asker: Any = "allow",
                     settings: Settings | None = None, thread=None, tools=None,
                     user_present: bool = False, profiles=None) -> Agent:
    if asker == "allow":
        asker = RecordingAsker()
    settings = settings or Settings()
    if fake_api is not None:
        from leon.llm.anthropic_provider import AnthropicProvider

        provider: Any = AnthropicProvider(api_key=fake_api.api_key, base_url=fake_api.base_url,
                                          base_delay=0.01, max_delay=0.05)
        model = MODEL
    else:
        from leon.llm.demo import DemoProvider

        provider, model = DemoProvider(), "demo"
    thread = thread or await stores.leon.create_thread("scoped")
    session = ToolSession(stores=stores, paths=paths, settings=settings, asker=asker,
                          user_present=user_present, profiles=profiles)
    agent = Agent(store=stores.leon, provider=provider, tools=tools or default_tools(),
                  settings=settings, thread=thread, workspace=workspace, model=model,
                  spill_root=paths.spill, session=session)
    await agent.load()
    return agent


async def call(agent: Agent, name: str, **args: Any):
    """One tool call through the session (permission, lease, history), outside a turn."""
    return await agent.session.call_tool(agent.tools, name, args, agent.tool_context())


def results_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user message of a recorded API request."""
    last = request["body"]["messages"][-1]
    return [b for b in last["content"] if b.get("type") == "tool_result"]


def result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content)
    return str(content)
