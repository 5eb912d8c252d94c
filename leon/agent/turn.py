"""The turn loop: store the user's message, stream the reply, run the tools it asks for,
send their results back, until the model ends its turn — storing each step with a
checkpoint as it completes, so a crash, a Ctrl+C or a dropped connection loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leon.agent import events as ev
from leon.agent.prompt import system_prompt
from leon.agent.tools.base import ToolContext, ToolRegistry
from leon.config import Settings
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
from leon.memory.view import api_messages, validate
from leon.store.leon_store import LeonStore
from leon.store.models import Message, Thread

DRAFT_SAVE_INTERVAL = 0.5  # seconds between saves of a streaming reply (crash safety)
MAX_TOOL_ROUNDS = 50
INTERRUPTED_NOTE = "(reply interrupted)"

Listener = Callable[[ev.AgentEvent], None]


class TurnError(Exception):
    """A turn that could not finish; ``str()`` is one line for the user. The user's message
    (and any partial reply) is stored."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


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
        self.summary_text: str | None = None
        self.last_usage: ev.UsageRecorded | None = None

    # -- events ----------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: ev.AgentEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # -- state ---------------------------------------------------------------------
    async def load(self) -> None:
        """Recover drafts a dead process left and load the active branch."""
        for msg in await self.store.recover_drafts(self.thread.id):
            self.emit(ev.ReplyInterrupted(msg.id, "leon stopped while this reply was streaming"))
        self.thread = await self.store.get_thread(self.thread.id)
        head = await self.store.head(self.thread.id)
        after = None
        self.summary_text = None
        if head is not None and head.summary_id is not None:
            summary = await self.store.get_summary(head.summary_id)
            self.summary_text = summary.text
            after = summary.upto_message_id
        self.branch = await self.store.branch(self.thread.id, after_message_id=after)

    @property
    def system(self) -> str:
        return system_prompt(str(self.workspace), self.settings["system_prompt"])

    def tool_context(self) -> ToolContext:
        roots = (self.spill_root / self.thread.id,) if self.spill_root else ()
        return ToolContext(workspace=self.workspace, thread_id=self.thread.id,
                           extra_read_roots=roots)

    def build_request(self) -> ModelRequest:
        """The next request, from the summary (if any) and the branch after it."""
        messages = api_messages((m.to_api() for m in self.branch), summary=self.summary_text)
        problems = validate(messages)
        if problems:  # a bug in the view, never the user's fault: say so plainly
            raise TurnError("internal error: the request would be invalid: " + "; ".join(problems))
        return ModelRequest(model=self.model, system=self.system, messages=messages,
                            tools=self.tools.schemas(), max_tokens=self.settings["max_tokens"])

    # -- the turn ------------------------------------------------------------------
    async def send(self, text: str) -> TurnResult:
        """Run one user turn to the end. Raises :class:`TurnError` on failure and
        re-raises cancellation, in both cases after storing what happened."""
        if not text.strip():
            raise TurnError("empty message: type something first")
        await self._ensure_blobs()
        msg, ckpt = await self.store.append_message(
            self.thread.id, "user", [{"type": "text", "text": text}]
        )
        self.branch.append(msg)
        if not self.thread.title:
            title = " ".join(text.split())[:60]
            self.thread = await self.store.update_thread(self.thread.id, title=title)
        self.emit(ev.UserMessageStored(msg.id, ckpt.id, text))
        return await self._run_rounds()

    async def resume(self) -> TurnResult:
        """Call the model again on the current branch (after an error or a rollback)."""
        return await self._run_rounds()

    async def _run_rounds(self) -> TurnResult:
        final_text = ""
        for rounds in range(1, MAX_TOOL_ROUNDS + 1):
            response = await self._one_call()
            final_text = "".join(b.get("text", "") for b in response.content
                                 if b.get("type") == "text")
            calls = [b for b in response.content if b.get("type") == "tool_use"]
            if response.stop_reason != "tool_use" or not calls:
                self.emit(ev.TurnFinished(response.stop_reason, final_text))
                return TurnResult(final_text, response.stop_reason, rounds)
            await self._run_tools(calls)
        note = f"stopped after {MAX_TOOL_ROUNDS} tool rounds; send a message to continue"
        self.emit(ev.TurnFinished("max_tool_rounds", final_text))
        return TurnResult(final_text + f"\n\n({note})", "max_tool_rounds", MAX_TOOL_ROUNDS)

    async def _one_call(self) -> ModelResponse:
        request = self.build_request()
        draft_id: int | None = None
        text_parts: list[str] = []
        last_save = time.monotonic()
        try:
            async for event in self.provider.stream(request):
                if isinstance(event, TextDelta):
                    text_parts.append(event.text)
                    if draft_id is None:
                        draft_id = await self.store.start_draft(self.thread.id)
                    self.emit(ev.TextStreamed(event.text))
                    if time.monotonic() - last_save > DRAFT_SAVE_INTERVAL:
                        await self.store.update_draft(draft_id, _text_blocks(text_parts))
                        last_save = time.monotonic()
                elif isinstance(event, ToolUseStarted):
                    if draft_id is None:
                        draft_id = await self.store.start_draft(self.thread.id)
                elif isinstance(event, Retrying):
                    self.emit(ev.Retried(event.attempt, event.delay, event.reason, event.status))
                    await self.store.add_event(self.thread.id, "retry", {
                        "attempt": event.attempt, "delay": event.delay, "reason": event.reason,
                        "status": event.status})
                elif isinstance(event, Completed):
                    return await self._store_reply(draft_id, event.response)
        except StreamInterrupted as exc:
            partial = exc.partial or _text_blocks(text_parts)
            await self._store_interrupted(draft_id, partial, exc.message)
            raise TurnError(f"reply cut off: {exc.message} (the partial reply is kept)",
                            exc.status) from None
        except ProviderError as exc:
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
        if draft_id is None:
            draft_id = await self.store.start_draft(self.thread.id)
        msg, ckpt = await self.store.finish_draft(draft_id, content)
        self.branch.append(msg)
        usage = response.usage
        estimate = None
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
        self.emit(ev.MessageStored(msg.id, ckpt.id, "assistant", msg.status))
        return response

    async def _store_interrupted(
        self, draft_id: int | None, partial: list[dict[str, Any]], reason: str
    ) -> None:
        if draft_id is None and not partial:
            return
        content = [b for b in partial if b.get("type") == "text" and b.get("text", "").strip()]
        content = content or [{"type": "text", "text": INTERRUPTED_NOTE}]
        if draft_id is None:
            draft_id = await self.store.start_draft(self.thread.id)
        msg, ckpt = await self.store.finish_draft(draft_id, content, status="interrupted")
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
                result = await self.tools.call(call["name"], args, ctx)
                output = result.content if result.content.strip() else "(no output)"
                block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call["id"],
                                         "content": output}
                if result.is_error:
                    block["is_error"] = True
                results.append(block)
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
        self.emit(ev.MessageStored(msg.id, ckpt.id, "user", msg.status))

    async def _ensure_blobs(self) -> None:
        """Store the system prompt and tool schemas once, by hash, and point the thread at them."""
        system_hash = await self.store.put_blob("system_prompt", self.system)
        tools_json = json.dumps(self.tools.schemas(), sort_keys=True, separators=(",", ":"))
        tools_hash = await self.store.put_blob("tools", tools_json)
        if (self.thread.system_hash, self.thread.tools_hash) != (system_hash, tools_hash) or \
                self.thread.model != self.model:
            self.thread = await self.store.update_thread(
                self.thread.id, system_hash=system_hash, tools_hash=tools_hash, model=self.model)

    # -- rollback ------------------------------------------------------------------
    async def rollback(self, checkpoint_id: int) -> None:
        await self.store.rollback(self.thread.id, checkpoint_id)
        await self.load()

    async def rollforward(self) -> bool:
        moved = await self.store.rollforward(self.thread.id) is not None
        if moved:
            await self.load()
        return moved


def _text_blocks(parts: list[str]) -> list[dict[str, Any]]:
    text = "".join(parts)
    return [{"type": "text", "text": text}] if text.strip() else []
