"""The context gauge: what the next request would send, drawn from the memory layer's
:class:`~leon.memory.gauge.Gauge` — a stacked bar by part, the reserve at the end of the
window, a marker at the compaction threshold, the percentage, "N tokens until
compaction", measured or estimated, and what a prune or a compaction would free."""

from __future__ import annotations

import inspect
from typing import Any

from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from leon.memory.gauge import Gauge

# (field, label, component class) in the order the bar stacks them.
PARTS: tuple[tuple[str, str, str], ...] = (
    ("system", "system", "gauge--system"),
    ("tools", "tools", "gauge--tools"),
    ("summary", "summary", "gauge--summary"),
    ("history", "history", "gauge--history"),
    ("tool_results", "results", "gauge--tool-results"),
)


async def compute_gauge(agent: Any) -> Gauge:
    """The agent's gauge (``Agent.gauge()``, the memory layer's figures; sync or async)."""
    result = agent.gauge()
    if inspect.isawaitable(result):
        result = await result
    return result  # type: ignore[no-any-return]


def memory_extras(agent: Any) -> tuple[dict[str, str], int | None]:
    """What the memory layer will do to the next request, for the tool badges and the
    gauge: tool_use_id → "trim" | "clear", and how many tokens a compaction would
    replace now (None: nothing can be compacted yet).

    Reads the memory layer's view of the request; if its shape is not what this expects
    (the layer changed), the UI simply shows no badges and no preview."""
    memory = getattr(agent, "memory", None)
    if memory is None:
        return {}, None
    try:
        from leon.memory import compact as cp

        view = memory.view(agent.view_inputs())
        decisions = {tid: p.kind for tid, p in view.plan.applied.items()}
        tokens = [round(t * view.factor) for t in view.tokens]
        cut = cp.find_cut([m.role for m in agent.conversation], view.contents, tokens,
                          view.settings.keep_recent_tokens)
        frees = None
        if cut:
            frees = sum(tokens[:cut]) + round(view.raw.get("summary", 0) * view.factor)
        return decisions, frees
    except Exception:  # a hint only: never let it break the screen
        return {}, None


def _n(value: int) -> str:
    return f"{value:,}"


