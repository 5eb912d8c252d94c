"""App-wide Textual messages, named as past-tense facts. Widgets post them; screens and the
app react. Agent events (from :mod:`leon.agent.events`) travel wrapped in
:class:`AgentReported`, so the turn loop never touches a widget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from leon.agent.events import AgentEvent


@dataclass
class AgentReported(Message):
    """The agent emitted an event (text streamed, tool ran, memory event, ...).

    ``agent`` is the agent that emitted it: after a thread switch, events from the old
    agent are recognised and ignored."""

    agent: Any
    event: AgentEvent


@dataclass
class AgentLoaded(Message):
    """The stores are open and the agent of the chosen thread has loaded its branch."""

    agent: Any
    notice: str | None = None


@dataclass
class StartupFailed(Message):
    """leon could not open its stores or build the agent; ``message`` is one line for
    the user (a StoreError's text, never a traceback)."""

    message: str


@dataclass
class PromptSubmitted(Message):
    """The user pressed Enter in the prompt; ``text`` is what they typed."""

    text: str


@dataclass
class OlderMessagesRequested(Message):
    """The transcript was scrolled to its top and older messages can be paged in."""


@dataclass
class SpillOpened(Message):
    """The user asked to read a spilled tool output (from a tool block or the feed)."""

    path: str | None = None


@dataclass
class TextCopied(Message):
    """A message's text was copied to the clipboard (OSC 52)."""

    text: str


@dataclass
class ThreadChosen(Message):
    """A thread was chosen to open (thread browser, palette, ``/new``)."""

    thread_id: str


@dataclass
class SettingChanged(Message):
    """A setting changed (settings pane, ``/model``, ``/theme``): the gauge recomputes."""

    key: str
    value: Any
