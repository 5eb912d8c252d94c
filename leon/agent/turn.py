"""The turn loop: store the user's message, stream the reply, run the tools it asks for,
send their results back, until the model ends its turn — storing each step with a
checkpoint as it completes, so a crash, a Ctrl+C or a dropped connection loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leon.agent import events as ev
from leon.agent import stops
from leon.agent.prompt import system_prompt
from leon.agent.tools.base import ToolContext, ToolRegistry
from leon.config import Settings
from leon.lifecycle.guard import CacheGuard
from leon.lifecycle.skills import record_snapshot
from leon.llm.base import (
    Completed,
    ModelRequest,
    ModelResponse,
    Provider,
    ProviderError,
    Retrying,
    StreamInterrupted,
    TextDelta,
    ToolUseStarted,
)
from leon.memory.context import CompactOutcome, ContextManager, ViewInputs
from leon.memory.fitting import ContextTooLarge
from leon.memory.gauge import Gauge
from leon.paths import PathError, spill_dir_under
from leon.store.leon_store import LeonStore
from leon.store.models import Message, Thread

DRAFT_SAVE_INTERVAL = 0.5  # seconds between saves of a streaming reply (crash safety)
MAX_TOOL_ROUNDS = 50
MAX_COMPACT_PARTS = 8  # summary calls one manual compaction may make (each fits the window)
INTERRUPTED_NOTE = "(reply interrupted)"

Listener = Callable[[ev.AgentEvent], None]


class TurnError(Exception):
    """A turn that could not finish; ``str()`` is one line for the user. The user's message
    (and any partial reply) is stored."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TurnBusy(TurnError):
    """Another leon was answering on the thread for longer than this one would wait
    (``store.turn_wait``; at once with ``turn_wait = 0``). Nothing was stored."""


@dataclass
class TurnResult:
    text: str
    stop_reason: str
    rounds: int


