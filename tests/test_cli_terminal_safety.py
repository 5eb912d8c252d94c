"""Attacks on the terminal through the real `leon`: hostile titles, messages and tool output
must come out of every command inert, bad bytes in a prompt are stored, not refused.

Every command here writes to a pipe, which is what `leon ... | less -R` does too: leon
cleans what it prints whether or not stdout is a terminal. `-o FILE` and `--json` keep
the exact data (JSON escapes control characters)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakeapi import text, tool_use

# What must never reach the terminal: C0 controls but newline and tab, DEL and C1.
FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Everything a terminal obeys, 7-bit and 8-bit forms: OSC title (BEL and ST), clear,
# full reset, DCS, C1 CSI and OSC, cursor report request, alt screen, a bare CR.
HOSTILE = ("\x1b]0;pwned\x07\x1b]2;pwned2\x1b\\\x1b[2J\x1bc\x1bP1$qm\x1b\\"
           "\u009b6n\u009d0;c1\u009c\x1b[?1049h over\rwrite\x08\x07")
PROMPT = f"{HOSTILE} title line\nsecond line {HOSTILE}"


def run(env: dict[str, str], *args: str | bytes, input: bytes | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "leon", *args], env=env, input=input,
                          capture_output=True, timeout=90, cwd=cwd)


def inert(out: subprocess.CompletedProcess[bytes], what: str = "") -> str:
    """stdout and stderr are UTF-8 with nothing a terminal would obey; returns stdout."""
    for name, data in (("stdout", out.stdout), ("stderr", out.stderr)):
        decoded = data.decode("utf-8")  # strict: always valid UTF-8
        bad = FORBIDDEN.search(decoded)
        assert bad is None, f"{what} {name} has {bad.group()!r}: {decoded[:400]!r}"
    assert b"Traceback" not in out.stderr and b"internal error" not in out.stderr
    return out.stdout.decode("utf-8")


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        digest.update(str(p.relative_to(root)).encode())
        if p.is_file():
            digest.update(p.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def env(leon_paths, tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    e.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache))
    return e


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.md").write_text("plain notes\n")
    return ws


@pytest.fixture
def api_env(env, fake_api):
    return {**env, "ANTHROPIC_API_KEY": fake_api.api_key, "ANTHROPIC_BASE_URL": fake_api.base_url}


def only_thread(env: dict[str, str]) -> dict[str, object]:
    rows = [json.loads(line) for line in run(env, "threads", "ls", "--json").stdout.splitlines()]
    assert len(rows) == 1, rows
    return rows[0]


def exported(env: dict[str, str], thread: str, tmp_path: Path) -> dict[str, object]:
    target = tmp_path / f"{thread}.json"
    assert run(env, "threads", "export", thread, "-f", "json", "-o", str(target)).returncode == 0
    return json.loads(target.read_text(encoding="utf-8"))


def every_view(env: dict[str, str], thread: str, cwd: Path) -> dict[str, str]:
    """Each command that shows stored text, run; each must be inert. Returns stdouts."""
    commands = {
        "ls": ("threads", "ls"), "ls --json": ("threads", "ls", "--json"),
        "show": ("threads", "show", thread),
        "export markdown": ("threads", "export", thread),
        "export json": ("threads", "export", thread, "-f", "json"),
        "inbox": ("inbox",), "checkpoints": ("checkpoints", thread),
        "sandbox ls": ("sandbox", "ls", "--all"), "sandbox show": ("sandbox", "show", thread),
        "stats": ("stats",), "stats --json": ("stats", "--json"),
        "gc --dry-run": ("gc", "--dry-run"), "gc --dry-run --json": ("gc", "--dry-run", "--json"),
        "doctor": ("doctor",), "restore --list": ("threads", "restore", "--list"),
    }
    shown = {}
    for name, args in commands.items():
        out = run(env, *args, cwd=cwd)
        assert out.returncode in (0, 1), (name, out.stderr)
        shown[name] = inert(out, name)
    return shown


def test_hostile_prompt_becomes_an_inert_title_everywhere(env, workspace, tmp_path):
    out = run(env, "run", "--model", "demo", "--workspace", str(workspace), PROMPT)
    assert out.returncode == 0, out.stderr
    reply = inert(out, "run")
    assert "title line" in reply                     # the demo model quotes the prompt back
    thread = str(only_thread(env)["id"])
    title = str(only_thread(env)["title"])      # the prompt's start, stored as typed
    assert title.startswith("\x1b]0;pwned\x07\x1b]2;pwned2\x1b\\\x1b[2J\x1bc")
    views = every_view(env, thread, workspace)
    assert "over" in views["ls"]
    assert "second line" in views["show"] and "second line" in views["export markdown"]
    assert "title line" in views["inbox"] and "title line" in views["checkpoints"]
    # JSON on stdout: the exact data, escaped
    [row] = [json.loads(line) for line in views["ls --json"].splitlines()]
    assert row["title"] == title
    data = json.loads(views["export json"])
    texts = [b["text"] for m in data["messages"] for b in m["content"] if b["type"] == "text"]
    assert PROMPT in texts
    # -o FILE: the exact content, nothing cleaned
    md = tmp_path / "thread.md"
    assert run(env, "threads", "export", thread, "-o", str(md)).returncode == 0
    raw = md.read_bytes().decode("utf-8")
    assert PROMPT in raw and "\x1b]0;pwned\x07" in raw and "\u009b6n" in raw


def test_run_json_keeps_the_hostile_prompt_exactly_and_escaped(env, workspace):
    out = run(env, "run", "--json", "--model", "demo", "--workspace", str(workspace), PROMPT)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in inert(out, "run --json").splitlines()]
    stored = [e for e in lines if e["kind"] == "user_message"]
    assert stored and stored[0]["text"] == PROMPT
    assert b"\\u001b" in out.stdout and b"\\u009b" in out.stdout


def test_rename_with_escapes_and_bad_bytes(env, workspace):
    assert run(env, "run", "--model", "demo", "hello").returncode == 0
    thread = str(only_thread(env)["id"])
    out = run(env, "threads", "rename", thread, b"\xff\x1b]0;pwn\x07 renamed\nforged row")
    assert out.returncode == 0
    inert(out, "rename")
    assert b"1 byte that is not UTF-8" in out.stderr
    title = only_thread(env)["title"]
    assert title == "\ufffd\x1b]0;pwn\x07 renamed\nforged row"   # stored, not refused
    listing = inert(run(env, "threads", "ls"), "ls")
    assert len(listing.splitlines()) == 1 and "renamed forged row" in listing  # one row
    every_view(env, thread, workspace)


def test_tool_output_with_escapes_is_stored_exactly_and_shown_inert(api_env, fake_api,
                                                                      workspace, tmp_path):
    before = tree_hash(workspace)
    # The command itself carries a real ESC (the model chose it), and prints more: OSC
    # title, clear, reset, an 8-bit CSI (UTF-8 C2 9B) and a byte that is not UTF-8.
    command = ("printf '\\033]0;pwned\\007\\033[2J\\033c\\302\\233""31mred \\377 end\\n'"
               " # \x1b]0;in-the-command\x07")
    fake_api.script(tool_use("bash", {"command": command}),
                    text("done \x1b[2J\u009d0;x\u009c"))
    out = run(api_env, "run", "--yes", "-m", "claude-sonnet-4-6", "--workspace",
              str(workspace), "print something", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert "done" in inert(out, "run")
    thread = str(only_thread(api_env)["id"])
    views = every_view(api_env, thread, workspace)
    assert "red" in views["show"] and "end" in views["show"]
    assert "printf" in views["sandbox show"]
    data = exported(api_env, thread, tmp_path)
    results = [b for m in data["messages"] for b in m["content"] if b["type"] == "tool_result"]
    output = "".join(str(b["content"]) for b in results)
    # stored as the tool returned it (the bash tool drops 7-bit CSI and OSC for the
    # model itself; the reset and the 8-bit CSI reach the database)
    assert "\x1bc" in output and "\u009b31m" in output
    assert "\ufffd" in output                                         # the \xff byte
    assert tree_hash(workspace) == before


def test_invalid_utf8_prompt_argument_is_stored_with_a_note(env, workspace, tmp_path):
    out = run(env, "run", "--model", "demo", "--workspace", str(workspace), b"hello \xff world")
    assert out.returncode == 0, out.stderr
    inert(out, "run")
    assert b"leon: the prompt had 1 byte that is not UTF-8; replaced with \xef\xbf\xbd" \
        in out.stderr
    thread = str(only_thread(env)["id"])
    data = exported(env, thread, tmp_path)
    first = data["messages"][0]["content"][0]["text"]
    assert first == "hello \ufffd world"


def test_invalid_utf8_prompt_on_stdin_is_stored_with_a_note(env, workspace, tmp_path):
    out = run(env, "run", "--model", "demo", "--workspace", str(workspace), "-",
              input=b"from stdin \xff\xfe and \xc3\xa9\n")
    assert out.returncode == 0, out.stderr
    inert(out, "run -")
    assert b"the prompt on stdin had 2 bytes that are not UTF-8" in out.stderr
    data = exported(env, str(only_thread(env)["id"]), tmp_path)
    assert data["messages"][0]["content"][0]["text"].startswith(
        "from stdin \ufffd\ufffd and é")


def test_invalid_utf8_thread_name_and_config_value(env, workspace):
    out = run(env, "run", "--model", "demo", "--thread", b"proj\xff", "hi")
    assert out.returncode == 0, out.stderr
    assert b"the thread name had 1 byte" in out.stderr
    assert only_thread(env)["name"] == "proj\ufffd"
    again = run(env, "run", "--model", "demo", "--thread", b"proj\xff", "again")
    assert again.returncode == 0 and only_thread(env)["messages"] == 4  # the same thread
    shown = run(env, "threads", "show", b"proj\xff")
    assert shown.returncode == 0 and "again" in inert(shown)
    cfg = run(env, "config", "set", "model", b"claude-\xff\x1b]0;pwn\x07")
    assert cfg.returncode in (0, 2)
    inert(cfg, "config set")
    inert(run(env, "config", "show"), "config show")


def test_unknown_names_in_errors_are_inert(env):
    out = run(env, "threads", "show", "\x1b]0;pwn\x07\x1bc")
    assert out.returncode == 1 and b"no thread" in out.stderr
    inert(out, "show")
    out = run(env, "threads", "ls", "\x1b[2J\x1bc")   # argparse's own error message
    assert out.returncode == 2
    inert(out, "usage")


def test_tools_meeting_bytes_that_are_not_utf8_store_replacements(api_env, fake_api, tmp_path):
    """A file whose content and a file whose name are not UTF-8: every tool's result is
    stored (with U+FFFD), the turn ends normally, and the edited file keeps its bytes."""
    ws = tmp_path / "bad-bytes"
    (ws / "d").mkdir(parents=True)
    (ws / "a.txt").write_bytes(b"line1 \xff\nold\nline3\n")
    bad_name = os.path.join(bytes(ws / "d"), b"bad\xffname.txt")
    with open(bad_name, "wb") as fh:
        fh.write(b"x\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("untouched\n")
    before = tree_hash(victim)
    fake_api.script(tool_use("read_file", {"path": "a.txt"}),
                    tool_use("edit_file", {"path": "a.txt", "old_string": "old",
                                           "new_string": "new"}),
                    tool_use("list_dir", {"path": "d"}),
                    tool_use("glob", {"pattern": "**/*.txt"}),
                    tool_use("grep", {"pattern": "x", "path": "d"}),
                    tool_use("read_file", {"path": "d/bad\ufffdname.txt"}),  # as seen
                    tool_use("bash", {"command": "printf 'bad \\377 byte'; ls d"}),
                    text("done"))
    out = run(api_env, "run", "--yes", "-m", "claude-sonnet-4-6", "--workspace", str(ws),
              "look around", cwd=ws)
    assert out.returncode == 0, out.stderr
    inert(out, "run")
    assert (ws / "a.txt").read_bytes() == b"line1 \xff\nnew\nline3\n"  # the edit, bytes kept
    data = exported(api_env, str(only_thread(api_env)["id"]), tmp_path)
    results = [b for m in data["messages"] for b in m["content"] if b["type"] == "tool_result"]
    assert len(results) == 7
    joined = "\n".join(str(b["content"]) for b in results)
    assert "line1 \ufffd" in joined and "bad\ufffdname.txt" in joined
    assert "bad \ufffd byte" in joined
    assert tree_hash(victim) == before


def test_workspace_path_that_is_not_utf8(env, tmp_path):
    """The system prompt names the workspace: its bad byte is U+FFFD there, and the turn
    (a command run in it) goes on."""
    ws = os.path.join(bytes(tmp_path), b"ws\xff")
    os.mkdir(ws)
    with open(os.path.join(ws, b"f.txt"), "wb") as fh:
        fh.write(b"hello\n")
    out = run(env, "run", "--model", "demo", "--yes", "--workspace", ws,
              "run: ls \"$LEON_WORKSPACE\"")
    assert out.returncode == 0, out.stderr
    assert "f.txt" in inert(out, "run")
