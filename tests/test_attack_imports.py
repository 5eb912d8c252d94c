"""Hostile exports and archives, fed to the real `leon threads import` / `leon threads
restore` as a subprocess. Each must be refused with exit 1 and one stderr line naming the
field and the reason, and leave everything as it was: every row of the three databases,
leon's directories, and a victim directory outside them (hashed before and after)."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import sqlite3
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attack_helpers import leon, leon_env, one_line_error, rows, tree
from export_canon import canonical
from lifecycle_helpers import make_thread

from leon.store import Stores
from leon.store.export import export_json
from leon.store.export_schema import MAX_BYTES

Export = dict[str, Any]
HUGE = "<1e400>"  # written to the file as the number 1e400


async def _seed(stores: Stores) -> Export:
    """A thread with every kind of row an export holds: a tool call and its result, a
    summary, usage, an event, a system prompt blob."""
    store = stores.leon
    t = await store.create_thread("scoped", name="orig", title="Original")
    digest = await store.put_blob("system_prompt", "You are leon.")
    await store.update_thread(t.id, system_hash=digest)
    await store.append_message(t.id, "user", [{"type": "text", "text": "read a.txt"}])
    await store.append_message(t.id, "assistant", [
        {"type": "text", "text": "Reading."},
        {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a.txt"}}])
    m3, _ = await store.append_message(t.id, "user", [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "line one"}])
    await store.append_message(t.id, "assistant", [{"type": "text", "text": "Done."}])
    await store.add_summary(t.id, upto_message_id=m3.id, text="they read a.txt", model="m",
                            messages_replaced=3, tokens_before=50, tokens_after=5)
    await store.add_usage(t.id, "m", input_tokens=1, output_tokens=2, cache_creation_tokens=0,
                          cache_read_tokens=0, latency_ms=5.0, retries=0)
    await store.add_event(t.id, "prune", {"n": 1})
    return await export_json(store, t.id)


@pytest.fixture
async def world(stores, leon_paths, tmp_path):
    """leon's home with one thread (``orig``), its JSON export, a victim directory next to
    leon's roots, and the subprocess environment."""
    export = await _seed(stores)
    await stores.close()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("do not touch\n")
    (victim / "sub").mkdir()
    (victim / "sub" / "notes.txt.txt").write_text("mine\n")
    return {"export": export, "victim": victim, "env": leon_env(leon_paths.home, leon_paths.cache),
            "paths": leon_paths, "tmp": tmp_path}


def _snapshot(world: dict[str, Any]) -> tuple[Any, ...]:
    paths = world["paths"]
    return rows(paths.home), tree(paths.cache), tree(world["victim"]), \
        sorted(p.name for p in world["tmp"].iterdir())


def _refused(world: dict[str, Any], *args: str) -> str:
    """Run ``leon ARGS``; assert it exits 1 with one line and changed nothing; return
    the line."""
    before = _snapshot(world)
    proc = leon(world["env"], *args, cwd=world["tmp"])
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    line = one_line_error(proc)
    assert proc.stdout == ""
    assert _snapshot(world) == before, "a refused import changed something"
    return line


def _write(world: dict[str, Any], data: Any, name: str = "attack.json") -> Path:
    path = world["tmp"] / name
    # A number too large for a float: json.loads reads 1e400 as inf (json.dumps would
    # have written "Infinity", which is refused earlier as not JSON).
    path.write_text(json.dumps(data).replace(f'"{HUGE}"', "1e400"))
    return path


def _msg(e: Export, i: int) -> dict[str, Any]:
    return e["messages"][i]


def _set(path: str, value: Any) -> Callable[[Export], None]:
    """A mutation: ``path`` like ``messages.1.parent_id`` set to ``value``."""
    def apply(e: Export) -> None:
        *parts, last = path.split(".")
        node: Any = e
        for p in parts:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[int(last) if isinstance(node, list) else last] = value
    return apply


def _cycle(e: Export) -> None:
    a, b = e["messages"][0], e["messages"][1]
    a["parent_id"], b["parent_id"] = b["id"], a["id"]


