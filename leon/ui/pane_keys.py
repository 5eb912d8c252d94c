"""The key bindings of the panes (thread browser, timeline, spill pane, settings, the delete
confirmation), in the same shape as :data:`leon.ui.bindings.TABLE`: an id (remappable with
``ui.keymap``), a description and a help-screen group for every key.

They live here rather than in ``bindings.TABLE`` so the panes can be built alongside the
chat screen; the help screen lists ``bindings.TABLE + PANE_TABLE``.
"""

from __future__ import annotations

from textual.binding import Binding

from leon.ui.bindings import Key

PANE_TABLE: tuple[Key, ...] = (
    # -- thread browser ------------------------------------------------------------------
    Key("threads", "Thread browser", "threads.open", "enter", "open", "Open"),
    Key("threads", "Thread browser", "threads.search", "slash", "focus_search", "Search",
        key_display="/"),
    Key("threads", "Thread browser", "threads.rename", "r", "rename", "Rename"),
    Key("threads", "Thread browser", "threads.archive", "a", "archive", "Archive / restore"),
    Key("threads", "Thread browser", "threads.delete", "d,delete", "delete", "Delete"),
    Key("threads", "Thread browser", "threads.kind", "k", "cycle_kind", "Kind filter"),
    Key("threads", "Thread browser", "threads.status", "s", "cycle_status", "Status filter"),
    Key("threads", "Thread browser", "threads.close", "escape", "close", "Close"),
    # -- checkpoint timeline ---------------------------------------------------------------
    Key("timeline", "Timeline", "timeline.rollback", "enter,b", "rollback",
        "Roll back here", key_display="enter"),
    Key("timeline", "Timeline", "timeline.rollforward", "f", "rollforward", "Roll forward"),
    Key("timeline", "Timeline", "timeline.switch", "t", "switch_branch", "Go to branch tip"),
    Key("timeline", "Timeline", "timeline.name", "n", "name", "Name checkpoint"),
    Key("timeline", "Timeline", "timeline.head", "h", "goto_head", "Jump to head", show=False),
    Key("timeline", "Timeline", "timeline.close", "escape", "close", "Close"),
    # -- spill pane ------------------------------------------------------------------------
    Key("spill", "Spill pane", "spill.search", "slash", "focus_search", "Search",
        key_display="/"),
    Key("spill", "Spill pane", "spill.next", "n,f3", "next_match", "Next match",
        key_display="n"),
    Key("spill", "Spill pane", "spill.previous", "N,shift+f3", "previous_match",
        "Previous match", key_display="N"),
    Key("spill", "Spill pane", "spill.pager", "p", "pager", "Open in $PAGER"),
    Key("spill", "Spill pane", "spill.close", "escape", "close", "Close"),
    # -- settings pane ---------------------------------------------------------------------
    Key("settings", "Settings", "settings.filter", "slash", "focus_filter", "Filter",
        key_display="/"),
    Key("settings", "Settings", "settings.reset", "ctrl+r", "reset", "Reset to default"),
    Key("settings", "Settings", "settings.close", "escape", "close", "Close"),
    # -- the delete confirmation -------------------------------------------------------------
    Key("confirm", "Confirm", "confirm.yes", "y", "yes", "Yes"),
    Key("confirm", "Confirm", "confirm.no", "n,escape", "no", "No"),
)


def pane_bindings(scope: str) -> list[Binding]:
    """The Textual bindings of one pane, each with its id."""
    return [
        Binding(k.keys, k.action, k.description, show=k.show, priority=k.priority, id=k.id,
                key_display=k.key_display)
        for k in PANE_TABLE
        if k.scope == scope
    ]
