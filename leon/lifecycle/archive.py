"""Thread archives: a compressed file per deleted thread under ``LEON_HOME/archive``, written
before anything is deleted, and restored with ``leon threads restore``.

An archive is gzip-compressed JSON (stdlib :mod:`gzip`; text compresses to about a fifth):
the thread's JSON export (:func:`leon.store.export.export_json`: every branch, checkpoint,
summary, event and usage record) plus what the export leaves out — the skills snapshot,
the spilled tool outputs with their content, the file history with the file contents
(so ``rollback --files`` works after a restore), and the chat.db transcript. It is written
to a temp file, fsynced and renamed, mode 0600, so a crash never leaves a half-written
archive under the final name (temp files are orphans: :mod:`leon.lifecycle.orphans`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import os
import time
import zlib
from pathlib import Path
from typing import Any

from leon.lifecycle.archive_schema import ARCHIVE_FORMAT, spill_name_of, validate_archive
from leon.paths import (
    PathError,
    Paths,
    check,
    confine,
    is_valid,
    open_private_file,
    remove_file,
)
from leon.store import Stores
from leon.store.export import export_json, insert_export
from leon.store.export_schema import MAX_BYTES
from leon.store.validate import Invalid, load_json

SUFFIX = ".json.gz"
TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"


def archive_name(thread_id: str, updated_at: float) -> str:
    """One name per thread state: archiving the same thread twice (a crash between the
    archive and the deletion) overwrites rather than duplicates. Always in
    :data:`leon.paths.ARCHIVE_NAME`'s format: a thread id leon did not make (one imported
    before ids were checked) is archived under a stand-in derived from it."""
    try:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(updated_at))
    except (OverflowError, OSError, ValueError):
        stamp = ""
    if len(stamp) != 15:  # a time beyond the year 9999 (or before 1000)
        stamp = "00000000T000000"
    if not is_valid("thread id", thread_id):
        thread_id = "x" + hashlib.sha256(
            str(thread_id).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return check("archive name", f"{thread_id}-{stamp}{SUFFIX}")


def _spill_entry(paths: Paths, thread_id: str, row: Any) -> dict[str, Any]:
    """A ``spills`` row for the archive: its file *name* (the directory is the thread's
    own, derived again on restore) and the content, read only through a checked path."""
    item = {k: row[k] for k in row.keys() if k not in ("thread_id", "path")}
    item["name"] = Path(row["path"]).name
    try:
        item["content"] = paths.stored_spill(thread_id, row["path"]).read_text(
            encoding="utf-8", errors="replace")
    except (OSError, PathError):
        item["content"] = None  # already gone (or never leon's): the row still says what
    return item


async def build_archive(stores: Stores, paths: Paths, thread_id: str,
                        reason: str) -> dict[str, Any]:
    """Everything the three databases and the spill directory hold for one thread."""
    leon = stores.leon
    data: dict[str, Any] = {"format": ARCHIVE_FORMAT, "reason": reason,
                            "archived_at": time.time(),
                            "thread": await export_json(leon, thread_id)}
    row = await leon.db.fetchone("SELECT skills_hash FROM threads WHERE id = ?", (thread_id,))
    blobs: dict[str, dict[str, str]] = {}

    async def keep_blob(digest: str | None) -> None:
        if not digest or digest in blobs:
            return
        blob = await leon.db.fetchone("SELECT kind, data FROM blobs WHERE hash = ?", (digest,))
        if blob is not None:
            blobs[digest] = {"kind": blob["kind"],
                             "data": base64.b64encode(bytes(blob["data"])).decode()}

    data["skills_hash"] = row["skills_hash"] if row else None
    await keep_blob(data["skills_hash"])
    spills = []
    for r in await leon.db.fetchall(
            "SELECT id, message_id, tool_use_id, tool_name, path, bytes, chars, lines, created_at"
            " FROM spills WHERE thread_id = ? ORDER BY id", (thread_id,)):
        spills.append(_spill_entry(paths, thread_id, r))
    data["spills"] = spills
    ops = []
    for r in await leon.db.fetchall(
            "SELECT id, checkpoint_id, path, before_hash, after_hash, kind, tool, created_at"
            " FROM file_ops WHERE thread_id = ? ORDER BY id", (thread_id,)):
        ops.append({k: r[k] for k in r.keys()})
        await keep_blob(r["before_hash"])
        await keep_blob(r["after_hash"])
    data["file_ops"] = ops
    data["blobs"] = blobs
    chat = await stores.chat.db.fetchone("SELECT id, title FROM chats WHERE thread_id = ?",
                                         (thread_id,))
    if chat is not None:
        msgs = await stores.chat.db.fetchall(
            "SELECT sender_id, text, mentions, created_at FROM chat_messages WHERE chat_id = ?"
            " ORDER BY id", (chat["id"],))
        data["chat"] = {"title": chat["title"],
                        "messages": [{k: m[k] for k in m.keys()} for m in msgs]}
    data["sandbox_commands"] = [
        {k: r[k] for k in r.keys()} for r in await stores.sandbox.db.fetchall(
            "SELECT c.command, c.exit_code, c.duration_ms, c.bytes_out, c.created_at"
            " FROM commands c JOIN sandboxes s ON s.id = c.sandbox_id WHERE s.thread_id = ?"
            " ORDER BY c.id", (thread_id,))]
    return data


def sync_dir(directory: Path) -> None:
    """fsync a directory, so the renames in it survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def build_archives(stores: Stores, paths: Paths,
                         items: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """:func:`build_archive` for many threads (``(thread_id, reason)``) with one query
    per table for all of them — what gc uses; the export part has exactly
    :func:`leon.store.export.export_json`'s format (its column lists are reused), so
    :func:`leon.store.export.import_json` restores it."""
    from leon.store import export as ex

    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(items), 200):
        chunk = dict(items[i:i + 200])
        out.update(await _build_chunk(stores, paths, chunk, ex))
    return out


