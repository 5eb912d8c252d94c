"""Putting the layers together for one run: settings, stores, provider, thread, agent.
Used by the CLI, the TUI and the tests, so all three build leon the same way."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from leon.agent.tools import ToolRegistry, read_only_tools
from leon.agent.turn import Agent
from leon.config import Settings
from leon.llm.base import Provider
from leon.paths import Paths
from leon.store import Stores
from leon.store.models import Thread

DEMO = "demo"


@dataclass
class ProviderChoice:
    provider: Provider
    model: str
    notice: str | None  # said plainly to the user when leon falls back to the demo model


def choose_provider(model: str | None, settings: Settings, env: dict[str, str] | None = None,
                    *, demo_delay: float = 0.0) -> ProviderChoice:
    """``--model demo`` or no API key → the offline demo model; otherwise Claude via the SDK."""
    env = dict(os.environ) if env is None else env
    wanted = model or settings["model"]
    from leon.llm.demo import DemoProvider

    if wanted == DEMO:
        return ProviderChoice(DemoProvider(delay=demo_delay), DEMO,
                              "demo model: offline and deterministic, not Claude")
    key = env.get("ANTHROPIC_API_KEY", "").strip()
    if not key:
        return ProviderChoice(
            DemoProvider(delay=demo_delay), DEMO,
            "no ANTHROPIC_API_KEY set: using the offline demo model (not Claude). "
            "Set the key to chat with Claude.")
    from leon.llm.anthropic_provider import AnthropicProvider

    base_url = env.get("ANTHROPIC_BASE_URL") or None
    return ProviderChoice(AnthropicProvider(api_key=key, base_url=base_url), wanted, None)


def today(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now()).strftime("%Y-%m-%d")


async def resolve_thread(stores: Stores, *, thread: str | None = None, kind: str | None = None,
                         continue_last: bool = False, model: str = "") -> Thread:
    """``--thread NAME`` → that scoped thread (made on first use); ``-c`` → the latest;
    ``kind='oneshot'`` → a new ephemeral thread; otherwise today's general thread."""
    store = stores.leon
    if thread:
        found = await store.thread_by_name(thread)
        if found is None:
            try:
                found = await store.find_thread(thread)
            except LookupError:
                found = await store.create_thread("scoped", name=thread, title=thread, model=model)
        return found
    if continue_last:
        latest = await store.latest_thread()
        if latest is not None:
            return latest
    if kind == "oneshot":
        return await store.create_thread("oneshot", model=model)
    day = today()
    general = await store.general_thread(day)
    if general is None:
        general = await store.create_thread("general", day=day, title=f"General {day}",
                                            model=model)
    return general


def default_tools() -> ToolRegistry:
    return ToolRegistry(read_only_tools())


async def make_agent(stores: Stores, paths: Paths, settings: Settings, choice: ProviderChoice,
                     thread: Thread, workspace: Path) -> Agent:
    agent = Agent(store=stores.leon, provider=choice.provider, tools=default_tools(),
                  settings=settings, thread=thread, workspace=workspace, model=choice.model,
                  spill_root=paths.spill)
    await agent.load()
    return agent
