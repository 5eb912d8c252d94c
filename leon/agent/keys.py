"""Settings owned by the tools that change things: permissions, bash, sandboxes and
sub-agents. Imported at the bottom of :mod:`leon.config`, so the keys exist before a
``config.toml`` is parsed."""

from __future__ import annotations

from leon.config import Key, register

register(
    Key("permissions.allow", list, [],
        "Tool calls allowed without asking: 'tool' allows every call of it; 'bash:PREFIX*' a "
        "simple command (no ; & | < > ` $( or newline) matching the glob; 'write_file:GLOB' and "
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
    Key("sandbox.lease_ttl", float, 600.0,
        "Seconds a sandbox lease lives without a heartbeat (a heartbeat renews it every "
        "third of this while leon runs).", 5, 86_400),
    Key("agents.max_depth", int, 2,
        "How deep sub-agents may nest (1: the agent may delegate, its sub-agents may not; "
        "0: no task tool).", 0, 5),
    Key("agents.max_per_turn", int, 4,
        "Most sub-agents one agent may start in one turn.", 1, 50),
)
