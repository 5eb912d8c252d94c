"""What a thread archive (``leon-archive/1``, :mod:`leon.lifecycle.archive`) may hold,
declared field by field, and :func:`validate_archive`, run before anything is restored.

An archive is the thread's export (checked by :mod:`leon.store.export_schema`) plus the
skills snapshot, the spilled outputs, the file history with the file contents (base64),
the chat transcript and the sandbox commands. A spill entry names its file by a plain
spill name — the directory is always the restored thread's own, derived again
(:mod:`leon.paths`); archives written before names were stored carry the whole ``path``,
accepted only in the shape leon wrote it (``…/spill/THREAD/NAME``), and only the name is
used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import PurePosixPath
from typing import Any

from leon.paths import SPILL_NAME
from leon.store.export_schema import (
    BIG,
    BLOB_KINDS,
    HASH,
    HASH_OR_NULL,
    ID,
    NAME,
    REF,
    validate_export,
)
from leon.store.validate import AnyJson, Int, Invalid, ListOf, MapOf, Num, Obj, Str, Time, unique

ARCHIVE_FORMAT = "leon-archive/1"
FILE_OP_KINDS = ("tool", "subagent", "restore")

SPILL = Obj({
    "id": ID, "message_id": REF, "tool_use_id": NAME, "tool_name": Str(200, line=True),
    "name": Str(124, pattern=SPILL_NAME, what="a spill file name (no directory)"),
    "path": Str(4096, line=True),
    "bytes": Int(0), "chars": Int(0), "lines": Int(0), "created_at": Time(),
    "content": Str(BIG, null=True),
}, optional=frozenset({"name", "path"}))
FILE_OP = Obj({
    "id": ID, "checkpoint_id": REF,
    "path": Str(4096, pattern=re.compile(r"/.*", re.S), what="an absolute path", line=True),
    "before_hash": HASH_OR_NULL, "after_hash": HASH_OR_NULL,
    "kind": Str(enum=FILE_OP_KINDS), "tool": Str(100, line=True, null=True),
    "created_at": Time(),
})
ARCHIVE = Obj({
    "format": Str(enum=(ARCHIVE_FORMAT,)),
    "reason": Str(40, line=True),
    "archived_at": Time(),
    "thread": AnyJson(object_only=True),  # checked by validate_export
    "skills_hash": HASH_OR_NULL,
    "blobs": MapOf(HASH, Obj({"kind": Str(enum=BLOB_KINDS), "data": Str(BIG)}), 100_000),
    "spills": ListOf(SPILL, 100_000),
    "file_ops": ListOf(FILE_OP, 100_000),
    "chat": Obj({"title": Str(1000), "messages": ListOf(Obj({
        "sender_id": NAME, "text": Str(BIG), "mentions": Str(BIG), "created_at": Time()}),
        100_000)}),
    "sandbox_commands": ListOf(Obj({
        "command": Str(BIG), "exit_code": Int(-2**31, 2**31, null=True),
        "duration_ms": Num(null=True), "bytes_out": Int(0, null=True), "created_at": Time()}),
        100_000),
}, optional=frozenset({"chat"}))


def spill_name_of(entry: dict[str, Any]) -> str:
    """The file name a checked spill entry restores to."""
    return entry["name"] if "name" in entry else PurePosixPath(entry["path"]).name


def validate_archive(data: Any) -> None:
    """Raise :class:`~leon.store.validate.Invalid` naming the first field that is not
    what leon writes; nothing has been written when it does."""
    if not isinstance(data, dict):
        raise Invalid("", "a leon archive is a JSON object")
    if data.get("format") != ARCHIVE_FORMAT:
        raise Invalid("format", f"{data.get('format')!r} is not {ARCHIVE_FORMAT!r}: "
                                "not a leon archive")
    ARCHIVE.check(data, "")
    export = data["thread"]
    validate_export(export, "thread")
    archived_id = export["thread"]["id"]
    messages = {m["id"] for m in export["messages"]}
    checkpoints = {c["id"] for c in export["checkpoints"]}
    blobs = data["blobs"]
    names: set[str] = set()
    unique(data["spills"], "id", "spills")
    for i, s in enumerate(data["spills"]):
        where = f"spills[{i}]"
        if "name" not in s and "path" not in s:
            raise Invalid(f"{where}.name", "is missing")
        if "path" in s:
            _legacy_spill_path(s["path"], archived_id, f"{where}.path")
        name = spill_name_of(s)
        if name in names:
            raise Invalid(f"{where}.name", f"{name!r} appears twice")
        names.add(name)
        if s["message_id"] is not None and s["message_id"] not in messages:
            raise Invalid(f"{where}.message_id", f"{s['message_id']} is not a message in this "
                                                 "archive")
    unique(data["file_ops"], "id", "file_ops")
    for i, op in enumerate(data["file_ops"]):
        if op["checkpoint_id"] is not None and op["checkpoint_id"] not in checkpoints:
            raise Invalid(f"file_ops[{i}].checkpoint_id",
                          f"{op['checkpoint_id']} is not a checkpoint in this archive")
        for key in ("before_hash", "after_hash"):
            if op[key] is not None and op[key] not in blobs:
                raise Invalid(f"file_ops[{i}].{key}", f"blob {op[key][:12]}… is not in the "
                                                      "archive")
    if data["skills_hash"] is not None and data["skills_hash"] not in blobs:
        raise Invalid("skills_hash", f"blob {data['skills_hash'][:12]}… is not in the archive")
    for digest, blob in blobs.items():
        try:
            raw = base64.b64decode(blob["data"], validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"blobs[{digest!r}].data", "is not base64") from None
        if hashlib.sha256(raw).hexdigest() != digest:
            raise Invalid(f"blobs[{digest!r}].data", "does not match its sha256")


def _legacy_spill_path(path: str, thread_id: str, where: str) -> None:
    """An older archive's spill ``path``: only ``/…/spill/THREAD/NAME`` as leon wrote it."""
    p = PurePosixPath(path)
    if not (p.is_absolute() and ".." not in p.parts and len(p.parts) >= 4
            and p.parent.parent.name == "spill" and p.parent.name == thread_id
            and SPILL_NAME.fullmatch(p.name)):
        raise Invalid(where, f"{path[:60]!r} is not a spill file of this thread "
                             "(…/spill/THREAD/NAME.txt)")