def _ckpt_cycle(e: Export) -> None:
    c = e["checkpoints"][1]
    c["parent_id"] = e["checkpoints"][-1]["id"]


def _dup_ids(e: Export) -> None:
    e["messages"][1]["id"] = e["messages"][0]["id"]


def _blob_mismatch(e: Export) -> None:
    digest = next(iter(e["blobs"]))
    e["blobs"][digest]["data"] = "You are evil."


def _blob_missing(e: Export) -> None:
    e["blobs"] = {}


def _foreign_parent(e: Export) -> None:
    e["messages"][0]["parent_id"] = 10_000  # a message of some other thread, or none


def _extra_field(e: Export) -> None:
    e["messages"][0]["thread_id"] = "someone-elses"


def _missing_field(e: Export) -> None:
    del e["messages"][0]["content"]


def _summary_dangling(e: Export) -> None:
    e["summaries"][0]["upto_message_id"] = 9999


def _ckpt_summary_dangling(e: Export) -> None:
    e["checkpoints"][-1]["summary_id"] = 9999


def _head_null(e: Export) -> None:
    e["thread"]["head_checkpoint_id"] = None


def _deep_input(e: Export) -> None:
    deep: Any = {}
    for _ in range(100):
        deep = {"a": deep}
    e["messages"][1]["content"][1]["input"] = deep


# (mutation, the field the error must name, a word of the reason)
EXPORT_ATTACKS: dict[str, tuple[Callable[[Export], None], str, str]] = {
    "traversal thread id": (_set("thread.id", "../../../../victim"), "thread.id", "thread id"),
    "absolute thread id": (_set("thread.id", "/tmp/victim"), "thread.id", "thread id"),
    "thread id with NUL": (_set("thread.id", "ab\x00cd"), "thread.id", "thread id"),
    "thread id with newline": (_set("thread.id", "ab\ncd"), "thread.id", "thread id"),
    "thread id with ESC": (_set("thread.id", "ab\x1b[2J"), "thread.id", "thread id"),
    "thread id in upper case": (_set("thread.id", "ABCDEF0123"), "thread.id", "thread id"),
    "thread id dot-dot": (_set("thread.id", ".."), "thread.id", "thread id"),
    "thread id of 65 chars": (_set("thread.id", "a" * 65), "thread.id", "long"),
    "parent thread traversal": (_set("thread.parent_id", "../x"), "thread.parent_id",
                                "thread id"),
    "name with newline": (_set("thread.name", "evil\nname"), "thread.name", "control"),
    "name with ESC": (_set("thread.name", "\x1b]0;pwned\x07"), "thread.name", "control"),
    "name with NUL": (_set("thread.name", "a\x00b"), "thread.name", "control"),
    "title too long": (_set("thread.title", "t" * 2000), "thread.title", "at most 1,000"),
    "unknown thread kind": (_set("thread.kind", "root"), "thread.kind", "not one of"),
    "unknown role": (_set("messages.0.role", "system"), "messages[0].role", "not one of"),
    "unknown status": (_set("messages.0.status", "hacked"), "messages[0].status", "not one of"),
    "unknown checkpoint kind": (_set("checkpoints.0.kind", "x"), "checkpoints[0].kind",
                                "not one of"),
    "self parent": (_set("messages.1.parent_id", 2), "messages[1].parent_id", "earlier"),
    "two-message cycle": (_cycle, "messages[0].parent_id", "earlier"),
    "checkpoint cycle": (_ckpt_cycle, "checkpoints[1].parent_id", "earlier"),
    "head that does not exist": (_set("thread.head_checkpoint_id", 999),
                                 "thread.head_checkpoint_id", "not a checkpoint"),
    "null head with checkpoints": (_head_null, "thread.head_checkpoint_id", "null"),
    "parent in another thread": (_foreign_parent, "messages[0].parent_id", "not a row"),
    "dangling summary": (_summary_dangling, "summaries[0].upto_message_id", "not a row"),
    "dangling checkpoint summary": (_ckpt_summary_dangling, "checkpoints[4].summary_id",
                                    "not a row"),
    "duplicated ids": (_dup_ids, "messages[1].id", "twice"),
    "content is a string": (_set("messages.0.content", "hi"), "messages[0].content",
                            "must be a list"),
    "id is a string": (_set("messages.0.id", "1"), "messages[0].id", "integer"),
    "id is a boolean": (_set("messages.0.id", True), "messages[0].id", "integer"),
    "id beyond 2**53": (_set("messages.0.id", 2**70), "messages[0].id", "out of range"),
    "negative time": (_set("messages.0.created_at", -5), "messages[0].created_at",
                      "out of range"),
    "time overflowing to inf": (_set("usage.0.latency_ms", HUGE), "usage[0].latency_ms",
                                "out of range"),
    "unknown block type": (_set("messages.0.content.0", {"type": "evil", "x": 1}),
                           "messages[0].content[0].type", "not a known kind"),
    "text block without text": (_set("messages.0.content.0", {"type": "text"}),
                                "messages[0].content[0].text", "missing"),
    "tool input not an object": (_set("messages.1.content.1.input", "rm -rf /"),
                                 "messages[1].content[1].input", "object"),
    "event kind with a path": (_set("events.0.kind", "../x"), "events[0].kind", "event kind"),
    "event data not an object": (_set("events.0.data", [1, 2]), "events[0].data", "object"),
    "unknown field": (_extra_field, "messages[0].thread_id", "not a known field"),
    "missing field": (_missing_field, "messages[0].content", "missing"),
    "blob hash mismatch": (_blob_mismatch, "blobs[", "sha256"),
    "blob referenced but absent": (_blob_missing, "thread.system_hash", "not in the export"),
    "wrong format": (_set("format", "leon-thread/9"), "format", "not a leon thread export"),
    "nested 100 deep": (_deep_input, "messages[1].content[1].input", "nested"),
}


