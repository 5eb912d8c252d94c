"""Settings owned by the tools that change things: permissions, bash, sandboxes and
sub-agents. Imported at the bottom of :mod:`leon.config`, so the keys exist before a
``config.toml`` is parsed."""

from __future__ import annotations

import re
from typing import Any

from leon.config import Key, register, register_rule

register(
    Key("permissions.allow", list, [],
        "Tool calls allowed without asking: 'tool' allows every call of it; 'bash:GLOB' a "
        "command that is one simple command of literal words (no expansion, substitution, "
        "redirection, control operator, assignment, glob, backslash or comment) whose words, "
        "joined by single spaces and quoted only where needed, match the glob (any other "
        "command only a rule equal to its exact text); 'write_file:GLOB' and "
        "'edit_file:GLOB' a workspace-relative path, e.g. [\"bash:git status*\", \"edit_file\"]."),
    Key("tools.bash_timeout", float, 120.0,
        "Seconds a bash command may run before its process group is killed (the model may "
        "ask for less or more, up to 10 times this).", 1, 3600),
    Key("tools.grep_timeout", float, 10.0,
        "Seconds one grep call may take (walking and matching); a pattern that needs "
        "longer gets an error asking the model to simplify it.", 1, 600),
    Key("tools.bash_output_cap", int, 100_000,
        "Most bytes of a command's output kept (head and tail; the middle is dropped with a "
        "note). The memory layer may still spill what is kept to a file.", 1_000, 10_000_000),
    Key("tools.bash_cwd", str, "sandbox",
        "Where bash commands start: 'sandbox' (the thread's own scratch directory; the "
        "workspace is in $LEON_WORKSPACE) or 'workspace'.", choices=("sandbox", "workspace")),
    Key("tools.bash_env_pass", list, [],
        "Names of environment variables passed to bash commands besides PATH, HOME, USER, "
        "LOGNAME, LANG, LANGUAGE, LC_*, TMPDIR, SHELL and TZ, e.g. [\"SSH_AUTH_SOCK\", "
        "\"VIRTUAL_ENV\"]; exact names, no patterns; ANTHROPIC_* names are never passed, nor "
        "BASH_ENV, ENV, SHELLOPTS or BASHOPTS (they change what bash runs)."),
    Key("sandbox.lease_ttl", float, 600.0,
        "Seconds a sandbox lease lives without a heartbeat (a heartbeat renews it every "
        "third of this while leon runs).", 5, 86_400),
    Key("agents.max_depth", int, 2,
        "How deep sub-agents may nest (1: the agent may delegate, its sub-agents may not; "
        "0: no task tool).", 0, 5),
    Key("agents.max_per_turn", int, 4,
        "Most sub-agents one agent may start in one turn.", 1, 50),
)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables that make bash run a file or change its options before the command itself,
# so a command a permission rule allows could do something else.
_SHELL_STARTUP = frozenset({"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS"})


def _check_env_pass(values: dict[str, Any]) -> str | None:
    for name in values.get("tools.bash_env_pass", []):
        if not _ENV_NAME.fullmatch(name):
            return (f"'tools.bash_env_pass' lists {name!r}: give exact variable names "
                    "(letters, digits and _), not patterns")
        if name.upper().startswith("ANTHROPIC_"):
            return (f"'tools.bash_env_pass' lists {name!r}: ANTHROPIC_* variables are never "
                    "passed to commands")
        if name in _SHELL_STARTUP:
            return (f"'tools.bash_env_pass' lists {name!r}: it changes what bash runs before "
                    "the command, so it is never passed")
    return None


register_rule(_check_env_pass)