async def _build_chunk(stores: Stores, paths: Paths, reasons: dict[str, str],
                       ex: Any) -> dict[str, Any]:
    leon = stores.leon.db
    ids = list(reasons)
    marks = ",".join("?" * len(ids))
    now = time.time()
    out: dict[str, dict[str, Any]] = {}
    for row in await leon.fetchall(f"SELECT * FROM threads WHERE id IN ({marks})", ids):
        out[row["id"]] = {
            "format": ARCHIVE_FORMAT, "reason": reasons[row["id"]], "archived_at": now,
            "thread": {"format": ex.EXPORT_FORMAT,
                       "thread": {c: row[c] for c in ex._THREAD_COLS}, "blobs": {}},
            "skills_hash": row["skills_hash"], "blobs": {}, "spills": [], "file_ops": [],
            "sandbox_commands": [], "_refs": [row["system_hash"], row["tools_hash"]]}
    for table, cols in ex._TABLES.items():
        for d in out.values():
            d["thread"][table] = []
        for r in await leon.fetchall(
                f"SELECT thread_id, {', '.join(cols)} FROM {table}"
                f" WHERE thread_id IN ({marks}) ORDER BY thread_id, id", ids):
            if r["thread_id"] in out:
                out[r["thread_id"]]["thread"][table].append(
                    {c: (json.loads(r[c]) if c in ex._JSON_COLS else r[c]) for c in cols})
    for r in await leon.fetchall(
            "SELECT thread_id, id, message_id, tool_use_id, tool_name, path, bytes, chars, lines,"
            f" created_at FROM spills WHERE thread_id IN ({marks}) ORDER BY id", ids):
        out[r["thread_id"]]["spills"].append(_spill_entry(paths, r["thread_id"], r))
    for r in await leon.fetchall(
            "SELECT thread_id, id, checkpoint_id, path, before_hash, after_hash, kind, tool,"
            f" created_at FROM file_ops WHERE thread_id IN ({marks}) ORDER BY id", ids):
        out[r["thread_id"]]["file_ops"].append({k: r[k] for k in r.keys() if k != "thread_id"})
    # blobs: the export's (system prompt, tools: text) and ours (skills, file contents)
    wanted = {h for d in out.values() for h in d["_refs"] if h}
    wanted |= {d["skills_hash"] for d in out.values() if d["skills_hash"]}
    wanted |= {h for d in out.values() for op in d["file_ops"]
               for h in (op["before_hash"], op["after_hash"]) if h}
    blobs: dict[str, Any] = {}
    hashes = list(wanted)
    for j in range(0, len(hashes), 400):
        part = hashes[j:j + 400]
        for b in await leon.fetchall(
                f"SELECT hash, kind, data FROM blobs WHERE hash IN ({','.join('?' * len(part))})",
                part):
            blobs[b["hash"]] = (b["kind"], bytes(b["data"]))
    for d in out.values():
        for h in d.pop("_refs"):
            if h in blobs:
                d["thread"]["blobs"][h] = {"kind": blobs[h][0],
                                           "data": blobs[h][1].decode("utf-8", "replace")}
        own = [d["skills_hash"]] + [h for op in d["file_ops"]
                                    for h in (op["before_hash"], op["after_hash"])]
        for h in own:
            if h and h in blobs:
                d["blobs"][h] = {"kind": blobs[h][0],
                                 "data": base64.b64encode(blobs[h][1]).decode()}
    chats = {r["id"]: r for r in await stores.chat.db.fetchall(
        f"SELECT id, thread_id, title FROM chats WHERE thread_id IN ({marks})", ids)}
    if chats:
        for c in chats.values():
            out[c["thread_id"]]["chat"] = {"title": c["title"], "messages": []}
        cids = list(chats)
        for m in await stores.chat.db.fetchall(
                "SELECT chat_id, sender_id, text, mentions, created_at FROM chat_messages"
                f" WHERE chat_id IN ({','.join('?' * len(cids))}) ORDER BY id", cids):
            out[chats[m["chat_id"]]["thread_id"]]["chat"]["messages"].append(
                {k: m[k] for k in m.keys() if k != "chat_id"})
    for r in await stores.sandbox.db.fetchall(
            "SELECT s.thread_id, c.command, c.exit_code, c.duration_ms, c.bytes_out, c.created_at"
            " FROM commands c JOIN sandboxes s ON s.id = c.sandbox_id"
            f" WHERE s.thread_id IN ({marks}) ORDER BY c.id", ids):
        out[r["thread_id"]]["sandbox_commands"].append(
            {k: r[k] for k in r.keys() if k != "thread_id"})
    return out


