"""Putting the layers together for one run: settings, stores, provider, thread, agent.
Used by the CLI, the TUI and the tests, so all three build leon the same way."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leon.agent.permissions import Asker
from leon.agent.tools import ToolRegistry, read_only_tools
from leon.agent.turn import Agent
from leon.config import Settings
from leon.llm.base import Limits, Provider, auth_description
from leon.paths import Paths
from leon.store import Stores
from leon.store.models import Thread

DEMO = "demo"


@dataclass
class ProviderChoice:
    provider: Provider
    model: str
    notice: str | None  # said plainly to the user when leon falls back to the demo model


@dataclass(frozen=True)
class Credentials:
    """What the environment offers to authenticate with: the API key
    (``ANTHROPIC_API_KEY``, sent as ``x-api-key``) and a gateway's bearer token
    (``ANTHROPIC_AUTH_TOKEN``, sent as ``Authorization: Bearer``)."""

    key: str
    token: str
    base_url: str | None

    @property
    def any(self) -> bool:
        return bool(self.key or self.token)

    def describe(self) -> str:
        """Which variables are used and in which headers, never their values."""
        return auth_description(key=bool(self.key), token=bool(self.token))


def credentials(env: dict[str, str] | None = None) -> Credentials:
    """The credentials and API root in ``env`` (default: this process's environment)."""
    env = dict(os.environ) if env is None else env
    return Credentials(env.get("ANTHROPIC_API_KEY", "").strip(),
                       env.get("ANTHROPIC_AUTH_TOKEN", "").strip(),
                       env.get("ANTHROPIC_BASE_URL", "").strip() or None)


def api_limits(settings: Settings) -> Limits:
    """The ``api.*`` time limits as they are now (read at each call)."""
    return Limits(connect=settings["api.connect_timeout"],
                  first_event=settings["api.first_event_timeout"],
                  idle=settings["api.idle_timeout"], total=settings["api.total_deadline"])


def choose_provider(model: str | None, settings: Settings, env: dict[str, str] | None = None,
                    *, demo_delay: float = 0.0, deferred: bool = False) -> ProviderChoice:
    """``--model demo``, or neither an API key nor an auth token → the offline demo model;
    otherwise Claude via the SDK. ``deferred``: Claude's provider is a
    :class:`~leon.llm.deferred.DeferredProvider`, so the SDK is imported later, in a thread
    (the TUI starts it once the thread is shown)."""
    wanted = model or settings["model"]
    from leon.llm.demo import DemoProvider

    if wanted == DEMO:
        return ProviderChoice(DemoProvider(delay=demo_delay), DEMO,
                              "demo model: offline and deterministic, not Claude")
    creds = credentials(env)
    if not creds.any:
        return ProviderChoice(
            DemoProvider(delay=demo_delay), DEMO,
            "no ANTHROPIC_API_KEY set: using the offline demo model (not Claude). "
            "Set the key (or ANTHROPIC_AUTH_TOKEN for a gateway) to chat with Claude.")

    def claude() -> Provider:
        from leon.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(api_key=creds.key or None, base_url=creds.base_url,
                                 auth_token=creds.token or None,
                                 limits=lambda: api_limits(settings))

    if deferred:
        from leon.llm.deferred import DeferredProvider

        return ProviderChoice(DeferredProvider(claude), wanted, None)
    return ProviderChoice(claude(), wanted, None)


def today(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now()).strftime("%Y-%m-%d")


async def resolve_thread(stores: Stores, *, thread: str | None = None, kind: str | None = None,
                         continue_last: bool = False, model: str = "",
                         settings: Settings | None = None) -> Thread:
    """``--thread NAME`` → that scoped thread (made on first use); ``-c`` → the latest;
    ``kind='oneshot'`` → a new ephemeral thread; otherwise the general thread of the
    current day (``[lifecycle]``: :func:`leon.lifecycle.rollover.general_thread`).
    ``settings`` default to config.toml's."""
    store = stores.leon
    if thread:
        found = await store.thread_by_name(thread)
        if found is None:
            try:
                found = await store.find_thread(thread)
            except LookupError:
                try:
                    found = await store.create_thread("scoped", name=thread, title=thread,
                                                      model=model)
                except sqlite3.IntegrityError:  # another leon created it a moment ago
                    found = await store.thread_by_name(thread)
                    if found is None:
                        raise
        return found
    if continue_last:
        latest = await store.latest_thread()
        if latest is not None:
            return latest
    if kind == "oneshot":
        return await store.create_thread("oneshot", model=model)
    from leon.lifecycle.rollover import general_thread

    return await general_thread(stores, settings or _config_settings(), model=model)


def _config_settings() -> Settings:
    from leon.config import ConfigError, load_settings
    from leon.paths import default_paths

    try:
        return load_settings(default_paths().config)
    except ConfigError:
        return Settings()


def default_tools(profiles: dict[str, Any] | None = None, *,
                  with_task: bool = True) -> ToolRegistry:
    """Every tool: the read-only ones, write_file/edit_file, bash and (unless
    ``with_task`` is false) task, whose description lists the agent ``profiles``."""
    from leon.agent.tools.bash import bash_tools
    from leon.agent.tools.task import TaskTool
    from leon.agent.tools.write import write_tools

    tools: list[Any] = [*read_only_tools(), *write_tools(), *bash_tools()]
    if with_task:
        tools.append(TaskTool({n: p.description for n, p in (profiles or {}).items()}))
    return ToolRegistry(tools)


async def make_agent(stores: Stores, paths: Paths, settings: Settings, choice: ProviderChoice,
                     thread: Thread, workspace: Path, *, asker: Asker | None = None,
                     user_present: bool = False, housekeep: bool = True) -> Agent:
    """The agent of ``thread`` with every tool. ``asker`` answers permission requests
    (None: calls that need permission are denied); ``user_present``: the user watches
    replies arrive (the TUI), so chat.db marks them read at once. ``housekeep=False``
    leaves the start-up housekeeping to the caller (the TUI runs it once the thread is
    painted). Call ``agent.close()`` when done (it releases the sandbox lease)."""
    from leon.agent.profiles import load_profiles
    from leon.agent.sandbox import startup_cleanup
    from leon.agent.session import ToolSession
    from leon.lifecycle.skills import load_skills
    from leon.lifecycle.startup import prepare_thread

    # Lifecycle housekeeping (once per process) and the daily rollover's handoff.
    thread = await prepare_thread(stores, paths, settings, choice.provider, choice.model, thread,
                                  housekeep=housekeep)
    await startup_cleanup(stores.leon, stores.sandbox, paths)
    profiles, _ = load_profiles(paths.agents)
    session = ToolSession(stores=stores, paths=paths, settings=settings, asker=asker,
                          user_present=user_present, profiles=profiles)
    tools = default_tools(profiles, with_task=settings["agents.max_depth"] >= 1)
    agent = Agent(store=stores.leon, provider=choice.provider, tools=tools,
                  settings=settings, thread=thread, workspace=workspace, model=choice.model,
                  spill_root=paths.spill, session=session)
    agent.skills = load_skills(paths.skills)  # in the system prompt; stored once per snapshot
    await agent.load()
    return agent
