"""The transcript of the active branch, kept to a bounded number of widgets.

A Markdown widget costs tens of milliseconds to build (it is a tree of block widgets), so
opening a thread mounts only its newest :data:`FIRST` messages (one ``mount_all``) and
paints; one more :data:`PAGE` is mounted above them right after, and older ones a page at
a time when the user scrolls to the top. While a reply streams the view is anchored to the
bottom; past :data:`HIGH_WATER` widgets the oldest are dropped again (only while the user
is at the bottom, so nothing moves under their eyes), as toad's ``prune_window`` does. A
thread of thousands of messages therefore opens as fast as one of ten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from textual.containers import VerticalScroll
from textual.widget import Widget

from leon.agent.turn import INTERRUPTED_NOTE
from leon.store.models import Message, Summary
from leon.ui.messages import OlderMessagesRequested
from leon.ui.widgets.message import (
    AssistantMessage,
    Block,
    Notice,
    SummaryBlock,
    UserMessage,
    model_label,
)
from leon.ui.widgets.tool_block import ToolBlock

FIRST = 8          # most messages mounted before the first paint of a thread
PAGE = 24          # messages mounted per page (right after that paint, and on scroll-up)
HIGH_WATER = 160   # widgets before the oldest are dropped
LOW_WATER = 100    # widgets kept after dropping


def build_blocks(messages: list[Message], start: int, *, speaker: str,
                 after: Message | None = None,
                 summaries: dict[int, Summary] | None = None,
                 notices: dict[int, list[tuple[str, str]]] | None = None,
                 spill_hint: Callable[[str], str | None] | None = None,
                 at_end: bool = False) -> list[Widget]:
    """Widgets for ``messages`` (whose first element is at branch index ``start``).
    Tool results are folded into the tool block of their call (``after``, the message
    that follows the page, may hold the results of its last calls); results whose call
    is not on screen (paged out) are skipped. ``summaries`` (by the id of the last message
    they replace) and ``notices`` (by branch index) are placed where they happened.
    ``at_end``: the messages end the stored branch, so a call still without a result was
    cut off (leon stopped while it ran), not running."""
    tools: dict[str, ToolBlock] = {}
    widgets: list[Widget] = []
    summaries = summaries or {}
    notices = notices or {}
    if start == 0:
        widgets += [Notice(text, level=level, message_index=0)
                    for text, level in notices.get(-1, [])]
    sequence = list(enumerate(messages, start))
    if after is not None and after.role == "user":
        sequence.append((-1, after))
    for index, msg in sequence:
        if index == -1:  # only the results of the lookahead message
            msg = Message(msg.id, msg.thread_id, msg.parent_id, "user",
                          [b for b in msg.content if b.get("type") == "tool_result"],
                          msg.status, msg.tokens, msg.pinned, msg.created_at)
        if msg.role == "user":
            text = msg.text
            if text.strip():
                widgets.append(UserMessage(text, message_index=index, message_id=msg.id,
                                           unsent=msg.unsent))
            for block in msg.content:
                if block.get("type") != "tool_result":
                    continue
                output = _result_text(block.get("content", ""))
                tool = tools.get(block.get("tool_use_id", ""))
                if tool is not None:
                    cancelled = "cancelled by the user" in output
                    tool.set_result(is_error=bool(block.get("is_error")), output=output,
                                    cancelled=cancelled)
                    if spill_hint and tool.spill_path is None:
                        tool.set_badges(spill_path=spill_hint(output))
            if index >= 0:
                widgets += _after_message(msg, index, summaries, notices)
            continue
        text = msg.text
        interrupted = None
        if msg.status == "interrupted":
            interrupted = "the reply was cut off"
            if text.strip() == INTERRUPTED_NOTE:
                text = ""
        if text.strip() or interrupted is not None:
            widgets.append(AssistantMessage(text, speaker=model_label(msg.model) or speaker,
                                            message_index=index, message_id=msg.id,
                                            interrupted=interrupted, stopped=msg.stop_mark))
        for block in msg.content:
            if block.get("type") != "tool_use":
                continue
            tool = ToolBlock(block.get("id", ""), block.get("name", "?"),
                             block.get("input") or {}, message_index=index)
            tools[tool.tool_use_id] = tool
            widgets.append(tool)
        widgets += _after_message(msg, index, summaries, notices)
    if at_end:
        for tool in tools.values():
            if tool.status == "running":
                tool.set_result(is_error=True, cancelled=True,
                                output="no result was stored: leon stopped while it ran")
    return widgets


def _after_message(msg: Message, index: int, summaries: dict[int, Summary],
                   notices: dict[int, list[tuple[str, str]]]) -> list[Widget]:
    """The notices of events that happened after message ``index``, and the compaction
    summary that replaced the messages up to it."""
    out: list[Widget] = [Notice(text, level=level, message_index=index)
                         for text, level in notices.get(index, [])]
    summary = summaries.get(msg.id)
    if summary is not None:
        out.append(SummaryBlock(summary.text, replaced=summary.messages_replaced,
                                message_index=index))
    return out


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return str(content)


class Transcript(VerticalScroll, can_focus=False):
    """The conversation. ``messages`` is the agent's branch list (the same object, so
    replies the agent appends are seen without copying)."""

    DEFAULT_CSS = """
    Transcript { height: 1fr; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.messages: list[Message] = []
        self.first = 0                 # branch index of the oldest mounted message
        self.summaries: dict[int, Summary] = {}
        self.stored_notices: dict[int, list[tuple[str, str]]] = {}
        self.speaker = "claude"
        self.spill_hint: Callable[[str], str | None] | None = None
        self._paging = asyncio.Lock()  # held while a page of older messages is mounted

    # -- whole views ------------------------------------------------------------------
    async def show(self, messages: list[Message], *,
                   summaries: dict[int, Summary] | None = None,
                   notices: dict[int, list[tuple[str, str]]] | None = None,
                   speaker: str = "claude",
                   painted: Callable[[], Any] | None = None) -> None:
        """Replace the view with the tail of ``messages``: the last FIRST now, a PAGE
        more above them once that is painted. ``painted`` is called after the first
        paint, before that page is mounted."""
        await self.finish_streams()
        self.messages = messages
        self.summaries = summaries or {}
        self.stored_notices = notices or {}
        self.speaker = speaker
        self.first = len(messages) - self._screenful(messages)
        widgets = build_blocks(messages[self.first:], self.first, speaker=speaker,
                               summaries=self.summaries, notices=self.stored_notices,
                               spill_hint=self.spill_hint, at_end=True)
        await self.remove_children()
        if widgets:
            await self.mount_all(widgets)
        self.anchor()
        if painted is not None:
            self.call_after_refresh(painted)
        if self.first > 0:
            self.call_after_refresh(self._fill)

    def _screenful(self, messages: list[Message]) -> int:
        """How many of the newest messages (at most FIRST) fill the view: a Markdown
        reply costs milliseconds to build, so the first paint builds no more than shows.
        The height is estimated from the text wrapped at the view's width; too few is
        harmless (the page mounted after the paint follows at once)."""
        width, height = self.size.width - 6, self.size.height
        if width <= 10 or height <= 0:
            return min(FIRST, len(messages))
        rows = 0
        for count, msg in enumerate(reversed(messages), 1):
            rows += 2 + sum(-(-max(len(line), 1) // width) for line in msg.text.splitlines())
            rows += 2 * sum(1 for b in msg.content if b.get("type") == "tool_use")
            if rows >= height or count >= FIRST:
                return count
        return len(messages)

    async def adopt(self, messages: list[Message], shown: list[int], *,
                    summaries: dict[int, Summary],
                    notices: dict[int, list[tuple[str, str]]]) -> bool:
        """Take the whole branch ``messages`` for a view made from its last messages
        (whose ids are ``shown``): nothing is mounted again, the widgets' branch indexes
        move up by the number of older messages. False (nothing changed) when the branch
        does not end with ``shown`` or its summaries differ; then :meth:`show` it."""
        offset, on_screen = len(messages) - len(shown), set(shown)
        if offset < 0 or [m.id for m in messages[offset:]] != shown or \
                {k for k in summaries if k in on_screen} != self.summaries.keys():
            return False
        async with self._paging:  # a page being mounted carries the old indexes
            self.messages = messages
            self.first += offset
            self.summaries = summaries
            self.stored_notices = notices
            for child in self.children:
                if isinstance(child, (Block, Notice)):
                    child.message_index += offset
        return True

    async def _fill(self) -> None:
        """After the first paint: one page above, so there is history to scroll into."""
        if self.is_attached and not self.is_scrolled_up:
            await self.load_older(keep_anchor=True)

    async def finish_streams(self) -> None:
        for reply in self.query(AssistantMessage):
            if reply.streaming:
                await reply.finish()

    # -- paging older messages in ---------------------------------------------------------
    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new <= 0 and old > 0 and self.first > 0 and not self._paging.locked():
            self.post_message(OlderMessagesRequested())

    async def load_older(self, *, keep_anchor: bool = False) -> int:
        """Mount the page before the oldest mounted message, keeping what the user is
        looking at in place (or, with ``keep_anchor``, the view at the bottom). Returns
        how many messages were added."""
        if self.first == 0 or self._paging.locked():
            return 0
        async with self._paging:
            start = max(0, self.first - PAGE)
            after = self.messages[self.first] if self.first < len(self.messages) else None
            widgets = build_blocks(self.messages[start:self.first], start,
                                   speaker=self.speaker, after=after,
                                   summaries=self.summaries, notices=self.stored_notices,
                                   spill_hint=self.spill_hint)
            added = self.first - start
            self.first = start
            if widgets:
                before_height = self.virtual_size.height
                before_y = self.scroll_y
                if not keep_anchor:
                    self.release_anchor()
                if self.children:
                    await self.mount_all(widgets, before=self.children[0])
                else:
                    await self.mount_all(widgets)
                if not keep_anchor:
                    self.call_after_refresh(self._keep_place, before_height, before_y)
            return added

    def _keep_place(self, before_height: int, before_y: float) -> None:
        grown = self.virtual_size.height - before_height
        self.scroll_to(y=before_y + grown, animate=False, immediate=True)

    # -- live additions -------------------------------------------------------------------
    async def add(self, widget: Widget) -> Widget:
        await self.mount(widget)
        self.call_after_refresh(self.prune)
        return widget

    async def prune(self) -> None:
        """Drop the oldest widgets past HIGH_WATER, whole messages at a time, and only
        while the user is at the bottom."""
        children = list(self.children)
        if len(children) <= HIGH_WATER or self.is_scrolled_up:
            return
        cut = len(children) - LOW_WATER
        keep_from = getattr(children[cut], "message_index", 0)
        # never split a message: move the cut to the first widget of its message
        while cut > 0 and getattr(children[cut - 1], "message_index", -2) == keep_from:
            cut -= 1
        if cut <= 0:
            return
        await self.remove_children(children[:cut])
        self.first = max(self.first, keep_from)

    @property
    def is_scrolled_up(self) -> bool:
        return self.max_scroll_y > 0 and self.scroll_y < self.max_scroll_y - 1

    # -- lookups --------------------------------------------------------------------------
    def tool_block(self, tool_use_id: str) -> ToolBlock | None:
        for block in self.query(ToolBlock):
            if block.tool_use_id == tool_use_id:
                return block
        return None

    def last_reply(self) -> AssistantMessage | None:
        replies = list(self.query(AssistantMessage))
        return replies[-1] if replies else None

    @property
    def blocks(self) -> list[Block]:
        return list(self.query(Block))

    @property
    def notices(self) -> list[str]:
        return [n.plain for n in self.query(Notice)]
