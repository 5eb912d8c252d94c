"""Running a compaction for a :class:`~leon.memory.context.ContextManager`, and the gauge.

A compaction asks the model (the same provider, without tools) for a structured summary
of everything older than the last ``keep_recent_tokens``, checks it kept every salient
identifier (one retry naming what it dropped; what is still missing is then appended
verbatim, see :func:`leon.memory.compact.repair`), stores it with a checkpoint, and
reports the figures as a ``compact`` event. A summary is never refused for what it left
out. A call that fails (or whose reply cannot be used: empty, or no shorter than what it
replaces) is a ``compact_rejected`` event and leaves history as it was; the third such
automatic failure in a row trips the circuit breaker (``compact_blocked``) until the user
compacts by hand. Meanwhile :mod:`leon.memory.fit` keeps every request inside the window.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from leon.memory import compact as cp
from leon.memory.count import count_content, count_system, count_text, text_bytes
from leon.memory.gauge import Gauge
from leon.memory.prune import trim

# Share of the request limit a summary call's transcript may fill (the rest: the
# instruction, the retry's list of missing identifiers, and the reply).
MATERIAL_SHARE = 0.6
RETRY_SHARE = 0.15      # ... and the retry's list of identifiers the first summary left out

if TYPE_CHECKING:
    from leon.memory.context import CompactOutcome, ContextManager, Summarise, View, ViewInputs


async def _ask(cm: ContextManager, summarise: Summarise, material: str,
               missing: list[str], budget: int) -> tuple[str, int]:
    prompt = cp.prompt(material, missing, budget)
    # The transcript is mostly tool output: count it as that kind.
    raw = {"system": count_system(cp.SYSTEM),
           "tool_results": count_content([{"type": "text", "text": prompt}]),
           "bytes": text_bytes(cp.SYSTEM) + text_bytes(prompt)}
    return await summarise(cp.SYSTEM, prompt, cm.calibration().estimate(raw))


async def run_compaction(cm: ContextManager, inputs: ViewInputs, summarise: Summarise, *,
                         manual: bool, view: View) -> CompactOutcome:
    from leon.memory.context import CompactOutcome, ViewInputs

    s = view.settings
    branch = inputs.branch
    if manual:
        cm.failures = 0  # the user asked: the circuit breaker starts over
    roles = [m.role for m in branch]
    tokens = [round(t * view.factor) for t in view.tokens]
    cut = cp.find_cut(roles, view.contents, tokens, s.keep_recent_tokens)
    if cut is None:
        return CompactOutcome(False, "nothing to compact yet: no earlier turn ends cleanly "
                                     "before the recent ones")
    # The summary call must fit the window as well: when compaction fell far behind (it
    # was blocked or off while fit left turns out), summarise the oldest part that fits
    # now and the rest on the next compaction.
    budget = int(view.limit * MATERIAL_SHARE)
    cut, partial = cp.bounded_cut(roles, view.contents, tokens, cut, budget,
                                  round(view.raw["summary"] * view.factor))
    summarised = [(m.role, c) for m, c in zip(branch[:cut], view.contents[:cut], strict=True)
                  if not m.pinned]
    material = cp.material(inputs.summary, cp.render(summarised))
    # Measured as the summary call will be (its tokens, and its bytes: see _ask).
    size = cm.calibration().estimate({"tool_results": count_text(material),
                                      "bytes": text_bytes(material)})
    if size > budget:  # even the oldest turn is too large: keep its head and tail
        material = trim(material, max(1000, len(material) * budget // size))
    said = cp.material(inputs.summary, cp.render(summarised, results=False))
    started = time.perf_counter()
    text, missing, reason, output_tokens = "", [], "", 0
    try:
        names = int(view.limit * RETRY_SHARE / view.factor)  # raw tokens for the list
        text, output_tokens = await _ask(cm, summarise, material, [], names)
        missing = cp.check(material, text, said)
        if missing or not text.strip():
            text, output_tokens = await _ask(cm, summarise, material, missing, names)
            missing = cp.check(material, text, said)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the provider's error, said in one line
        reason = f"the summary call failed: {' '.join(str(exc).split())[:200]}"
    replaced = sum(view.tokens[:cut]) + view.raw["summary"]
    repaired, written = 0, count_text(text)  # written: the model's own text
    if not reason and text.strip() and missing:
        # Still missing after the retry: append them rather than refuse the summary. The
        # list may use at most half of what the summary saves, so a compaction always
        # frees room; what was said comes first, tool output last.
        text, repaired = cp.repair(text, missing, (replaced - written) // 2, count_text)
    summary_tokens = count_text(text)
    if not reason and not text.strip():
        reason = "the model wrote an empty summary"
    elif not reason and summary_tokens >= replaced:
        reason = "the summary is not shorter than what it replaces"
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    if reason:
        data = {"reason": reason, "manual": manual, "messages": cut,
                "duration_ms": duration_ms, "breaker": not manual}
        if not manual:
            cm.failures += 1
        await cm._event("compact_rejected", data)
        if not manual and cm.failures == cm.BREAKER:
            await cm._event("compact_blocked", {
                "failures": cm.failures, "reason": reason,
                "hint": f"automatic compaction is off for this thread until `leon compact "
                        f"{cm.thread_id}` (or compacting from the TUI) succeeds; until then "
                        "the oldest turns are left out of requests that would not fit"})
        return CompactOutcome(False, reason, data)

    carried = cm._carried + [m for m in branch[:cut] if m.pinned]
    after = cm.view(ViewInputs(branch[cut:], text, inputs.system, inputs.tools), carried=carried)
    await cm.store.add_summary(
        cm.thread_id, upto_message_id=branch[cut - 1].id, text=text, model=cm.model,
        messages_replaced=cut, tokens_before=view.estimate, tokens_after=after.estimate)
    cm.failures = 0
    if output_tokens and written:
        # The API just counted this very text: the best factor for the summary there is.
        cm.calibration().seed("summary", output_tokens / written)
    data = {"manual": manual, "messages_before": len(view.messages),
            "messages_after": len(after.messages), "messages_replaced": cut,
            "tokens_before": view.estimate, "tokens_after": after.estimate,
            "summary_tokens": round(summary_tokens * view.factor),
            "threshold": s.threshold, "duration_ms": duration_ms,
            "identifiers_missing": len(missing), "identifiers_repaired": repaired,
            "identifiers_left_out": len(missing) - repaired, "partial": partial}
    await cm._event("compact", data)
    return CompactOutcome(True, "", data)


def _outlook(cm: ContextManager, view: View, branch: list[Any]) -> tuple[str, str, str]:
    """``(status, why, note)`` of the gauge: what the next send will do about the fill,
    decided exactly as :meth:`ContextManager.prepare` decides it."""
    from leon.memory.fitting import plan_for

    s = view.settings
    why = cm.obstacle(view, branch) or ""
    if view.estimate <= s.threshold and not view.too_large:
        if not s.compaction_enabled:
            return "ok", why, "compaction off"
        if cm.blocked:
            return "ok", why, (f"auto-compaction paused after {cm.failures} failed calls: "
                               "/compact")
        return "ok", why, f"{max(0, s.threshold - view.estimate):,} tokens until compaction"
    if not why:
        return "compacts", "", "over the threshold: compacts on the next send"
    if not view.too_large:
        return "fits", why, (f"over the threshold, but {why}; the request still fits (up to "
                             f"{view.limit:,}); past that, old tool results are cleared, "
                             "then the oldest turns are left out of it")
    plan = plan_for(cm, view, branch)
    if not plan.fits:
        return "too_large", why, (f"over the window, and {why}: the next send is refused "
                                  f"(~{plan.estimate:,} tokens even with older turns left "
                                  f"out, {view.limit:,} allowed): /compact or a new thread")
    done = []
    if plan.cleared:
        done.append(f"clears {len(plan.cleared)} old tool result(s)")
    if plan.dropped:
        done.append(f"leaves out the {len(plan.dropped)} oldest message(s) "
                    f"(~{round(plan.dropped_tokens * view.factor):,} tokens)")
    return "leaves_out", why, (f"over the threshold, but {why}: the next request "
                               + " and ".join(done) + f" to fit {view.limit:,} tokens")


def gauge_of(cm: ContextManager, view: View, branch: list[Any] | None = None) -> Gauge:
    """The gauge for ``view``: calibrated parts; when the API's last reported usage is
    for exactly this request (plus the reply it produced), the measured total."""
    s = view.settings
    f = view.factor
    cal = cm.calibration()
    names = ("system", "tools", "summary", "pinned", "history", "tool_results")
    parts = {k: round(view.raw[k] * cal.ratio({k: 1})) for k in names}
    target = view.estimate
    measured = (cm._measured is not None and cm._measured[0] == view.key
                and cm._measured[1] == view.branch_ids)
    if measured and cm._measured is not None:
        target = cm._measured[2]
    # The parts follow the total (measured, or the estimate, which the request's bytes
    # may have raised above the sum of the parts' own factors).
    total = sum(parts.values()) or 1
    parts = {k: round(v * target / total) for k, v in parts.items()}
    parts["history"] += target - sum(parts.values())  # rounding lands in the largest part
    status, why, note = _outlook(cm, view, branch if branch is not None else [])
    return Gauge(
        system=parts["system"], tools=parts["tools"], summary=parts["summary"],
        history=parts["history"] + parts["pinned"], tool_results=parts["tool_results"],
        pruning_saved=view.raw["saved"], window=s.window, reserve=s.reserve_tokens,
        threshold=s.threshold, measured=measured, calibration=round(f, 4),
        messages=len(view.messages), compaction_enabled=s.compaction_enabled,
        compaction_blocked=cm.blocked,
        parts={"pinned": parts["pinned"], "estimate": view.estimate,
               "prune_pending": view.plan.pending, "min_messages": s.min_messages,
               "compaction_failures": cm.failures, "margin": view.margin},
        limit=view.limit, status=status, why=why, note=note,
    )
