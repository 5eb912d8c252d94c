"""The gauge tells the truth (issue 12, bug B): over the threshold, it said "compacts on
the next send" even when `min_messages` prevented it. Now it says why compaction will
not run and what the request builder does instead."""

from __future__ import annotations

from typing import Any

from pilot_helpers import running, send, settle

from leon.config import Settings


class Brief:
    """A model that answers "ok" and reports the prompt tokens as leon counts them (so
    the gauge's measured total is what a real API would say)."""

    name = "brief"
    is_demo = False

    async def stream(self, request: Any):
        from leon.llm.base import Completed, ModelResponse, TextDelta, Usage
        from leon.memory.count import count_messages, count_system, count_tools

        prompt = (count_system(request.system) + count_tools(request.tools)
                  + count_messages(request.messages))
        yield TextDelta("ok")
        yield Completed(ModelResponse([{"type": "text", "text": "ok"}], "end_turn",
                                      Usage(input_tokens=prompt, output_tokens=1), "brief"))


def use_brief(app: Any) -> Any:
    from leon.runtime import ProviderChoice

    app.choice = ProviderChoice(Brief(), "brief", None)
    return app


def gauge_text(widget) -> str:
    return "\n".join(getattr(r, "plain", "") for r in widget.render().renderables)


# A threshold the system prompt and tool schemas alone exceed, a window they fit in.
LOW_THRESHOLD = {"memory.context_window": 12_000, "memory.compaction.reserve_tokens": 1_000,
                 "memory.compaction.keep_recent_tokens": 500,
                 "memory.compaction.trigger_ratio": 0.1}


async def test_gauge_says_too_few_messages_instead_of_compacts_on_next_send(make_app):
    app = use_brief(make_app(settings=Settings(dict(LOW_THRESHOLD))))
    async with running(app) as pilot:
        await send(pilot, "hello")
        await send(pilot, "hello again")
        await settle(pilot)
        gauge = app.chat.gauge
        assert gauge.gauge.total > gauge.gauge.threshold
        text = gauge_text(gauge)
        assert "compacts on the next send" not in text
        assert "too few messages (4 of min_messages 20)" in text
        assert "the request still fits" in text
        # the user lowers min_messages: now compaction would run, and the gauge says so
        app.settings.set("memory.compaction.min_messages", 2)
        await settle(pilot)
        assert "compacts on the next send" in gauge_text(gauge)
        # compaction off: the gauge says so instead
        app.settings.set("memory.compaction.enabled", False)
        await settle(pilot)
        text = gauge_text(gauge)
        assert "compacts on the next send" not in text and "compaction is disabled" in text
