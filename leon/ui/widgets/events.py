"""The event feed: pruning, compaction, spill, retries, rate limits and guard events, with
their numbers, as they happen (a side panel), plus the one-line :class:`Notice` the
transcript shows where each happened. :func:`describe` is the one place that words them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from leon.agent import events as ev
from leon.llm.base import duration_text
from leon.textsafe import one_line
from leon.units import human_size

MAX_FEED_ITEMS = 200


@dataclass(frozen=True)
class Described:
    """One event in words. ``level`` picks the colour: info, memory, warning, error."""

    kind: str
    text: str
    level: str = "info"
    spill_path: str | None = None


def _n(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def _first(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return None


def _size(n: Any) -> str:
    """A size from an event's data, which may hold anything."""
    try:
        return human_size(float(n))
    except (TypeError, ValueError):
        return str(n)


def describe_memory(name: str, data: dict[str, Any]) -> Described:
    """A memory-layer event (stored or live) in one line with its numbers."""
    saved = _first(data, "tokens_saved", "saved", "freed")
    if saved is None and data.get("tokens_before") is not None \
            and data.get("tokens_after") is not None:
        saved = int(data["tokens_before"]) - int(data["tokens_after"])
    if name in ("prune", "pruned"):
        count = _first(data, "results", "count") or 0
        text = f"pruned {_n(count)} tool result{'s' if count != 1 else ''}"
        if saved is not None:
            text += f", −{_n(saved)} tokens"
        return Described("prune", text, "memory")
    if name in ("compact", "compaction", "compacted"):
        count = _first(data, "messages_replaced", "messages")
        summary = _first(data, "summary_tokens", "tokens_after")
        text = f"compacted {_n(count)} messages" if count is not None else "compacted"
        if summary is not None:
            text += f" → {_n(summary)}-token summary"
        return Described("compact", text, "memory")
    if name in ("compact_rejected", "compact_failed"):
        reason = _first(data, "reason", "error", "message") or "unknown reason"
        return Described("compact", f"compaction failed: {reason}", "warning")
    if name == "compact_blocked":
        return Described("compact", f"auto-compaction paused after {data.get('failures', 3)} "
                                    "failures: /compact to retry", "error")
    if name in ("spill", "spilled"):
        path = _first(data, "path", "file")
        size = _first(data, "bytes", "size")
        tool = data.get("tool") or data.get("name") or "tool"
        text = f"spilled {tool} output"
        if size is not None:
            text += f" ({_size(size)})"
        if path:
            text += f" → {str(path).rsplit('/', 1)[-1]}"
        return Described("spill", text, "memory", spill_path=str(path) if path else None)
    if name == "guard":
        reason = _first(data, "reason", "message") or "fresh segment started"
        return Described("guard", f"cache guard: {reason}", "warning")
    if name == "rollback":
        target = _first(data, "to", "checkpoint", "checkpoint_id")
        return Described("rollback", f"rolled back to checkpoint {target}", "info")
    if name == "rollover":
        return Described("rollover", "new day: carried a handoff summary over", "info")
    details = ", ".join(f"{k} {_n(v) if isinstance(v, int) else v}" for k, v in data.items()
                        if isinstance(v, (int, float, str)))
    return Described(name, f"{name}: {details}" if details else name, "memory")


def describe(event: ev.AgentEvent) -> Described | None:
    """A live agent event worth a feed line, or None (text, tool calls, usage)."""
    if isinstance(event, ev.MemoryEvent):
        return describe_memory(event.event, event.data)
    if isinstance(event, ev.Retried):
        # The attempt about to be made, and the time left in the call's total deadline.
        left = f", {duration_text(event.left)} left" if event.left is not None else ""
        wait = f"retrying in {duration_text(event.delay)} (attempt {event.attempt + 1}{left})"
        if event.status == 429:
            return Described("rate_limit", f"rate limited (429): {wait}", "warning")
        return Described("retry", f"{event.reason}; {wait}", "warning")
    if isinstance(event, ev.ReplyStopped):
        return Described("stopped", event.message, "warning")
    if isinstance(event, ev.ReplyInterrupted):
        return Described("interrupted", f"reply interrupted: {event.reason}", "warning")
    if isinstance(event, ev.WaitingForThread):
        return Described("waiting", event.text, "warning")
    if isinstance(event, ev.TurnFailed):
        status = f" ({event.status})" if event.status else ""
        return Described("error", f"error{status}: {event.error}", "error")
    return None


