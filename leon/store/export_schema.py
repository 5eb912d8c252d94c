"""What a thread export (``leon-thread/1``, :mod:`leon.store.export`) may hold, declared
field by field, and the checks that span fields: ids unique per table, every parent
earlier than its child (so parent pointers form trees, never cycles — the store relies on
it: a branch is walked down by falling ids), every reference inside the export, the head
present, blobs matching their sha256.

:func:`validate_export` runs before anything is written; the first problem is reported
as one line naming the field (:class:`~leon.store.validate.Invalid`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from leon.paths import THREAD_ID
from leon.store.models import STOP_MARKS, THREAD_KINDS, THREAD_STATUSES
from leon.store.validate import (
    AnyJson,
    Bool,
    Either,
    Int,
    Invalid,
    ListOf,
    MapOf,
    Num,
    Obj,
    Spec,
    Str,
    Tagged,
    Time,
    unique,
)

EXPORT_FORMAT = "leon-thread/1"
#: Largest export file (and largest decompressed archive) leon reads: bigger than any
#: thread leon writes in practice (a long thread with big tool outputs is a few MB), and
#: small enough to parse in memory.
MAX_BYTES = 128 * 2**20
#: Rows of all tables of one export together.
MAX_ROWS = 200_000
BIG = MAX_BYTES  # a text field is bounded by the file's size only

#: What leon's store makes (``LeonStore._add_checkpoint`` callers).
CHECKPOINT_KINDS = ("user", "reply", "tool", "compaction", "interrupted", "import")
MESSAGE_ROLES = ("user", "assistant")
MESSAGE_STATUSES = ("complete", "interrupted", "streaming")
#: Why a reply ended short (``messages.stop_reason``; :mod:`leon.agent.stops`).
STOP_REASONS = tuple(STOP_MARKS)
#: Message fields newer than the format: an older export lacks them.
ADDED_MESSAGE_FIELDS = ("unsent", "model", "stop_reason")
BLOB_KINDS = ("system_prompt", "tools", "skills", "file")

ID = Int(1)
REF = Int(1, null=True)
HASH = Str(64, pattern=re.compile(r"[0-9a-f]{64}"), what="a sha256 hex digest")
HASH_OR_NULL = Str(64, pattern=re.compile(r"[0-9a-f]{64}"), what="a sha256 hex digest",
                   null=True)
THREAD_ID_SPEC = Str(64, pattern=THREAD_ID,
                     what="a thread id (1-64 of a-z, 0-9, _ and -, not starting with _ or -)")
NAME = Str(200, line=True)  # a one-line label: model, agent, tool name, tool call id

# -- content blocks (Messages API shapes leon stores) -------------------------------------
_TOOL_CALL = Obj({"type": Str(), "id": NAME, "name": NAME, "input": AnyJson(object_only=True)},
                 extra=True)
_SOURCE = Obj({"type": Str(), "source": AnyJson(object_only=True)}, extra=True)
_TEXT = Obj({"type": Str(), "text": Str(BIG)}, extra=True)
_RESULT_PART = Tagged("type", {"text": _TEXT, "image": _SOURCE, "document": _SOURCE})
BLOCK: Spec = Tagged("type", {
    "text": _TEXT,
    "tool_use": _TOOL_CALL,
    "server_tool_use": _TOOL_CALL,
    "tool_result": Obj({"type": Str(), "tool_use_id": NAME,
                        "content": Either((Str(BIG), ListOf(_RESULT_PART, 10_000)),
                                          "a string or a list of text/image blocks"),
                        "is_error": Bool()}, optional=frozenset({"content", "is_error"}),
                       extra=True),
    "image": _SOURCE,
    "document": _SOURCE,
    "thinking": Obj({"type": Str(), "thinking": Str(BIG), "signature": Str(BIG)},
                    optional=frozenset({"signature"}), extra=True),
    "redacted_thinking": Obj({"type": Str(), "data": Str(BIG)}, extra=True),
}, other=re.compile(r"[a-z][a-z_]{0,60}_tool_result"),
    other_spec=Obj({"type": Str(), "tool_use_id": NAME}, extra=True))
CONTENT = ListOf(BLOCK, 10_000)

# -- the tables ---------------------------------------------------------------------------
THREAD = Obj({
    "id": THREAD_ID_SPEC,
    "title": Str(1000),
    "kind": Str(enum=THREAD_KINDS),
    "status": Str(enum=THREAD_STATUSES),
    "parent_id": Str(64, pattern=THREAD_ID, what="a thread id", null=True),
    "name": Str(200, line=True, null=True),
    "day": Str(10, pattern=re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"), what="a day (YYYY-MM-DD)",
               null=True),
    "agent": Str(100, line=True),
    "model": NAME,
    "system_hash": HASH_OR_NULL,
    "tools_hash": HASH_OR_NULL,
    "head_checkpoint_id": REF,
    "message_count": Int(0),
    "created_at": Time(),
    "updated_at": Time(),
    "completed_at": Time(null=True),
})
TABLES: dict[str, Obj] = {
    "messages": Obj({
        "id": ID, "parent_id": REF, "role": Str(enum=MESSAGE_ROLES), "content": CONTENT,
        "status": Str(enum=MESSAGE_STATUSES), "tokens": Int(0, null=True), "pinned": Bool(),
        "created_at": Time(), "unsent": Bool(), "model": Str(200, line=True, null=True),
        "stop_reason": Str(enum=STOP_REASONS, null=True)},
        optional=frozenset(ADDED_MESSAGE_FIELDS)),
    "checkpoints": Obj({
        "id": ID, "parent_id": REF, "message_id": REF, "summary_id": REF,
        "kind": Str(enum=CHECKPOINT_KINDS), "label": Str(200, line=True, null=True),
        "created_at": Time()}),
    "summaries": Obj({
        "id": ID, "upto_message_id": ID, "previous_id": REF, "text": Str(BIG), "model": NAME,
        "messages_replaced": Int(0), "tokens_before": Int(0), "tokens_after": Int(0),
        "created_at": Time()}),
    "events": Obj({
        "id": ID, "kind": Str(40, pattern=re.compile(r"[a-z][a-z0-9_]*"),
                              what="an event kind (a-z, 0-9, _)"),
        "data": AnyJson(object_only=True), "created_at": Time()}),
    "usage": Obj({
        "id": ID, "model": NAME, "input_tokens": Int(0), "output_tokens": Int(0),
        "cache_creation_tokens": Int(0), "cache_read_tokens": Int(0),
        "estimated_tokens": Int(0, null=True), "latency_ms": Num(), "retries": Int(0),
        "created_at": Time()}),
}
EXPORT = Obj({
    "format": Str(enum=(EXPORT_FORMAT,)),
    "thread": THREAD,
    **{table: ListOf(spec, MAX_ROWS) for table, spec in TABLES.items()},
    "blobs": MapOf(HASH, Obj({"kind": Str(enum=BLOB_KINDS), "data": Str(BIG)}), 1000),
})

#: Columns that point at rows of another table of the same export.
REFS = {
    "messages": {"parent_id": "messages"},
    "summaries": {"upto_message_id": "messages", "previous_id": "summaries"},
    "checkpoints": {"parent_id": "checkpoints", "message_id": "messages",
                    "summary_id": "summaries"},
}
#: References that must point at an *earlier* row of their own table: parents.
EARLIER = {("messages", "parent_id"), ("checkpoints", "parent_id"),
           ("summaries", "previous_id")}


def validate_export(data: Any, where: str = "") -> None:
    """Raise :class:`~leon.store.validate.Invalid` naming the first field that is not
    what leon writes (``where`` prefixes field names, for an export inside an archive)."""
    prefix = f"{where}." if where else ""
    if not isinstance(data, dict):
        raise Invalid(where, "a thread export is a JSON object")
    if data.get("format") != EXPORT_FORMAT:
        raise Invalid(f"{prefix}format", f"{data.get('format')!r} is not {EXPORT_FORMAT!r}: "
                                         "not a leon thread export")
    EXPORT.check(data, where)
    rows = sum(len(data[t]) for t in TABLES)
    if rows > MAX_ROWS:
        raise Invalid(where, f"holds {rows:,} rows; at most {MAX_ROWS:,}")
    ids: dict[str, set[int]] = {}
    for table in TABLES:
        unique(data[table], "id", f"{prefix}{table}")
        ids[table] = {r["id"] for r in data[table]}
    for table, cols in REFS.items():
        for i, r in enumerate(data[table]):
            for col, target in cols.items():
                ref = r[col]
                if ref is None:
                    continue
                field = f"{prefix}{table}[{i}].{col}"
                if ref not in ids[target]:
                    raise Invalid(field, f"{ref} is not a row of {target} in this export")
                if (table, col) in EARLIER and ref >= r["id"]:
                    raise Invalid(field, f"{ref} is not earlier than the row itself ({r['id']}):"
                                         " parents come first (a cycle?)")
    thread = data["thread"]
    head = thread["head_checkpoint_id"]
    if head is None and data["checkpoints"]:
        raise Invalid(f"{prefix}thread.head_checkpoint_id", "is null but the export has "
                                                            "checkpoints")
    if head is not None and head not in ids["checkpoints"]:
        raise Invalid(f"{prefix}thread.head_checkpoint_id",
                      f"{head} is not a checkpoint in this export")
    for key in ("system_hash", "tools_hash"):
        digest = thread[key]
        if digest is not None and digest not in data["blobs"]:
            raise Invalid(f"{prefix}thread.{key}", f"blob {digest[:12]}… is not in the export")
    for digest, blob in data["blobs"].items():
        if hashlib.sha256(blob["data"].encode("utf-8")).hexdigest() != digest:
            raise Invalid(f"{prefix}blobs[{digest!r}].data", "does not match its sha256")
