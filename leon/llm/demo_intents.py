"""How the demo model turns plain-words requests into tool calls.

Recognised phrases (case-insensitive, several joined by "and" / "then" / commas):

* ``read X`` / ``open X`` / ``show X``            → read_file {path}
* ``grep P`` / ``search for P`` (``in DIR``)      → grep {pattern[, path]}
* ``list X`` / ``ls X`` / ``list files``          → list_dir {path}
* ``glob P`` / ``find files P``                   → glob {pattern}
* ``write X with|containing C`` (or ``create``)  → write_file {path, content}
* ``replace A with B in X``                       → edit_file {path, old_string, new_string}
* ``run `cmd``` / ``run: cmd``                    → bash {command}
* ``delegate T`` / ``ask a sub-agent to T``       → task {description, prompt}

Arguments may be quoted ("foo bar", 'x', `x`). Binding intents to the tools a
request offers (and renaming arguments to their schemas) is :mod:`leon.llm.demo_tools`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leon.llm.identifiers import is_identifier

# How to say each intent to a newcomer, for the demo's help text.
HELP: dict[str, str] = {
    "read": "`read README.md` (or *open* / *show* a file): read a file",
    "grep": '`grep TODO` or `search for "some text"`: search file contents',
    "list": "`list src` / `ls` / `list files`: list a directory",
    "glob": "`glob **/*.py` / `find files *.md`: find files by name",
    "write": "`write notes.txt with hello`: create or overwrite a file",
    "edit": "`replace old with new in notes.txt`: edit a file",
    "bash": "`` run `ls -la` `` or `run: ls -la`: run a shell command",
    "task": "`delegate <task>` / `ask a sub-agent to <task>`: hand work to a sub-agent",
}

_VERB = re.compile(
    r"(?P<read>\b(?:read|open|show)\b)|(?P<grep>\bgrep\b|\bsearch\s+for\b)"
    r"|(?P<list>\blist\b|\bls\b)|(?P<glob>\bglob\b|\bfind\s+files\b)"
    r"|(?P<write>\b(?:write|create)\b)|(?P<edit>\breplace\b)|(?P<bash>\brun\b)"
    r"|(?P<task>\bdelegate\b|\bask\s+an?\s+sub-?agent\s+to\b)",
    re.I,
)
# Verbs whose arguments are strict enough (a path, a quoted command) to trust anywhere;
# the others only count in imperative position, so "my list of tasks" is not list_dir.
_STRICT = {"read", "write", "edit", "bash"}
_IMPERATIVE_BEFORE = re.compile(
    r"(?:[,;.!?:\n]|\band|\bthen|\balso|\bplease|\bnow|\byou|\bto|\bcan|\bcould|\bwould"
    r"|\bjust|\bfirst|\bfinally|\blet's|\blets)\s*$",
    re.I,
)
_CONNECTORS = ("and", "then", "also", "please", "now")
_QUOTED = r"\"[^\"]*\"|'[^']*'|`[^`]*`"
_KNOWN_BARE = {"README", "Makefile", "Dockerfile", "LICENSE", "CHANGELOG", "Procfile", "Justfile"}
_LIST_FILLER = {
    "the", "all", "files", "file", "contents", "content", "of", "in", "inside", "under",
    "within", "directory", "dir", "folder", "me", "what's", "whats", "everything", "entries",
}
_LIST_DENY = {"tools", "commands", "capabilities", "features", "options", "them", "it", "things",
              "models", "your", "my", "some", "what", "that", "this", "those", "these"}
_GLOB_FILLER = {
    "matching", "named", "called", "like", "for", "with", "that", "match", "the", "pattern",
}


@dataclass
class Intent:
    """One recognised request: its kind, canonical arguments and how to say it."""

    kind: str
    args: dict[str, str]
    phrase: str


def code(text: str, limit: int = 60) -> str:
    """``text`` as an inline code span (shortened), safe even if it holds backticks."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if ticks != "`" or text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
        return value[1:-1]
    return value


def _clean_path(token: str) -> str:
    token = _unquote(token.strip()).strip().lstrip("(")
    token = token.rstrip(",;!?)")
    if token.endswith(".") and token not in (".", ".."):
        token = token.rstrip(".")
    return re.sub(r":\d+(?:-\d+)?$", "", token)  # a line suffix is not part of the path


def is_pathlike(token: str) -> bool:
    """Whether a (cleaned) token names a file or directory rather than an English word."""
    if token in (".", "..") or token in _KNOWN_BARE:
        return True
    if not token or " " in token:
        return False
    if "/" in token:
        return True
    dotted = re.fullmatch(r"\.?[\w\-~@+]+(?:\.[\w\-+]+)+|\.[\w\-]+", token)
    return bool(dotted) and is_identifier(token)


def _take_value(rest: str) -> tuple[str, str]:
    """The first argument of ``rest`` (a quoted string or one word) and what follows it."""
    rest = rest.lstrip()
    match = re.match(_QUOTED, rest)
    if match:
        return match.group(0)[1:-1], rest[match.end():]
    match = re.match(r"\S+", rest)
    if not match:
        return "", ""
    word = match.group(0).rstrip(",;!?")
    if len(word) > 1:
        word = word.rstrip(".")
    return word, rest[match.end():]


def _optional_dir(rest: str) -> str:
    match = re.match(r"\s+in\s+(?:the\s+)?(?:(?:folder|directory|dir)\s+)?(\S+)", rest, re.I)
    if not match:
        return ""
    path = _clean_path(match.group(1))
    return path if re.fullmatch(r"[\w.\-~/]+", path) else ""


def _parse_edit(rest: str) -> Intent | None:
    """``A with B in X``: X is after the last " in ", A before the first " with "
    (unless A is quoted). Plain string splits keep this linear on long input."""
    rest = re.sub(r"[.!?]$", "", rest.strip())
    where = re.search(rf"\s+in\s+(?:(?:the\s+)?file\s+)?({_QUOTED}|\S+)$", rest, re.I)
    if not where:
        return None
    raw_path, head = where.group(1), rest[: where.start()]
    path = _clean_path(raw_path)
    if not (is_pathlike(path) or raw_path[0] in "\"'`"):
        return None
    quoted = re.match(rf"({_QUOTED})\s+with\s+", head, re.I)
    if quoted:
        old, new = quoted.group(1), head[quoted.end():]
    else:
        parts = re.split(r"\s+with\s+", head, maxsplit=1, flags=re.I)
        if len(parts) != 2:
            return None
        old, new = parts
    old, new = _unquote(old.strip()), _unquote(new.strip())
    if not old:
        return None
    return Intent("edit", {"path": path, "old_string": old, "new_string": new},
                  f"replace {code(old, 30)} with {code(new, 30)} in {code(path)}")


