"""The checkpoint timeline of the open thread: what happened at each step, the branches a
rollback left behind, and a preview of the conversation at any point.

Checkpoints form a tree (each points at the one before it). The timeline draws it as a
main line with side branches indented under the step they forked from: the active branch
is the main line up to the head, and past the head it continues along the branch most
recently worked on (where roll forward goes). Rolling back only moves the head pointer
(:meth:`Agent.rollback`), so nothing here ever deletes history.

Dismisses True if the head moved (the chat must reload its transcript), else False.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content, Span
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from leon.store.browse import TimelineEntry
from leon.store.models import Message as StoredMessage
from leon.textsafe import clean, one_line
from leon.ui.pane_keys import pane_bindings

PREVIEW_MESSAGES = 30       # the preview shows this many messages before the checkpoint
PREVIEW_CHARS = 700         # and at most this much of each
WINDOW = 400                # rows in the list at a time; a marker row pages in more


@dataclass
class HeadMoved(Message):
    """The thread's head pointer moved from the timeline (rollback, roll forward, branch
    switch). ``checkpoint_id`` is the new head."""

    thread_id: str
    checkpoint_id: int
    how: str                    # rollback | rollforward | switch


@dataclass
class CheckpointNamed(Message):
    """A checkpoint got a name (or lost it: ``label`` None)."""

    thread_id: str
    checkpoint_id: int
    label: str | None


@dataclass
class Row:
    """One line of the timeline as laid out."""

    entry: TimelineEntry
    depth: int                  # 0: main line; n: n forks away from it
    on_branch: bool             # on the active branch (root .. head)
    head: bool
    tip: bool                   # a leaf off the active branch: a branch one can switch to
    fork: bool                  # first step of a side branch
    line_end: int               # the last checkpoint of the line this row is on


def layout(entries: list[TimelineEntry], head_id: int | None) -> list[Row]:
    """Order the checkpoint tree for display: depth-first, side branches right after the
    step they fork from, then the main line continues. Iterative (a thread of thousands
    of steps is a chain thousands deep)."""
    by_id = {e.id: e for e in entries}
    children: dict[int | None, list[int]] = {}
    for e in entries:
        parent = e.checkpoint.parent_id if e.checkpoint.parent_id in by_id else None
        children.setdefault(parent, []).append(e.id)

    active: set[int] = set()
    node = head_id
    while node is not None and node in by_id:
        active.add(node)
        node = by_id[node].checkpoint.parent_id

    # The newest checkpoint under each node (itself included): which child continues
    # the line (the most recently worked branch, as roll forward chooses) and where a
    # branch's tip is.
    newest: dict[int, int] = {}
    for e in sorted(entries, key=lambda e: e.id, reverse=True):
        best = max([e.id, *(newest.get(c, c) for c in children.get(e.id, ()))])
        newest[e.id] = best
    # (children have larger ids than parents, so visiting newest-first sees them first)

    def main_child(kids: list[int]) -> int:
        if len(kids) == 1:
            return kids[0]
        on_path = [k for k in kids if k in active]
        return on_path[0] if on_path else max(kids, key=lambda k: newest.get(k, k))

    # Where each line ends: follow the continuing child down to a leaf.
    line_end: dict[int, int] = {}
    for e in sorted(entries, key=lambda e: e.id, reverse=True):
        kids = children.get(e.id)
        line_end[e.id] = line_end.get(main_child(kids), e.id) if kids else e.id

    rows: list[Row] = []
    roots = children.get(None, [])
    stack: list[tuple[int, int, bool]] = []
    if roots:
        main = main_child(roots)
        stack.append((main, 0, False))
        stack += [(r, 1, True) for r in sorted((r for r in roots if r != main), reverse=True)]
    while stack:
        cid, depth, fork = stack.pop()
        e = by_id[cid]
        kids = children.get(cid, [])
        rows.append(Row(e, depth, cid in active, cid == head_id,
                        tip=not kids and cid not in active, fork=fork,
                        line_end=line_end[cid]))
        if not kids:
            continue
        main = main_child(kids)
        stack.append((main, depth, False))
        for side in sorted((k for k in kids if k != main), reverse=True):
            stack.append((side, depth + 1, True))
    return rows


def describe(entry: TimelineEntry) -> str:
    """What happened at a checkpoint, in a few words (one clean line: the gist and the
    tool names come from messages)."""
    kind = entry.checkpoint.kind
    gist = one_line(entry.text or "")
    if kind == "compaction":
        if entry.summary_tokens:
            before, after = entry.summary_tokens
            return (f"compacted {entry.summary_replaced or 0} messages "
                    f"({before:,} → {after:,} tokens)")
        return "compacted"
    if kind == "tool" or (entry.results and not gist):
        return f"{entry.results} tool result{'s' if entry.results != 1 else ''}"
    if kind == "interrupted":
        return f"interrupted: {gist}" if gist else "interrupted"
    if kind == "import":
        return "imported"
    if entry.tools:
        tools = one_line(entry.tools)
        return f"{gist}  → {tools}" if gist else f"→ {tools}"
    return gist or "(empty)"


def row_prompt(row: Row, width: int = 100) -> Content:
    """One timeline line, at most ``width`` cells. Named checkpoints and the head stand out."""
    e = row.entry
    ck = e.checkpoint
    marker = "◆" if row.head else ("●" if row.on_branch else "○")
    lead = "│ " * max(0, row.depth - 1) + ("├╴" if row.fork else ("│ " if row.depth else ""))
    when = time.strftime("%m-%d %H:%M:%S", time.localtime(ck.created_at))
    muted = "" if row.on_branch else "$text-muted"
    parts: list[Any] = [
        (lead, "$text-muted"),
        (f"{marker} ", "$text-accent bold" if row.head else muted),
        (f"#{ck.id:<5} ", "$text-muted"),
        (f"{when}  ", "$text-muted"),
        (f"{ck.kind:<11} ", "bold" if row.on_branch else "$text-muted"),
    ]
    if ck.label:
        parts.append((f"» {one_line(ck.label)}  ", "bold $text-warning"))
    suffix: tuple[str, str] | None = None
    if row.head:
        suffix = ("  ◀ head", "bold $text-accent")
    elif row.tip:
        suffix = ("  ← branch tip", "$text-secondary")
    used = sum(len(p[0]) for p in parts) + (len(suffix[0]) if suffix else 0)
    room = max(8, width - used - 1)
    text = describe(e)
    if len(text) > room:
        text = text[: room - 1] + "…"
    parts.append((text, muted))
    if suffix:
        parts.append(suffix)
    # Text and spans directly (Content.assemble is several times slower; a thread of
    # thousands of steps has a row each).
    pieces: list[str] = []
    spans: list[Span] = []
    at = 0
    for piece, style in parts:
        if style and piece:
            spans.append(Span(at, at + len(piece), style))
        pieces.append(piece)
        at += len(piece)
    return Content("".join(pieces), spans=spans)


def message_preview(messages: list[StoredMessage]) -> Content:
    """The last messages of a branch as role-labelled plain text."""
    parts: list[Any] = []
    for m in messages[-PREVIEW_MESSAGES:]:
        results = [b for b in m.content if b.get("type") == "tool_result"]
        calls = [b for b in m.content if b.get("type") == "tool_use"]
        if results:
            label, style = f"tool results ({len(results)})", "bold $text-secondary"
        elif m.role == "user":
            label, style = "you", "bold $text-primary"
        else:
            label, style = "assistant", "bold $text-success"
        if m.status == "interrupted":
            label += " (interrupted)"
        body = clean(m.text)  # a message or a tool's output: anyone's text
        if calls:
            names = one_line(", ".join(str(c.get("name", "?")) for c in calls))
            body = (body + "\n" if body else "") + f"→ {names}"
        if results and not body:
            body = ", ".join(_result_size(r) for r in results)
        body = body.strip()
        if len(body) > PREVIEW_CHARS:
            body = body[:PREVIEW_CHARS] + " …"
        if parts:
            parts.append("\n\n")
        parts += [(f"#{m.id} {label}", style), "\n", body]
    return Content.assemble(*parts) if parts else Content("(nothing before this point)")


def _result_size(block: dict[str, Any]) -> str:
    content = block.get("content", "")
    if isinstance(content, list):
        content = "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return f"{len(str(content).encode()):,} bytes"


class TimelineScreen(ModalScreen[bool]):
    """Checkpoints of ``agent.thread``: preview, roll back, roll forward, switch branch,
    name a checkpoint."""

    CSS_PATH = "timeline.tcss"
    BINDINGS = pane_bindings("timeline")

    def __init__(self, agent: Any) -> None:
        super().__init__()
        self.agent = agent
        self.store = agent.store
        self.rows: list[Row] = []
        self.start = 0              # rows[start:end] are in the list (see WINDOW)
        self.end = 0
        self.head_id: int | None = None
        self.moved = False
        self._naming: int | None = None

    @property
    def thread_id(self) -> str:
        return str(self.agent.thread.id)

    def compose(self) -> ComposeResult:
        with Horizontal(id="timeline-body"):
            with Vertical(id="timeline-left"):
                yield OptionList(id="timeline-list")
                yield Input(id="timeline-name", placeholder="Name; Enter saves, empty clears")
            with Vertical(id="timeline-right"):
                yield Static("", id="timeline-preview-title", markup=False)
                with VerticalScroll(id="timeline-preview"):
                    yield Static("", id="timeline-preview-body", markup=False)
        yield Static("", id="timeline-info", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        # Content, not a str: a border title str is read as markup, a title is anyone's
        self.query_one("#timeline-left").border_title = Content(
            f"Timeline · {one_line(self.agent.thread.title or self.thread_id)}")
        self.query_one("#timeline-right").border_title = "Preview"
        self.query_one("#timeline-name").display = False
        self.option_list.focus()
        self.refresh_rows()

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#timeline-list", OptionList)

    # -- loading -------------------------------------------------------------------
    @work(exclusive=True, group="timeline-load", exit_on_error=False)
    async def refresh_rows(self, select: int | None = None) -> None:
        """Read the checkpoints again and redraw; highlight ``select`` (default: head)."""
        try:
            entries = await self.store.timeline(self.thread_id)
            head = await self.store.head(self.thread_id)
        except Exception as exc:
            self._info(f"could not read checkpoints: {exc}")
            return
        self.head_id = head.id if head else None
        self.rows = layout(entries, self.head_id)
        target = select if select is not None else self.head_id
        index = next((i for i, r in enumerate(self.rows) if r.entry.id == target), 0)
        self._show(index)
        self._summary()

    # -- the window of rows in the list ------------------------------------------------
    # An OptionList measures every option it holds; 5,000 rows took ~0.5 s to draw. The
    # list holds WINDOW rows around the highlighted one, with a marker row above or below
    # that pages WINDOW more in when the highlight reaches it.
    def _show(self, index: int, start: int | None = None, end: int | None = None) -> None:
        """Fill the list with a window that holds row ``index`` and highlight it."""
        n = len(self.rows)
        if start is None or end is None:
            start = max(0, min(index - WINDOW * 3 // 4, n - WINDOW))
            end = min(n, start + WINDOW)
        self.start, self.end = start, end
        width = self._width()
        options: list[Option] = []
        if start > 0:
            options.append(Option(Content.styled(
                f"▲ {start:,} earlier checkpoints (move up to show them)", "dim"),
                id="-earlier"))
        options += [Option(row_prompt(r, width), id=str(r.entry.id))
                    for r in self.rows[start:end]]
        if end < n:
            options.append(Option(Content.styled(
                f"▼ {n - end:,} later checkpoints (move down to show them)", "dim"),
                id="-later"))
        ol = self.option_list
        ol.clear_options()
        ol.add_options(options)
        if self.rows:
            ol.highlighted = self._option_index(index)
            ol.scroll_to_highlight(top=False)

    def _option_index(self, row_index: int) -> int:
        return row_index - self.start + (1 if self.start > 0 else 0)

    def _row_index(self, option_index: int) -> int | None:
        """The row shown at ``option_index``; None for a marker."""
        index = option_index - (1 if self.start > 0 else 0) + self.start
        return index if self.start <= index < self.end else None

    def _highlight_row(self, row_index: int) -> None:
        if self.start <= row_index < self.end:
            self.option_list.highlighted = self._option_index(row_index)
            self.option_list.scroll_to_highlight()
        else:
            self._show(row_index)

    def _width(self) -> int:
        return self.option_list.scrollable_content_region.width or 100

    def on_resize(self) -> None:
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        width = self._width()
        for index in range(self.start, self.end):
            option = self._option_index(index)
            if option >= self.option_list.option_count:
                break
            self.option_list.replace_option_prompt_at_index(
                option, row_prompt(self.rows[index], width))

    def _summary(self) -> None:
        if not self.rows:
            self._info("No checkpoints yet: each message, reply and tool step makes one.")
            return
        branches = sum(1 for r in self.rows if r.fork)
        named = sum(1 for r in self.rows if r.entry.checkpoint.label)
        ahead = sum(1 for r in self.rows if r.depth == 0 and not r.on_branch)
        bits = [f"{len(self.rows):,} checkpoints", f"head #{self.head_id}"]
        if ahead:
            bits.append(f"{ahead} ahead of the head (f rolls forward)")
        if branches:
            bits.append(f"{branches} side branch{'es' if branches != 1 else ''}")
        if named:
            bits.append(f"{named} named")
        self._info(" · ".join(bits))

    def _info(self, text: str) -> None:
        self.query_one("#timeline-info", Static).update(one_line(text))

    def _selected(self) -> Row | None:
        option = self.option_list.highlighted
        index = None if option is None else self._row_index(option)
        return None if index is None else self.rows[index]

    # -- preview -------------------------------------------------------------------
    @on(OptionList.OptionHighlighted, "#timeline-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id == "-earlier":  # page the previous WINDOW rows in
            first = self.start
            self._show(first - 1, max(0, first - WINDOW), self.end)
            return
        if event.option.id == "-later":
            last = self.end - 1
            self._show(last + 1, self.start, min(len(self.rows), self.end + WINDOW))
            return
        row = self._selected()
        if row is not None:
            self._preview(row)

    @work(exclusive=True, group="timeline-preview", exit_on_error=False)
    async def _preview(self, row: Row) -> None:
        ck = row.entry.checkpoint
        try:  # only what is shown is read: a 5,000-message branch took 70 ms
            messages = await self.store.branch_tail(self.thread_id, PREVIEW_MESSAGES,
                                                    checkpoint_id=ck.id)
            total = await self.store.branch_length(self.thread_id, checkpoint_id=ck.id)
        except Exception as exc:
            self.query_one("#timeline-preview-body", Static).update(
                f"cannot preview: {clean(str(exc))}")
            return
        where = "the head" if row.head else ("on the active branch" if row.on_branch
                                             else "off the active branch")
        summary = "  ·  a compaction summary is active here" if ck.summary_id else ""
        self.query_one("#timeline-preview-title", Static).update(
            f"#{ck.id} ({ck.kind}), {where}: {total:,} messages, "
            f"last {len(messages)} shown{summary}")
        self.query_one("#timeline-preview-body", Static).update(message_preview(messages))
        self.query_one("#timeline-preview", VerticalScroll).scroll_end(animate=False)

    # -- moving the head ---------------------------------------------------------------
    async def _move(self, checkpoint_id: int, how: str) -> None:
        try:
            if how == "rollforward":
                if not await self.agent.rollforward():
                    self.notify("Nothing ahead of the head to roll forward to.")
                    return
                head = await self.store.head(self.thread_id)
                checkpoint_id = head.id if head else checkpoint_id
            else:
                await self.agent.rollback(checkpoint_id)
        except Exception as exc:
            self.notify(f"could not move the head: {exc}", severity="error")
            return
        self.moved = True
        self.post_message(HeadMoved(self.thread_id, checkpoint_id, how))
        if how == "rollback":
            self.notify(f"Rolled back to #{checkpoint_id}. A new message starts a branch "
                        "here; f rolls forward again.")
        elif how == "switch":
            self.notify(f"Switched to the branch ending at #{checkpoint_id}.")
        self.refresh_rows(select=checkpoint_id)

    async def action_rollback(self) -> None:
        row = self._selected()
        if row is None:
            return
        if row.head:
            self.notify("That is the head already.")
            return
        await self._move(row.entry.id, "rollback")

    async def action_rollforward(self) -> None:
        await self._move(-1, "rollforward")

    async def action_switch_branch(self) -> None:
        """Go to the end of the highlighted row's line: the tip of its branch."""
        row = self._selected()
        if row is None:
            return
        if row.line_end == self.head_id:
            self.notify("The head is at the end of this branch already.")
            return
        await self._move(row.line_end, "switch")

    def action_goto_head(self) -> None:
        for i, r in enumerate(self.rows):
            if r.head:
                self._highlight_row(i)

    @on(OptionList.OptionSelected, "#timeline-list")
    async def _selected_with_enter(self) -> None:
        await self.action_rollback()

    # -- naming ----------------------------------------------------------------------
    def action_name(self) -> None:
        row = self._selected()
        if row is None:
            return
        self._naming = row.entry.id
        box = self.query_one("#timeline-name", Input)
        box.value = one_line(row.entry.checkpoint.label or "")
        box.border_title = f"Name checkpoint #{row.entry.id}"
        box.display = True
        box.focus()

    def _end_naming(self) -> None:
        self._naming = None
        self.query_one("#timeline-name").display = False
        self.option_list.focus()

    @on(Input.Submitted, "#timeline-name")
    async def _name_submitted(self, event: Input.Submitted) -> None:
        checkpoint_id = self._naming
        label = " ".join(event.value.split()) or None
        self._end_naming()
        if checkpoint_id is None:
            return
        try:
            await self.store.label_checkpoint(self.thread_id, checkpoint_id, label)
        except Exception as exc:
            self.notify(f"could not name the checkpoint: {exc}", severity="error")
            return
        self.post_message(CheckpointNamed(self.thread_id, checkpoint_id, label))
        self.refresh_rows(select=checkpoint_id)

    def action_close(self) -> None:
        if self._naming is not None:
            self._end_naming()
            return
        self.dismiss(self.moved)
