"""Running a compaction for a :class:`~leon.memory.context.ContextManager`, and the gauge.

A compaction asks the model (the same provider, without tools) for a structured summary
of everything older than the last ``keep_recent_tokens``, checks it kept every
identifier (one retry naming what it dropped), stores it with a checkpoint, and reports
the figures as a ``compact`` event. A failure is a ``compact_rejected`` event and leaves
history as it was; the third automatic failure in a row trips the circuit breaker
(``compact_blocked``) until the user compacts by hand.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from leon.memory import compact as cp
from leon.memory.count import count_content, count_system, count_text
from leon.memory.gauge import Gauge

if TYPE_CHECKING:
    from leon.memory.context import CompactOutcome, ContextManager, Summarise, View, ViewInputs


async def _ask(cm: ContextManager, summarise: Summarise, material: str,
               missing: list[str]) -> tuple[str, int]:
    prompt = cp.prompt(material, missing)
    # The transcript is mostly tool output: count it as that kind.
    raw = {"system": count_system(cp.SYSTEM),
           "tool_results": count_content([{"type": "text", "text": prompt}])}
    return await summarise(cp.SYSTEM, prompt, cm.calibration().estimate(raw))


async def run_compaction(cm: ContextManager, inputs: ViewInputs, summarise: Summarise, *,
                         manual: bool, view: View) -> CompactOutcome:
    from leon.memory.context import CompactOutcome, ViewInputs

    s = view.settings
    branch = inputs.branch
    if manual:
        cm.failures = 0  # the user asked: the circuit breaker starts over
    cut = cp.find_cut([m.role for m in branch], view.contents,
                      [round(t * view.factor) for t in view.tokens], s.keep_recent_tokens)
    if cut is None:
        return CompactOutcome(False, "nothing to compact yet: no earlier turn ends cleanly "
                                     "before the recent ones")
    summarised = [(m.role, c) for m, c in zip(branch[:cut], view.contents[:cut], strict=True)
                  if not m.pinned]
    material = cp.material(inputs.summary, cp.render(summarised))
    started = time.perf_counter()
    text, missing, reason, output_tokens = "", [], "", 0
    try:
        text, output_tokens = await _ask(cm, summarise, material, [])
        missing = cp.check(material, text)
        if missing or not text.strip():
            text, output_tokens = await _ask(cm, summarise, material, missing)
            missing = cp.check(material, text)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the provider's error, said in one line
        reason = f"the summary call failed: {' '.join(str(exc).split())[:200]}"
    replaced = sum(view.tokens[:cut]) + view.raw["summary"]
    summary_tokens = count_text(text)
    if not reason and not text.strip():
        reason = "the model wrote an empty summary"
    elif not reason and missing:
        reason = f"the summary lost {len(missing)} identifier(s), even when asked again"
    elif not reason and summary_tokens >= replaced:
        reason = "the summary is not shorter than what it replaces"
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    if reason:
        data = {"reason": reason, "manual": manual, "missing": missing[:20],
                "missing_count": len(missing), "messages": cut, "duration_ms": duration_ms}
        if not manual:
            cm.failures += 1
        await cm._event("compact_rejected", data)
        if not manual and cm.failures == cm.BREAKER:
            await cm._event("compact_blocked", {
                "failures": cm.failures, "reason": reason,
                "hint": f"automatic compaction is off for this thread until `leon compact "
                        f"{cm.thread_id}` (or compacting from the TUI) succeeds"})
        return CompactOutcome(False, reason, data)

    carried = cm._carried + [m for m in branch[:cut] if m.pinned]
    after = cm.view(ViewInputs(branch[cut:], text, inputs.system, inputs.tools), carried=carried)
    await cm.store.add_summary(
        cm.thread_id, upto_message_id=branch[cut - 1].id, text=text, model=cm.model,
        messages_replaced=cut, tokens_before=view.estimate, tokens_after=after.estimate)
    cm.failures = 0
    if output_tokens and summary_tokens:
        # The API just counted this very text: the best factor for the summary there is.
        cm.calibration().seed("summary", output_tokens / summary_tokens)
    data = {"manual": manual, "messages_before": len(view.messages),
            "messages_after": len(after.messages), "messages_replaced": cut,
            "tokens_before": view.estimate, "tokens_after": after.estimate,
            "summary_tokens": round(summary_tokens * view.factor),
            "threshold": s.threshold, "duration_ms": duration_ms}
    await cm._event("compact", data)
    return CompactOutcome(True, "", data)


def gauge_of(cm: ContextManager, view: View) -> Gauge:
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
        total = sum(parts.values()) or 1
        parts = {k: round(v * target / total) for k, v in parts.items()}
    parts["history"] += target - sum(parts.values())  # rounding lands in the largest part
    return Gauge(
        system=parts["system"], tools=parts["tools"], summary=parts["summary"],
        history=parts["history"] + parts["pinned"], tool_results=parts["tool_results"],
        pruning_saved=view.raw["saved"], window=s.window, reserve=s.reserve_tokens,
        threshold=s.threshold, measured=measured, calibration=round(f, 4),
        messages=len(view.messages), compaction_enabled=s.compaction_enabled,
        compaction_blocked=cm.blocked,
        parts={"pinned": parts["pinned"], "estimate": view.estimate,
               "prune_pending": view.plan.pending, "min_messages": s.min_messages,
               "compaction_failures": cm.failures},
    )
