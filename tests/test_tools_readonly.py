"""Tests for the read-only file tools and workspace confinement."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leon.agent.tools import (
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolResult,
    read_only_tools,
    resolve_path,
)
from leon.agent.tools.paths import SKIP_DIRS, display_path, is_binary

# --- fixtures


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.txt").write_text("SECRET token\n")
    return d


@pytest.fixture
def ws(tmp_path: Path, outside: Path) -> Path:
    w = tmp_path / "ws"
    (w / "src" / "pkg").mkdir(parents=True)
    (w / "sub").mkdir()
    (w / "README.md").write_text("# Title\nhello world\n")
    (w / "src" / "main.py").write_text("import os\n\ndef main():\n    print('Hello')\n")
    (w / "src" / "pkg" / "util.py").write_text("def helper():\n    return 42\n")
    (w / "b.txt").write_text("bee\n")
    (w / "a").mkdir()
    os.symlink(outside / "secret.txt", w / "link_file")
    os.symlink(outside, w / "link_dir")
    return w


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return ToolContext(workspace=ws, thread_id="t1")


@pytest.fixture
def reg() -> ToolRegistry:
    return ToolRegistry(read_only_tools())


async def call(reg: ToolRegistry, ctx: ToolContext, name: str, **args) -> ToolResult:
    return await reg.call(name, args, ctx)


# --- registry / contract


def test_tools_follow_contract(reg: ToolRegistry) -> None:
    assert reg.names() == ["read_file", "list_dir", "glob", "grep"]
    for tool in read_only_tools():
        assert tool.read_only is True
        assert len(tool.description) > 80
        schema = tool.input_schema
        assert schema["type"] == "object"
        assert set(schema["required"]) <= set(schema["properties"])
        for prop in schema["properties"].values():
            assert prop["description"]


async def test_unknown_tool(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await reg.call("write_file", {"path": "x"}, ctx)
    assert res.is_error and "unknown tool" in res.content and "read_file" in res.content


@pytest.mark.parametrize("name", ["read_file", "glob", "grep"])
async def test_missing_required_argument(reg: ToolRegistry, ctx: ToolContext, name: str) -> None:
    res = await reg.call(name, {}, ctx)
    assert res.is_error and "missing required argument" in res.content


@pytest.mark.parametrize("name", ["read_file", "list_dir", "glob", "grep"])
async def test_non_dict_args(reg: ToolRegistry, ctx: ToolContext, name: str) -> None:
    res = await reg.call(name, ["path"], ctx)
    assert res.is_error and "JSON object" in res.content


async def test_wrong_argument_types(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "read_file", path=3)
    assert res.is_error and "must be a string" in res.content
    res = await call(reg, ctx, "read_file", path="README.md", offset="abc")
    assert res.is_error and "integer" in res.content
    res = await call(reg, ctx, "read_file", path="README.md", offset=0)
    assert res.is_error and ">= 1" in res.content
    res = await call(reg, ctx, "grep", pattern="x", ignore_case="maybe")
    assert res.is_error and "true or false" in res.content
    # numeric strings are tolerated
    res = await call(reg, ctx, "read_file", path="README.md", offset="2")
    assert not res.is_error and res.content.startswith("     2\thello world")


# --- paths helpers


def test_resolve_path_basic(ctx: ToolContext, ws: Path) -> None:
    real = ws.resolve()
    assert resolve_path(ctx, "a/../b.txt") == real / "b.txt"
    assert resolve_path(ctx, str(real / "src" / "main.py")) == real / "src" / "main.py"
    assert resolve_path(ctx, ".") == real
    assert resolve_path(ctx, "new/file.txt", write=True) == real / "new" / "file.txt"


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a\x00b", "NUL"),
        ("../outside.txt", "path '../outside.txt' is outside the workspace"),
        ("sub/../../x", "is outside the workspace"),
        ("/etc/passwd", "path '/etc/passwd' is outside the workspace"),
        ("link_file", "'link_file' is a symlink to"),
        ("link_dir/secret.txt", "'link_dir' is a symlink to"),
    ],
)
def test_resolve_path_refusals(ctx: ToolContext, path: str, needle: str) -> None:
    with pytest.raises(ToolError) as exc:
        resolve_path(ctx, path)
    assert needle in str(exc.value)


def test_resolve_path_messages_name_workspace_and_target(
    ctx: ToolContext, ws: Path, outside: Path
) -> None:
    with pytest.raises(ToolError) as exc:
        resolve_path(ctx, "../x")
    assert str(ws.resolve()) in str(exc.value)
    with pytest.raises(ToolError) as exc:
        resolve_path(ctx, "link_file")
    msg = str(exc.value)
    assert str((outside / "secret.txt").resolve()) in msg and "outside the workspace" in msg


def test_resolve_path_symlink_loop(ctx: ToolContext, ws: Path) -> None:
    os.symlink(ws / "loop2", ws / "loop1")
    os.symlink(ws / "loop1", ws / "loop2")
    # Either refused or resolved inside; never an escape or an unhandled exception.
    try:
        p = resolve_path(ctx, "loop1/x")
    except ToolError:
        return
    assert p.is_relative_to(ws.resolve())


def test_resolve_path_inner_symlink_allowed(ctx: ToolContext, ws: Path) -> None:
    os.symlink(ws / "src", ws / "srclink")
    assert resolve_path(ctx, "srclink/main.py") == ws.resolve() / "src" / "main.py"


def test_extra_read_roots(ws: Path, outside: Path) -> None:
    ctx = ToolContext(workspace=ws, extra_read_roots=(outside,))
    secret = str(outside / "secret.txt")
    assert resolve_path(ctx, secret) == (outside / "secret.txt").resolve()
    # the symlink now points into an allowed (read) root
    assert resolve_path(ctx, "link_file") == (outside / "secret.txt").resolve()
    with pytest.raises(ToolError, match="read-only location"):
        resolve_path(ctx, secret, write=True)
    assert display_path(ctx, (outside / "secret.txt").resolve()) == str(
        (outside / "secret.txt").resolve()
    )


def test_display_path(ctx: ToolContext, ws: Path) -> None:
    assert display_path(ctx, ws.resolve() / "src" / "main.py") == os.path.join("src", "main.py")
    assert display_path(ctx, ws.resolve()) == "."
    assert display_path(ctx, Path("/etc/passwd")) == "/etc/passwd"


def test_is_binary() -> None:
    assert not is_binary(b"")
    assert not is_binary(b"plain text\n")
    assert not is_binary("héllo wörld ✓\n".encode())
    assert not is_binary("caf\xe9 au lait, a long enough line of text".encode("latin-1"))
    assert is_binary(b"abc\x00def")
    assert is_binary(bytes(range(128, 256)) * 4)
    # a multi-byte character cut at the 8 KiB sniff edge is not evidence of binary
    assert not is_binary(b"a" * 8191 + "é".encode())


def test_skip_dirs() -> None:
    for name in (".git", "node_modules", "__pycache__", ".venv", "venv", "dist", "build"):
        assert name in SKIP_DIRS


# --- confinement attacks, for every tool

ATTACKS = [
    "../outside/secret.txt",
    "/etc/passwd",
    "OUTSIDE_ABS",
    "link_file",
    "link_dir",
    "link_dir/secret.txt",
    "sub/../../outside/secret.txt",
]


def _tool_args(name: str, path: str) -> dict:
    return {
        "read_file": {"path": path},
        "list_dir": {"path": path},
        "glob": {"pattern": "*", "path": path},
        "grep": {"pattern": "SECRET", "path": path},
    }[name]


@pytest.mark.parametrize("name", ["read_file", "list_dir", "glob", "grep"])
@pytest.mark.parametrize("attack", ATTACKS)
async def test_confinement(
    reg: ToolRegistry, ctx: ToolContext, outside: Path, name: str, attack: str
) -> None:
    path = str(outside / "secret.txt") if attack == "OUTSIDE_ABS" else attack
    res = await reg.call(name, _tool_args(name, path), ctx)
    assert res.is_error, res.content
    assert "outside the workspace" in res.content
    assert "SECRET token" not in res.content


async def test_walkers_do_not_follow_links_out(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "grep", pattern="SECRET")
    assert not res.is_error and "no matches" in res.content
    res = await call(reg, ctx, "glob", pattern="**/*")
    assert "secret" not in res.content and "link_" not in res.content
    assert "src/pkg/util.py" in res.content


async def test_walkers_follow_inner_file_symlink(
    reg: ToolRegistry, ctx: ToolContext, ws: Path
) -> None:
    os.symlink(ws / "README.md", ws / "readme_link.md")
    res = await call(reg, ctx, "grep", pattern="hello world")
    assert "readme_link.md:2:hello world" in res.content
    assert "README.md:2:hello world" in res.content


async def test_allowed_relative_and_absolute(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    res = await call(reg, ctx, "read_file", path="a/../b.txt")
    assert not res.is_error and res.content == "     1\tbee"
    res = await call(reg, ctx, "read_file", path=str(ws / "src" / "main.py"))
    assert not res.is_error and "import os" in res.content
    res = await call(reg, ctx, "list_dir", path=str(ws / "src"))
    assert not res.is_error and "main.py" in res.content


async def test_read_and_grep_in_extra_read_root(
    reg: ToolRegistry, ws: Path, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "out-1.txt").write_text("line one\nneedle here\nline three\n")
    ctx = ToolContext(workspace=ws, extra_read_roots=(spill,))
    res = await call(reg, ctx, "read_file", path=str(spill / "out-1.txt"))
    assert not res.is_error and "needle here" in res.content
    res = await call(reg, ctx, "grep", pattern="needle", path=str(spill))
    assert not res.is_error
    assert f"{(spill / 'out-1.txt').resolve()}:2:needle here" in res.content
    res = await call(reg, ctx, "grep", pattern="needle", path=str(spill / "out-1.txt"))
    assert ":2:needle here" in res.content
    res = await call(reg, ctx, "glob", pattern="*.txt", path=str(spill))
    assert str((spill / "out-1.txt").resolve()) in res.content
    # without the extra root, the same path is refused
    res = await call(reg, ToolContext(workspace=ws), "read_file", path=str(spill / "out-1.txt"))
    assert res.is_error and "outside the workspace" in res.content


# --- read_file


async def test_read_file_numbered(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "read_file", path="src/main.py")
    assert not res.is_error
    assert res.content.splitlines() == [
        "     1\timport os",
        "     2\t",
        "     3\tdef main():",
        "     4\t    print('Hello')",
    ]
    assert res.meta == {"path": os.path.join("src", "main.py"), "bytes": 42, "lines": 4}


async def test_read_file_offset_limit_and_more_hint(
    reg: ToolRegistry, ctx: ToolContext, ws: Path
) -> None:
    (ws / "big.txt").write_text("".join(f"line {i}\n" for i in range(1, 481)))
    res = await call(reg, ctx, "read_file", path="big.txt", limit=120)
    lines = res.content.splitlines()
    assert lines[0] == "     1\tline 1"
    assert lines[119] == "   120\tline 120"
    assert lines[-1] == "[lines 1-120 of 480; use offset=121 to read more]"
    assert res.meta["lines"] == 480

    res = await call(reg, ctx, "read_file", path="big.txt", offset=121, limit=10)
    assert res.content.splitlines()[0] == "   121\tline 121"
    assert res.content.splitlines()[-1] == "[lines 121-130 of 480; use offset=131 to read more]"

    res = await call(reg, ctx, "read_file", path="big.txt", offset=471)
    assert res.content.splitlines()[-1] == "   480\tline 480"
    assert "more" not in res.content

    res = await call(reg, ctx, "read_file", path="big.txt", offset=481)
    assert res.is_error and "past the end" in res.content and "480" in res.content


async def test_read_file_default_limit(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / "huge.txt").write_text("x\n" * 2500)
    res = await call(reg, ctx, "read_file", path="huge.txt")
    assert res.content.splitlines()[-1] == ("[lines 1-2000 of 2500; use offset=2001 to read more]")


async def test_read_file_long_line_cut(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / "min.js").write_text("a" * 5000 + "\nshort\n")
    res = await call(reg, ctx, "read_file", path="min.js")
    first, second = res.content.splitlines()
    assert first.startswith("     1\t" + "a" * 2000)
    assert "a" * 2001 not in first
    assert "[line cut: 5000 chars]" in first
    assert second == "     2\tshort"


async def test_read_file_crlf_and_invalid_utf8(
    reg: ToolRegistry, ctx: ToolContext, ws: Path
) -> None:
    (ws / "crlf.txt").write_bytes(b"one\r\ntwo\r\ncaf\xe9 ok\r\n")
    res = await call(reg, ctx, "read_file", path="crlf.txt")
    assert not res.is_error
    assert res.content.splitlines() == ["     1\tone", "     2\ttwo", "     3\tcaf\ufffd ok"]


async def test_read_file_empty(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / "empty.txt").write_text("")
    res = await call(reg, ctx, "read_file", path="empty.txt")
    assert not res.is_error and "empty" in res.content and res.meta["lines"] == 0


async def test_read_file_binary_refused(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100))
    res = await call(reg, ctx, "read_file", path="img.png")
    assert res.is_error
    assert res.content == "img.png is a binary file (116 bytes); not shown"


async def test_read_file_directory_refused(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "read_file", path="src")
    assert res.is_error and "directory" in res.content and "list_dir" in res.content


async def test_read_file_typo_suggestion(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "read_file", path="src/mian.py")
    assert res.is_error
    assert "no such file" in res.content
    assert "did you mean" in res.content and os.path.join("src", "main.py") in res.content


async def test_read_file_missing_parent(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "read_file", path="nope/x.py")
    assert res.is_error and "no such file" in res.content and "does not exist" in res.content


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
async def test_read_file_fifo_refused(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    os.mkfifo(ws / "pipe")
    res = await call(reg, ctx, "read_file", path="pipe")
    assert res.is_error and "not a regular file" in res.content
    # walkers skip it instead of blocking on it
    res = await call(reg, ctx, "grep", pattern="x")
    assert not res.is_error


# --- list_dir


async def test_list_dir(reg: ToolRegistry, ctx: ToolContext, ws: Path, outside: Path) -> None:
    (ws / ".hidden").write_text("h")
    (ws / "kb.bin").write_bytes(b"x" * 2048)
    res = await call(reg, ctx, "list_dir")
    lines = res.content.splitlines()
    assert not res.is_error
    # directories first (the dir symlink sorts with them), then files; names sorted
    assert lines[:4] == ["a/", f"link_dir/ -> {outside}", "src/", "sub/"]
    assert ".hidden  (1 B)" in lines
    assert "kb.bin  (2.0 KB)" in lines
    assert "b.txt  (4 B)" in lines
    assert f"link_file -> {outside / 'secret.txt'}" in lines
    assert res.meta["entries"] == len(lines)


async def test_list_dir_errors(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "list_dir", path="README.md")
    assert res.is_error and "read_file" in res.content
    res = await call(reg, ctx, "list_dir", path="scr")
    assert res.is_error and "no such directory" in res.content and "'src'" in res.content


async def test_list_dir_empty_and_cap(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    res = await call(reg, ctx, "list_dir", path="a")
    assert not res.is_error and "empty" in res.content
    many = ws / "many"
    many.mkdir()
    for i in range(520):
        (many / f"f{i:04d}.txt").write_text("")
    res = await call(reg, ctx, "list_dir", path="many")
    lines = res.content.splitlines()
    assert len(lines) == 501
    assert lines[0].startswith("f0000.txt")
    assert lines[-1] == "[... and 20 more entries not shown]"


# --- glob


def _set_mtime(p: Path, t: float) -> None:
    os.utime(p, (t, t))


async def test_glob_recursive_ordered_by_mtime(
    reg: ToolRegistry, ctx: ToolContext, ws: Path
) -> None:
    (ws / "top.py").write_text("")
    _set_mtime(ws / "src" / "main.py", 1_000_000)
    _set_mtime(ws / "src" / "pkg" / "util.py", 3_000_000)
    _set_mtime(ws / "top.py", 2_000_000)
    res = await call(reg, ctx, "glob", pattern="**/*.py")
    assert res.content.splitlines() == [
        os.path.join("src", "pkg", "util.py"),
        "top.py",
        os.path.join("src", "main.py"),
    ]
    assert res.meta["matches"] == 3


async def test_glob_patterns(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / "web").mkdir()
    for n in ("a.ts", "b.tsx", "c.js"):
        (ws / "web" / n).write_text("")
    res = await call(reg, ctx, "glob", pattern="*.py")
    assert "no files match" in res.content  # '*' alone is top level only
    res = await call(reg, ctx, "glob", pattern="*.py", path="src")
    assert res.content == os.path.join("src", "main.py")
    res = await call(reg, ctx, "glob", pattern="**/*.{ts,tsx}")
    assert sorted(res.content.splitlines()) == ["web/a.ts", "web/b.tsx"]
    res = await call(reg, ctx, "glob", pattern="src/**")
    assert sorted(res.content.splitlines()) == ["src/main.py", "src/pkg/util.py"]
    res = await call(reg, ctx, "glob", pattern="./web/[ab].*")
    assert sorted(res.content.splitlines()) == ["web/a.ts", "web/b.tsx"]


async def test_glob_skips_skip_dirs(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    for d in ("node_modules/x", ".git", "__pycache__", ".venv/lib"):
        (ws / d).mkdir(parents=True)
        (ws / d / "junk.py").write_text("")
    res = await call(reg, ctx, "glob", pattern="**/*.py")
    assert "junk" not in res.content
    # an explicit path into a skip dir still works
    res = await call(reg, ctx, "glob", pattern="*.py", path="node_modules/x")
    assert "junk.py" in res.content


async def test_glob_errors(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "glob", pattern="/etc/*")
    assert res.is_error and "relative" in res.content
    res = await call(reg, ctx, "glob", pattern="../outside/*")
    assert res.is_error and ".." in res.content
    res = await call(reg, ctx, "glob", pattern="*", path="README.md")
    assert res.is_error and "directory" in res.content
    res = await call(reg, ctx, "glob", pattern="*", path="missing")
    assert res.is_error and "no such" in res.content


async def test_glob_cap(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    for i in range(25):
        d = ws / "gen" / f"d{i:02d}"
        d.mkdir(parents=True)
        for j in range(10):
            (d / f"f{j}.dat").write_text("")
    res = await call(reg, ctx, "glob", pattern="gen/**/*.dat")
    lines = res.content.splitlines()
    assert len(lines) == 201
    assert lines[-1].startswith("[50 more files not shown")
    assert res.meta["matches"] == 250


# --- grep


async def test_grep_basic(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "grep", pattern=r"def \w+")
    assert not res.is_error
    assert res.content.splitlines() == [
        f"{os.path.join('src', 'main.py')}:3:def main():",
        f"{os.path.join('src', 'pkg', 'util.py')}:1:def helper():",
    ]
    assert res.meta["matches"] == 2 and res.meta["files"] == 2


async def test_grep_no_match_and_ignore_case(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "grep", pattern="HELLO")
    assert not res.is_error and "no matches" in res.content
    res = await call(reg, ctx, "grep", pattern="HELLO", ignore_case=True)
    assert "README.md:2:hello world" in res.content
    assert "src/main.py:4:    print('Hello')" in res.content


async def test_grep_invalid_regex(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "grep", pattern="foo(")
    assert res.is_error
    assert "invalid regular expression" in res.content
    assert "missing ), unterminated subpattern" in res.content


async def test_grep_context(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / "ctx.txt").write_text("\n".join(f"l{i}" for i in range(1, 21)) + "\n")
    res = await call(reg, ctx, "grep", pattern=r"^l(5|7|15)$", path="ctx.txt", context=1)
    assert res.content.splitlines() == [
        "ctx.txt-4-l4",
        "ctx.txt:5:l5",
        "ctx.txt-6-l6",
        "ctx.txt:7:l7",
        "ctx.txt-8-l8",
        "--",
        "ctx.txt-14-l14",
        "ctx.txt:15:l15",
        "ctx.txt-16-l16",
    ]


async def test_grep_glob_filter(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "grep", pattern="e", glob="*.md")
    assert res.content.splitlines() == ["README.md:1:# Title", "README.md:2:hello world"]
    res = await call(reg, ctx, "grep", pattern="def", glob="*.py")
    assert res.meta["files"] == 2
    res = await call(reg, ctx, "grep", pattern="def", glob="src/pkg/*.py")
    assert res.content == "src/pkg/util.py:1:def helper():"
    res = await call(reg, ctx, "grep", pattern="def", glob="*.{md,txt}")
    assert "no matches" in res.content


async def test_grep_single_file_and_anchors(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / "crlf.txt").write_bytes(b"first\r\nend here\r\nlast")
    res = await call(reg, ctx, "grep", pattern="here$", path="crlf.txt")
    assert res.content == "crlf.txt:2:end here"
    res = await call(reg, ctx, "grep", pattern=r"^last", path="crlf.txt")
    assert res.content == "crlf.txt:3:last"
    res = await call(reg, ctx, "grep", pattern=r"\Aend", path="crlf.txt")
    assert res.content == "crlf.txt:2:end here"  # \A anchors each line, like ^


async def test_grep_skips_binary_and_large(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / "blob.bin").write_bytes(b"needle\x00\x01\x02")
    (ws / "large.log").write_bytes(b"needle\n" + b"x" * (5 * 1024 * 1024 + 10))
    (ws / "small.txt").write_text("needle\n")
    res = await call(reg, ctx, "grep", pattern="needle")
    lines = res.content.splitlines()
    assert lines[0] == "small.txt:1:needle"
    assert "blob.bin" not in res.content
    assert lines[-1] == "[skipped 1 file(s) larger than 5 MB: large.log]"
    res = await call(reg, ctx, "grep", pattern="needle", path="blob.bin")
    assert res.is_error and "binary" in res.content


async def test_grep_skips_skip_dirs(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("needle\n")
    (ws / "node_modules").mkdir()
    (ws / "node_modules" / "m.js").write_text("needle\n")
    res = await call(reg, ctx, "grep", pattern="needle")
    assert "no matches" in res.content
    res = await call(reg, ctx, "grep", pattern="needle", path="node_modules")
    assert res.content == "node_modules/m.js:1:needle"


async def test_grep_cap(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    gen = ws / "gen"
    for i in range(30):
        d = gen / f"d{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:02d}.txt").write_text("".join(f"hit {j}\nmiss\n" for j in range(10)))
    res = await call(reg, ctx, "grep", pattern="hit", path="gen")
    lines = res.content.splitlines()
    assert len(lines) == 201
    assert lines[-1].startswith("[100 more matches not shown")
    assert res.meta == {
        "path": "gen",
        "matches": 300,
        "shown": 200,
        "files": 30,
        "skipped_large": 0,
    }
    res = await call(reg, ctx, "grep", pattern="hit", path="gen", max_results=5)
    assert len(res.content.splitlines()) == 6
    assert "295 more matches not shown" in res.content


async def test_grep_long_lines_cut(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    (ws / "min.js").write_text("needle" + "x" * 3000 + "\n")
    res = await call(reg, ctx, "grep", pattern="needle", path="min.js")
    assert len(res.content) < 700 and "[line cut: 3006 chars]" in res.content


async def test_grep_missing_path(reg: ToolRegistry, ctx: ToolContext) -> None:
    res = await call(reg, ctx, "grep", pattern="x", path="READM.md")
    assert res.is_error and "did you mean" in res.content and "README.md" in res.content


async def test_list_dir_symlink_loop(reg: ToolRegistry, ctx: ToolContext, ws: Path) -> None:
    os.symlink(ws / "loop2", ws / "loop1")
    os.symlink(ws / "loop1", ws / "loop2")
    res = await call(reg, ctx, "list_dir")
    assert f"loop1 -> {ws / 'loop2'}" in res.content.splitlines()
    res = await call(reg, ctx, "grep", pattern="x")  # walkers skip the loop quietly
    assert not res.is_error
