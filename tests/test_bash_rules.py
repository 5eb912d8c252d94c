"""`bash:GLOB` permission rules match a *parsed* command: only one simple command of
literal words can match a glob. Every bypass attempt below must ask instead; the words
leon believes a command has are checked against what a real bash passes to a program."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fakeapi import text
from hypothesis import given, settings
from hypothesis import strategies as st
from toolrig import result_text, results_of, tool_calls

from leon.agent.permissions import PermissionRequest
from leon.agent.policy import NonInteractiveAsker, always_rule, is_compound, rule_matches
from leon.agent.simple_command import (
    MAX_SIMPLE_CHARS,
    MAX_SIMPLE_WORDS,
    canonical,
    escape_glob,
    literal_of,
    simple_words,
)

GIT = "bash:git status*"
LS = "bash:ls*"
PYTEST = "bash:pytest*"

# (rule, command): each is a real way to make a command do more than its literal words.
BYPASSES = [
    (GIT, "git status ${x:=$'\\x24(touch pwned)'} ${x@P}"),   # the reported one
    (GIT, "git status ${x@P}"),
    (GIT, "git status \"${x@P}\""),
    (GIT, "git status $x"),
    (GIT, "git status ${IFS}"),
    (GIT, "git status; rm -rf ~"),
    (GIT, "git  status;rm x"),
    (GIT, "git status && x"),
    (GIT, "git status || x"),
    (GIT, "git status | sh"),
    (GIT, "git status |& cat"),
    (GIT, "git status & rm x"),
    (GIT, "git status &"),
    (GIT, "git status $(id)"),
    (GIT, "git status \"$(id)\""),
    (GIT, "git status `id`"),
    (GIT, "git status \"`id`\""),
    (GIT, "git status > ~/.bashrc"),
    (GIT, "git status >> x"),
    (GIT, "git status >| x"),
    (GIT, "git status &> x"),
    (GIT, "git status 2>&1 >x"),
    (GIT, "git status >&2"),
    (GIT, "git status 3<>x"),
    (GIT, "git status < /etc/passwd"),
    (GIT, "git status <<< x"),
    (GIT, "git status <<EOF\nx\nEOF"),
    (GIT, "X=1 git status"),
    (GIT, "PATH=. git status"),
    (GIT, "BASH_ENV=/tmp/x git status"),
    (GIT, "git status\nrm x"),
    (GIT, "git status \\\n; rm"),
    (GIT, "git status \\; rm"),
    (GIT, "git status #\nrm"),
    (GIT, "git status # hidden"),
    (GIT, "git status {a,b}"),
    (GIT, "git status {1..3}"),
    (GIT, "git status ~root"),
    (GIT, "git status ~"),
    (GIT, "git status a=~/x"),
    (GIT, "git status x:~"),
    (GIT, "git status *"),
    (GIT, "git status ?"),
    (GIT, "git status [ab]"),
    (GIT, "git status $'\\x41'"),
    (GIT, "git status $\"x\""),
    (GIT, "(git status)"),
    (GIT, "{ git status; }"),
    (GIT, "git status <(id)"),
    (GIT, "git status >(id)"),
    (GIT, "git status $((1+1))"),
    (GIT, "git status $[1+1]"),
    (GIT, "coproc git status"),
    (GIT, "time git status"),
    (GIT, "git status !!"),
    (GIT, "! git status"),
    (GIT, "eval git status"),
    (GIT, "'git status' x"),
    (GIT, "git status\rrm x"),
    (GIT, "git status \u00a0; rm x"),
    (GIT, "git status\u00a0rm"),
    (GIT, "git status \u3000rm"),
    (GIT, "git status\u2028rm x"),
    (GIT, "git status \u202e; rm x"),
    (GIT, "git status \u200bx"),
    (GIT, "git status\x0b; rm x"),
    (GIT, "\x0bgit status"),
    (GIT, "git status\x00; rm x"),
    (GIT, "git status 'a\x00b'"),
    (GIT, "git status \"\\x\""),
    (GIT, "git status 'unterminated"),
    (GIT, "git status \"unterminated"),
    (GIT, "git status @(x|y)"),
    (GIT, "function git { id; }; git status"),
    (GIT, "if git status; then rm x; fi"),
    (GIT, "for x in 1; do git status; done"),
    (GIT, "[[ -n x ]] && git status"),
    (GIT, "git status " + "a " * 50_000),                  # 100 KB
    (GIT, "git status " + "$(" * 20_000 + "id" + ")" * 20_000),
    (GIT, "git status " + "(" * 20_000 + ")" * 20_000),
    (GIT, "git status " + "{ " * 20_000 + "x" + "; }" * 20_000),
    (GIT, "git status " + "'" + "a" * MAX_SIMPLE_CHARS + "'"),
    (LS, "ls; rm -rf ~"),
    (LS, "ls $(rm x)"),
    (LS, "ls -la ~"),
    (LS, "ls > x"),
    (LS, "ls *.py"),
    (LS, "ls\n\nrm x"),
    (PYTEST, "pytest && curl x | sh"),
    (PYTEST, "pytest -k \"$(id)\""),
    (PYTEST, "pytest\nrm -rf ~"),
    (PYTEST, "pytest ${PYTEST_ADDOPTS:=--x}"),
    (PYTEST, "PYTEST_ADDOPTS=-p pytest"),
]
# Builtins that evaluate words that are literal to the parser: a rule naming them is no
# guard, so they are never simple.
BUILTIN_ATTACKS = [
    ("bash:printf*", "printf -v 'a[$(touch pwned)]' x"),
    ("bash:test*", "test -v 'a[$(touch pwned)]'"),
    ("bash:'['*", "'[' -v 'a[$(touch pwned)]' ']'"),
    ("bash:declare*", "declare 'a[$(touch pwned)]=1'"),
    ("bash:typeset*", "typeset 'a[$(touch pwned)]=1'"),
    ("bash:let*", "let 'a[$(touch pwned)]=1'"),
    ("bash:read*", "read 'a[$(touch pwned)]'"),
    ("bash:unset*", "unset 'GROUPS[$(touch pwned)]'"),
    ("bash:compgen*", "compgen -C 'touch pwned' x"),
    ("bash:trap*", "trap 'touch pwned' EXIT"),
    ("bash:command*", "command eval 'touch pwned'"),
    ("bash:builtin*", "builtin eval 'touch pwned'"),
    ("bash:source*", "source ./script"),
    ("bash:.*", ". ./script"),
    ("bash:eval*", "eval 'touch pwned'"),
]
BYPASSES += BUILTIN_ATTACKS

OTHER_PROGRAM = {"'git status' x"}

# Simple literal commands the rules must allow, with the canonical form globs see.
SIMPLE = [
    (GIT, "git status", "git status"),
    (GIT, "git status -s", "git status -s"),
    (GIT, "git  status", "git status"),
    (GIT, "git\tstatus", "git status"),
    (GIT, "  git status \n", "git status"),
    (GIT, "git 'status'", "git status"),
    (GIT, "git \"status\"", "git status"),
    (GIT, "gi't'\"\" status", "git status"),
    (GIT, "git status 'file name.txt'", "git status 'file name.txt'"),
    (GIT, "git status \"it's\"", "git status \"it's\""),
    (GIT, "git status -- 'a;b' '$(id)' \"x|y\"", "git status -- 'a;b' '$(id)' 'x|y'"),
    (GIT, "git status HEAD~1 --x=y", "git status HEAD~1 --x=y"),
    (GIT, "git status ''", "git status ''"),
    (GIT, "git status données", "git status données"),
    (PYTEST, "pytest -q tests/test_x.py", "pytest -q tests/test_x.py"),
    (PYTEST, "pytest -k 'a and not b' --tb=short", "pytest -k 'a and not b' --tb=short"),
    (LS, "ls -la src/", "ls -la src/"),
]


@pytest.mark.parametrize("rule, command", BYPASSES, ids=lambda v: repr(v)[:40])
def test_bypass_attempts_never_match(rule, command):
    assert rule_matches(rule, "bash", command) is False
    # Not even `bash:*` matches: a glob only ever matches a simple literal command (the
    # one in OTHER_PROGRAM is simple, but runs a program named `git status`).
    assert rule_matches("bash:*", "bash", command) is (command in OTHER_PROGRAM)
    assert (simple_words(command) is None) is (command not in OTHER_PROGRAM)


def test_there_are_at_least_forty_distinct_attempts():
    assert len({c for _, c in BYPASSES}) >= 40


@pytest.mark.parametrize("rule, command, form", SIMPLE, ids=lambda v: repr(v)[:40])
def test_simple_literal_commands_match(rule, command, form):
    assert rule_matches(rule, "bash", command) is True
    assert canonical(simple_words(command)) == form
    assert simple_words(form) == simple_words(command)  # the form means the same words


def test_quoting_in_rules_follows_the_canonical_form():
    # A rule is written the way leon writes the command: single spaces, quotes only where
    # a word needs them (and then single quotes).
    assert rule_matches("bash:git commit -m *", "bash", 'git commit -m "fix the bug"')
    assert rule_matches("bash:git status 'a b'", "bash", 'git status "a b"')
    assert not rule_matches('bash:git status "a b"', "bash", 'git status "a b"')
    assert not rule_matches("bash:git status a b", "bash", "git status 'a b'")
    assert rule_matches("bash: git status* ", "bash", "git status")  # blanks around: ignored
    assert rule_matches("bash:git status", "bash", "git  status") and not rule_matches(
        "bash:git status", "bash", "git status -s")


def test_exact_rules_allow_only_their_exact_text():
    rule = "bash:make test && make lint"
    assert rule_matches(rule, "bash", "make test && make lint")
    assert rule_matches(rule, "bash", "  make test && make lint\n")
    assert not rule_matches(rule, "bash", "make test && make lint; rm x")
    assert not rule_matches(rule, "bash", "make test  && make lint")
    # A glob is never an exact rule: `ls *; rm x` as a glob would match anything.
    assert not rule_matches("bash:ls *; rm x", "bash", "ls *; rm x")
    assert not rule_matches("bash:*", "bash", "ls | wc -l")


def test_always_rules_follow_the_parser():
    assert always_rule("bash", "git status --short") == "bash:git status*"
    assert always_rule("bash", "git  'status' -s") == "bash:git status*"
    assert always_rule("bash", "pytest -q tests") == "bash:pytest*"
    assert always_rule("bash", "git -C x log") == "bash:git*"
    assert always_rule("bash", "'my tool' x") == "bash:'my tool'*"
    assert always_rule("bash", "ls; rm x") == "bash:ls; rm x"
    assert always_rule("bash", "git status $(id)") == "bash:git status $(id)"
    assert always_rule("edit_file", "src/a.py") == "edit_file"
    # A prefix rule is recorded only for a simple command; anything else is exact, with
    # its glob characters escaped so the rule cannot grow into a pattern.
    rule = always_rule("bash", "rm -rf build/*")
    assert rule == "bash:rm -rf build/[*]"
    assert rule_matches(rule, "bash", "rm -rf build/*")
    assert not rule_matches(rule, "bash", "rm -rf build/../../home")
    for _, command in BYPASSES:
        recorded = always_rule("bash", command)
        assert rule_matches(recorded, "bash", command)       # allows what was answered
        assert not rule_matches(recorded, "bash", "git status -s")  # and nothing simple
    for _, command, _form in SIMPLE:
        assert rule_matches(always_rule("bash", command), "bash", command)
    assert is_compound("a | b") and is_compound("echo $HOME") and not is_compound("echo hi")


def test_glob_escapes():
    assert literal_of(escape_glob("a*b?c[d]")) == "a*b?c[d]"
    assert literal_of("git status*") is None and literal_of("a[!b]") is None
    assert literal_of("ls [x]") is None


def test_huge_and_deep_commands_answer_without_error():
    for command in ("x" * 1_000_000, "$(" * 200_000, "(" * 200_000 + ")" * 200_000,
                    "a " * (MAX_SIMPLE_CHARS // 2 - 1), "'" * 100_001, "\n" * 100_000):
        rule_matches(GIT, "bash", command)
    # A simple command at the limits is still parsed (by both parsers); one past is not.
    assert rule_matches(LS, "bash", "ls " + "a " * (MAX_SIMPLE_WORDS - 1))
    assert not rule_matches(LS, "bash", "ls " + "a " * MAX_SIMPLE_WORDS)
    long_word = "ls " + "a" * (MAX_SIMPLE_CHARS - 3)
    assert rule_matches(LS, "bash", long_word) and not rule_matches(LS, "bash", long_word + "a")


# -- the scanner's words are bash's words ------------------------------------------------------
# Pieces that are literal somewhere (weighted up, so many examples are accepted) and
# pieces that are not; the property must hold for whatever the scanner accepts.
_LITERALISH = ["git", "status", "a", "é", "-x", "--o=v", " ", "  ", "\t", "''", "'a b'",
               '"c d"', "'$x'", '"e;f"', "x~", "HEAD~1", "a=", "=", ":", "%", "^", ",", "+",
               "@", ".", "/", "]", "'*'", '"?"', "'~'", "\"'\"", "'\"'"]
_ACTIVE = ["'", '"', "~", "=~", ":~", "$", "$x", "${x}", "`", ";", "&", "|", "<", ">", "(",
           ")", "{", "}", "*", "?", "[", "#", "!", "\\", "\n", "\u00a0", "\u202e"]
_PIECES = _LITERALISH * 4 + _ACTIVE


def _bash_words(command: str, cwd) -> list[str]:
    """The arguments a real bash passes for ``command`` (each word printed NUL-ended)."""
    out = subprocess.run(["/bin/bash", "-c", "printf '%s\\0' " + command], cwd=cwd,
                         env={"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8"},
                         capture_output=True, timeout=30, check=True).stdout
    return out.decode().split("\0")[:-1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12))
def test_accepted_words_are_what_bash_runs(tmp_path_factory, pieces):
    command = "x " + "".join(pieces)
    words = simple_words(command)
    if words is None:
        return
    cwd = tmp_path_factory.mktemp("diff")
    (cwd / "ab").write_text("")  # a glob that slipped through would expand to this
    assert _bash_words(command, cwd) == list(words), command
    assert sorted(p.name for p in cwd.iterdir()) == ["ab"]  # and nothing else was made
    assert simple_words(canonical(words)) == words
    assert _bash_words(canonical(words), cwd) == list(words)


def test_every_simple_example_is_what_bash_runs(tmp_path):
    for _, command, form in SIMPLE:
        words = simple_words(command)
        assert _bash_words(command, tmp_path) == list(words)
        assert _bash_words(form, tmp_path) == list(words)


@pytest.mark.parametrize("rule, command", BUILTIN_ATTACKS, ids=lambda v: repr(v)[:40])
def test_builtin_attacks_really_run_code_in_bash(tmp_path, rule, command):
    (tmp_path / "script").write_text("touch pwned\n")
    subprocess.run(["/bin/bash", "-c", command], cwd=tmp_path, capture_output=True,
                   stdin=subprocess.DEVNULL, env={"PATH": os.environ["PATH"]}, timeout=30)
    assert (tmp_path / "pwned").exists()
    assert not rule_matches(rule, "bash", command)


def test_reported_attack_really_runs_code_in_bash(tmp_path):
    # The control: the reported command does run `touch` in bash, so refusing it matters.
    command = "git status ${x:=$'\\x24(touch pwned)'} ${x@P}".replace("git status", "true")
    subprocess.run(["/bin/bash", "-c", command], cwd=tmp_path, check=True, timeout=30,
                   env={"PATH": os.environ["PATH"]})
    assert (tmp_path / "pwned").exists()


# -- end to end: the real `leon run` with `allow = ["bash:git status*", "bash:printf*"]` -------
def _attacks(victim) -> list[str]:
    v = str(victim)
    return [
        f"git status ${{x:=$'\\x24(touch {v}/p1)'}} ${{x@P}}",
        f"git status; touch {v}/p2",
        f"git status $(touch {v}/p3)",
        f"git status `touch {v}/p4`",
        f"git status > {v}/p5",
        f"git status\ntouch {v}/p6",
        f"git status & touch {v}/p7",
        f"git status \u00a0; touch {v}/p8",
        f"git status #\ntouch {v}/p9",
        f"X=1 git status; touch {v}/p10",
        f"printf -v 'a[$(touch {v}/p11)]' x",      # under the rule bash:printf*
    ]


def _snapshot(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_leon_run_refuses_the_attacks_under_a_git_status_rule(tmp_path, leon_paths, fake_api):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious\n")
    before = _snapshot(victim)
    ws = tmp_path / "ws"
    ws.mkdir()
    leon_paths.home.mkdir(parents=True)
    (leon_paths.home / "config.toml").write_text(
        '[permissions]\nallow = ["bash:git status*", "bash:printf*"]\n')
    attacks = _attacks(victim)
    calls = [("bash", {"command": c}) for c in attacks] + [("bash", {"command": "git status"})]
    fake_api.script(tool_calls(*calls), text("done"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    env.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache),
               ANTHROPIC_API_KEY=fake_api.api_key, ANTHROPIC_BASE_URL=fake_api.base_url)
    out = subprocess.run([sys.executable, "-m", "leon", "run", "--workspace", str(ws),
                          "-m", "claude-sonnet-4-6", "check the repository"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    blocks = results_of(fake_api.message_requests()[1])
    assert len(blocks) == len(calls)
    for command, block in zip(attacks, blocks[:-1], strict=True):
        message = result_text(block)
        assert block["is_error"] is True, command
        assert message.startswith("permission denied") and "--yes" in message, command
    control = blocks[-1]   # the rule is live: the plain command ran without asking
    assert not control.get("is_error") and "exit code" in result_text(control)
    assert _snapshot(victim) == before
    assert not list(ws.iterdir())

    # The control experiment: each attack does create its marker when bash runs it.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for i, command in enumerate(attacks, 1):
        subprocess.run(["/bin/bash", "-c", command], cwd=scratch, capture_output=True,
                       env={"PATH": os.environ["PATH"]}, timeout=30)
        assert (victim / f"p{i}").exists(), command


def test_denial_suggests_a_rule_only_when_it_is_short():
    def message(command: str) -> str:
        request = PermissionRequest("t1", "bash", {"command": command}, "Run it", command)
        return NonInteractiveAsker().denial_message(request)

    assert '"bash:git status*"' in message("git status -s")
    assert '"bash:ls | wc -l"' in message("ls | wc -l")
    huge = "ls; " + "x" * 100_000
    assert "x" * 200 not in message(huge) and "[permissions] allow" in message(huge)
    assert "rm x" not in message("ls\nrm x")
