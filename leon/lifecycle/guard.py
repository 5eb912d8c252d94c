"""The cache guard: one thread's defence against resending a poisoned context.

Per thread (one :class:`CacheGuard` per :class:`~leon.agent.turn.Agent`) it watches each
model call: the API's ``cache_creation_input_tokens``, and whether the call was
rate-limited (a 429 retry, or a 429 failure). When one call's cache creation passes
``[lifecycle] cache_creation_threshold``, or ``rate_limit_strikes`` calls in a row were
rate-limited, the next call first starts a *fresh segment* of the thread:

1. a compaction (:meth:`Agent.compact`, the memory middleware's summary of everything
   but the recent turns), or, when there is nothing it can cut,
2. a handoff summary (:mod:`.handoff`) of everything before the current turn, stored as
   the active summary,

then records a ``guard`` event and emits it as a :class:`~leon.agent.events.MemoryEvent`
whose ``reason`` tells the user why. Waiting for the next call (rather than acting
inside the reply that crossed the line) keeps tool calls and their results together.

The figures it acts on (the last call's cache-creation tokens, the rate-limited calls in
a row) are stored with the thread after every call, so the next call acts on them
whichever process makes it: a dispatcher that runs ``leon run --thread T`` call after
call is guarded exactly like one long TUI session.
"""

from __future__ import annotations

from typing import Any

RATE_LIMITED = 429


class CacheGuard:
    """Watches one agent's calls; :meth:`before_call` acts when a trigger fired."""

    def __init__(self, agent: Any):
        self.agent = agent
        self.strikes = 0                       # rate-limited calls in a row
        self.created = 0                       # cache-creation tokens of the last call
        self.pending: dict[str, Any] | None = None
        self._limited = False                  # the current call saw a 429

    def restore(self, thread: Any) -> None:
        """Take up the figures the thread's last call left (in this or another process)."""
        self.strikes = int(thread.guard_rate_strikes or 0)
        self.created = int(thread.guard_cache_creation or 0)
        self.pending = None
        self._check_creation()
        self._check_strikes()

    async def _save(self) -> None:
        agent = self.agent
        await agent.store.save_guard_state(agent.thread.id, cache_creation=self.created,
                                           rate_strikes=self.strikes)

    @property
    def settings(self) -> Any:
        return self.agent.settings

    # -- observing ----------------------------------------------------------------------
    def retried(self, status: int | None) -> None:
        if status == RATE_LIMITED:
            self._limited = True

    async def failed(self, status: int | None) -> None:
        """The call failed for good."""
        self.created = 0
        self._end_call(self._limited or status == RATE_LIMITED)
        await self._save()

    async def completed(self, usage: Any) -> None:
        self.created = int(getattr(usage, "cache_creation_input_tokens", 0) or 0)
        self._end_call(self._limited)
        self._check_creation()
        await self._save()

    def _check_creation(self) -> None:
        created = self.created
        threshold = self.settings["lifecycle.cache_creation_threshold"]
        if created > threshold and self.pending is None:
            self.pending = {
                "trigger": "cache_creation", "cache_creation_input_tokens": created,
                "threshold": threshold,
                "reason": f"one call wrote {created:,} prompt-cache tokens (over the "
                          f"{threshold:,} of lifecycle.cache_creation_threshold): starting a "
                          "fresh segment instead of resending that context"}

    def _end_call(self, limited: bool) -> None:
        self._limited = False
        self.strikes = self.strikes + 1 if limited else 0
        self._check_strikes()

    def _check_strikes(self) -> None:
        limit = self.settings["lifecycle.rate_limit_strikes"]
        if self.strikes >= limit and self.pending is None:
            self.pending = {
                "trigger": "rate_limits", "strikes": self.strikes, "limit": limit,
                "reason": f"{self.strikes} calls in a row were rate-limited "
                          f"(lifecycle.rate_limit_strikes = {limit}): starting a fresh, "
                          "smaller segment of this thread"}

    # -- acting ---------------------------------------------------------------------------
    async def before_call(self) -> dict[str, Any] | None:
        """Start a fresh segment if a trigger fired; returns the ``guard`` event data."""
        self._limited = False
        if self.pending is None:
            return None
        data, self.pending = self.pending, None
        self.strikes, self.created = 0, 0
        await self._save()
        return await self.start_segment(data)

    async def start_segment(self, data: dict[str, Any]) -> dict[str, Any]:
        from leon.agent import events as ev

        agent = self.agent
        before = len(agent.branch)
        action, detail = "none", ""
        compact = getattr(agent, "compact", None)
        if compact is not None:
            try:
                outcome = await compact()
            except Exception as exc:  # noqa: BLE001 - the guard must never break a turn
                outcome, detail = None, f"compaction failed: {exc}"
            if outcome is not None and outcome.ok:
                action = "compacted"
            elif outcome is not None:
                detail = outcome.reason
        if action == "none":
            action, detail = await self._handoff(detail)
        data = {**data, "action": action, "messages_before": before,
                "messages_after": len(agent.branch)}
        if detail:
            data["detail"] = detail
        if action == "none":
            data["reason"] += f" — but nothing could be cut ({detail})"
        await agent.store.add_event(agent.thread.id, "guard", data)
        agent.emit(ev.MemoryEvent("guard", data))
        return data

    async def _handoff(self, why_not_compacted: str) -> tuple[str, str]:
        """Summarise everything before the current turn into a handoff and make it the
        active summary. Returns (action, detail)."""
        from leon.lifecycle.handoff import write_handoff
        from leon.llm.base import ProviderError
        from leon.memory.count import count_content, count_text

        agent = self.agent
        branch = agent.conversation  # an unsent message is not part of it
        # The current turn starts at the newest user message that is not tool results.
        start = next((i for i in range(len(branch) - 1, -1, -1)
                      if branch[i].role == "user" and not any(
                          b.get("type") == "tool_result" for b in branch[i].content)), None)
        if not start:  # None or 0: nothing before the current turn
            return "none", why_not_compacted or "the thread holds only the current turn"
        old = branch[:start]
        store = agent.store

        async def on_usage(response: Any) -> None:
            u = response.usage
            await store.add_usage(agent.thread.id, response.model, input_tokens=u.input_tokens,
                                  output_tokens=u.output_tokens,
                                  cache_creation_tokens=u.cache_creation_input_tokens,
                                  cache_read_tokens=u.cache_read_input_tokens,
                                  latency_ms=response.latency_ms, retries=response.retries)

        try:
            text = await write_handoff(agent.provider, agent.model, messages=old,
                                       summary=agent.summary_text,
                                       title=agent.thread.display_title, on_usage=on_usage)
        except ProviderError as exc:
            return "none", f"the handoff call failed: {exc.message}"
        await store.add_summary(
            agent.thread.id, upto_message_id=old[-1].id, text=text, model=agent.model,
            messages_replaced=len(old),
            tokens_before=sum(m.tokens or count_content(m.content) for m in old),
            tokens_after=count_text(text))
        await agent.load()
        return "handoff", why_not_compacted