@pytest.mark.parametrize("attack", list(EXPORT_ATTACKS))
async def test_hostile_export_is_refused_with_one_line_and_nothing_written(world, attack):
    mutate, field, reason = EXPORT_ATTACKS[attack]
    export = copy.deepcopy(world["export"])
    mutate(export)
    path = _write(world, export)
    line = _refused(world, "threads", "import", str(path))
    assert f"not imported: {field}" in line, line
    assert reason in line, line


RAW_ATTACKS: dict[str, tuple[bytes, str]] = {
    "invalid UTF-8": (b'{"format": "leon-thread/1", "thread": "\xff\xfe"}', "not UTF-8"),
    "lone surrogate": (b'{"format": "leon-thread/1", "x": "\\ud800"}', "lone surrogate"),
    "NaN": (b'{"format": "leon-thread/1", "x": NaN}', "not valid JSON"),
    "truncated JSON": (b'{"format": "leon-thread/1", "thread": {', "not valid JSON"),
    "empty file": (b"", "not valid JSON"),
    "a list, not an object": (b"[1, 2, 3]", "a thread export is a JSON object"),
    "a string": (b'"leon-thread/1"', "a thread export is a JSON object"),
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "nested"),
}


@pytest.mark.parametrize("attack", list(RAW_ATTACKS))
async def test_bytes_that_are_not_an_export_are_refused(world, attack):
    raw, reason = RAW_ATTACKS[attack]
    path = world["tmp"] / "attack.json"
    path.write_bytes(raw)
    line = _refused(world, "threads", "import", str(path))
    assert reason in line, line


async def test_huge_file_is_refused_unread(world):
    path = world["tmp"] / "huge.json"
    with open(path, "wb") as fh:  # sparse: the size is there, the disk blocks are not
        fh.truncate(MAX_BYTES + 1)
    line = _refused(world, "threads", "import", str(path))
    assert "larger than 128 MiB" in line


async def test_huge_string_within_the_cap_is_bounded_by_its_field(world):
    export = copy.deepcopy(world["export"])
    export["messages"][0]["content"][0]["text"] = "x" * (5 * 2**20)  # 5 MB of text: fine
    export["thread"]["model"] = "m" * 100_000                        # a 100 kB model name: not
    line = _refused(world, "threads", "import", str(_write(world, export)))
    assert "thread.model: is 100,000 characters long; at most 200" in line


