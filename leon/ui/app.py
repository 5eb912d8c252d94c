"""The Textual app: themes, keys, the chat screen, and the start-up that builds the agent
after the first frame.

:func:`make_app` is the one factory the CLI (:func:`run_app`), the tests and
``scripts/screenshots.py`` use. Start-up order matters for speed: the chat screen paints
first; then a worker opens the stores, resolves the thread, has the chat screen draw its
last messages (:meth:`ChatScreen.preview`) and loads the agent, whose whole branch the
transcript adopts. Only then does the rest start (:meth:`LeonApp.thread_painted`): the
tokenizer and the gauge, the lifecycle housekeeping, and Claude's provider (importing the
SDK takes ~2 s). Nothing CPU-heavy runs in a thread beside the critical path: a
thread holding the GIL makes every hand-off to aiosqlite's thread wait out the switch
interval (opening the stores went from 40 to 250 ms while the tokenizer loaded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from leon.agent.permissions import Decision, PermissionRequest
from leon.config import ConfigError, Settings, load_settings
from leon.paths import Paths, default_paths
from leon.textsafe import clean, one_line
from leon.ui import bench_hook
from leon.ui.bindings import bindings_for, parse_keymap
from leon.ui.messages import AgentLoaded, SettingChanged, StartupFailed, ThreadChosen
from leon.ui.palette import BindingCommands, ThreadCommands
from leon.ui.screens.chat import ChatScreen, error_text
from leon.ui.themes import DEFAULT_THEME, PACKAGE_THEMES, load_themes
from leon.ui.widgets.events import clock

if TYPE_CHECKING:
    from leon.agent.turn import Agent
    from leon.runtime import ProviderChoice
    from leon.store import Stores
    from leon.store.models import Thread

DEMO_DELAY = 0.015  # seconds between demo words, so the demo model visibly streams


class LeonApp(App[None]):
    """leon's TUI. Build it with :func:`make_app`."""

    CSS_PATH = "app.tcss"
    # ctrl+c: copy when text is selected (the prompt's and the screen's bindings come
    # first and pass it on otherwise), else stop the reply and quit with status 130.
    BINDINGS = [*bindings_for("app"),
                Binding("ctrl+c", "interrupt", "Stop and quit", show=False, id="app.interrupt")]
    TITLE = "leon"
    # The palette finds threads (FTS over titles and text) and every bound action.
    COMMANDS = App.COMMANDS | {ThreadCommands, BindingCommands}

    def __init__(
        self,
        paths: Paths,
        settings: Settings,
        *,
        thread: str | None = None,
        continue_last: bool = False,
        model: str | None = None,
        workspace: Path | None = None,
        demo_delay: float = DEMO_DELAY,
        env: dict[str, str] | None = None,
        time_format: Callable[[float], str] = clock,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__()
        self.paths = paths
        self.settings = settings
        self.thread_name = thread
        self.continue_last = continue_last
        self.model_override = model
        self.workspace = (workspace or Path.cwd()).resolve()
        self.demo_delay = demo_delay
        self.env = env
        self.time_format = time_format
        self.cursor_blink = cursor_blink
        self.stores: Stores | None = None
        self.choice: ProviderChoice | None = None
        self.chat = ChatScreen()
        self.tokenizer_ready: asyncio.Future[Any] | None = None
        self._notes: list[str] = []
        self._theme_ready = False
        self._after_paint_started = False
        self._setup_themes()
        self.keymap_overrides, problems = parse_keymap(settings["ui.keymap"])
        self._notes += problems
        self._unsubscribe: Callable[[], None] | None = settings.subscribe(self._setting_changed)

    # -- themes and keys -------------------------------------------------------------
    def _setup_themes(self) -> None:
        loaded = load_themes(PACKAGE_THEMES, self.paths.themes)
        for theme in loaded.themes:
            self.register_theme(theme)
        self.leon_theme_names = [t.name for t in loaded.themes]
        self._notes += loaded.problems
        wanted = self.settings["ui.theme"]
        if wanted not in self.available_themes:
            self._notes.append(f"theme {wanted!r} not found: using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.theme = wanted

    def watch_theme(self, theme: str) -> None:
        """The user picked a theme (palette, /theme, settings): keep it for next time."""
        if not self._theme_ready or self.settings["ui.theme"] == theme:
            return
        self.set_setting("ui.theme", theme)

    def set_setting(self, key: str, value: Any) -> bool:
        """Apply and persist one setting; a bad value or an unwritable config.toml is
        shown, not raised."""
        try:
            self.settings.set(key, value, persist=True)
        except ConfigError as exc:
            self.notify(str(exc), title="setting not changed", severity="error", timeout=8)
            return False
        except OSError as exc:
            self.notify(f"applied, but could not save config.toml: {exc}", severity="warning")
        return True

    def _setting_changed(self, key: str, value: Any) -> None:
        if key == "ui.theme" and value != self.theme and value in self.available_themes:
            self.theme = value
        elif key == "ui.keymap":
            self.keymap_overrides, problems = parse_keymap(value)
            self.set_keymap(self.keymap_overrides)
            for problem in problems:
                self.notify(problem, severity="warning")
        if self.chat.is_attached:
            self.chat.post_message(SettingChanged(key, value))

    # -- start-up ----------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        self.push_screen(self.chat)
        for note in self._notes:
            self.notify(note, severity="warning", timeout=10)
        self._theme_ready = True
        self.call_after_refresh(self.boot)

    def on_ready(self) -> None:
        bench_hook.on_first_paint(self)  # a no-op unless bench/startup.py is measuring

    @work(group="boot", exclusive=True, exit_on_error=False, name="start-up")
    async def boot(self) -> None:
        from leon.store import Stores

        if self.stores is None:
            self.stores = await Stores.open(self.paths, lock_wait=self.settings["store.lock_wait"],
                                            notify=self.database_waiting)
        choice = await self.provider_choice()
        thread = await self.first_thread(choice.model)
        # The thread's last messages are on screen before the agent reads the whole branch
        # (5,000 messages: ~70 ms) and the rest of start-up runs.
        await self.chat.preview(self.stores.leon, thread, choice)
        agent = await self.build_agent(thread_id=thread.id)
        self.chat.post_message(AgentLoaded(agent, choice.notice))

    def database_waiting(self, text: str) -> None:
        """A database is locked by another process and leon retries: say so (the store
        calls this on the app's loop)."""
        self.notify(text, title="waiting", severity="warning", timeout=8)

    def thread_painted(self) -> None:
        """The chat screen has drawn its thread: start what start-up put off (once)."""
        if self._after_paint_started:
            return
        self._after_paint_started = True
        self.warm_tokenizer()
        self.housekeeping_worker()
        self.start_provider()

    def warm_tokenizer(self) -> None:
        """Load the tokenizer (~0.3 s of CPU) in a thread, so the first gauge does not
        freeze the screen; the gauge waits for it."""
        if self.tokenizer_ready is None:
            from leon.memory.count import encoding

            self.tokenizer_ready = asyncio.ensure_future(asyncio.to_thread(encoding))

    def start_provider(self) -> None:
        """Begin building a deferred provider (the SDK import) in its thread."""
        provider = self.choice.provider if self.choice else None
        start = getattr(provider, "start", None)
        if callable(start):
            start()  # a DeferredProvider: import the SDK now, before the first send

    @work(group="housekeeping", exclusive=True, exit_on_error=False, name="housekeeping")
    async def housekeeping_worker(self) -> None:
        """Retention, orphans and the growth sample (leon/lifecycle/startup.py), after the
        first thread is on screen; what it did goes to the event feed."""
        from leon.lifecycle.startup import housekeeping

        if self.stores is None:
            return
        keep = {self.chat.agent.thread.id} if self.chat.agent is not None else set()
        report = await housekeeping(self.stores, self.paths, self.settings, keep=keep)
        if report is not None and report.lines and self.chat.is_attached:
            await self.chat.show_housekeeping(report.lines)

    async def provider_choice(self) -> ProviderChoice:
        """The provider picked at start-up (picked now if none was yet)."""
        return self.choice or await self.choose(self.model_override)

    async def choose(self, model: str | None) -> ProviderChoice:
        """Pick the provider. Claude's is deferred: the SDK is imported in a thread once
        the thread is painted (or when the first call needs it)."""
        from leon.runtime import choose_provider

        choice = choose_provider(model, self.settings, self.env, demo_delay=self.demo_delay,
                                 deferred=True)
        self.choice = choice
        return choice

    async def first_thread(self, model: str) -> Thread:
        """The thread the command line asked for (today's general thread by default)."""
        from leon.runtime import resolve_thread

        assert self.stores is not None
        return await resolve_thread(self.stores, thread=self.thread_name,
                                    continue_last=self.continue_last, model=model,
                                    settings=self.settings)

    async def build_agent(self, *, thread_id: str | None = None,
                          new_title: str | None = None) -> Agent:
        """The agent of a thread: by id, a new scoped thread, or the first thread."""
        from leon.runtime import make_agent

        stores = self.stores
        assert stores is not None
        choice = await self.provider_choice()
        if thread_id is not None:
            thread = await stores.leon.get_thread(thread_id)
        elif new_title is not None:
            thread = await stores.leon.create_thread("scoped", title=new_title,
                                                     model=choice.model)
        else:
            thread = await self.first_thread(choice.model)
        return await make_agent(stores, self.paths, self.settings, choice, thread,
                                self.workspace, asker=self.ask_permission, user_present=True,
                                housekeep=False)

    @on(Worker.StateChanged)
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "boot" and event.state == WorkerState.ERROR:
            self.post_message(StartupFailed(error_text(worker.error)))

    @on(StartupFailed)
    def on_startup_failed(self, message: StartupFailed) -> None:
        from leon.ui.screens.error import StartupErrorScreen

        def retry(again: bool | None) -> None:
            if again:
                self.boot()

        self.push_screen(StartupErrorScreen(message.message, str(self.paths.home)), retry)

    # -- asking before a tool changes something ------------------------------------------
    async def ask_permission(self, request: PermissionRequest) -> Decision:
        """The agent's :data:`~leon.agent.permissions.Asker`: a modal with the exact
        command or diff; Escape (or leaving) denies."""
        from leon.ui.modals.permission import PermissionScreen

        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()

        def answered(decision: Decision | None) -> None:
            if not future.done():
                future.set_result(decision or Decision.DENY)

        screen = PermissionScreen(request)
        self.push_screen(screen, answered)
        try:
            return await future
        except asyncio.CancelledError:
            if screen.is_current:
                screen.dismiss(Decision.DENY)
            raise

    # -- actions the palette and the keys use --------------------------------------------
    def action_help(self) -> None:
        from leon.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap_overrides))

    def action_pick_theme(self) -> None:
        self.search_themes()

    def action_threads(self) -> None:
        self.chat.action_threads()

    def action_timeline(self) -> None:
        self.chat.action_timeline()

    def action_spill(self) -> None:
        self.chat.action_spill()

    def action_settings(self) -> None:
        self.chat.action_settings()

    def action_new_thread(self) -> None:
        self.chat.action_new_thread()

    def action_compact(self) -> None:
        self.chat.action_compact()

    def open_thread(self, thread_id: str) -> None:
        """Switch the chat screen to another thread."""
        self.chat.open_thread(thread_id)

    @on(ThreadChosen)
    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification, from any screen or widget: its message and title carry
        text from outside (a thread title, an error from the server), so they are drawn
        as plain text, cleaned of control sequences, never read as markup (a title such
        as ``[@click=app.quit]`` would otherwise become a link, and ``[/]`` an error).
        ``markup`` is accepted for Textual's signature and ignored."""
        super().notify(clean(message), title=one_line(title), severity=severity,
                       timeout=timeout, markup=False)

    def on_thread_chosen(self, message: ThreadChosen) -> None:
        self.open_thread(message.thread_id)

    def on_thread_renamed(self, message: Any) -> None:
        """The thread browser renamed a thread (``ThreadRenamed``): if it is the open one,
        the header and the terminal title follow."""
        agent = self.chat.agent
        if agent is not None and agent.thread.id == message.thread_id:
            agent.thread = dataclasses.replace(agent.thread, title=message.title)
            self.chat.update_header()

    async def action_quit(self) -> None:
        """Stop a streaming reply (it is stored, marked interrupted), then leave."""
        await self.stop_and_quit(0)

    def action_interrupt(self) -> None:
        """Ctrl+C with nothing selected: what SIGINT does (leon.interrupts) — stop the
        reply and whatever its tools run, then quit with status 130."""
        from leon import interrupts

        stopper = interrupts.current()
        if stopper is not None:
            stopper.trigger(signal.SIGINT)  # with the watchdog, like the signal itself
        else:  # an app built without the CLI (tests, screenshots)
            self.call_next(self.stop_and_quit, interrupts.exit_status(signal.SIGINT))

    async def stop_and_quit(self, return_code: int) -> None:
        """Stop the reply (stored, marked interrupted; its tools' processes killed) and
        leave with ``return_code``."""
        await self.chat._stop_turn()
        # The stop posted events to the chat screen (reply interrupted...); let it draw
        # them before the screen goes, or it would mount into a removed transcript.
        drawn = asyncio.Event()
        if self.chat.is_attached:
            self.chat.call_later(drawn.set)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drawn.wait(), 1.0)
        self.exit(return_code=return_code)

    async def on_unmount(self) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the agent, the stores and the settings subscription (after the app
        has exited)."""
        await self.chat._retire_agent()
        if self._unsubscribe is not None:
            with contextlib.suppress(ValueError):
                self._unsubscribe()
            self._unsubscribe = None
        if self.stores is not None:
            await self.stores.close()
            self.stores = None

    # -- the last line of defence ---------------------------------------------------------
    def _fatal_error(self) -> None:
        """An exception nobody handled (a bug): the traceback goes to the private log
        (``leon.crashlog``), the terminal gets one line. Tests keep Textual's default."""
        error = getattr(self, "_exception", None)
        if self.is_headless or error is None:
            super()._fatal_error()
            return
        from leon.crashlog import record

        log = record(error)
        where = f"details are in {log}" if log else "the details could not be saved"
        self.bell()
        self._exit_renderables.append(Text(
            f"leon stopped on an internal error ({type(error).__name__}: {clean(str(error))}); "
            f"{where}. "
            "Your conversation is saved: run `leon -c` to continue.", style="bold"))
        self._close_messages_no_wait()


