"""Fitting a :class:`~leon.memory.context.ContextManager`'s view into the window: the
request-side half of :mod:`leon.memory.fit` (which decides what to leave out).

:func:`fit_view` builds the request without what the plan leaves out, reports it as a
``fit`` event (when it changed since the last one), and raises :class:`ContextTooLarge`
— before anything is sent — when even the newest turn alone does not fit.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from leon.memory import fit as ft
from leon.memory import prune as pr
from leon.memory.count import BLOCK_OVERHEAD, count_text
from leon.memory.view import Assembler

RESULT_FRAMING = 60  # bytes of a tool_result block around its text (type, id, framing)

if TYPE_CHECKING:
    from leon.memory.context import ContextManager, View


class ContextTooLarge(Exception):
    """The next request cannot fit the window whatever is left out; ``str()`` is one line
    for the user, ``data`` the figures (also stored as a ``fit_failed`` event)."""

    def __init__(self, message: str, data: dict[str, Any]):
        super().__init__(message)
        self.data = data


def items_of(cm: ContextManager, view: View, branch: list[Any]) -> list[ft.Item]:
    """The view's messages as :class:`~leon.memory.fit.Item`\\ s: their raw tokens as the
    request sends them (after pruning), and what clearing each tool result would save."""
    tk, s, applied = cm.tokens, view.settings, view.plan.applied
    refs = iter(view.refs)
    items = []
    for m, found, size in zip(branch, view.walk.per, view.walk.sizes, strict=True):
        results = []
        for tid, _ in found:
            ref = next(refs)
            done = applied.get(tid)
            now = tk.variant(ref, s)[1] if done is not None else tk.result(ref)
            text = done.text if done is not None else (ref.text or "")
            clearable = (ref.text is not None and not ref.pinned
                         and not (done is not None and done.kind == "clear"))
            placeholder = pr.placeholder(ref.chars, ref.spill_path)
            cleared = (count_text(placeholder) + count_text(tid) + 2 * BLOCK_OVERHEAD
                       if clearable else now)
            # Bytes without JSON escapes: clearing is never credited more than it saves.
            nbytes = _result_bytes(tid, text)
            results.append(ft.Result(tid, now, cleared, clearable, nbytes,
                                     _result_bytes(tid, placeholder) if clearable else nbytes))
        other = tk.messages[m.id][1]
        rest = max(0, size - sum(r.size for r in results))
        items.append(ft.Item(m.id, m.role == "user" and not found, bool(m.pinned), other,
                             tuple(results), rest))
    return items


def _result_bytes(tool_use_id: str, text: str) -> int:
    return len(text.encode("utf-8", "replace")) + len(tool_use_id) + RESULT_FRAMING


def _base(view: View, items: list[ft.Item]) -> dict[str, int]:
    base = {k: view.raw.get(k, 0) for k in ("system", "tools", "summary", "pinned")}
    # What the view added to repair history (answers to interrupted calls) stays.
    base["history"] = view.raw["history"] - sum(it.other for it in items)
    base["bytes"] = view.raw.get("bytes", 0) - view.walk.size  # system, tools, summary
    return base


def plan_for(cm: ContextManager, view: View, branch: list[Any]) -> ft.Plan:
    """What fit would leave out of ``view`` (nothing is stored; for the gauge too)."""
    items = items_of(cm, view, branch)
    return ft.plan(items, _base(view, items), cm.calibration().estimate, view.limit,
                   _sticky(cm, view))


def _sticky(cm: ContextManager, view: View) -> tuple[Any, Any]:
    """What the previous request left out, while the limit is the same."""
    last = cm._fit_sticky
    if last is None or last[0] != view.limit:
        return (), ()
    return last[1], last[2]


def _build(cm: ContextManager, view: View, plan: ft.Plan, repairs: int) -> View:
    """``view`` without what ``plan`` leaves out (``repairs``: raw tokens of the blocks
    the view added to repair history, which the new request counts afresh)."""
    walk, refs = view.walk, {r.tool_use_id: r for r in view.refs}
    clear = {tid: pr.Pruned("clear", pr.placeholder(refs[tid].chars, refs[tid].spill_path),
                            refs[tid].chars) for tid in plan.cleared}
    dropped = set(plan.dropped)
    kept: list[tuple[Any, dict[str, Any]]] = []
    for i, (ident, msg) in enumerate(walk.items):
        if i in dropped:
            continue
        mine = {tid: clear[tid] for tid, _ in walk.per[i] if tid in clear}
        if mine:
            kept.append(((ident, "fit", tuple(sorted(mine))),
                         {"role": msg["role"], "content": pr.apply(msg["content"], mine)}))
        else:
            kept.append((ident, msg))
    assembler = Assembler()
    messages = assembler.build(kept, summary=view.head)
    raw = dict(plan.raw)
    raw["history"] += cm.tokens.repairs(assembler.repairs) - repairs
    # The bytes of what is sent, measured (not planned).
    raw["bytes"] = (view.raw.get("bytes", 0) - view.walk.size
                    + sum(cm.tokens.size(item) for item in kept))
    cal = cm.calibration()
    parts = {k: v for k, v in raw.items() if k not in ("saved", "bytes")}
    ids = view.branch_ids
    key = view.key + (("fit", tuple(plan.cleared), tuple(ids[i] for i in plan.dropped)),)
    raw["saved"] = view.raw.get("saved", 0)
    parts["bytes"] = raw["bytes"]
    return dataclasses.replace(
        view, messages=messages, raw=raw, raw_total=sum(parts.values()) - raw["bytes"],
        estimate=cal.estimate(parts), factor=cal.ratio(parts), key=key, fresh=0, fit=plan)


def _too_large(cm: ContextManager, view: View, plan: ft.Plan, items: list[ft.Item],
               why: str) -> ContextTooLarge:
    s = view.settings
    estimate = cm.calibration().estimate
    base = _base(view, items)
    fixed = estimate(base)
    # The user's message of the newest turn, alone with the system prompt and tools.
    first = items[ft.newest_turn(items)] if items else ft.Item(0, True, False, 0)
    alone = estimate(dict(base, history=base["history"] + first.other,
                          bytes=base["bytes"] + first.size))
    message = alone - fixed
    room = (f"the window allows {view.limit:,} (context_window {s.window:,} - reserve_tokens "
            f"{s.reserve_tokens:,} - {view.margin:,} kept for the estimate's error)")
    if fixed > view.limit * (1 - ft.HYSTERESIS):
        text = (f"the system prompt, tool definitions and summary alone take ~{fixed:,} "
                f"tokens, and {room}; shorten system_prompt, or raise memory.context_window "
                "if the model allows more")
    elif first.turn_start and alone > view.limit:
        text = (f"the message is too big: ~{message:,} tokens, and {room}; send a shorter "
                "message, or raise memory.context_window if the model allows more")
    else:
        text = (f"the current turn does not fit: ~{plan.estimate:,} tokens even with every "
                f"older turn and tool result left out, and {room}; run /compact (`leon "
                f"compact {cm.thread_id}`), start a new thread, or raise "
                "memory.context_window if the model allows more")
    data = {"reason": why, "estimate": view.estimate, "smallest": plan.estimate,
            "newest_turn": round(plan.newest), "message": message, "limit": view.limit,
            "margin": view.margin, "window": s.window, "reserve": s.reserve_tokens}
    return ContextTooLarge(text, data)


async def fit_view(cm: ContextManager, view: View, inputs: Any, why: str) -> View:
    """``view`` made to fit its limit (see :mod:`leon.memory.fit`), with a ``fit`` event
    saying what was left out and why compaction did not make room (``why``)."""
    branch = inputs.branch
    items = items_of(cm, view, branch)
    base = _base(view, items)
    estimate = cm.calibration().estimate
    sticky = _sticky(cm, view)
    plan = ft.plan(items, base, estimate, view.limit, sticky)
    fitted = _build(cm, view, plan, base["history"]) if plan.fits else view
    if plan.fits and fitted.estimate > view.limit:
        # The assembled request came out a little larger than planned (a repair block):
        # plan again for that much less.
        plan = ft.plan(items, base, estimate, 2 * view.limit - fitted.estimate, sticky)
        fitted = _build(cm, view, plan, base["history"]) if plan.fits else view
    if not plan.fits or fitted.estimate > view.limit:
        error = _too_large(cm, view, plan, items, why)
        await cm._event("fit_failed", dict(error.data, error=str(error)))
        raise error
    ids = view.branch_ids
    said = (tuple(plan.cleared), tuple(ids[i] for i in plan.dropped))
    cm._fit_sticky = (view.limit, frozenset(said[1]), frozenset(said[0]))
    if said != cm._fit_said:
        cm._fit_said = said
        f = view.factor
        await cm._event("fit", {
            "reason": why, "estimate_before": view.estimate, "estimate_after": fitted.estimate,
            "limit": view.limit, "margin": view.margin, "window": view.settings.window,
            "reserve": view.settings.reserve_tokens,
            "results_cleared": len(plan.cleared), "tokens_cleared": round(plan.cleared_tokens * f),
            "messages_dropped": len(plan.dropped),
            "tokens_dropped": round(plan.dropped_tokens * f),
            "dropped_ids": ft.ranges(plan.dropped, ids), "cleared_ids": plan.cleared[:50]})
    return fitted