async def test_import_from_stdin_is_checked_too(world):
    export = copy.deepcopy(world["export"])
    export["thread"]["id"] = "../../x"
    before = _snapshot(world)
    proc = leon(world["env"], "threads", "import", "-", cwd=world["tmp"], input=json.dumps(export))
    assert proc.returncode == 1 and "thread.id" in one_line_error(proc)
    assert _snapshot(world) == before


async def test_import_of_an_existing_thread_gets_a_new_id_and_never_merges(world):
    env, export = world["env"], world["export"]
    original = export["thread"]["id"]
    before = leon(env, "threads", "export", original, "-f", "json").stdout
    proc = leon(env, "threads", "import", str(_write(world, export)))
    assert proc.returncode == 0, proc.stderr
    new = proc.stdout.split()[-1]
    assert new != original
    # the original is untouched, row for row
    assert leon(env, "threads", "export", original, "-f", "json").stdout == before
    copy_ = json.loads(leon(env, "threads", "export", new, "-f", "json").stdout)
    assert canonical(copy_)["messages"] == canonical(export)["messages"]
    assert copy_["thread"]["name"].startswith("orig-restored-")
    shown = leon(env, "threads", "show", new).stdout
    assert shown.count("read a.txt") == 1 and "Done." in shown  # no duplicated history


async def test_a_sub_agent_thread_whose_parent_is_gone_imports_detached(world):
    """Before: the missing parent thread failed the import with an IntegrityError."""
    export = copy.deepcopy(world["export"])
    export["thread"].update(kind="subagent", parent_id="deadbeef00", name=None)
    proc = leon(world["env"], "threads", "import", str(_write(world, export)))
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(world["paths"].leon_db)
    try:
        row = conn.execute("SELECT parent_id, kind FROM threads WHERE id = ?",
                           (proc.stdout.split()[-1],)).fetchone()
    finally:
        conn.close()
    assert row == (None, "subagent")


