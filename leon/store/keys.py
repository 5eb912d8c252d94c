"""Settings owned by the store: how long leon waits for another process. Imported at the
bottom of :mod:`leon.config`, so the keys exist before a ``config.toml`` is parsed."""

from __future__ import annotations

from leon.config import Key, register

register(
    Key("store.lock_wait", float, 30.0,
        "Seconds leon keeps retrying a database another process has locked (saying so "
        "after the first refusal) before it gives up with an error.", 1, 3600),
    Key("store.turn_wait", float, 600.0,
        "Seconds a leon waits for another leon that is answering on the same thread before "
        "it gives up (leon run --no-wait: not at all).", 0, 86_400),
)