def encode_archive(data: dict[str, Any]) -> bytes:
    """The archive file's bytes: gzip-compressed JSON."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return gzip.compress(raw, compresslevel=6, mtime=0)


def store_archive(paths: Paths, name: str, blob: bytes, sync: bool = True) -> Path:
    """Write ``blob`` as ``archive/name`` atomically (temp file, fsync, rename), 0600, at
    paths checked by :mod:`leon.paths` (``name`` must be an archive name).
    ``sync=False`` leaves the directory's fsync to the caller (one per batch)."""
    final = paths.archive_file(name)
    tmp_name = f"{TMP_PREFIX}{name}{TMP_SUFFIX}"
    fd = open_private_file(paths.home, "archive", tmp_name)
    tmp = confine(paths.home, "archive", tmp_name)
    try:
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        sync_dir(final.parent)
    return final


def write_archive(paths: Paths, name: str, data: dict[str, Any], sync: bool = True) -> Path:
    """:func:`encode_archive` then :func:`store_archive`."""
    return store_archive(paths, name, encode_archive(data), sync)


def read_archive(path: Path) -> dict[str, Any]:
    """The archive at ``path``, checked (:func:`~leon.lifecycle.archive_schema.validate_archive`).
    Decompressed at most :data:`~leon.store.export_schema.MAX_BYTES` (a small file that
    inflates to gigabytes — a gzip bomb — stops there). Raises ValueError
    (:class:`~leon.store.validate.Invalid`) with one line when it is not a leon archive."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise Invalid("", f"{path}: not a leon archive (not gzip: "
                          f"{getattr(exc, 'strerror', None) or exc})") from None
    if len(raw) > MAX_BYTES:
        raise Invalid("", f"{path}: not restored: it decompresses to more than "
                          f"{MAX_BYTES // 2**20} MiB")
    try:
        data = load_json(raw, MAX_BYTES, "the archive")
        validate_archive(data)
    except Invalid as exc:
        raise exc.within(f"{path}: not restored: ") from None
    return data


def list_archives(paths: Paths) -> list[Path]:
    """Archive files, oldest first."""
    if not paths.archive.is_dir():
        return []
    files = [p for p in paths.archive.iterdir()
             if is_valid("archive name", p.name) and not p.is_symlink() and p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def find_archive(paths: Paths, ref: str) -> Path:
    """An archive by path, by file name, or the newest one of a thread id (or id prefix).
    Raises LookupError."""
    p = Path(ref).expanduser()
    if p.is_file():
        return p
    if (paths.archive / ref).is_file():
        return paths.archive / ref
    matches = [a for a in list_archives(paths) if a.name.startswith(ref)]
    ids = {a.name.rsplit("-", 1)[0] for a in matches}
    if not matches:
        raise LookupError(f"no archive for {ref!r} in {paths.archive} "
                          "(`leon threads restore --list` lists them)")
    if len(ids) > 1:
        raise LookupError(f"{ref!r} matches archives of several threads; type more of the id")
    return matches[-1]


async def restore_archive(stores: Stores, paths: Paths, path: Path) -> str:
    """Import an archive; returns the thread id (a new one when the old id is taken).
    The archive is checked in full first; then the rows go in as one transaction, and the
    spill files are written (into the thread's own spill directory, by name) before it
    commits — a failure leaves neither rows nor files."""
    data = read_archive(path)
    leon = stores.leon
    now = time.time()
    made: list[Path] = []
    try:
        async with leon.db.transaction() as conn:
            tid, ids = await insert_export(conn, data["thread"])
            msg_map, ckpt_map = ids["messages"], ids["checkpoints"]
            for digest, blob in data["blobs"].items():
                raw = base64.b64decode(blob["data"])
                await conn.execute(
                    "INSERT OR IGNORE INTO blobs (hash, kind, size, data, created_at)"
                    " VALUES (?,?,?,?,?)", (digest, blob["kind"], len(raw), raw, now))
            # A restored thread starts its retention window again (else the next gc would
            # delete it at once).
            await conn.execute(
                "UPDATE threads SET updated_at = ?, completed_at = CASE WHEN completed_at IS"
                " NULL THEN NULL ELSE ? END, skills_hash = ? WHERE id = ?",
                (now, now, data["skills_hash"], tid))
            for op in data["file_ops"]:
                await conn.execute(
                    "INSERT INTO file_ops (thread_id, checkpoint_id, path, before_hash,"
                    " after_hash, kind, tool, created_at) VALUES (?,?,?,?,?,?,?,?)",
                    (tid, ckpt_map.get(op["checkpoint_id"]), op["path"], op["before_hash"],
                     op["after_hash"], op["kind"], op["tool"], op["created_at"]))
            for s in data["spills"]:
                name = spill_name_of(s)
                target = paths.spill_file(tid, name)
                await conn.execute(
                    "INSERT INTO spills (thread_id, message_id, tool_use_id, tool_name, path,"
                    " bytes, chars, lines, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (tid, msg_map.get(s["message_id"]), s["tool_use_id"], s["tool_name"],
                     str(target), s["bytes"], s["chars"], s["lines"], s["created_at"]))
                if s["content"] is not None:
                    made.append(target)
                    await asyncio.to_thread(_write_spill_file, paths, tid, name, s["content"])
            await conn.execute(
                "INSERT INTO events (thread_id, kind, data, created_at) VALUES (?,?,?,?)",
                (tid, "restore", json.dumps({"archive": str(path), "reason": data["reason"],
                                             "archived_at": data["archived_at"]}), now))
    except BaseException:
        for target in made:  # the rows are rolled back: so are the files
            with contextlib.suppress(OSError, PathError):
                remove_file(paths.cache, "spill", target.parent.name, target.name)
        raise
    return tid


def _write_spill_file(paths: Paths, thread_id: str, name: str, content: str) -> None:
    fd = open_private_file(paths.cache, "spill", thread_id, name)
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(content)