class ContextGauge(Widget):
    """Always visible in the side panel; redraws when :attr:`gauge` or
    :attr:`streaming_tokens` change."""

    COMPONENT_CLASSES = {
        "gauge--title", "gauge--muted", "gauge--system", "gauge--tools", "gauge--summary",
        "gauge--history", "gauge--tool-results", "gauge--streaming", "gauge--free",
        "gauge--reserve", "gauge--threshold", "gauge--over", "gauge--ok",
    }
    DEFAULT_CSS = """
    ContextGauge { height: auto; padding: 0 1; }
    ContextGauge > .gauge--title { text-style: bold; color: $foreground; }
    ContextGauge > .gauge--muted { color: $foreground-muted; }
    ContextGauge > .gauge--system { color: $secondary; }
    ContextGauge > .gauge--tools { color: $accent; }
    ContextGauge > .gauge--summary { color: $success; }
    ContextGauge > .gauge--history { color: $primary; }
    ContextGauge > .gauge--tool-results { color: $warning; }
    ContextGauge > .gauge--streaming { color: $primary 55%; }
    ContextGauge > .gauge--free { color: $foreground 25%; }
    ContextGauge > .gauge--reserve { color: $error 45%; }
    ContextGauge > .gauge--threshold { color: $error; text-style: bold; }
    ContextGauge > .gauge--over { color: $text-error; text-style: bold; }
    ContextGauge > .gauge--ok { color: $text-success; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._style_cache: dict[str, Style] = {}

    gauge: reactive[Gauge | None] = reactive(None, layout=True)
    streaming_tokens: reactive[int] = reactive(0, layout=True)
    compact_frees: reactive[int | None] = reactive(None, layout=True)

    def style_of(self, name: str) -> Style:
        """A component's colour, blended over what is behind it (``partial=True`` would
        drop the alpha of colours like ``$foreground-muted``), without a background.
        Cached until the CSS or the theme changes: resolving one costs milliseconds."""
        style = self._style_cache.get(name)
        if style is None:
            full = self.get_component_rich_style(name)
            style = Style(color=full.color, bold=full.bold, italic=full.italic)
            self._style_cache[name] = style
        return style

    def notify_style_update(self) -> None:
        self._style_cache.clear()
        super().notify_style_update()

    def render(self) -> RenderableType:
        gauge = self.gauge
        if gauge is None:
            return Text("Context\nmeasuring…", style=self.style_of("gauge--muted"))
        width = max(10, self.content_size.width or 30)
        lines = [self._title(gauge), self._marker(gauge, width), self._bar(gauge, width)]
        lines += self._legend(gauge, width)
        lines += self._totals(gauge)
        return Group(*lines)

    # -- pieces ----------------------------------------------------------------------
    def _title(self, gauge: Gauge) -> Text:
        total = gauge.total + self.streaming_tokens
        pct = 100 * total / gauge.window if gauge.window else 0.0
        source = "measured" if gauge.measured else "estimated"
        if not gauge.measured and abs(gauge.calibration - 1.0) > 0.005:
            source += f" ×{gauge.calibration:.2f}"
        over = gauge.threshold and total > gauge.threshold
        return Text.assemble(("Context ", self.style_of("gauge--title")),
                             (f"{pct:.0f}%", self.style_of("gauge--over" if over
                                                            else "gauge--title")),
                             (f" · {source}", self.style_of("gauge--muted")))

    def _col(self, tokens: int, gauge: Gauge, width: int) -> int:
        if not gauge.window:
            return 0
        return max(0, min(width, round(tokens / gauge.window * width)))

    def _marker(self, gauge: Gauge, width: int) -> Text:
        col = min(width - 1, self._col(gauge.threshold, gauge, width))
        text = Text(" " * col + "▼", style=self.style_of("gauge--threshold"))
        label = f" compact at {_n(gauge.threshold)}"
        if col + 1 + len(label) <= width:
            text.append(label, self.style_of("gauge--muted"))
        elif col - len(label) >= 0:
            text = Text(" " * (col - len(label) + 1) + label.strip() + " ",
                        style=self.style_of("gauge--muted"))
            text.append("▼", self.style_of("gauge--threshold"))
        return text

    def _bar(self, gauge: Gauge, width: int) -> Text:
        cells: list[tuple[str, Style]] = []
        cum = 0
        filled = 0
        values = [(getattr(gauge, f), cls) for f, _, cls in PARTS]
        values.append((self.streaming_tokens, "gauge--streaming"))
        for tokens, cls in values:
            if tokens <= 0:
                continue
            cum += tokens
            end = max(filled + 1, self._col(cum, gauge, width))
            end = min(end, width)
            cells += [("█", self.style_of(cls))] * (end - filled)
            filled = end
        reserve_from = self._col(gauge.window - gauge.reserve, gauge, width)
        threshold_col = min(width - 1, self._col(gauge.threshold, gauge, width))
        for col in range(filled, width):
            if col >= reserve_from:
                cells.append(("░", self.style_of("gauge--reserve")))
            elif col == threshold_col:
                cells.append(("┊", self.style_of("gauge--threshold")))
            else:
                cells.append(("━", self.style_of("gauge--free")))
        text = Text()
        for char, style in cells[:width]:
            text.append(char, style)
        return text

    def _legend(self, gauge: Gauge, width: int) -> list[Text]:
        entries = [(label, getattr(gauge, f), cls) for f, label, cls in PARTS]
        if self.streaming_tokens:
            entries.append(("reply", self.streaming_tokens, "gauge--streaming"))
        entries.append(("reserve", gauge.reserve, "gauge--reserve"))
        column = max(14, width // 2)
        lines: list[Text] = []
        for i in range(0, len(entries), 2):
            line = Text()
            for label, value, cls in entries[i:i + 2]:
                piece = Text.assemble(("■ ", self.style_of(cls)), (label, ""))
                number = _n(value)
                pad = max(1, column - 1 - piece.cell_len - len(number))
                piece.append(" " * pad + number + " ")
                line.append_text(piece)
            line.rstrip()
            lines.append(line)
        return lines

    def _totals(self, gauge: Gauge) -> list[Text]:
        muted = self.style_of("gauge--muted")
        total = gauge.total + self.streaming_tokens
        lines = [Text(f"{_n(total)} / {_n(gauge.window)} tokens", style=muted)]
        lines.append(self._outlook(gauge, total))
        if gauge.pruning_saved:
            lines.append(Text(f"pruning saves {_n(gauge.pruning_saved)} tokens", style=muted))
        pending = gauge.parts.get("prune_pending")
        if pending:
            lines.append(Text(f"more pruning would free ~{_n(pending)}", style=muted))
        if self.compact_frees:
            lines.append(Text(f"/compact would replace ~{_n(self.compact_frees)} tokens "
                              "with a summary", style=muted))
        return lines

    def _outlook(self, gauge: Gauge, total: int) -> Text:
        """What the next send does about the fill, as the memory layer decided it
        (:attr:`Gauge.note`): when compaction will not run, why, and what the request
        builder does instead."""
        if gauge.status == "ok" and gauge.note.endswith("tokens until compaction"):
            until = max(0, gauge.threshold - total)  # follows the streaming reply
            return Text.assemble((_n(until), self.style_of("gauge--ok")),
                                 (" tokens until compaction", ""))
        if gauge.status == "ok":
            blocked = gauge.compaction_blocked and gauge.compaction_enabled
            return Text(gauge.note, style=self.style_of("gauge--over" if blocked
                                                        else "gauge--muted"))
        return Text(gauge.note or "over the threshold", style=self.style_of("gauge--over"))

    # -- text for tests and the tmux check ---------------------------------------------
    @property
    def summary_line(self) -> str:
        gauge = self.gauge
        if gauge is None:
            return "measuring"
        total = gauge.total + self.streaming_tokens
        return (f"{100 * total / gauge.window:.0f}% · {_n(total)} tokens · "
                f"{_n(max(0, gauge.threshold - total))} until compaction")