async def test_a_valid_import_then_run_rm_and_gc_stay_inside_leons_roots(world):
    """The reproduced bug, fixed: an imported thread's sandbox is made under
    ``$LEON_CACHE/sandboxes``, and `leon threads rm` and `leon gc` work on it."""
    env, paths, tmp = world["env"], world["paths"], world["tmp"]
    export = copy.deepcopy(world["export"])
    export["thread"]["id"] = "abcdef0123"
    export["thread"]["name"] = "imported"
    proc = leon(env, "threads", "import", str(_write(world, export)))
    assert proc.returncode == 0 and proc.stdout.strip() == "imported thread abcdef0123"
    victim = tree(world["victim"])
    ws = tmp / "ws"
    ws.mkdir()
    proc = leon(env, "run", "-m", "demo", "--yes", "-t", "imported", "run `pwd`", cwd=ws)
    assert proc.returncode == 0, proc.stderr
    sandbox = paths.sandboxes / "abcdef0123"
    assert str(sandbox) in proc.stdout  # the command's working directory
    assert sandbox.is_dir() and (sandbox.stat().st_mode & 0o777) == 0o700
    proc = leon(env, "threads", "rm", "abcdef0123", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert not sandbox.exists()
    proc = leon(env, "gc")
    assert proc.returncode == 0, proc.stderr
    proc = leon(env, "run", "-m", "demo", "hello", cwd=ws)
    assert proc.returncode == 0 and "housekeeping stopped" not in proc.stderr, proc.stderr
    assert tree(world["victim"]) == victim


# -- archives -------------------------------------------------------------------------------

@pytest.fixture
async def archived(stores, leon_paths, tmp_path):
    """A real archive (written by `leon threads rm`) of a thread with a spill file, a
    sandbox, file history and a chat; the thread is gone afterwards."""
    tid = await make_thread(stores, leon_paths, kind="scoped", status="active", full=True)
    content = b"version 1\n"
    digest = await stores.leon.put_blob("file", content)
    ckpt = (await stores.leon.head(tid)).id
    await stores.leon.db.execute(
        "INSERT INTO file_ops (thread_id, checkpoint_id, path, before_hash, after_hash, kind,"
        " tool, created_at) VALUES (?,?,?,?,?,?,?,?)",
        (tid, ckpt, str(tmp_path / "ws" / "a.txt"), None, digest, "tool", "write_file", 1.0))
    await stores.close()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("do not touch\n")
    env = leon_env(leon_paths.home, leon_paths.cache)
    proc = leon(env, "threads", "rm", tid, "--yes")
    assert proc.returncode == 0, proc.stderr
    [archive] = list(leon_paths.archive.iterdir())
    with gzip.open(archive) as fh:
        data = json.loads(fh.read())
    return {"data": data, "tid": tid, "file": archive, "victim": victim, "env": env,
            "paths": leon_paths, "tmp": tmp_path}


def _gz(world: dict[str, Any], data: Any, name: str = "attack.json.gz") -> Path:
    path = world["tmp"] / name
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    return path


def _spill(a: dict[str, Any]) -> dict[str, Any]:
    return a["spills"][0]


def _legacy_absolute(a: dict[str, Any]) -> None:
    s = _spill(a)
    del s["name"]
    s["path"] = "/tmp/victim/precious.txt"  # older archives named files by their whole path


def _legacy_traversal(a: dict[str, Any]) -> None:
    s = _spill(a)
    del s["name"]
    s["path"] = f"/x/spill/{a['thread']['thread']['id']}/../../../victim/precious.txt"


def _dup_spill(a: dict[str, Any]) -> None:
    a["spills"].append(dict(_spill(a), id=_spill(a)["id"] + 1))


def _archive_blob_mismatch(a: dict[str, Any]) -> None:
    digest = next(iter(a["blobs"]))
    a["blobs"][digest]["data"] = base64.b64encode(b"evil").decode()


def _archive_blob_not_base64(a: dict[str, Any]) -> None:
    digest = next(iter(a["blobs"]))
    a["blobs"][digest]["data"] = "%%% not base64 %%%"


def _archive_thread(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(a: dict[str, Any]) -> None:
        a["thread"]["thread"][field] = value
    return apply


def _spill_set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(a: dict[str, Any]) -> None:
        _spill(a)[field] = value
    return apply


def _op_set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(a: dict[str, Any]) -> None:
        a["file_ops"][0][field] = value
    return apply


ARCHIVE_ATTACKS: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "absolute spill path": (_legacy_absolute, "spills[0].path", "not a spill file"),
    "spill path climbing out": (_legacy_traversal, "spills[0].path", "not a spill file"),
    "spill name with ..": (_spill_set("name", "../../victim/precious.txt"), "spills[0].name",
                           "spill file name"),
    "spill name with a slash": (_spill_set("name", "a/b.txt"), "spills[0].name",
                                "spill file name"),
    "absolute spill name": (_spill_set("name", "/tmp/victim/x.txt"), "spills[0].name",
                            "spill file name"),
    "spill name with NUL": (_spill_set("name", "a\x00.txt"), "spills[0].name",
                            "spill file name"),
    "hidden spill name": (_spill_set("name", ".bashrc.txt"), "spills[0].name",
                          "spill file name"),
    "duplicated spill name": (_dup_spill, "spills[1].name", "twice"),
    "spill of a missing message": (_spill_set("message_id", 9999), "spills[0].message_id",
                                   "not a message"),
    "traversal thread id": (_archive_thread("id", "../../victim"), "thread.thread.id",
                            "thread id"),
    "cycle in the archived thread": (lambda a: a["thread"]["messages"][0].update(
        parent_id=a["thread"]["messages"][-1]["id"]), "thread.messages[0].parent_id", "earlier"),
    "file history path relative": (_op_set("path", "../../victim/precious.txt"),
                                   "file_ops[0].path", "absolute path"),
    "file history of a missing checkpoint": (_op_set("checkpoint_id", 9999),
                                             "file_ops[0].checkpoint_id", "not a checkpoint"),
    "unknown file history kind": (_op_set("kind", "steal"), "file_ops[0].kind", "not one of"),
    "blob hash mismatch": (_archive_blob_mismatch, "blobs[", "sha256"),
    "blob not base64": (_archive_blob_not_base64, "blobs[", "base64"),
    "wrong format": (lambda a: a.update(format="leon-archive/0"), "format", "not a leon archive"),
}


@pytest.mark.parametrize("attack", list(ARCHIVE_ATTACKS))
async def test_hostile_archive_is_refused_with_one_line_and_nothing_written(archived, attack):
    mutate, field, reason = ARCHIVE_ATTACKS[attack]
    data = copy.deepcopy(archived["data"])
    mutate(data)
    line = _refused(archived, "threads", "restore", str(_gz(archived, data)))
    assert f"not restored: {field}" in line, line
    assert reason in line, line


def _bomb(path: Path, size: int) -> None:
    """A gzip file that inflates to ``size`` zero bytes, written in chunks (a few kB on
    disk, no memory spent here)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * 2**20
    with open(path, "wb") as fh:
        for _ in range(size // len(chunk)):
            fh.write(comp.compress(chunk))
        fh.write(comp.compress(b"\0" * (size % len(chunk))))
        fh.write(comp.flush())


async def test_gzip_bomb_stops_at_the_cap(archived):
    path = archived["tmp"] / "bomb.json.gz"
    _bomb(path, MAX_BYTES + 2**20)
    assert path.stat().st_size < 1_000_000
    line = _refused(archived, "threads", "restore", str(path))
    assert "decompresses to more than 128 MiB" in line


@pytest.mark.parametrize("raw,reason", [
    (json.dumps({"format": "leon-archive/1"}).encode(), "not gzip"),
    (gzip.compress(b"{\"format\": \"leon-archive/1\"")[:-8], "not gzip"),
    (gzip.compress(b"\xff\xfe not text"), "not UTF-8"),
    (gzip.compress(b"[1, 2]"), "a leon archive is a JSON object"),
], ids=["plain JSON", "truncated gzip", "invalid UTF-8", "a list"])
async def test_archive_bytes_that_are_not_an_archive_are_refused(archived, raw, reason):
    path = archived["tmp"] / "bad.json.gz"
    path.write_bytes(raw)
    line = _refused(archived, "threads", "restore", str(path))
    assert reason in line, line


async def test_restore_into_a_symlinked_spill_directory_writes_nothing(archived):
    """``$LEON_CACHE/spill`` replaced by a link to the victim: the (valid) archive's
    spill file would land there. Refused; the rows are rolled back with it."""
    spill = archived["paths"].spill
    if spill.exists():
        import shutil

        shutil.rmtree(spill)
    spill.symlink_to(archived["victim"], target_is_directory=True)
    line = _refused(archived, "threads", "restore", str(archived["file"]))
    assert "symlink" in line and str(spill) in line


async def test_archive_round_trip_and_old_archives_with_paths_still_restore(archived):
    env, data = archived["env"], archived["data"]
    victim = tree(archived["victim"])
    spill = _spill(data)
    assert set(spill) >= {"name", "content"} and "path" not in spill  # names, not paths
    # an archive as older leons wrote it: the spill's whole path instead of its name
    old = copy.deepcopy(data)
    name = _spill(old).pop("name")
    _spill(old)["path"] = f"/home/someone/.cache/leon/spill/{archived['tid']}/{name}"
    proc = leon(env, "threads", "restore", str(_gz(archived, old, "old.json.gz")))
    assert proc.returncode == 0, proc.stderr
    restored = archived["paths"].spill_file(archived["tid"], name)
    assert restored.read_text() == spill["content"]
    assert (restored.stat().st_mode & 0o777) == 0o600
    # and leon's own archive once more: the id is taken now, so a new one
    proc = leon(env, "threads", "restore", str(archived["file"]))
    assert proc.returncode == 0, proc.stderr
    again = proc.stdout.split()[2]
    assert again != archived["tid"]
    assert archived["paths"].spill_file(again, name).read_text() == spill["content"]
    assert tree(archived["victim"]) == victim