def _parse(kind: str, rest: str) -> Intent | list[Intent] | None:
    """Turn the words after a verb into intent(s) (None or [] when they don't fit)."""
    if kind == "read":
        # Each path named ("read a.py and b.py") becomes its own read.
        quoted = re.match(r"\s*(?:(?:me|the|file)\s+)*(" + _QUOTED + ")", rest, re.I)
        words = [quoted.group(1)] if quoted else rest.split()
        paths = [
            p for p in dict.fromkeys(_clean_path(w) for w in words)
            if p and (quoted or is_pathlike(p))
        ]
        return [Intent("read", {"path": p}, f"read {code(p)}") for p in paths[:5]]
    if kind in ("grep", "glob"):
        rest = re.sub(r"^\s*for\b", "", rest, flags=re.I) if kind == "grep" else rest
        words = rest.split()
        while kind == "glob" and words and words[0].lower() in _GLOB_FILLER:
            rest = rest.lstrip()[len(words.pop(0)):]
        pattern, after = _take_value(rest)
        if not pattern:
            return None
        args = {"pattern": pattern}
        if directory := _optional_dir(after):
            args["path"] = directory
        where = f" in {code(directory)}" if directory else ""
        verb = "search for" if kind == "grep" else "find files matching"
        return Intent(kind, args, f"{verb} {code(pattern)}{where}")
    if kind == "list":
        words = [_clean_path(w) for w in rest.split()]
        remaining = [w for w in words if w and w.lower() not in _LIST_FILLER]
        named = any(w.lower() in {"files", "directory", "dir", "folder", "contents"} for w in words)
        if remaining:
            first = remaining[0]
            simple = (len(remaining) == 1 and re.fullmatch(r"[\w.\-~/]+", first)
                      and first.lower() not in _LIST_DENY)
            if not (is_pathlike(first) or simple):
                return None
            path = first
        elif named or not words:
            path = "."
        else:
            return None
        return Intent("list", {"path": path}, f"list {code(path)}")
    if kind == "write":
        match = re.match(
            r"\s*(?:(?:a|the|new|file|called|named|to)\s+)*(?P<path>" + _QUOTED + r"|\S+)\s+"
            r"(?:with|containing)\s+(?:(?:the\s+)?(?:content|contents|text)\s*)?:?\s*"
            r"(?P<content>.*)$",
            rest, re.I | re.S)
        if not match:
            return None
        path, content = _clean_path(match.group("path")), match.group("content").strip()
        if not (is_pathlike(path) or match.group("path")[0] in "\"'`") or not content:
            return None
        return Intent("write", {"path": path, "content": _unquote(content)}, f"write {code(path)}")
    if kind == "edit":
        return _parse_edit(rest)
    if kind == "bash":
        match = re.match(r"\s*(?:the\s+)?(?:shell\s+)?(?:command\s+)?`([^`]+)`", rest, re.I)
        if match:
            command = match.group(1).strip()
        else:
            match = re.match(r"\s*:\s*([^\n]+)", rest)
            if not match:
                return None
            command = re.sub(r"(?<=\S)\.$", "", match.group(1).strip())
        return Intent("bash", {"command": command}, f"run {code(command)}") if command else None
    if kind == "task":
        prompt = re.sub(r"^\s*(?:to\s+an?\s+sub-?agent\b)?\s*:?\s*(?:the\s+task\s+(?:of\s+)?)?",
                        "", rest, flags=re.I).strip()
        if not prompt:
            return None
        description = " ".join(prompt.split()[:5]).rstrip(".,;:!?")[:60]
        return Intent("task", {"description": description, "prompt": prompt},
                      f"ask a sub-agent to {description}")
    return None