def describe_stored(kind: str, data: dict[str, Any]) -> Described | None:
    """An event row from the store (so the feed shows history when a thread opens)."""
    if kind == "retry":
        status = data.get("status")
        if status == 429:
            return Described("rate_limit", f"rate limited (429), attempt {data.get('attempt')}",
                             "warning")
        return Described("retry", f"{data.get('reason', 'retry')}, attempt "
                                  f"{data.get('attempt')}", "warning")
    if kind == "error":
        return Described("error", f"error: {data.get('message', '')}", "error")
    if kind == "interrupted":
        return Described("interrupted", f"reply interrupted: {data.get('reason', '')}",
                         "warning")
    if kind == "stopped":
        return Described("stopped", str(data.get("message") or "the reply ended short"),
                         "warning")
    return describe_memory(kind, data)


def clock(ts: float) -> str:
    """Local time of day for the feed."""
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M")


class FeedItem(Static):
    """One line of the feed; click a spill line to open it."""

    def __init__(self, described: Described, when: str) -> None:
        # reasons and errors come from the server or the store: one clean line
        text = Text.assemble((f"{when} ", "dim"), one_line(described.text))
        super().__init__(text, classes=f"feed-item -{described.level}")
        self.described = described
        if described.spill_path:
            self.tooltip = "click to read the spilled output"

    def on_click(self) -> None:
        if self.described.spill_path:
            from leon.ui.messages import SpillOpened

            self.post_message(SpillOpened(self.described.spill_path))


class EventFeed(VerticalScroll, can_focus=False):
    """The side panel of memory and API events, newest at the bottom."""

    DEFAULT_CSS = """
    EventFeed { height: 1fr; scrollbar-size-vertical: 1; }
    EventFeed > .feed-item { color: $text-muted; }
    EventFeed > .-memory { color: $text-secondary; }
    EventFeed > .-warning { color: $text-warning; }
    EventFeed > .-error { color: $text-error; }
    EventFeed > #feed-empty { color: $text-muted; text-style: italic; }
    """

    def __init__(self, *, time_format: Callable[[float], str] = clock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.time_format = time_format

    def compose(self) -> ComposeResult:
        yield Static("no pruning, compaction or retries yet", id="feed-empty")

    async def add(self, described: Described, when: float) -> None:
        """Append one event line (the oldest drop off past MAX_FEED_ITEMS)."""
        await self.add_many([(described, when)])

    async def add_many(self, items: list[tuple[Described, float]]) -> None:
        if not items:
            return
        at_bottom = self.scroll_y >= self.max_scroll_y - 1
        for empty in self.query("#feed-empty"):
            await empty.remove()
        await self.mount_all([FeedItem(d, self.time_format(t)) for d, t in items])
        extra = len(self.children) - MAX_FEED_ITEMS
        if extra > 0:
            await self.remove_children(list(self.children)[:extra])
        if at_bottom:  # follow new events unless the user scrolled back to read
            self.call_after_refresh(self.scroll_end, animate=False)

    async def clear(self) -> None:
        await self.remove_children()
        await self.mount(Static("no pruning, compaction or retries yet", id="feed-empty"))

    @property
    def lines(self) -> list[str]:
        """The feed's text, for tests."""
        return [str(item.described.text) for item in self.query(FeedItem)]
