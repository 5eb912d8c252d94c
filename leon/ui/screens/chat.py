"""The chat screen: header, transcript, prompt, and a side panel with the context gauge
and the event feed.

The turn runs in an async worker (``group="turn"``); the agent's events arrive as
:class:`~leon.ui.messages.AgentReported` messages, in order, and are drawn here. How a
turn ended — finished, failed, stopped with Escape — is handled in one place,
:meth:`ChatScreen.on_worker_state_changed`. The screen never sees SQL: it talks to the
agent and to the store's dataclass API.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import importlib
import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from leon.agent import events as ev
from leon.memory.count import count_text
from leon.textsafe import clean, one_line
from leon.ui import bench_hook
from leon.ui.bindings import SLASH_COMMANDS, bindings_for
from leon.ui.messages import (
    AgentLoaded,
    AgentReported,
    OlderMessagesRequested,
    PromptSubmitted,
    SettingChanged,
    SpillOpened,
    TextCopied,
)
from leon.ui.widgets.events import Described, EventFeed, describe, describe_stored
from leon.ui.widgets.gauge import ContextGauge, compute_gauge, memory_extras
from leon.ui.widgets.header import LeonHeader
from leon.ui.widgets.message import AssistantMessage, Notice, UserMessage, model_label
from leon.ui.widgets.prompt import PromptInput
from leon.ui.widgets.tool_block import ToolBlock, find_spill_path
from leon.ui.widgets.transcript import FIRST, PAGE, Transcript

if TYPE_CHECKING:
    from leon.agent.turn import Agent
    from leon.runtime import ProviderChoice
    from leon.store.leon_store import LeonStore
    from leon.store.models import Message, Summary, Thread
    from leon.ui.app import LeonApp

GAUGE_INTERVAL = 0.25   # seconds between gauge redraws while a reply streams
PREVIEW = FIRST + PAGE  # messages read for the first sight of a thread (and the page above)
SIDE_MIN_WIDTH = 100    # below this terminal width the side panel starts hidden
USER_ERRORS = ("TurnError", "StoreError", "ProviderError", "NotFound", "ConfigError")


def error_text(error: BaseException | None) -> str:
    """One line for the user. An unexpected exception (a bug) says so, and its traceback
    goes to ``LEON_HOME/leon.log`` (secrets redacted), never to the screen."""
    if error is None:
        return "unknown error"
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & set(USER_ERRORS):
        return str(error).strip() or type(error).__name__
    from leon.crashlog import one_line  # a bug: the traceback goes to the private log

    return one_line(error)


class ChatScreen(Screen[None]):
    """One thread's conversation."""

    CSS_PATH = "chat.tcss"
    BINDINGS = bindings_for("chat")
    AUTO_FOCUS = "#prompt"

    app: LeonApp  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.agent: Agent | None = None
        self.notice: str | None = None
        self._reply: AssistantMessage | None = None
        self._pending_text: str | None = None      # typed before the agent was ready
        self._turn_text: str | None = None         # the text of the running turn
        self._turn_stored = False                  # its user message is in leon.db
        self._gauge_timer: Any = None
        self._streamed = ""
        self._side_user_choice: bool | None = None
        self._reload_pending = False               # a compaction happened during the turn
        self._preview: tuple[str, list[int]] | None = None  # (thread, message ids) shown

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield LeonHeader(id="header")
        yield Static("", id="demo-notice")
        with Horizontal(id="main"):
            with Vertical(id="conversation"):
                yield Transcript(id="transcript")
                yield Static("", id="turn-status")
                yield PromptInput(id="prompt",
                                  placeholder="Message leon — Enter sends, ctrl+j new line, "
                                              "/help for commands")
            with Vertical(id="side"):
                yield ContextGauge(id="gauge")
                yield Static("Events", id="events-title")
                yield EventFeed(id="feed", time_format=self.app.time_format)
        yield Footer()

    @property
    def transcript(self) -> Transcript:
        return self.query_one("#transcript", Transcript)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one("#prompt", PromptInput)

    @property
    def gauge(self) -> ContextGauge:
        return self.query_one("#gauge", ContextGauge)

    @property
    def feed(self) -> EventFeed:
        return self.query_one("#feed", EventFeed)

    @property
    def header(self) -> LeonHeader:
        return self.query_one("#header", LeonHeader)

    def on_mount(self) -> None:
        self.query_one("#demo-notice").display = False
        self.query_one("#turn-status").display = False
        self.prompt.cursor_blink = self.app.cursor_blink
        self.transcript.spill_hint = self._spill_hint

    def on_resize(self) -> None:
        if self._side_user_choice is None:
            self.query_one("#side").display = self.size.width >= SIDE_MIN_WIDTH

    # -- the agent arrives ---------------------------------------------------------------
    @on(AgentLoaded)
    async def on_agent_loaded(self, message: AgentLoaded) -> None:
        message.stop()
        await self.use_agent(message.agent, message.notice)

    async def use_agent(self, agent: Agent, notice: str | None = None) -> None:
        """Show ``agent``'s thread: header, transcript, feed, gauge, prompt history."""
        self.agent = agent
        self.notice = notice
        self._reply = None
        agent.subscribe(lambda event, _agent=agent: self.post_message(AgentReported(_agent,
                                                                                    event)))
        self.update_header()
        adopted = False
        try:
            adopted = await self.reload()
        except Exception as exc:  # e.g. the database went away: say so, keep the screen
            self.app.notify(error_text(exc), title="could not show the thread",
                            severity="error", timeout=10)
        if self._pending_text is not None:  # typed while leon was starting
            text, self._pending_text = self._pending_text, None
            if not adopted:  # the preview's transcript, with the text in it, was replaced
                await self.transcript.add(UserMessage(text, message_index=len(
                    self.transcript.messages)))
            self.start_turn(text)

    def update_header(self) -> None:
        agent = self.agent
        if agent is not None:
            self._show_header(agent.thread, agent.model,
                              bool(getattr(agent.provider, "is_demo", False)))

    def _show_header(self, thread: Thread, model: str, demo: bool) -> None:
        header = self.header
        header.title = thread.display_title
        header.kind = thread.kind
        header.model = model
        header.agent = thread.agent
        header.demo = demo
        banner = self.query_one("#demo-notice", Static)
        if demo:
            notice = self.notice or "demo model: offline and deterministic, not Claude"
            banner.update(Text(clean(notice)))
        banner.display = demo
        self.app.sub_title = one_line(thread.display_title)

    async def preview(self, store: LeonStore, thread: Thread, choice: ProviderChoice) -> None:
        """Show the end of ``thread`` while its agent loads (at start-up, on a switch): the
        header, and the newest messages read on their own, so the first sight of a long
        thread does not wait for its whole branch. :meth:`reload` then adopts these
        widgets. Returns once they are painted."""
        self.notice = choice.notice
        demo = bool(getattr(choice.provider, "is_demo", False))
        self._show_header(thread, choice.model, demo)
        tail = await store.branch_tail(thread.id, PREVIEW)
        partial = len(tail) == PREVIEW  # there may be older messages than these
        summaries, described, notices = await self._decorations(store, thread.id, tail)
        if partial:
            notices.pop(-1, None)  # these happened before the preview's first message
        self._preview = (thread.id, [m.id for m in tail])
        painted = asyncio.Event()

        def done() -> None:
            bench_hook.mark(self.app, "thread_painted")
            painted.set()

        await self.feed.clear()
        await self.feed.add_many(described[-50:])
        await self.transcript.show(tail, summaries=summaries, notices=notices,
                                   speaker="demo" if demo else "claude", painted=done)
        await painted.wait()

    async def _decorations(self, store: LeonStore, thread_id: str, messages: list[Message],
                           ) -> tuple[dict[int, Summary], list[tuple[Described, float]],
                                      dict[int, list[tuple[str, str]]]]:
        """The summaries on ``messages``, the thread's stored events in words, and the
        notices placed among ``messages``."""
        on_branch = {m.id for m in messages}
        summaries = {s.upto_message_id: s for s in await store.summaries(thread_id)
                     if s.upto_message_id in on_branch}
        stored = await store.events(thread_id, limit=300)
        described = [(d, e.created_at) for e in stored
                     if (d := describe_stored(e.kind, e.data)) is not None]
        return summaries, described, _place(described, [m.created_at for m in messages])

    async def reload(self) -> bool:
        """Redraw the thread from the store (after opening it, a rollback, a compaction).
        Right after :meth:`preview` of the same thread, the widgets on screen are kept and
        take the whole branch (returns True)."""
        agent = self.agent
        if agent is None:
            return False
        store = agent.store
        tid = agent.thread.id
        # The agent holds the branch from its summary on; before any compaction that is
        # the whole branch, so the store is not read twice.
        messages = list(agent.branch) if agent.summary_text is None else await store.branch(tid)
        summaries, described, notices = await self._decorations(store, tid, messages)
        self.prompt.set_history([m.text for m in messages
                                 if m.role == "user" and m.text.strip()])
        preview, self._preview = self._preview, None
        if preview is not None and preview[0] == tid and preview[1] and \
                await self.transcript.adopt(messages, preview[1], summaries=summaries,
                                            notices=notices):
            self.call_after_refresh(self._agent_shown)  # the feed is the preview's too
            return True
        await self.feed.clear()
        await self.feed.add_many(described[-50:])
        await self.transcript.show(messages, summaries=summaries, notices=notices,
                                   speaker=self.speaker, painted=self._thread_painted)
        return False

    def _thread_painted(self) -> None:
        bench_hook.mark(self.app, "thread_painted")
        self._agent_shown()

    def _agent_shown(self) -> None:
        """The agent's thread is on screen: start what start-up put off, and the gauge
        (it counts the whole view: ~0.2 s for 5,000 messages never counted before)."""
        self.app.thread_painted()
        self.refresh_gauge(now=True)

    async def show_housekeeping(self, lines: list[str]) -> None:
        """What the start-up housekeeping removed (one line per kind), in the feed."""
        for line in lines:
            await self.feed.add(Described("housekeeping", line), time.time())

    @property
    def speaker(self) -> str:
        """The label of a reply being written now: the model writing it."""
        agent = self.agent
        if agent is None:
            return "demo"
        return model_label(agent.model) or "claude"

    # -- sending ---------------------------------------------------------------------------
    @on(PromptSubmitted)
    async def on_prompt_submitted(self, message: PromptSubmitted) -> None:
        message.stop()
        text = message.text
        if text.lstrip().startswith("/") and not text.lstrip().startswith("//"):
            self.prompt.clear()
            self.prompt.remember(text.strip())
            await self.run_command(text.strip())
            return
        if text.lstrip().startswith("//"):
            text = text.lstrip()[1:]
        if self.turn_running:
            self.app.notify("a reply is still streaming: Esc stops it", severity="warning")
            return
        self.prompt.clear()
        self.prompt.remember(text)
        if self.agent is None:
            self._pending_text = text
            await self.transcript.add(UserMessage(text, message_index=len(
                self.transcript.messages)))
            self.app.notify("starting up: your message is sent as soon as leon is ready")
            return
        unsent = self.agent.unsent
        block = self._user_block(unsent.id) if unsent is not None else None
        if unsent is not None and unsent.text == text:
            if block is not None:  # sent again as it was: nothing new is stored
                await block.mark_unsent(False)
        else:
            if unsent is not None:  # edited: the new text takes the unsent one's place
                known = self.transcript.messages
                if known and known[-1].id == unsent.id:
                    known.pop()
                if block is not None:
                    await block.remove()
            await self.transcript.add(UserMessage(text,
                                                  message_index=len(self.transcript.messages)))
        self.start_turn(text)

    def _user_block(self, message_id: int) -> UserMessage | None:
        """The transcript's block of a stored user message (the newest one, as the block
        of a message typed this session learns its id when it is stored)."""
        for block in reversed(list(self.transcript.query(UserMessage))):
            if block.message_id == message_id:
                return block
        return None

    def start_turn(self, text: str) -> None:
        self._turn_text = text
        self._turn_stored = False  # its user message is stored (or was: an unsent one)
        self._streamed = ""
        self._set_status("replying… Esc stops the reply")
        self.turn_worker(text)

    @work(group="turn", exclusive=True, exit_on_error=False)
    async def turn_worker(self, text: str) -> None:
        agent = self.agent
        assert agent is not None
        # An unsent message at the end of the thread is sent again when the text is the
        # same, and replaced when the user edited it (it came back into the prompt).
        await agent.send(text, replace_unsent=True)

    @property
    def turn_running(self) -> bool:
        """A turn is started or streaming (a started worker is PENDING for a moment)."""
        return any(w.group == "turn" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   for w in self.workers)

    def _set_status(self, text: str) -> None:
        status = self.query_one("#turn-status", Static)
        status.update(Text(clean(text)))
        status.display = bool(text)
        self.refresh_bindings()

    # -- one place for how workers end -----------------------------------------------------
    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        state = event.state
        if state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.group == "turn":
            await self._turn_ended(state, worker.error)
        elif state == WorkerState.ERROR:
            self.app.notify(error_text(worker.error), title=worker.name or "error",
                            severity="error", timeout=8)

    async def _turn_ended(self, state: WorkerState, error: BaseException | None) -> None:
        reply, self._reply = self._reply, None
        if reply is not None:
            await reply.finish()
        text, self._turn_text = self._turn_text, None
        self._streamed = ""
        self.gauge.streaming_tokens = 0
        self._set_status("")
        began = self._turn_stored
        failed = state != WorkerState.SUCCESS
        if self._reload_pending and (state == WorkerState.ERROR or not began):
            # Redraw before the notice below, or the redraw would take it away again.
            self._reload_pending = False
            await self.reload()
        elif failed and not began and text is not None:
            # The turn never began (stopped, or gave up, while another leon had the
            # thread): nothing was stored, so show what is.
            await self.reload()
        agent = self.agent
        unsent = agent.unsent if agent is not None and failed else None
        if unsent is not None:  # no reply came: the message is not part of the thread
            block = self._user_block(unsent.id)
            if block is not None:
                await block.mark_unsent()
        restore = (unsent.text if unsent is not None else None) if began else text
        if failed and restore is not None and not self.prompt.text.strip():
            self.prompt.load_text(restore)
            self.prompt.move_cursor(self.prompt.document.end)
        back = (" — your message was not sent and is back in the prompt: Enter sends it "
                "again, or edit it to send something else instead") if unsent and began else ""
        if failed and not began and text is not None:
            what = "stopped waiting" if state == WorkerState.CANCELLED else error_text(error)
            await self.transcript.add(Notice(
                f"{what}; your message was not sent — it is back in the prompt",
                level="warning", message_index=self._index()))
            if state == WorkerState.ERROR:
                self.app.notify(what, title="the message was not sent", severity="error",
                                timeout=8)
        elif state == WorkerState.CANCELLED:
            if reply is not None:
                await reply.mark_interrupted("stopped by the user")
            stopped = "reply stopped" + (back or "; what arrived is kept")
            await self.transcript.add(Notice(stopped, level="warning",
                                             message_index=self._index()))
        elif state == WorkerState.ERROR:
            message = error_text(error)
            await self.transcript.add(Notice(f"{message}{back}", level="error",
                                             message_index=self._index()))
            self.app.notify(message, title="the reply failed", severity="error", timeout=8)
        if self._reload_pending:
            self._reload_pending = False
            await self.reload()
        self.refresh_gauge(now=True)
        if self.is_current:
            self.prompt.focus()

    def _index(self) -> int:
        return max(0, len(self.transcript.messages) - 1)

    # -- what the agent reports ----------------------------------------------------------
    @on(AgentReported)
    async def on_agent_reported(self, message: AgentReported) -> None:
        message.stop()
        if message.agent is not self.agent:
            return  # an event from the thread we left
        event = message.event
        transcript = self.transcript
        if isinstance(event, ev.TextStreamed):
            if self._reply is None:
                self._reply = AssistantMessage(speaker=self.speaker,
                                               message_index=len(transcript.messages))
                await transcript.add(self._reply)
            await self._reply.append(event.text)
            self._streamed += event.text
            self.refresh_gauge()
        elif isinstance(event, (ev.UserMessageStored, ev.MessageStored)):
            self._track_stored(event.message_id)
            if isinstance(event, ev.UserMessageStored):
                self._turn_stored = True
                self.update_header()  # the first message may have titled the thread
                if not event.resent:  # the block typed this session learns its id
                    for block in reversed(list(transcript.query(UserMessage))):
                        if block.message_id is None:
                            block.message_id = event.message_id
                            break
            if isinstance(event, ev.MessageStored) and event.role == "assistant":
                if event.stop_reason and self._reply is not None:
                    from leon.store.models import STOP_MARKS

                    await self._reply.mark_stopped(STOP_MARKS.get(event.stop_reason,
                                                                  event.stop_reason))
                await self._close_reply(event.message_id)
            self.refresh_gauge()
        elif isinstance(event, ev.ToolCallStarted):
            await self._close_reply(None)
            await transcript.add(ToolBlock(event.tool_use_id, event.name, event.input,
                                           message_index=len(transcript.messages)))
        elif isinstance(event, ev.ToolCallFinished):
            block = transcript.tool_block(event.tool_use_id)
            if block is not None:
                block.set_result(is_error=event.is_error, output=event.output, size=event.bytes,
                                 meta=event.meta)
                if block.spill_path is None:
                    block.set_badges(spill_path=self._spill_hint(event.output))
        elif isinstance(event, ev.ReplyInterrupted):
            if self._reply is not None:
                await self._reply.mark_interrupted(event.reason)
                self._reply = None
            await self._feed(event)
        elif isinstance(event, ev.TurnFinished):
            await self._close_reply(None)
        elif isinstance(event, ev.UsageRecorded):
            self.refresh_gauge()
        elif isinstance(event, ev.MemoryEvent):
            await self._memory_event(event)
        elif isinstance(event, ev.BranchReloaded):
            self._reload_pending = True  # another leon changed the thread: redraw after
        elif isinstance(event, ev.WaitingForThread):
            # Another leon answers on this thread; the message is sent once it is done,
            # and the transcript is redrawn after the turn to show what that leon added.
            self._reload_pending = True
            self._set_status(f"{event.text} Esc stops waiting")
            await self._feed(event)
        else:
            await self._feed(event)

    def _track_stored(self, message_id: int) -> None:
        """Keep the transcript's message list in step with the agent's branch."""
        agent = self.agent
        if agent is None:
            return
        for msg in reversed(agent.branch[-4:]):
            if msg.id == message_id:
                known = self.transcript.messages
                if not known or known[-1].id != message_id:
                    known.append(msg)
                break

    async def _close_reply(self, message_id: int | None) -> None:
        reply, self._reply = self._reply, None
        if reply is not None:
            await reply.finish()
            if message_id is not None:
                reply.message_id = message_id
        self._streamed = ""
        self.gauge.streaming_tokens = 0

    async def _feed(self, event: ev.AgentEvent, *, notice: bool = True) -> None:
        described = describe(event)
        if described is None:
            return
        await self.feed.add(described, time.time())
        if notice:
            await self.transcript.add(Notice(described.text, level=described.level,
                                             message_index=self._index()))

    async def _memory_event(self, event: ev.MemoryEvent) -> None:
        await self._feed(event)
        data = event.data
        if event.event == "spill" and data.get("tool_use_id") and data.get("path"):
            block = self.transcript.tool_block(str(data["tool_use_id"]))
            if block is not None:
                block.set_badges(spill_path=str(data["path"]))
        if event.event == "compact":
            # The summary is stored but the agent reloads after this event: redraw once
            # the turn (or /compact) is over, with the summary block where it belongs.
            self._reload_pending = True
        self.refresh_gauge(now=event.event != "spill")

    def _spill_hint(self, output: str) -> str | None:
        path = find_spill_path(output)
        spill_root = str(self.app.paths.spill)
        return path if path and path.startswith(spill_root) else None

    # -- the gauge ----------------------------------------------------------------------
    def refresh_gauge(self, *, now: bool = False) -> None:
        """Recompute the gauge: at once (settings, end of a turn), or at most every
        GAUGE_INTERVAL while a reply streams."""
        if self.agent is None:
            return
        if now:
            if self._gauge_timer is not None:
                self._gauge_timer.stop()
                self._gauge_timer = None
            self.gauge_worker()
        elif self._gauge_timer is None:
            self._gauge_timer = self.set_timer(GAUGE_INTERVAL, self._gauge_due)

    def _gauge_due(self) -> None:
        self._gauge_timer = None
        self.gauge_worker()

    @work(group="gauge", exclusive=True, exit_on_error=False, name="gauge")
    async def gauge_worker(self) -> None:
        agent = self.agent
        if agent is None:
            return
        self.app.warm_tokenizer()
        await self.app.tokenizer_ready  # never load the tokenizer on the event loop
        gauge = await compute_gauge(agent)
        streamed = self._streamed
        if agent is not self.agent:
            return
        self.gauge.gauge = gauge
        if streamed:
            self.gauge.streaming_tokens = count_text(streamed)
            return
        self.gauge.streaming_tokens = 0
        decisions, frees = memory_extras(agent)
        self.gauge.compact_frees = frees
        for block in self.transcript.query(ToolBlock):
            kind = decisions.get(block.tool_use_id)
            block.set_badges(trimmed=kind == "trim", cleared=kind == "clear")
        bench_hook.mark(self.app, "gauge_drawn")

    @on(SettingChanged)
    def on_setting_changed(self, message: SettingChanged) -> None:
        self.refresh_gauge(now=True)
        if message.key == "model" and self.agent is not None:
            self.switch_model(str(message.value))

    # -- slash commands -------------------------------------------------------------------
    async def run_command(self, line: str) -> None:
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        name = name.lower()
        if name == "/help":
            self.app.action_help()
        elif name == "/new":
            self.new_thread(arg)
        elif name == "/threads":
            self.action_threads()
        elif name == "/rollback":
            if arg:
                if not arg.isdigit():
                    self.app.notify("usage: /rollback [checkpoint number]", severity="warning")
                else:
                    self.rollback_to(int(arg))
            else:
                self.action_timeline()
        elif name == "/compact":
            self.action_compact()
        elif name == "/settings":
            self.action_settings()
        elif name == "/spill":
            self.action_spill()
        elif name == "/model":
            if arg:
                self.app.set_setting("model", arg)
            else:
                model = self.agent.model if self.agent else self.app.settings["model"]
                self.app.notify(f"model: {model}. /model NAME changes it "
                                "('demo' for the offline model)")
        elif name == "/theme":
            if arg:
                if arg in self.app.available_themes:
                    self.app.theme = arg
                else:
                    names = ", ".join(sorted(self.app.leon_theme_names))
                    self.app.notify(f"no theme {arg!r}; leon's themes: {names}",
                                    severity="warning")
            else:
                self.app.action_pick_theme()
        elif name == "/copy":
            self.action_copy_reply()
        elif name == "/stats":
            from leon.ui.screens.status import StatusScreen

            self.app.push_screen(StatusScreen(self.app.stores, self.app.paths))
        else:
            known = " ".join(c for c, _, _ in SLASH_COMMANDS)
            self.app.notify(f"unknown command {name}; try {known}", severity="warning")

    # -- actions ------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.turn_running
        return True

    def action_stop(self) -> None:
        for worker in self.workers:
            if worker.group == "turn" and worker.state in (WorkerState.PENDING,
                                                           WorkerState.RUNNING):
                worker.cancel()

    def action_focus_prompt(self) -> None:
        self.prompt.focus()

    def action_toggle_side(self) -> None:
        side = self.query_one("#side")
        side.display = not side.display
        self._side_user_choice = bool(side.display)

    def action_page_up(self) -> None:
        self.transcript.scroll_page_up()

    def action_page_down(self) -> None:
        self.transcript.scroll_page_down()

    def action_scroll_top(self) -> None:
        self.transcript.scroll_home(animate=False)

    def action_scroll_bottom(self) -> None:
        self.transcript.scroll_end(animate=False)

    def action_copy_reply(self) -> None:
        reply = self.transcript.last_reply()
        if reply is None or not reply.text.strip():
            self.app.notify("no reply to copy yet", severity="warning")
            return
        reply.action_copy()

    @on(TextCopied)
    def on_text_copied(self, message: TextCopied) -> None:
        self.app.notify(f"copied {len(message.text):,} characters to the clipboard")

    @on(OlderMessagesRequested)
    async def on_older_messages_requested(self) -> None:
        await self.transcript.load_older()

    # -- the panes (built by leon/ui/screens/*; opened lazily) ----------------------------
    def _pane(self, module: str, name: str, what: str) -> Any:
        try:
            mod = importlib.import_module(f"leon.ui.screens.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"leon.ui.screens.{module}":
                self.app.notify(f"the {what} is not in this build of leon yet",
                                severity="warning")
                return None
            raise
        screen_class = getattr(mod, name, None)
        if screen_class is None:
            self.app.notify(f"the {what} is not in this build of leon yet", severity="warning")
        return screen_class

    def _need_agent(self) -> Agent | None:
        if self.agent is None:
            self.app.notify("still starting up", severity="warning")
        return self.agent

    def action_threads(self) -> None:
        agent = self._need_agent()
        screen = self._pane("threads", "ThreadBrowserScreen", "thread browser")
        if agent is None or screen is None:
            return

        def chosen(thread_id: str | None) -> None:
            if thread_id:
                self.open_thread(thread_id)

        self.app.push_screen(screen(agent.store, current_thread_id=agent.thread.id), chosen)

    def action_timeline(self) -> None:
        agent = self._need_agent()
        screen = self._pane("timeline", "TimelineScreen", "checkpoint timeline")
        if agent is None or screen is None:
            return
        if self.turn_running:
            self.app.notify("wait for the reply to finish (or Esc) before rolling back",
                            severity="warning")
            return

        def closed(moved: bool | None) -> None:
            if moved:
                self.reload_agent()

        self.app.push_screen(screen(agent), closed)

    def action_spill(self, path: str | None = None) -> None:
        agent = self._need_agent()
        screen = self._pane("spill", "SpillScreen", "spill pane")
        if agent is None or screen is None:
            return
        self.app.push_screen(screen(agent.store, self.app.paths, agent.thread.id, path=path))

    @on(SpillOpened)
    def on_spill_opened(self, message: SpillOpened) -> None:
        message.stop()
        self.action_spill(message.path)

    def action_settings(self) -> None:
        screen = self._pane("settings", "SettingsScreen", "settings pane")
        if screen is not None:
            self.app.push_screen(screen(self.app.settings))

    def action_new_thread(self) -> None:
        self.new_thread("")

    def action_compact(self) -> None:
        agent = self._need_agent()
        if agent is None:
            return
        if not hasattr(agent, "compact"):
            self.app.notify("manual compaction is not available in this build",
                            severity="warning")
            return
        if self.turn_running:
            self.app.notify("wait for the reply to finish before compacting", severity="warning")
            return
        gauge = self.gauge.gauge
        frees = gauge.parts.get("compact_frees") if gauge else None
        self._set_status("compacting…" + (f" (frees ~{frees:,} tokens)" if frees else ""))
        self.compact_worker()

    # -- background work ----------------------------------------------------------------------
    @work(group="compact", exclusive=True, exit_on_error=False, name="compaction")
    async def compact_worker(self) -> None:
        agent = self.agent
        assert agent is not None
        try:
            outcome = await agent.compact()
        finally:
            self._set_status("")
        self._reload_pending = False
        await self.reload()
        if not getattr(outcome, "ok", True):
            self.app.notify(f"not compacted: {getattr(outcome, 'reason', '')}",
                            severity="warning", timeout=8)

    @work(group="switch", exclusive=True, exit_on_error=False, name="opening the thread")
    async def open_thread(self, thread_id: str) -> None:
        """Switch to another thread: its end is drawn first (:meth:`preview`), then its
        agent loads. If that fails, the thread that was open comes back."""
        await self._stop_turn()
        old, app = self.agent, self.app
        assert app.stores is not None
        choice = await app.provider_choice()
        self.agent = None  # nothing of the old thread is drawn into the new one
        try:
            thread = await app.stores.leon.get_thread(thread_id)
            await self.preview(app.stores.leon, thread, choice)
            agent = await app.build_agent(thread_id=thread_id)
        except BaseException:
            self.agent, self._preview = old, None
            if old is not None:
                self.update_header()
                with contextlib.suppress(Exception):
                    await self.reload()
            raise
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()  # its sandbox lease
        await self.use_agent(agent, self.notice)

    @work(group="switch", exclusive=True, exit_on_error=False, name="new thread")
    async def new_thread(self, title: str) -> None:
        await self._stop_turn()
        agent = await self.app.build_agent(new_title=title)
        await self._retire_agent()
        await self.use_agent(agent, self.notice)
        self.app.notify(f"new thread: {agent.thread.display_title}")

    @work(group="switch", exclusive=True, exit_on_error=False, name="rollback")
    async def rollback_to(self, checkpoint_id: int) -> None:
        agent = self.agent
        assert agent is not None
        await self._stop_turn()
        await agent.rollback(checkpoint_id)
        await self.reload()
        self.app.notify(f"rolled back to checkpoint {checkpoint_id}; ctrl+r opens the timeline")

    @work(group="switch", exclusive=True, exit_on_error=False, name="reload")
    async def reload_agent(self) -> None:
        agent = self.agent
        assert agent is not None
        await agent.load()
        await self.reload()

    @work(group="model", exclusive=True, exit_on_error=False, name="model")
    async def switch_model(self, model: str) -> None:
        agent = self.agent
        if agent is None or agent.model == model:
            return
        choice = await self.app.choose(model)
        self.app.start_provider()
        agent.provider = choice.provider
        agent.model = choice.model
        self.notice = choice.notice
        self.update_header()
        self.refresh_gauge(now=True)
        self.app.notify(f"model: {choice.model}")

    async def _retire_agent(self) -> None:
        """Release the current agent (its sandbox lease) before another takes over."""
        agent, self.agent = self.agent, None
        if agent is not None:
            with contextlib.suppress(Exception):
                await agent.close()

    async def _stop_turn(self) -> None:
        for worker in list(self.workers):
            if worker.group == "turn" and worker.state in (WorkerState.PENDING,
                                                           WorkerState.RUNNING):
                worker.cancel()
                with contextlib.suppress(Exception):
                    await worker.wait()


def _place(items: list[tuple[Described, float]],
           times: list[float]) -> dict[int, list[tuple[str, str]]]:
    """Stored events → the branch index of the message each happened after (-1: before
    the first)."""
    placed: dict[int, list[tuple[str, str]]] = {}
    for described, when in items:
        index = bisect.bisect_right(times, when) - 1
        placed.setdefault(max(index, -1), []).append((described.text, described.level))
    return placed