def _strip_connectors(clause: str) -> str:
    """Drop the ", and then" that joins a clause to the next one."""
    while True:
        clause = clause.rstrip(" \t\r\n,;")
        lowered = clause.lower()
        for word in _CONNECTORS:
            cut = len(clause) - len(word)
            if lowered.endswith(word) and (cut == 0 or not re.match(r"\w", clause[cut - 1])):
                clause = clause[:cut]
                break
        else:
            return clause


def _mask_quotes(text: str) -> str:
    """Blank out quoted spans and ``run: ...`` commands (same length) so verbs inside
    arguments are not seen: a ``run:`` command runs to the end of its line."""
    def blank(m: re.Match[str]) -> str:
        return m.group(0)[0] + "\0" * (len(m.group(0)) - 2) + m.group(0)[-1]

    text = re.sub(r"\"[^\"\n]*\"|`[^`\n]*`", blank, text)
    return re.sub(r"(?<=\brun)\s*:[^\n]+", blank, text, flags=re.I)


def parse_intents(text: str) -> list[Intent]:
    """Every tool request in ``text``, in order (see the module docstring for phrases)."""
    if not isinstance(text, str) or not text.strip():
        return []
    masked = _mask_quotes(text)
    starts: list[tuple[int, int, str]] = []  # (verb start, verb end, kind)
    for match in _VERB.finditer(masked):
        kind = match.lastgroup or ""
        # Only the few characters before the verb matter (and scanning the whole prefix
        # for every verb would be quadratic on a pasted document).
        before = masked[max(0, match.start() - 40) : match.start()]
        at_start = match.start() <= 40 and not before.strip()
        positional = at_start or bool(_IMPERATIVE_BEFORE.search(before))
        if positional or (kind in _STRICT and not starts):
            starts.append((match.start(), match.end(), kind))
    intents = []
    for i, (_, end, kind) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        rest = _strip_connectors(text[end:stop])
        parsed = _parse(kind, rest)
        intents.extend(parsed if isinstance(parsed, list) else [parsed] if parsed else [])
    return intents
