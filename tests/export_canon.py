"""Compare thread exports by content and structure, not by incidental row ids."""

from __future__ import annotations

import copy
from typing import Any

REFS = {
    "messages": {"parent_id": "messages"},
    "summaries": {"upto_message_id": "messages", "previous_id": "summaries"},
    "checkpoints": {"parent_id": "checkpoints", "message_id": "messages",
                    "summary_id": "summaries"},
}


def canonical(export: dict[str, Any]) -> dict[str, Any]:
    """The export with every row id replaced by its position in its table, and every
    reference (parents, head pointer, summaries, event payloads) rewritten to match."""
    out = copy.deepcopy(export)
    order = {t: {r["id"]: i for i, r in enumerate(out.get(t, []))}
             for t in ("messages", "checkpoints", "summaries", "events", "usage")}
    for table, rows in order.items():
        for r in out.get(table, []):
            r["id"] = rows[r["id"]]
            for col, target in REFS.get(table, {}).items():
                if r.get(col) is not None:
                    r[col] = order[target].get(r[col], ("missing", r[col]))
    for e in out.get("events", []):
        for key in ("from", "to"):
            if isinstance(e.get("data"), dict) and isinstance(e["data"].get(key), int):
                e["data"][key] = order["checkpoints"].get(e["data"][key], e["data"][key])
    head = out["thread"].get("head_checkpoint_id")
    if head is not None:
        out["thread"]["head_checkpoint_id"] = order["checkpoints"][head]
    return out