class Agent:
    """One thread's conversation with one model."""

    def __init__(
        self,
        *,
        store: LeonStore,
        provider: Provider,
        tools: ToolRegistry,
        settings: Settings,
        thread: Thread,
        workspace: Path,
        model: str,
        spill_root: Path | None = None,
        listener: Listener | None = None,
        session: Any = None,
    ):
        self.store = store
        self.provider = provider
        self.tools = tools
        self.settings = settings
        self.thread = thread
        self.workspace = workspace.resolve()
        self.model = model
        self.spill_root = spill_root
        self._listeners: list[Listener] = [listener] if listener else []
        self.branch: list[Message] = []
        self._sending: int | None = None  # the unsent user message this turn is sending
        self.summary_text: str | None = None
        self.last_usage: ev.UsageRecorded | None = None
        # The memory middleware: pruning, counting, compaction, spill (leon/memory/).
        self.memory = ContextManager(
            store, thread.id, settings, model,
            spill_root=spill_root,
            notify=lambda name, data: self.emit(ev.MemoryEvent(name, data)))
        # Tools that change things (leon.agent.session.ToolSession): permissions, sandbox
        # lease, file history, sub-agents, chat mirror. None: such tools refuse to run.
        self.session = session
        if session is not None:
            session.bind(self)
        # Session lifecycle (leon/lifecycle/): skills in the system prompt (a
        # leon.lifecycle.skills.SkillSet, set by make_agent) and the cache guard.
        self.skills: Any = None
        self.guard = CacheGuard(self)
        # One turn at a time per thread, across processes (leon.store.turnlock): how long
        # to wait for another leon answering on it; None: the store.turn_wait setting,
        # 0: not at all (leon run --no-wait).
        self.turn_wait: float | None = None
        self._turn_lock: Any = None
        self.summary_id: int | None = None  # the summary the loaded branch starts after

    # -- events ----------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: ev.AgentEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # -- state ---------------------------------------------------------------------
    async def load(self) -> None:
        """Recover drafts a dead process left and load the active branch."""
        for msg in await self._recover_drafts():
            self.emit(ev.ReplyInterrupted(msg.id, "leon stopped while this reply was streaming"))
        self.thread = await self.store.get_thread(self.thread.id)
        self.guard.restore(self.thread)
        head = await self.store.head(self.thread.id)
        after = None
        self.summary_text = None
        self.summary_id = head.summary_id if head is not None else None
        if head is not None and head.summary_id is not None:
            summary = await self.store.get_summary(head.summary_id)
            self.summary_text = summary.text
            after = summary.upto_message_id
        self.branch = await self.store.branch(self.thread.id, after_message_id=after)
        await self.memory.load(after)

    @property
    def system(self) -> str:
        base = system_prompt(str(self.workspace), self.settings["system_prompt"])
        return base + self.skills.text if self.skills is not None else base

    def tool_context(self) -> ToolContext:
        roots: tuple[Path, ...] = ()
        if self.spill_root is not None:
            # The read tools may read this thread's spill files, but only through a
            # checked path: a planted symlink must not widen what the model can read.
            with contextlib.suppress(PathError):
                roots = (spill_dir_under(self.spill_root, self.thread.id),)
        return ToolContext(workspace=self.workspace, thread_id=self.thread.id,
                           extra_read_roots=roots, session=self.session)

    @property
    def conversation(self) -> list[Message]:
        """The branch as the model sees it: without user messages whose call failed
        before any reply came (unless this turn is sending one again)."""
        return [m for m in self.branch if not m.unsent or m.id == self._sending]

    @property
    def unsent(self) -> Message | None:
        """The user message at the end of the branch that was never answered, if any."""
        tip = self.branch[-1] if self.branch else None
        return tip if tip is not None and tip.unsent else None

    def view_inputs(self) -> ViewInputs:
        self.memory.model = self.model  # the window and the calibration follow the model
        return ViewInputs(self.conversation, self.summary_text, self.system,
                          self.tools.schemas())

    def build_request(self, view: Any = None) -> ModelRequest:
        """The next request: the memory layer's view of the thread (summary, pinned
        messages, the branch with old tool results pruned)."""
        view = view or self.memory.view(self.view_inputs())
        problems = view.problems()
        if problems:  # a bug in the view, never the user's fault: say so plainly
            raise TurnError("internal error: the request would be invalid: " + "; ".join(problems))
        return ModelRequest(model=self.model, system=self.system, messages=view.messages,
                            tools=self.tools.schemas(), max_tokens=self.settings["max_tokens"])

    async def prepare_request(self) -> ModelRequest:
        """Run the memory middleware before a call (compaction when due, a pruning batch
        when worth it, cached counts, old turns left out when the request would not fit
        the window) and build the request it decided on. Raises :class:`TurnError`,
        before anything is sent, when even the newest turn cannot fit."""
        try:
            view = await self.memory.prepare(self.view_inputs, self._summarise, self.load)
        except ContextTooLarge as exc:
            self.emit(ev.TurnFailed(str(exc), None))
            raise TurnError(str(exc)) from None
        return self.build_request(view)

    # -- memory: the gauge, compaction by hand, pins ------------------------------------
    async def gauge(self) -> Gauge:
        """Token figures of the next request, by part (what the TUI's gauge draws). The
        counts it made are kept in the rows, so the next open of the thread reuses them."""
        gauge = self.memory.gauge(self.view_inputs())
        with contextlib.suppress(sqlite3.Error):  # only a cache: the next gauge tries again
            await self.memory.save_counts()
        return gauge

    async def compact(self) -> CompactOutcome:
        """Compact now, whatever the thresholds (the user asked); also re-arms automatic
        compaction after the circuit breaker tripped. When the history is too long for one
        summary call, it is summarised in parts, oldest first (a few calls at most)."""
        outcome = await self.memory.compact(self.view_inputs(), self._summarise, manual=True)
        parts = [outcome]
        while outcome.ok:
            await self.load()
            if not outcome.data.get("partial") or len(parts) >= MAX_COMPACT_PARTS:
                break
            following = await self.memory.compact(self.view_inputs(), self._summarise,
                                                  manual=True)
            if not following.ok:
                break  # the parts done so far stand
            outcome = following
            parts.append(outcome)
        if len(parts) > 1:  # one report for the whole run
            outcome.data.update(tokens_before=parts[0].data["tokens_before"], parts=len(parts),
                                messages_replaced=sum(p.data["messages_replaced"]
                                                      for p in parts))
        return outcome

    async def pin(self, message_id: int, pinned: bool = True) -> None:
        """Pin (or unpin) a message: pinned messages are never pruned and are carried
        verbatim past every compaction."""
        await self.memory.pin(message_id, pinned, self.branch)

    async def _summarise(self, system: str, prompt: str, estimate: int) -> tuple[str, int]:
        """One call without tools for a compaction summary: its text and output tokens.
        Its usage is recorded."""
        request = ModelRequest(model=self.model, system=system, tools=[],
                               messages=[{"role": "user", "content": [{"type": "text",
                                                                       "text": prompt}]}],
                               max_tokens=self.settings["max_tokens"])
        async for event in self.provider.stream(request):
            if isinstance(event, Retrying):
                self.emit(ev.Retried(event.attempt, event.delay, event.reason, event.status,
                                     event.left))
            elif isinstance(event, Completed):
                r, u = event.response, event.response.usage
                await self.store.add_usage(
                    self.thread.id, r.model, input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens,
                    cache_creation_tokens=u.cache_creation_input_tokens,
                    cache_read_tokens=u.cache_read_input_tokens, latency_ms=r.latency_ms,
                    retries=r.retries, estimated_tokens=estimate)
                text = "".join(b.get("text", "") for b in r.content if b.get("type") == "text")
                return text, u.output_tokens
        raise ProviderError("the summary call ended without a reply")

    # -- one turn at a time per thread ------------------------------------------------
    def turn_lock(self) -> Any:
        """This thread's :class:`leon.store.turnlock.TurnLock` (made on first use)."""
        if self._turn_lock is None or self._turn_lock.thread_id != self.thread.id:
            self._turn_lock = self.store.turn_lock(self.thread.id)
        return self._turn_lock

    @contextlib.asynccontextmanager
    async def one_turn(self) -> AsyncIterator[None]:
        """Hold the thread's turn lock while a turn runs. If another leon is answering on
        the thread, wait for it (a :class:`~leon.agent.events.WaitingForThread` event says
        so) up to ``turn_wait`` seconds, then :class:`TurnBusy`; once it is ours, catch up
        with whatever the other process stored."""
        from leon.store.turnlock import ThreadBusy, holder_label

        wait = float(self.settings["store.turn_wait"] if self.turn_wait is None
                     else self.turn_wait)
        lock = self.turn_lock()
        try:
            await lock.acquire(wait, lambda holder: self.emit(
                ev.WaitingForThread(self.thread.id, holder_label(holder), wait)))
        except ThreadBusy as exc:
            raise TurnBusy(str(exc)) from None
        try:
            await self._catch_up()
            yield
        finally:
            lock.release()

    async def _catch_up(self) -> None:
        """Reload when the stored thread is not what this agent last read: another leon
        added turns (or rolled back, or compacted) since, or died mid-reply."""
        head = await self.store.head(self.thread.id)
        tip = self.branch[-1].id if self.branch else None
        moved = (head.message_id if head else None) != tip or \
            (head.summary_id if head else None) != self.summary_id
        if moved or await self.store.drafts(self.thread.id):
            await self.load()
            self.emit(ev.BranchReloaded(self.thread.id))

    async def _recover_drafts(self) -> list[Message]:
        """A draft is a dead process's only while nobody holds the thread's turn lock;
        otherwise it is the reply the leon holding it is streaming, and is left alone."""
        lock = self.turn_lock()
        if lock.held:
            return await self.store.recover_drafts(self.thread.id)
        if not lock.try_acquire():
            return []
        try:
            return await self.store.recover_drafts(self.thread.id)
        finally:
            lock.release()

    # -- the turn ------------------------------------------------------------------
    async def send(self, text: str, *, replace_unsent: bool = False) -> TurnResult:
        """Run one user turn to the end, once no other leon is answering on the thread
        (:meth:`one_turn`). Raises :class:`TurnError` on failure (:class:`TurnBusy`,
        with nothing stored, when the wait for the other leon ran out) and re-raises
        cancellation, in both cases after storing what happened."""
        if not text.strip():
            raise TurnError("empty message: type something first")
        async with self.one_turn():
            return await self._send(text, replace_unsent=replace_unsent)

    async def _send(self, text: str, *, replace_unsent: bool = False) -> TurnResult:
        """Run one user turn to the end. Raises :class:`TurnError` on failure and
        re-raises cancellation, in both cases after storing what happened.

        The message is stored first, marked *unsent* until a reply starts: a call that
        fails before any reply leaves it unsent, and it is never part of a later
        request. Sending the same text again reuses it (nothing is stored twice); other
        text is a new message after it, or, with ``replace_unsent`` (the TUI, where the
        failed text came back into the prompt and was edited), takes its place: the
        head moves back before it, so the unsent message stays only on a side branch."""
        if not text.strip():
            raise TurnError("empty message: type something first")
        await self._ensure_blobs()
        unsent = self.unsent
        if unsent is not None and unsent.text == text:
            msg = unsent
            head = await self.store.head(self.thread.id)
            self.emit(ev.UserMessageStored(msg.id, head.id if head else 0, text, resent=True))
        else:
            if unsent is not None and replace_unsent:
                await self._drop_unsent(unsent)
            msg, ckpt = await self.store.append_message(
                self.thread.id, "user", [{"type": "text", "text": text}], unsent=True)
            self.branch.append(msg)
            if not self.thread.title:
                title = " ".join(text.split())[:60]
                self.thread = await self.store.update_thread(self.thread.id, title=title)
            self.emit(ev.UserMessageStored(msg.id, ckpt.id, text))
        self._sending = msg.id
        try:
            if self.session is None:
                return await self._run_rounds()
            await self.session.turn_started(text)
            try:
                result = await self._run_rounds()
            except TurnError as exc:
                await self.session.turn_failed(str(exc))
                raise
            await self.session.turn_finished(result.text)
            return result
        finally:
            self._sending = None

    async def _drop_unsent(self, unsent: Message) -> None:
        """Move the head back to just before ``unsent`` (nothing is deleted: it stays
        on a side branch of the timeline)."""
        await self.store.set_aside(self.thread.id, unsent.id)
        await self.load()

    async def resume(self) -> TurnResult:
        """Call the model again on the current branch (after an error or a rollback); an
        unsent message at its end is sent again."""
        async with self.one_turn():
            unsent = self.unsent
            self._sending = unsent.id if unsent is not None else None
            try:
                return await self._run_rounds()
            finally:
                self._sending = None

    async def _reply_started(self) -> None:
        """The model is answering: the message this turn sends is part of the
        conversation from now on, whatever happens to the reply."""
        if self._sending is None:
            return
        await self.store.mark_sent(self._sending)
        for m in reversed(self.branch):
            if m.id == self._sending:
                m.unsent = False
                break

    async def _run_rounds(self) -> TurnResult:
        final_text = ""
        cut_rounds = 0  # replies in a row cut off while they wrote a tool call
        for rounds in range(1, MAX_TOOL_ROUNDS + 1):
            response = await self._one_call()
            final_text = "".join(b.get("text", "") for b in response.content
                                 if b.get("type") == "text")
            calls = [b for b in response.content if b.get("type") == "tool_use"]
            stop = response.stop_reason
            if stop == "tool_use" and calls:
                cut_rounds = 0
                await self._run_tools(calls)
                continue
            if stop in stops.MARKED or calls:
                # Ended short (cut off, declined, paused), or asked for tools without
                # stop reason tool_use: no call of such a reply is run.
                retry = stop == "max_tokens" and bool(calls)
                cut_rounds += retry
                giving_up = retry and cut_rounds >= stops.MAX_CUT_ROUNDS
                await self._reply_stopped(stop, calls, giving_up=giving_up)
                if retry and not giving_up:
                    continue  # the model splits the work, told so by the error results
            self.emit(ev.TurnFinished(stop, final_text))
            return TurnResult(final_text, stop, rounds)
        note = f"stopped after {MAX_TOOL_ROUNDS} tool rounds; send a message to continue"
        self.emit(ev.TurnFinished("max_tool_rounds", final_text))
        return TurnResult(final_text + f"\n\n({note})", "max_tool_rounds", MAX_TOOL_ROUNDS)

    async def _one_call(self) -> ModelResponse:
        await self.guard.before_call()  # a fresh segment first, if the cache guard fired
        request = await self.prepare_request()
        draft_id: int | None = None
        text_parts: list[str] = []
        last_save = time.monotonic()
        try:
            async for event in self.provider.stream(request):
                if isinstance(event, TextDelta):
                    text_parts.append(event.text)
                    if draft_id is None:
                        await self._reply_started()
                        draft_id = await self.store.start_draft(self.thread.id)
                    self.emit(ev.TextStreamed(event.text))
                    if time.monotonic() - last_save > DRAFT_SAVE_INTERVAL:
                        await self.store.update_draft(draft_id, _text_blocks(text_parts))
                        last_save = time.monotonic()
                elif isinstance(event, ToolUseStarted):
                    if draft_id is None:
                        await self._reply_started()
                        draft_id = await self.store.start_draft(self.thread.id)
                elif isinstance(event, Retrying):
                    self.emit(ev.Retried(event.attempt, event.delay, event.reason, event.status,
                                         event.left))
                    self.guard.retried(event.status)
                    await self.store.add_event(self.thread.id, "retry", {
                        "attempt": event.attempt, "delay": event.delay, "reason": event.reason,
                        "status": event.status, "left": event.left})
                elif isinstance(event, Completed):
                    return await self._store_reply(draft_id, event.response)
        except StreamInterrupted as exc:
            partial = exc.partial or _text_blocks(text_parts)
            await self._store_interrupted(draft_id, partial, exc.message)
            raise TurnError(f"reply cut off: {exc.message} (the partial reply is kept)",
                            exc.status) from None
        except ProviderError as exc:
            await self.guard.failed(exc.status)
            if draft_id is not None:
                await self._store_interrupted(draft_id, _text_blocks(text_parts), exc.message)
            await self.store.add_event(self.thread.id, "error",
                                       {"message": exc.message, "status": exc.status})
            self.emit(ev.TurnFailed(exc.message, exc.status))
            raise TurnError(exc.message, exc.status) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._store_interrupted(
                draft_id, _text_blocks(text_parts), "stopped by the user"))
            raise
        raise TurnError("the model's stream ended without a final message")

    async def _store_reply(self, draft_id: int | None, response: ModelResponse) -> ModelResponse:
        content = [b for b in response.content
                   if not (b.get("type") == "text" and not b.get("text", "").strip())]
        if not content:
            content = [{"type": "text", "text": "(empty reply)"}]
        await self._reply_started()
        if draft_id is None:
            draft_id = await self.store.start_draft(self.thread.id)
        # A reply that ended short keeps its stop reason: it is marked wherever it shows.
        marked = response.stop_reason if response.stop_reason in stops.MARKED else None
        msg, ckpt = await self.store.finish_draft(draft_id, content, model=response.model,
                                                  stop_reason=marked)
        self.branch.append(msg)
        usage = response.usage
        estimate = await self.memory.observe(response.model, usage, msg)
        await self.guard.completed(usage)
        await self.store.add_usage(
            self.thread.id, response.model, input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_tokens=usage.cache_creation_input_tokens,
            cache_read_tokens=usage.cache_read_input_tokens,
            latency_ms=response.latency_ms, retries=response.retries, estimated_tokens=estimate,
        )
        self.last_usage = ev.UsageRecorded(
            response.model, usage.input_tokens, usage.output_tokens,
            usage.cache_creation_input_tokens, usage.cache_read_input_tokens,
            response.latency_ms, estimate)
        self.emit(self.last_usage)
        self.emit(ev.MessageStored(msg.id, ckpt.id, "assistant", msg.status, marked))
        return response

    async def _reply_stopped(self, stop: str, calls: list[dict[str, Any]], *,
                             giving_up: bool) -> None:
        """The reply just stored ended short: answer each of its tool calls with an error
        instead of running it (the API needs a result for every call), record an event
        and tell the user."""
        reply_id = self.branch[-1].id
        limit = self.settings["max_tokens"]
        names = stops.call_names(calls)
        if calls:
            results = []
            for n, (call, name) in enumerate(zip(calls, names, strict=True)):
                args = call.get("input") if isinstance(call.get("input"), dict) else {}
                self.emit(ev.ToolCallStarted(call["id"], name, args))
                text = stops.not_run_result(stop, call, last=n == len(calls) - 1,
                                            max_tokens=limit)
                results.append({"type": "tool_result", "tool_use_id": call["id"],
                                "is_error": True, "content": text})
                self.emit(ev.ToolCallFinished(call["id"], name, True, text, len(text.encode()),
                                              {"not_run": stop}))
            await self._store_results(results)
        message = stops.user_notice(stop, names, max_tokens=limit, giving_up=giving_up)
        await self.store.add_event(self.thread.id, "stopped", {
            "message_id": reply_id, "stop_reason": stop, "message": message,
            "not_run": names})
        self.emit(ev.ReplyStopped(reply_id, stop, message, names))

    async def _store_interrupted(
        self, draft_id: int | None, partial: list[dict[str, Any]], reason: str
    ) -> None:
        if draft_id is None and not partial:
            return
        content = [b for b in partial if b.get("type") == "text" and b.get("text", "").strip()]
        content = content or [{"type": "text", "text": INTERRUPTED_NOTE}]
        await self._reply_started()
        if draft_id is None:
            draft_id = await self.store.start_draft(self.thread.id)
        msg, ckpt = await self.store.finish_draft(draft_id, content, status="interrupted",
                                                  model=self.model)
        self.branch.append(msg)
        await self.store.add_event(self.thread.id, "interrupted",
                                   {"message_id": msg.id, "reason": reason})
        self.emit(ev.ReplyInterrupted(msg.id, reason))

    async def _run_tools(self, calls: list[dict[str, Any]]) -> None:
        ctx = self.tool_context()
        results: list[dict[str, Any]] = []
        try:
            for call in calls:
                args = call.get("input") or {}
                self.emit(ev.ToolCallStarted(call["id"], call["name"], args))
                result = await (self.session.call_tool(self.tools, call["name"], args, ctx)
                                if self.session is not None
                                else self.tools.call(call["name"], args, ctx))
                output = await self.memory.spill_if_large(
                    call["id"], call["name"],
                    result.content if result.content.strip() else "(no output)")
                block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call["id"],
                                         "content": output}
                if result.is_error:
                    block["is_error"] = True
                results.append(block)
                if self.session is not None:
                    await self.session.tool_finished(call["id"], result)
                self.emit(ev.ToolCallFinished(call["id"], call["name"], result.is_error, output,
                                              len(output.encode()), result.meta))
        except asyncio.CancelledError:
            done = {r["tool_use_id"] for r in results}
            results += [{"type": "tool_result", "tool_use_id": c["id"], "is_error": True,
                         "content": "(cancelled by the user before it finished)"}
                        for c in calls if c["id"] not in done]
            await asyncio.shield(self._store_results(results))
            raise
        await self._store_results(results)

    async def _store_results(self, results: list[dict[str, Any]]) -> None:
        msg, ckpt = await self.store.append_message(self.thread.id, "user", results)
        self.branch.append(msg)
        if self.session is not None:  # file changes made by these tools belong to ckpt
            await self.session.results_stored(ckpt.id)
        self.emit(ev.MessageStored(msg.id, ckpt.id, "user", msg.status))

    async def _ensure_blobs(self) -> None:
        """Store the system prompt and tool schemas once, by hash, and point the thread at them."""
        system = self.system
        if self.skills is not None and self.skills.text:  # stored once, as its own blob
            system = system.replace(self.skills.text, "", 1)
            self.thread = await record_snapshot(self.store, self.thread, self.skills)
        system_hash = await self.store.put_blob("system_prompt", system)
        tools_json = json.dumps(self.tools.schemas(), sort_keys=True, separators=(",", ":"))
        tools_hash = await self.store.put_blob("tools", tools_json)
        if (self.thread.system_hash, self.thread.tools_hash) != (system_hash, tools_hash) or \
                self.thread.model != self.model:
            self.thread = await self.store.update_thread(
                self.thread.id, system_hash=system_hash, tools_hash=tools_hash, model=self.model)

    # -- rollback ------------------------------------------------------------------
    async def rollback(self, checkpoint_id: int, *, files: bool = False,
                       force: bool = False) -> Any:
        """Move the head to ``checkpoint_id`` ("conversation only"). With ``files``, first
        restore the files tools changed to their content there (from wherever the head is)
        and return the :class:`~leon.agent.filehistory.RestorePlan`; raises
        :class:`~leon.agent.filehistory.FilesChanged` (and moves nothing) when a file was
        changed outside leon since, unless ``force``, and
        :class:`~leon.agent.filehistory.RestoreRefused` when a path leads out of its
        workspace."""
        plan = None
        if files:
            from leon.agent.filehistory import restore_files

            plan = await restore_files(self.store, self.thread.id, checkpoint_id, force=force,
                                       workspace=self.workspace)
        await self.store.rollback(self.thread.id, checkpoint_id)
        await self.load()
        return plan

    async def close(self) -> None:
        """Release what the session holds (the sandbox lease). Call when done with the agent."""
        if self.session is not None:
            await self.session.close()

    async def rollforward(self) -> bool:
        moved = await self.store.rollforward(self.thread.id) is not None
        if moved:
            await self.load()
        return moved


def _text_blocks(parts: list[str]) -> list[dict[str, Any]]:
    text = "".join(parts)
    return [{"type": "text", "text": text}] if text.strip() else []
