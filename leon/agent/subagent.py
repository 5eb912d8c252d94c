"""Sub-agents: the ``task`` tool's work.

A sub-agent is an :class:`~leon.agent.turn.Agent` on a new thread of kind ``subagent``
(``parent_id`` = the delegating thread, ``agent`` = its profile) with its own context
(only the prompt), its own memory middleware (it is a full Agent), its own tool session
(its own sandbox lease and "always" answers; the same asker, so the user is asked about
its calls too) and a subset of the parent's tools: those its profile names, less
``task`` when another level would be too deep. It runs to the end of one turn; its final
answer becomes the tool result, its thread is marked ``completed``, the outcome is posted
to chat.db from its entity (so it survives when the thread is pruned), and its net file
changes are recorded in the parent's history, so rolling the parent back restores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import TYPE_CHECKING

from leon.agent.chatlink import agent_entity, subagent_entity
from leon.agent.profiles import Profile
from leon.agent.tools.base import ToolRegistry, ToolResult
from leon.agent.turn import Agent, TurnError

if TYPE_CHECKING:
    from leon.agent.session import ToolSession

SUBAGENT_NOTE = """You are a sub-agent: another agent delegated one task to you. Nobody \
can answer questions while you work. Use your tools to do the task, then end your turn with \
a final answer that stands on its own — it is all the delegating agent receives (it does \
not see your tool calls). Be complete about what you found or changed (paths, line \
numbers, commands and their results) and concise about everything else."""


class SubAgent(Agent):
    """An Agent whose system prompt adds the sub-agent note and the profile's prompt."""

    extra_system = ""

    @property
    def system(self) -> str:
        return super().system + "\n\n" + self.extra_system


def child_tools(parent: ToolRegistry, profile: Profile, child_depth: int,
                max_depth: int) -> ToolRegistry:
    names = parent.names()
    if profile.tools is not None:
        names = [n for n in names if n in profile.tools]
    if child_depth + 1 > max_depth:
        names = [n for n in names if n != "task"]
    return ToolRegistry([t for n in names if (t := parent.get(n)) is not None])


async def run_subagent(parent: ToolSession, profile: Profile, description: str,
                       prompt: str) -> ToolResult:
    from leon.agent.session import ToolSession

    agent = parent.agent
    assert agent is not None
    stores = parent.stores
    demo = getattr(agent.provider, "is_demo", False)
    model = agent.model if demo or not profile.model else profile.model
    thread = await stores.leon.create_thread(
        "subagent", title=description[:80], parent_id=agent.thread.id, agent=profile.name,
        model=model)
    depth = parent.depth + 1
    session = ToolSession(
        stores=stores, paths=parent.paths, settings=parent.settings, asker=parent.asker,
        depth=depth, speaker=subagent_entity(profile.name),
        requester=parent.chat.speaker if parent.chat else agent_entity("default"),
        mention_user=True, profiles=parent.profiles)
    child = SubAgent(
        store=stores.leon, provider=agent.provider,
        tools=child_tools(agent.tools, profile, depth, parent.settings["agents.max_depth"]),
        settings=agent.settings, thread=thread, workspace=agent.workspace, model=model,
        spill_root=agent.spill_root, session=session)
    child.extra_system = SUBAGENT_NOTE + (f"\n\n{profile.system_prompt}"
                                          if profile.system_prompt else "")
    await child.load()
    failure: str | None = None
    text, rounds = "", 0
    try:
        result = await child.send(prompt)
        text, rounds = result.text.strip(), result.rounds
    except TurnError as exc:
        failure = str(exc)
    finally:
        # Cleanup runs to the end even when the turn is cancelled meanwhile, and before the
        # parent stores its results (so the carried-over changes get their checkpoint).
        cleanup = asyncio.ensure_future(_finish(parent, session, thread.id))
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            await cleanup
            raise
    meta = {"thread_id": thread.id, "agent": profile.name, "rounds": rounds}
    if failure is not None:
        return ToolResult(f"the sub-agent failed: {failure} (its thread: {thread.id}); do the "
                          "task yourself or report the failure", is_error=True, meta=meta)
    return ToolResult(text or "(the sub-agent ended without a final answer)", meta=meta)


async def _finish(parent: ToolSession, session: ToolSession, thread_id: str) -> None:
    """Release the child's lease, complete its thread and carry its net file changes into
    the parent's history. (Its outcome, or failure, is already in chat.db.)"""
    await session.close()
    with contextlib.suppress(sqlite3.Error):
        await parent.stores.leon.update_thread(thread_id, status="completed")
    first: dict[str, str | None] = {}
    last: dict[str, str | None] = {}
    for op in await parent.state.file_ops(thread_id):
        if op.kind == "restore":
            continue
        first.setdefault(op.path, op.before_hash)
        last[op.path] = op.after_hash
    for path, before in first.items():
        if before != last[path]:
            op_id = await parent.state.add_file_op(parent.thread_id, path, before, last[path],
                                                   kind="subagent", tool="task",
                                                   workspace=str(parent.workspace))
            parent.pending_ops.append(op_id)
