"""The permission policy around the :data:`~leon.agent.permissions.Asker` contract.

Before a tool that changes something runs (``write_file``, ``edit_file``, ``bash``),
:meth:`PermissionPolicy.check` decides, in this order:

1. a rule in ``[permissions] allow`` (config) matches → run;
2. an "always" answer given earlier in this thread matches → run;
3. otherwise the asker is asked: the TUI shows a prompt, ``leon run`` answers with
   :class:`NonInteractiveAsker` (allow with ``--yes``, deny otherwise).

Rules are ``tool`` (every call) or ``tool:GLOB``. For file tools the glob is matched
against the workspace-relative path. For ``bash`` it is matched against the *parsed*
command, never its text (see :mod:`leon.agent.simple_command`): only a command that is
provably one simple command of literal words can match a glob, and the glob is matched
against its canonical form (words joined by single spaces, quoted only where needed), so
``bash:git status*`` allows ``git status -s`` and ``git  'status'`` but never
``git status; rm -rf ~``, ``git status $(id)`` or ``git status ${x@P}``. Any other
command matches only a rule without wildcards that equals its exact text (an "always"
answer to such a command records one, with ``*?[`` escaped as ``[*]`` etc.), or ``bash``.

A denial is a ``tool_result`` with ``is_error`` that tells the model what happened and
what to do; the conversation goes on.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from leon.agent.permissions import Asker, Decision, PermissionRequest
from leon.agent.simple_command import canonical, escape_glob, literal_of, simple_words

# Commands whose first argument is a subcommand worth remembering with it
# ("always allow `git status`" should not allow `git push`).
_SUBCOMMAND_TOOLS = frozenset({
    "git", "npm", "pnpm", "yarn", "cargo", "go", "docker", "kubectl", "pip", "pip3", "uv",
    "poetry", "make", "npx", "bun", "deno", "dotnet", "gradle", "mvn", "brew", "apt", "systemctl",
})

# The argument each tool's rules are matched against.
RULE_KEYS = {"bash": "command", "write_file": "path", "edit_file": "path"}


def is_compound(command: str) -> bool:
    """Whether ``command`` is anything but one simple command of literal words (then
    only an exact rule, or ``bash`` itself, allows it)."""
    return simple_words(command) is None


def bash_rule_matches(pattern: str, command: str) -> bool:
    """Whether the ``bash:`` rule ``pattern`` allows ``command``: a glob over the canonical
    form of a simple literal command, or, for any other command, a wildcard-free pattern
    equal to its exact text (blanks and newlines at either end aside)."""
    words = simple_words(command)
    if words is None:
        exact = literal_of(pattern)
        return exact is not None and exact == command.strip(" \t\n")
    return fnmatch.fnmatchcase(canonical(words), pattern)


def rule_matches(rule: str, tool: str, subject: str | None) -> bool:
    """Whether ``rule`` ('tool' or 'tool:GLOB') allows a call of ``tool`` whose key
    argument (command or path) is ``subject``."""
    rule = rule.strip()
    name, sep, pattern = rule.partition(":")
    if name.strip() != tool:
        return False
    if not sep:
        return True
    if subject is None:
        return False
    if tool == "bash":
        return bash_rule_matches(pattern.strip(" \t"), subject)
    return fnmatch.fnmatchcase(subject, pattern)


def always_rule(tool: str, subject: str | None) -> str:
    """The rule an "always allow" answer records: the whole tool for file tools; for a
    simple literal command its prefix (``git status*``, ``pytest*``); for any other
    command its exact text, glob characters escaped, so it allows that text only."""
    if tool != "bash":
        return tool
    command = subject or ""
    words = simple_words(command)
    if words is None:
        return "bash:" + escape_glob(command.strip(" \t\n"))
    prefix = words[:1]
    if words[0] in _SUBCOMMAND_TOOLS and len(words) > 1 and not words[1].startswith("-"):
        prefix = words[:2]
    return "bash:" + escape_glob(canonical(prefix)) + "*"


class NonInteractiveAsker:
    """The asker of ``leon run``: nobody is there to answer, so ``--yes`` allows every
    call and anything else is denied with a message saying how to allow it."""

    def __init__(self, yes: bool = False):
        self.yes = yes

    async def __call__(self, request: PermissionRequest) -> Decision:
        return Decision.ALLOW_ONCE if self.yes else Decision.DENY

    def denial_message(self, request: PermissionRequest) -> str:
        example = always_rule(request.tool, _subject(request.tool, request.input))
        # An exact-command rule for a long or multi-line command is no useful example.
        rule = (f"add \"{example}\" to [permissions] allow in config.toml"
                if len(example) <= 120 and "\n" not in example
                else "add a rule to [permissions] allow in config.toml")
        return (f"permission denied: {request.title} was not run. leon is running "
                "non-interactively (`leon run`) and nothing allows this call. Tell the user it "
                f"needs permission: re-run with --yes, or {rule}.")


def _subject(tool: str, args: dict[str, Any]) -> str | None:
    key = RULE_KEYS.get(tool)
    value = args.get(key) if key else None
    return value if isinstance(value, str) else None


@dataclass
class Verdict:
    allowed: bool
    reason: str          # config | always | asked | no-asker
    message: str = ""    # for a denial: what the model is told


class PermissionPolicy:
    """Decides whether one tool call may run. ``grants`` persist "always" answers per
    thread (see :class:`leon.store.tool_state.ToolState`); ``settings`` is read on every
    check, so a changed allowlist applies at once."""

    def __init__(self, settings: Any, asker: Asker | None, state: Any | None = None):
        self.settings = settings
        self.asker = asker
        self.state = state
        self._grants: dict[str, list[str]] = {}

    async def _thread_grants(self, thread_id: str) -> list[str]:
        if thread_id not in self._grants:
            self._grants[thread_id] = await self.state.grants(thread_id) if self.state else []
        return self._grants[thread_id]

    async def check(self, request: PermissionRequest, subject: str | None = None) -> Verdict:
        """``subject``: what rules match against (the command, or the workspace-relative
        path); taken from the request's input when not given."""
        if subject is None:
            subject = _subject(request.tool, request.input)
        if any(rule_matches(r, request.tool, subject) for r in self.settings["permissions.allow"]):
            return Verdict(True, "config")
        grants = await self._thread_grants(request.thread_id)
        if any(rule_matches(r, request.tool, subject) for r in grants):
            return Verdict(True, "always")
        if self.asker is None:
            return Verdict(False, "no-asker", f"permission denied: {request.title} was not run; "
                           "this session has no way to ask the user for permission.")
        decision = await self.asker(request)
        if decision == Decision.ALLOW_ALWAYS:
            rule = always_rule(request.tool, subject)
            grants.append(rule)
            if self.state is not None:
                await self.state.add_grant(request.thread_id, rule)
            return Verdict(True, "always")
        if decision == Decision.ALLOW_ONCE:
            return Verdict(True, "asked")
        explain = getattr(self.asker, "denial_message", None)
        message = explain(request) if callable(explain) else (
            f"permission denied: the user declined — {request.title} was not run. Do not retry "
            "the same call; continue without it or ask the user what they want instead.")
        return Verdict(False, "denied", message)
