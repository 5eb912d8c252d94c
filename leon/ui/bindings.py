"""Every key binding of the TUI in one table: an id (users remap keys by id with the
``ui.keymap`` setting), a description, and a group for the help screen.

Widgets take their ``BINDINGS`` from here with :func:`bindings_for`, so the footer, the
help screen and the keymap can never disagree about what a key does."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    """One binding: where it applies (``scope``), its keys, action and meaning."""

    scope: str          # "app", "chat", "prompt", "block", "tool", "permission", "error"
    group: str          # heading on the help screen
    id: str
    keys: str
    action: str
    description: str
    show: bool = True   # shown in the footer
    priority: bool = False
    key_display: str | None = None


TABLE: tuple[Key, ...] = (
    # -- anywhere ---------------------------------------------------------------------
    Key("app", "App", "app.quit", "ctrl+q", "quit", "Quit", priority=True),
    Key("app", "App", "app.help", "f1", "help", "Help and keys"),
    Key("app", "App", "app.palette", "ctrl+p", "command_palette", "Commands", show=False),
    Key("app", "App", "app.theme", "ctrl+t", "pick_theme", "Theme", show=False),
    # -- the chat screen ----------------------------------------------------------------
    Key("chat", "Chat", "chat.stop", "escape", "stop", "Stop reply"),
    Key("chat", "Panes", "chat.threads", "ctrl+o", "threads", "Threads"),
    Key("chat", "Panes", "chat.timeline", "ctrl+r", "timeline", "Timeline"),
    Key("chat", "Panes", "chat.spill", "ctrl+l", "spill", "Spills", show=False),
    Key("chat", "Panes", "chat.settings", "ctrl+s", "settings", "Settings"),
    Key("chat", "Chat", "chat.new_thread", "ctrl+n", "new_thread", "New thread", show=False),
    Key("chat", "Chat", "chat.compact", "f4", "compact", "Compact now", show=False),
    Key("chat", "Chat", "chat.copy_reply", "f8", "copy_reply", "Copy last reply", show=False),
    Key("chat", "View", "chat.toggle_side", "ctrl+b", "toggle_side", "Gauge panel",
        show=False),
    Key("chat", "View", "chat.focus_prompt", "f2", "focus_prompt", "Focus prompt", show=False),
    Key("chat", "View", "chat.page_up", "pageup", "page_up", "Scroll up", show=False,
        priority=True),
    Key("chat", "View", "chat.page_down", "pagedown", "page_down", "Scroll down",
        show=False, priority=True),
    Key("chat", "View", "chat.top", "ctrl+home", "scroll_top", "Oldest message", show=False,
        priority=True),
    Key("chat", "View", "chat.bottom", "ctrl+end", "scroll_bottom", "Newest message",
        show=False, priority=True),
    # -- the prompt ---------------------------------------------------------------------
    Key("prompt", "Prompt", "prompt.send", "enter", "send", "Send", show=False),
    Key("prompt", "Prompt", "prompt.newline", "shift+enter,ctrl+j,alt+enter", "newline",
        "New line", show=False, key_display="shift+enter / ctrl+j"),
    Key("prompt", "Prompt", "prompt.recall_previous", "up", "cursor_up",
        "Earlier prompt (on the first line)", show=False),
    Key("prompt", "Prompt", "prompt.recall_next", "down", "cursor_down",
        "Later prompt (on the last line)", show=False),
    # -- a focused message or block in the transcript (Tab / click to focus) -------------
    Key("block", "Transcript", "block.copy", "c,y", "copy", "Copy message", show=True),
    Key("block", "Transcript", "block.toggle", "enter,space", "toggle", "Expand / collapse",
        show=True),
    Key("block", "Transcript", "block.open_spill", "o", "open_spill", "Open spilled output",
        show=True),
    # -- the permission prompt ----------------------------------------------------------
    Key("permission", "Permission prompt", "permission.allow_once", "a,enter", "allow_once",
        "Allow once"),
    Key("permission", "Permission prompt", "permission.allow_always", "A", "allow_always",
        "Always allow in this thread"),
    Key("permission", "Permission prompt", "permission.deny", "d,escape", "deny", "Deny"),
    # -- the start-up error screen ------------------------------------------------------
    Key("error", "Start-up error", "error.retry", "r", "retry", "Try again"),
    Key("error", "Start-up error", "error.quit", "q,escape", "quit", "Quit"),
    # -- the help screen ----------------------------------------------------------------
    Key("help", "Help", "help.close", "escape,q,f1", "close", "Close help"),
)

# Slash commands typed in the prompt: (command, arguments, what it does).
SLASH_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("/new", "[title]", "start a new thread"),
    ("/threads", "", "browse, search and open threads"),
    ("/rollback", "[checkpoint]", "open the checkpoint timeline, or roll back to a checkpoint"),
    ("/compact", "", "compact the conversation now"),
    ("/settings", "", "edit trim, compaction, spill, model and theme settings"),
    ("/model", "[name]", "show or change the model ('demo' for the offline model)"),
    ("/theme", "[name]", "pick a colour theme, or switch to one by name"),
    ("/spill", "", "read spilled tool outputs"),
    ("/copy", "", "copy the last reply to the clipboard"),
    ("/stats", "", "how big leon's home has grown: threads, databases, spill, memory"),
    ("/help", "", "this help"),
)


def bindings_for(scope: str) -> list[Binding]:
    """The Textual bindings of one scope, each with its id."""
    return [
        Binding(k.keys, k.action, k.description, show=k.show, priority=k.priority, id=k.id,
                key_display=k.key_display)
        for k in TABLE
        if k.scope == scope
    ]


def parse_keymap(entries: list[str]) -> tuple[dict[str, str], list[str]]:
    """``['chat.threads=ctrl+t']`` → ``{'chat.threads': 'ctrl+t'}`` and a list of problems
    (unknown ids, missing ``=``) to show the user."""
    known = {k.id for k in TABLE}
    try:
        from leon.ui.pane_keys import PANE_TABLE

        known |= {k.id for k in PANE_TABLE}
    except ImportError:
        pass
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for entry in entries:
        binding_id, sep, keys = entry.partition("=")
        binding_id, keys = binding_id.strip(), keys.strip()
        if not sep or not keys:
            problems.append(f"ui.keymap: {entry!r} is not 'binding-id=key'")
        elif binding_id not in known:
            problems.append(f"ui.keymap: no binding with id {binding_id!r} (F1 lists them)")
        else:
            keymap[binding_id] = keys
    return keymap, problems