def make_app(
    paths: Paths | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> LeonApp:
    """The app for the CLI, the tests and the screenshot script. ``options``: thread,
    continue_last, model, workspace, demo_delay, env, time_format, cursor_blink."""
    paths = paths or default_paths()
    settings = settings or load_settings(paths.config)
    return LeonApp(paths, settings, **options)


async def run_app(args: argparse.Namespace, paths: Paths, settings: Settings) -> int:
    """``leon`` with no command: run the TUI until the user quits. Returns the exit status."""
    import sys

    workspace = getattr(args, "workspace", None)
    if workspace is not None and not Path(workspace).is_dir():
        print(f"leon: workspace {workspace} is not a directory", file=sys.stderr)
        return 2
    app = make_app(paths, settings, thread=getattr(args, "thread", None),
                   continue_last=bool(getattr(args, "continue_last", False)),
                   model=getattr(args, "model", None), workspace=workspace)
    from leon import interrupts

    stopper = interrupts.current()
    if stopper is not None:  # SIGINT/SIGTERM: quit the way ctrl+c does, with their status
        stopper.take_over(lambda signum: _quit_on_signal(app, signum),
                          restore=_terminal_restorer())
    try:
        await app.run_async()
    finally:
        if stopper is not None:
            stopper.take_over(None)
        await app.close()
    return app.return_code or 0


def _quit_on_signal(app: LeonApp, signum: int) -> bool:
    """Quit like ctrl+c does; False (the command is cancelled instead) when the app is
    not running (not started yet, or already leaving)."""
    from leon import interrupts

    if not app.is_running:
        return False
    app.call_next(app.stop_and_quit, interrupts.exit_status(signum))
    return True


def _terminal_restorer() -> Callable[[], None] | None:
    """What a forced exit runs to give the terminal back (the app could not): the
    termios settings from before the app started, and the modes Textual turns on."""
    import sys
    import termios

    if sys.__stdin__ is None:
        return None
    try:
        fd = sys.__stdin__.fileno()
        saved = termios.tcgetattr(fd)
    except (OSError, ValueError, termios.error):
        return None

    def restore() -> None:
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)
        with contextlib.suppress(OSError):  # Textual draws on stderr
            os.write(2, b"\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?2004l"
                        b"\x1b[?7h\x1b[<u\x1b[?1049l\x1b[?25h\x1b[?1004l")

    return restore
