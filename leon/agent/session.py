"""The tool session: what one agent's tools that change things need, in one place.

An :class:`~leon.agent.turn.Agent` given a ``session`` calls it at a few points of the
turn loop; the tools reach it through ``ToolContext.session``:

* :meth:`call_tool` wraps every tool call: for a tool that changes something it takes
  the thread's sandbox lease, builds a :class:`PermissionRequest` from the tool's
  ``preview`` (the exact command, the diff) and asks the :class:`PermissionPolicy`;
  after a ``read_file`` it remembers the hash of what the thread saw;
* the file tools call :meth:`require_fresh` and :meth:`record_change`; the changes wait in
  :attr:`pending_ops` until :meth:`results_stored` ties them to the checkpoint of the tool
  results;
* ``bash`` calls :meth:`acquire_sandbox`, :meth:`command_cwd` and :meth:`record_command`;
* ``task`` calls :meth:`run_subagent` (see :mod:`leon.agent.subagent`);
* :meth:`turn_started` / :meth:`turn_finished` mirror the turn into chat.db;
* :meth:`close` releases the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leon.agent import events as ev
from leon.agent.chatlink import USER_ENTITY, ChatLink, EntityRef, agent_entity
from leon.agent.filehistory import sha256
from leon.agent.permissions import Asker, PermissionRequest
from leon.agent.policy import PermissionPolicy
from leon.agent.profiles import Profile, load_profiles
from leon.agent.sandbox import LeaseHeld, SandboxLease
from leon.agent.tools.base import ToolContext, ToolError, ToolRegistry, ToolResult
from leon.agent.tools.paths import is_allowed, resolve_path
from leon.config import Settings
from leon.paths import Paths
from leon.store.sandbox_store import Sandbox
from leon.store.tool_state import ToolState

if TYPE_CHECKING:
    from leon.agent.turn import Agent
    from leon.store import Stores


class ToolSession:
    """One agent's permissions, sandbox lease, file history and sub-agents.

    ``asker``: how to ask the user (the TUI's prompt; ``leon run``'s
    :class:`~leon.agent.policy.NonInteractiveAsker`); None denies every call that needs
    permission. ``depth``: 0 for a top-level agent, 1 for its sub-agents, ...
    """

    def __init__(self, *, stores: Stores, paths: Paths, settings: Settings,
                 asker: Asker | None = None, depth: int = 0,
                 speaker: EntityRef | None = None, requester: EntityRef = USER_ENTITY,
                 user_present: bool = False, mention_user: bool = False,
                 profiles: dict[str, Profile] | None = None):
        self.stores = stores
        self.paths = paths
        self.settings = settings
        self.depth = depth
        self.state = ToolState(stores.leon)
        self.policy = PermissionPolicy(settings, asker, self.state)
        self.profiles = profiles if profiles is not None else load_profiles(paths.agents)[0]
        self._speaker = speaker
        self._requester = requester
        self._user_present = user_present
        self._mention_user = mention_user
        self.chat: ChatLink | None = None
        self.agent: Agent | None = None
        self.sandbox: SandboxLease | None = None
        self.pending_ops: list[int] = []
        self.subagents_this_turn = 0
        self._spilled: dict[str, str] = {}  # tool_use_id -> spill file, from memory events

    # -- wiring --------------------------------------------------------------------
    def bind(self, agent: Agent) -> None:
        """Called by the Agent that owns this session."""
        self.agent = agent
        agent.subscribe(self._on_event)
        speaker = self._speaker or agent_entity(agent.thread.agent or "default")
        self.chat = ChatLink(self.stores.chat, self.stores.leon, speaker=speaker,
                             requester=self._requester, user_present=self._user_present,
                             mention_user=self._mention_user)
        self.sandbox = SandboxLease(self.stores.sandbox, self.paths, agent.thread.id,
                                    self.settings["sandbox.lease_ttl"])

    @property
    def asker(self) -> Asker | None:
        return self.policy.asker

    @asker.setter
    def asker(self, asker: Asker | None) -> None:
        self.policy.asker = asker

    @property
    def thread_id(self) -> str:
        assert self.agent is not None, "session not bound to an agent"
        return self.agent.thread.id

    @property
    def workspace(self) -> Path:
        assert self.agent is not None, "session not bound to an agent"
        return self.agent.workspace

    # -- turn hooks ------------------------------------------------------------------
    async def turn_started(self, text: str) -> None:
        self.subagents_this_turn = 0
        if self.chat is not None and self.agent is not None:
            await self.chat.request(self.agent.thread, text)

    async def turn_finished(self, text: str) -> None:
        if self.chat is not None and self.agent is not None:
            await self.chat.reply(self.agent.thread, text)

    async def turn_failed(self, message: str) -> None:
        if self.chat is not None and self.agent is not None:
            await self.chat.reply(self.agent.thread, f"failed: {message}")

    async def results_stored(self, checkpoint_id: int) -> None:
        """The tool results are stored: tie the file changes made meanwhile to them."""
        ops, self.pending_ops = self.pending_ops, []
        await self.state.attach_file_ops(ops, checkpoint_id)

    def _on_event(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.MemoryEvent) and event.event == "spill":
            tool_use_id, path = event.data.get("tool_use_id"), event.data.get("path")
            if tool_use_id and path:
                self._spilled[str(tool_use_id)] = str(path)

    async def tool_finished(self, tool_use_id: str, result: ToolResult) -> None:
        """After the memory layer shaped the output: if it spilled a command's output to a
        file, record the path with the command's metrics."""
        spill = self._spilled.pop(tool_use_id, None)
        command_id = result.meta.get("command_id")
        if command_id and spill:
            with contextlib.suppress(sqlite3.Error):
                await self.stores.sandbox.set_spill_path(int(command_id), spill)

    async def close(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.release()

    # -- tool calls ------------------------------------------------------------------
    async def call_tool(self, registry: ToolRegistry, name: str, args: Any,
                        ctx: ToolContext) -> ToolResult:
        tool = registry.get(name)
        if tool is not None and isinstance(args, dict) and \
                getattr(tool, "needs_permission", not tool.read_only):
            refusal = await self._permit(tool, name, args, ctx)
            if refusal is not None:
                return refusal
        result = await registry.call(name, args, ctx)
        if name == "read_file" and not result.is_error and isinstance(args, dict):
            await self._note_read(args, ctx)
        return result

    async def _permit(self, tool: Any, name: str, args: dict[str, Any],
                      ctx: ToolContext) -> ToolResult | None:
        """None when the call may run; otherwise the error result to send instead."""
        missing = [k for k in tool.input_schema.get("required", []) if k not in args]
        if missing:
            return None  # the registry reports it; nothing to ask about
        try:
            await self.acquire_sandbox()
            title, detail, subject = await tool.preview(args, ctx)
        except LeaseHeld as exc:
            return ToolResult(f"{name}: not run: {exc}. Another leon process is working in "
                              "this conversation; tell the user.", is_error=True)
        except ToolError as exc:
            return ToolResult(f"{name}: {exc}", is_error=True)
        except (OSError, ValueError, TypeError) as exc:
            return ToolResult(f"{name} failed: {exc}", is_error=True)
        request = PermissionRequest(self.thread_id, name, dict(args), title, detail)
        verdict = await self.policy.check(request, subject)
        if verdict.allowed:
            return None
        return ToolResult(verdict.message, is_error=True,
                          meta={"permission": "denied", "reason": verdict.reason})

    async def _note_read(self, args: dict[str, Any], ctx: ToolContext) -> None:
        path = args.get("path")
        if not isinstance(path, str):
            return
        try:
            p = resolve_path(ctx, path)
            if not is_allowed(ctx, p, write=True) or not p.is_file():
                return
            data = await asyncio.to_thread(p.read_bytes)
        except (ToolError, OSError):
            return
        await self.state.record_read(self.thread_id, str(p), sha256(data))

    # -- services for the file tools -----------------------------------------------------
    async def require_fresh(self, path: Path, shown: str, content: bytes | None) -> None:
        """Refuse to edit a file this thread has not read, or that changed since."""
        seen = await self.state.read_hash(self.thread_id, str(path))
        if seen is None:
            raise ToolError(f"{shown} has not been read in this conversation; read it with "
                            "read_file first, then edit it")
        if content is None or sha256(content) != seen:
            raise ToolError(f"{shown} has changed since it was last read (by a command, another "
                            "program or a sub-agent); read it again with read_file, then edit")

    async def record_change(self, path: Path, before: bytes | None, after: bytes | None,
                            tool: str) -> None:
        before_hash = await self.state.put_content(before)
        after_hash = await self.state.put_content(after)
        op = await self.state.add_file_op(self.thread_id, str(path), before_hash, after_hash,
                                          kind="tool", tool=tool, workspace=str(self.workspace))
        self.pending_ops.append(op)
        if after_hash is not None:
            await self.state.record_read(self.thread_id, str(path), after_hash)

    # -- services for bash ----------------------------------------------------------------
    async def acquire_sandbox(self) -> Sandbox:
        assert self.sandbox is not None, "session not bound to an agent"
        return await self.sandbox.acquire()

    def command_cwd(self) -> Path:
        if self.settings["tools.bash_cwd"] == "workspace" or self.sandbox is None \
                or self.sandbox.sandbox is None:
            return self.workspace
        return Path(self.sandbox.sandbox.path)

    async def record_command(self, command: str, exit_code: int | None, duration_ms: float,
                             bytes_out: int) -> int | None:
        if self.sandbox is None or self.sandbox.sandbox is None:
            return None
        try:
            return await self.stores.sandbox.add_command(
                self.sandbox.sandbox.id, command, exit_code=exit_code, duration_ms=duration_ms,
                bytes_out=bytes_out)
        except sqlite3.Error:
            return None  # metrics must not cost the model its command's output

    # -- sub-agents -------------------------------------------------------------------
    async def run_subagent(self, description: str, prompt: str, profile_name: str) -> ToolResult:
        max_depth = self.settings["agents.max_depth"]
        if self.depth + 1 > max_depth:
            raise ToolError(f"sub-agents may nest {max_depth} deep (agents.max_depth) and this "
                            "agent is at that depth; do the work yourself")
        limit = self.settings["agents.max_per_turn"]
        if self.subagents_this_turn >= limit:
            raise ToolError(f"this turn has already started {limit} sub-agents "
                            "(agents.max_per_turn); do the rest yourself or report back")
        profile = self.profiles.get(profile_name)
        if profile is None:
            raise ToolError(f"no agent profile {profile_name!r}; available: "
                            f"{', '.join(sorted(self.profiles))}")
        self.subagents_this_turn += 1
        from leon.agent.subagent import run_subagent

        return await run_subagent(self, profile, description, prompt)
