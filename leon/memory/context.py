"""The memory middleware of one thread: what the next request sends, and the state that
keeps it cheap and stable from call to call.

:meth:`ContextManager.view` stores nothing (only its caches change): it prunes the branch
(reusing earlier decisions), builds the API messages (reusing the previous request's up
to where history changed) and counts them from cached per-message counts.
:meth:`ContextManager.prepare` runs before every model call: it compacts when due, then
:meth:`commit`\\ s the view (stores new counts, records a new pruning batch, remembers
what was sent for calibration and the gauge).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leon.memory import compact as cp
from leon.memory import fit as ft
from leon.memory import prune as pr
from leon.memory.count import Calibration
from leon.memory.gauge import Gauge
from leon.memory.settings import MemorySettings
from leon.memory.spilling import Spiller
from leon.memory.tokens import TokenCache
from leon.memory.view import SUMMARY_PREFIX, Assembler, validate

Notify = Callable[[str, dict[str, Any]], None]
# (system, prompt, estimate) -> (summary text, output tokens the API reported)
Summarise = Callable[[str, str, int], Awaitable[tuple[str, int]]]


@dataclass
class ViewInputs:
    """What the agent holds: the branch after the active summary, and the rest."""

    branch: list[Any]           # leon.store.models.Message, oldest first
    summary: str | None
    system: str
    tools: list[dict[str, Any]]


@dataclass
class View:
    """The next request as the memory layer built it, with its token figures."""

    messages: list[dict[str, Any]]
    settings: MemorySettings
    contents: list[Any]         # each branch message's content after pruning
    tokens: list[int]           # each branch message's raw tokens after pruning
    raw: dict[str, int]         # raw tokens by part
    raw_total: int
    estimate: int               # calibrated
    factor: float
    plan: pr.Plan
    force: bool
    key: tuple[Any, ...]        # identifies the request (for the measured gauge)
    branch_ids: tuple[int, ...]
    fresh: int = 0              # messages before this one were checked in an earlier view
    limit: int = 0              # the most the request may hold (leon/memory/fit.py)
    margin: int = 0             # kept below window - reserve for the estimate's error
    walk: Any = None            # the _Walk it was built from (fit reads it)
    refs: list[pr.ResultRef] = field(default_factory=list)
    fit: ft.Plan | None = None  # what fit left out of this request (None: nothing)
    head: str | None = None     # text of the summary message (summary, pinned), if any

    @property
    def due(self) -> bool:
        return cp.is_due(self.settings, self.estimate, len(self.messages), self.limit)

    @property
    def too_large(self) -> bool:
        """Over the limit: fit must leave something out before it is sent."""
        return self.estimate > self.limit

    def problems(self) -> list[str]:
        """What the API would refuse in this request (checks only the new messages)."""
        return validate(self.messages, start=self.fresh)


@dataclass
class _Walk:
    """The branch as the last view walked it, so the next view walks only what is new
    (when the branch only grew and pruning did not change)."""

    ids: list[int]
    per: list[tuple[tuple[str, str | None], ...]]   # each message's tool results
    applied: dict[str, pr.Pruned]
    items: list[tuple[Any, dict[str, Any]]]
    tokens: list[int]
    history: int
    other: int
    sizes: list[int] = field(default_factory=list)  # each message's bytes as sent
    size: int = 0


@dataclass
class CompactOutcome:
    """What a compaction did: ``ok`` with figures, or why not."""

    ok: bool
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def counts_towards_breaker(data: dict[str, Any]) -> bool:
    """Whether a stored ``compact_rejected`` event counts towards the circuit breaker: a
    failed call does, a summary that left identifiers out never does (events stored
    before repairs existed rejected those; they no longer keep a thread blocked)."""
    if "breaker" in data:
        return bool(data["breaker"])
    return not str(data.get("reason", "")).startswith("the summary lost")


class ContextManager:
    """Per-thread memory state: cached counts, pruning decisions, spills, calibration,
    and the compaction circuit breaker."""

    BREAKER = 3  # failed automatic compactions in a row before they stop

    def __init__(self, store: Any, thread_id: str, settings: Any, model: str, *,
                 spill_root: Path | None = None, notify: Notify | None = None):
        self.store = store
        self.thread_id = thread_id
        self.settings = settings
        self.model = model
        self.notify = notify or (lambda name, data: None)
        self.tokens = TokenCache()
        self._assembler = Assembler()
        self._walked: _Walk | None = None
        self.spills = Spiller(store, thread_id, spill_root, self._event)
        self._decided: set[str] = set()                     # tool_use_ids pruned so far
        self._signature: Any = None                         # settings they were pruned under
        self._calibrations: dict[str, Calibration] = {}
        self._carried: list[Any] = []                       # pinned messages before the cut
        self._summary_upto: int | None = None
        self.failures = 0
        self._fit_said: Any = None                          # the last fit event's plan
        self._fit_sticky: Any = None                        # (limit, ids, tool_use_ids) left out
        self._sent: tuple[str, dict[str, int], int, tuple[Any, ...], tuple[int, ...]] | None = None
        self._measured: tuple[tuple[Any, ...], tuple[int, ...], int] | None = None

    # -- state ---------------------------------------------------------------------
    @property
    def blocked(self) -> bool:
        """Automatic compaction stopped after :attr:`BREAKER` failures in a row."""
        return self.failures >= self.BREAKER

    def obstacle(self, view: View, branch: list[Any]) -> str | None:
        """Why automatic compaction will not run on ``view`` (None: it would)."""
        s = view.settings
        if not s.compaction_enabled:
            return "compaction is disabled (memory.compaction.enabled = false)"
        if self.blocked:
            return (f"automatic compaction is blocked after {self.failures} failed calls "
                    f"until /compact (leon compact {self.thread_id}) succeeds")
        if len(view.messages) < s.min_messages:
            return (f"too few messages ({len(view.messages)} of min_messages "
                    f"{s.min_messages})")
        cut = cp.find_cut([m.role for m in branch], view.contents,
                          [round(t * view.factor) for t in view.tokens], s.keep_recent_tokens)
        if cut is None:
            return "no earlier turn ends cleanly before the recent ones"
        return None

    def snapshot(self) -> MemorySettings:
        return MemorySettings.of(self.settings, self.model)

    def calibration(self, model: str | None = None) -> Calibration:
        return self._calibrations.setdefault(model or self.model, Calibration())

    async def load(self, summary_upto: int | None) -> None:
        """Read the thread's memory state (after the agent loads or rolls back)."""
        self._summary_upto = summary_upto
        await self.spills.load()
        if self.model not in self._calibrations:
            saved = await self.store.calibration(self.model)
            self._calibrations[self.model] = Calibration(saved, samples=1 if saved else 0)
        events = await self.store.events(
            self.thread_id, kinds=["prune", "compact", "compact_rejected"], limit=1_000_000)
        sig = list(self.snapshot().prune_signature)
        self.failures, self._decided = 0, set()
        for e in events:
            if e.kind == "prune" and e.data.get("signature") == sig:
                self._decided.update(e.data.get("ids", []))
            elif e.kind == "compact" or e.data.get("manual"):
                self.failures = 0
            elif e.kind == "compact_rejected" and counts_towards_breaker(e.data):
                self.failures += 1
        self._signature = tuple(sig)
        self._fit_said = self._fit_sticky = None
        self._carried = []
        if summary_upto is not None:
            self._carried = [m for m in await self.store.branch(self.thread_id)
                             if m.pinned and m.id <= summary_upto]

    async def pin(self, message_id: int, pinned: bool, branch: list[Any]) -> None:
        await self.store.set_pinned(message_id, pinned)
        for m in branch:
            if m.id == message_id:
                m.pinned = pinned
                return
        await self.load(self._summary_upto)  # before the summary: re-read what is carried

    async def _event(self, name: str, data: dict[str, Any]) -> None:
        await self.store.add_event(self.thread_id, name, data)
        self.notify(name, data)

    # -- the view ------------------------------------------------------------------
    def view(self, inputs: ViewInputs, *, carried: list[Any] | None = None) -> View:
        """The request the inputs make now (nothing is stored; only caches change)."""
        s = self.snapshot()
        branch = inputs.branch
        assembler = self._assembler if carried is None else Assembler()
        carried = self._carried if carried is None else carried
        force = s.prune_signature != self._signature
        decided = set() if force else self._decided
        cal, tk = self.calibration(), self.tokens
        ids = [m.id for m in branch]
        walked = self._walked if self._walked is not None and carried is self._carried else None
        k = 0
        if walked is not None and len(ids) >= len(walked.ids) \
                and ids[: len(walked.ids)] == walked.ids:
            k = len(walked.ids)
        per_message = (walked.per[:k] if k else []) + [tk.tool_results(m) for m in branch[k:]]
        refs = pr.make_refs(
            [(tid, text, m.pinned) for m, found in zip(branch, per_message, strict=True)
             for tid, text in found], self.spills.files, s.protect_recent, tk.refs)
        results_factor = cal.ratio({"tool_results": 1})
        plan = pr.plan(
            refs, decided, s, lambda r: tk.variant(r, s)[0],
            lambda r, v: round((tk.result(r) - tk.variant(r, s)[1]) * results_factor),
            force=force)
        applied = plan.applied
        if walked is None or not k or applied != walked.applied:
            k = 0
            walked = _Walk([], [], applied, [], [], 0, 0)
        walk = _Walk(ids, per_message, applied, walked.items[:k], walked.tokens[:k],
                     walked.history, walked.other, walked.sizes[:k], walked.size)
        self._walk(walk, branch, k, refs, s)
        if carried is self._carried:
            self._walked = walk
        items, tokens, history, other_total = walk.items, walk.tokens, walk.history, walk.other
        summary_text = inputs.summary or ""
        carried_text = cp.carried_text([(m.role, m.content) for m in carried])
        head = (summary_text + carried_text) if (summary_text or carried_text) else None
        messages = assembler.build(items, summary=head)
        tools_tokens, tools_size = tk.tools_counts(inputs.tools)
        raw = {
            "system": tk.text("system", inputs.system),
            "tools": tools_tokens,
            "summary": tk.text("text", SUMMARY_PREFIX + summary_text) if summary_text else 0,
            "pinned": tk.text("text", carried_text) if carried_text else 0,
            "history": other_total + tk.repairs(assembler.repairs),
            "tool_results": history - other_total,
        }
        raw_total = sum(raw.values())
        # The second measure of the request (count.Calibration): its bytes.
        raw["bytes"] = (tk.size_of_text(inputs.system) + tools_size
                        + (tk.size_of_text(SUMMARY_PREFIX + head) if head else 0) + walk.size)
        estimate, factor = cal.estimate(raw), cal.ratio(raw)
        saved = sum(tk.result(r) - tk.variant(r, s)[1] for r in refs
                    if r.tool_use_id in applied)
        raw["saved"] = round(saved * results_factor)
        key = (summary_text, carried_text, tuple(sorted(applied)), s.prune_signature,
               inputs.system, raw["tools"])
        limit, margin = ft.limit(s, cal.learned)
        return View(messages, s, [it[1]["content"] for it in items], tokens, raw, raw_total,
                    estimate, factor, plan, force, key, tuple(ids), assembler.fresh,
                    limit=limit, margin=margin, walk=walk, refs=refs, head=head)

    def _walk(self, walk: _Walk, branch: list[Any], start: int, refs: list[pr.ResultRef],
              s: MemorySettings) -> None:
        """Add ``branch[start:]`` to ``walk``: each message as the view sends it (pruned
        results replaced) with its raw tokens. Earlier messages were walked before."""
        tk, applied = self.tokens, walk.applied
        counts, plain = tk.messages, tk.items
        by_id = {r.tool_use_id: r for r in refs} if applied else {}
        for i in range(start, len(branch)):
            m, found = branch[i], walk.per[i]
            total, other = counts.get(m.id) or tk.message(m)
            walk.other += other
            item = None
            if found and applied:
                key = tuple(applied.get(tid) for tid, _ in found)
                if any(key):
                    hit = tk.pruned.get(m.id)
                    if hit is None or hit[0] != key:
                        n = total + sum(tk.variant(by_id[tid], s)[1] - tk.result(by_id[tid])
                                        for tid, _ in found if tid in applied)
                        hit = tk.pruned[m.id] = (key, pr.apply(m.content, applied), n)
                    total = hit[2]
                    item = ((m.id, key), {"role": m.role, "content": hit[1]})
            if item is None:
                item = plain.get(m.id)
                if item is None:
                    item = plain[m.id] = (m.id, {"role": m.role, "content": m.content})
            walk.items.append(item)
            walk.tokens.append(total)
            walk.history += total
            size = tk.size(item)
            walk.sizes.append(size)
            walk.size += size

    # -- before and after a call -----------------------------------------------------
    async def prepare(self, inputs: Callable[[], ViewInputs], summarise: Summarise,
                      reload: Callable[[], Awaitable[None]]) -> View:
        """The request to send now: spill what must be findable, compact when due
        (then ``reload`` the agent's branch), commit the view."""
        await self.spills.ensure(inputs().branch, self.snapshot().hard_clear_threshold)
        view = self.view(inputs())
        why = ""
        if view.due and not self.blocked:
            outcome = await self.compact(inputs(), summarise, manual=False, view=view)
            if outcome.ok:
                await reload()
                view = self.view(inputs())
                self._fit_sticky = None  # the summary replaced what was left out
            else:
                why = outcome.reason
        if view.too_large:  # raises ContextTooLarge when even the newest turn cannot fit
            from leon.memory.fitting import fit_view

            why = why or self.obstacle(view, inputs().branch) or \
                "the request is still too large after compaction"
            view = await fit_view(self, view, inputs(), why)
        else:
            self._fit_said = self._fit_sticky = None
        await self.commit(view, inputs().branch)
        return view

    async def save_counts(self) -> None:
        """Store the token counts made since the last save in ``messages.tokens``."""
        unsaved = self.tokens.take_unsaved()
        if unsaved:
            try:
                await self.store.set_message_tokens(unsaved)
            except BaseException:
                self.tokens.unsaved[:0] = unsaved  # rolled back: the next save stores them
                raise

    async def commit(self, view: View, branch: list[Any]) -> None:
        """Make ``view`` the one sent: store new counts and the pruning batch, link
        spills to their messages, remember the request for calibration."""
        await self.save_counts()
        if view.force or view.plan.batch:
            self._signature = view.settings.prune_signature
            self._decided = set(view.plan.applied) if view.force else (
                self._decided | set(view.plan.batch))
        if view.plan.batch:
            kinds = [v.kind for v in view.plan.batch.values()]
            await self._event("prune", {
                "results": len(kinds), "trimmed": kinds.count("trim"),
                "cleared": kinds.count("clear"), "tokens_saved": view.plan.freed,
                "tokens_saved_total": view.raw["saved"],
                "settings_changed": view.force, "ids": sorted(view.plan.batch),
                "signature": list(view.settings.prune_signature)})
        await self.spills.link(branch)
        self._sent = (self.model, view.raw, view.estimate, view.key, view.branch_ids)

    async def observe(self, model: str, usage: Any, reply: Any = None) -> int | None:
        """Learn from the usage the API reported for the request just sent, and count the
        stored ``reply``; returns the estimate leon made for the request (stored in the
        usage row)."""
        reply_id = reply.id if reply is not None else None
        if reply is not None and reply.id not in self.tokens.messages:
            self.tokens.message(reply)
            await self.save_counts()
        if self._sent is None or self._sent[0] != model:
            return None
        _, raw, estimate, key, ids = self._sent
        self._sent = None
        reported = usage.input_tokens + usage.cache_creation_input_tokens + \
            usage.cache_read_input_tokens
        cal = self.calibration(model)
        if cal.observe(reported, raw):
            await self.store.save_calibration(model, cal.state)
        if reply_id is not None and reported > 0:  # a proxy may report no input usage
            self._measured = (key, ids + (reply_id,), reported + usage.output_tokens)
        return estimate

    async def spill_if_large(self, tool_use_id: str, tool_name: str, output: str) -> str:
        """``output``, or a preview pointing at the file it was saved to when it is
        longer than ``memory.spill.threshold_chars`` (called as each tool returns)."""
        return await self.spills.spill_if_large(
            tool_use_id, tool_name, output, self.settings["memory.spill.threshold_chars"])

    # -- compaction and the gauge -------------------------------------------------------
    async def compact(self, inputs: ViewInputs, summarise: Summarise, *, manual: bool,
                      view: View | None = None) -> CompactOutcome:
        from leon.memory.compaction import run_compaction

        return await run_compaction(self, inputs, summarise, manual=manual,
                                    view=view or self.view(inputs))

    def gauge(self, inputs: ViewInputs) -> Gauge:
        from leon.memory.compaction import gauge_of

        return gauge_of(self, self.view(inputs), inputs.branch)
