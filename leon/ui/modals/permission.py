"""Asking before a tool changes something: the exact command or diff, what "always"
would allow, and three answers — allow once, always allow in this thread, deny.
Dismisses with a :class:`~leon.agent.permissions.Decision`; Escape denies."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from leon.agent.permissions import Decision, PermissionRequest
from leon.agent.policy import RULE_KEYS, always_rule, is_compound
from leon.textsafe import reveal
from leon.ui.bindings import bindings_for


def always_text(request: PermissionRequest) -> Text:
    """What answering "always" allows from now on in this thread, in words: the rule
    :func:`~leon.agent.policy.always_rule` records for this call."""
    key = RULE_KEYS.get(request.tool)
    value = request.input.get(key) if key else None
    subject = value if isinstance(value, str) else None
    rule = always_rule(request.tool, subject)
    if rule == request.tool:
        return Text(f"Always: every {request.tool} call in this thread.")
    if subject is None or is_compound(subject):
        # Not one simple command of literal words: no prefix can be trusted to mean it.
        return Text("Always: this exact command only (it is not one simple command).")
    return Text.assemble("Always: commands matching ", (reveal(rule.partition(":")[2]), "bold"),
                         " in this thread.")


def _looks_like_diff(text: str) -> bool:
    head = text.lstrip()[:200]
    return head.startswith(("--- ", "diff ", "@@")) or "\n@@ " in text[:2000]


class PermissionScreen(ModalScreen[Decision]):
    """The permission prompt for one tool call."""

    BINDINGS = bindings_for("permission")
    DEFAULT_CSS = """
    PermissionScreen { align: center middle; background: $background 60%; }
    PermissionScreen > #permission {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    PermissionScreen #permission-title { text-style: bold; margin-bottom: 1; }
    PermissionScreen #permission-tool { color: $text-muted; }
    PermissionScreen #permission-always { color: $text-muted; }
    PermissionScreen #permission-detail {
        height: auto; max-height: 20; background: $panel; padding: 0 1; margin: 1 0;
    }
    PermissionScreen #permission-buttons { height: auto; align-horizontal: right; }
    PermissionScreen Button { margin-left: 1; }
    """

    def __init__(self, request: PermissionRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        req = self.request
        with Vertical(id="permission"):
            yield Static(Text("leon wants to: ") + Text(reveal(req.title), style="bold"),
                         id="permission-title")
            yield Static(Text(reveal(f"tool {req.tool} · thread {req.thread_id}")),
                         id="permission-tool")
            with VerticalScroll(id="permission-detail"):
                yield Static(self._detail(), id="permission-detail-text")
            yield Static(always_text(req), id="permission-always")
            with Horizontal(id="permission-buttons"):
                yield Button("Allow once [a]", id="allow_once", variant="primary")
                yield Button("Always in this thread [A]", id="allow_always")
                yield Button("Deny [d]", id="deny", variant="error")

    def _detail(self) -> Syntax | Text:
        # Spelled out, not removed: the user is agreeing to exactly this command or
        # content, and a hidden ESC or CR in it must be seen (``\x1b``), not vanish.
        detail = reveal(self.request.detail or "(no details)")
        if _looks_like_diff(detail):
            return Syntax(detail, "diff", theme="ansi_dark", word_wrap=True,
                          background_color="default")
        if self.request.tool == "bash":
            return Syntax(detail, "bash", theme="ansi_dark", word_wrap=True,
                          background_color="default")
        return Text(detail)

    def on_mount(self) -> None:
        self.query_one("#allow_once", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(Decision(event.button.id))

    def action_allow_once(self) -> None:
        self.dismiss(Decision.ALLOW_ONCE)

    def action_allow_always(self) -> None:
        self.dismiss(Decision.ALLOW_ALWAYS)

    def action_deny(self) -> None:
        self.dismiss(Decision.DENY)
