"""Settings of the session lifecycle. Imported at the bottom of :mod:`leon.config`, so
``[lifecycle]`` and ``[retention]`` exist before a ``config.toml`` is parsed.

Durations (``retention.ephemeral_after``, ``retention.archived_after``) are strings: a
number followed by a unit, ``s`` (seconds), ``m`` (minutes), ``h`` (hours), ``d`` (days)
or ``w`` (weeks), e.g. ``"24h"``, ``"30d"``, ``"90m"``, ``"0s"``. A bare number is hours.
"""

from __future__ import annotations

import re
from typing import Any

from leon.config import Key, register, register_rule

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.I)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 3600}


def parse_duration(text: str) -> float:
    """Seconds in ``"24h"`` / ``"30d"`` / ``"90m"`` / ``"0s"`` (a bare number is hours).
    Raises ValueError naming the accepted forms."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration like '24h', '30d', '90m' or '0s'")
    return float(m.group(1)) * _UNIT[m.group(2).lower()]


L = "lifecycle."
R = "retention."

register(
    Key(L + "general_rollover", str, "daily",
        "'daily': `leon` with no thread opens the day's general thread, and the first open "
        "of a new day starts from a handoff summary of the previous one; 'off': the general "
        "thread never rolls over.", choices=("daily", "off")),
    Key(L + "day_boundary_hour", int, 4,
        "Hour (local time, 0-23) at which a new day starts for the general thread: with 4, "
        "work at 1 a.m. still belongs to the day before.", 0, 23),
    Key(L + "cache_creation_threshold", int, 100_000,
        "Cache guard: when one call writes more prompt-cache tokens than this "
        "(cache_creation_input_tokens), the thread starts a fresh segment (compaction "
        "plus handoff) before the next call.", 1_000, 10_000_000),
    Key(L + "rate_limit_strikes", int, 3,
        "Cache guard: this many model calls in a row that were rate-limited (429) start a "
        "fresh segment of the thread.", 1, 100),
    Key(R + "ephemeral_after", str, "24h",
        "Completed sub-agent and one-shot threads are archived and deleted this long after "
        "they complete (a duration: '24h', '7d', '90m', '0s').",),
    Key(R + "archived_after", str, "30d",
        "Archived threads (and the chat.db outcomes of deleted threads) are archived to a "
        "file and deleted this long after their last change (a duration).",),
    Key(R + "max_threads", int, 10_000,
        "Most threads leon.db keeps; above it `leon gc` removes the oldest finished "
        "threads (never active ones).", 10, 10_000_000),
    Key(R + "disk_budget_mb", float, 1024.0,
        "Disk budget in MiB for the three databases (with their WAL files) plus spill files.",
        1, 10_000_000),
    Key(R + "high_water", float, 0.9,
        "When usage passes this share of disk_budget_mb, `leon gc` removes the oldest "
        "finished threads until usage is below 80% of this mark.", 0.1, 1.0),
    Key(R + "archive_max_mb", float, 1024.0,
        "Most MiB of thread archives kept under LEON_HOME/archive; the oldest archive files "
        "go first.", 0.01, 10_000_000),
)


def _durations_rule(values: dict[str, Any]) -> str | None:
    for name in (R + "ephemeral_after", R + "archived_after"):
        try:
            parse_duration(values[name])
        except ValueError as exc:
            return f"'{name}': {exc}"
        except KeyError:
            continue
    return None


register_rule(_durations_rule)
