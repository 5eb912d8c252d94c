"""Command palette providers: threads (found with the store's FTS search over titles and
message text) and commands (every key binding in force, by its description).

Register both in the app's ``COMMANDS``. ``ThreadCommands`` needs ``app.stores`` (None
until the stores are open: it then finds nothing) and opens a thread with
``app.open_thread(thread_id)``, or posts :class:`leon.ui.messages.ThreadChosen` when the
app has no such method.
"""

from __future__ import annotations

import inspect
import time
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from leon.store.models import Thread
from leon.textsafe import one_line
from leon.ui.messages import ThreadChosen

THREAD_HITS = 15
RECENT_THREADS = 8
# A thread found only by its messages (not its title) ranks below title matches.
TEXT_MATCH_SCORE = 0.3


def _thread_help(thread: Thread) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(thread.updated_at))
    return f"{thread.kind} · {thread.status} · {thread.message_count:,} messages · {when}"


def _highlight(matcher: Any, label: str) -> Content:
    """``matcher.highlight`` without reading ``label`` as markup (it holds a title)."""
    content = Content(label)
    _, offsets = matcher.fuzzy_search.match(matcher.query, label)
    for offset in offsets:
        if not label[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


class ThreadCommands(Provider):
    """Open a thread by (part of) its title or of something said in it."""

    def _store(self) -> Any | None:
        stores = getattr(self.app, "stores", None)
        return getattr(stores, "leon", None)

    async def _open(self, thread_id: str) -> None:
        opener = getattr(self.app, "open_thread", None)
        if callable(opener):
            result = opener(thread_id)
            if inspect.isawaitable(result):
                await result
        else:
            self.app.post_message(ThreadChosen(thread_id))

    async def discover(self) -> Hits:
        store = self._store()
        if store is None:
            return
        try:
            threads = await store.search_threads("", limit=RECENT_THREADS)
        except Exception:
            return
        for t in threads:
            # Content, not a str: the palette would read a str as markup, and a title is
            # anyone's text ("[@click=app.quit]" would become a link)
            yield DiscoveryHit(Content(f"Open thread: {one_line(t.display_title)}"),
                               partial(self._open, t.id), help=_thread_help(t))

    async def search(self, query: str) -> Hits:
        store = self._store()
        if store is None or not query.strip():
            return
        try:
            threads = await store.search_threads(query, limit=THREAD_HITS)
        except Exception:
            return
        matcher = self.matcher(query)
        for t in threads:
            title = one_line(t.display_title)
            label = f"Open thread: {title}"
            score = matcher.match(title)
            display = _highlight(matcher, label) if score > 0 else Content(label)
            yield Hit(max(score, TEXT_MATCH_SCORE),
                      display, partial(self._open, t.id), text=label, help=_thread_help(t))


# Bindings the palette offers elsewhere already, or that make no sense from it.
_SKIP_ACTIONS = {"command_palette", "quit", "app.quit", "app.command_palette"}


class BindingCommands(Provider):
    """Every action bound to a key on the screen the palette was opened from."""

    def _commands(self) -> list[tuple[str, str, Any, str]]:
        found: dict[str, tuple[str, str, Any, str]] = {}
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or not active.enabled:
                continue
            if binding.action in _SKIP_ACTIONS:
                continue
            shown = binding.key_display or self.app.get_key_display(binding)
            found.setdefault(binding.description, (binding.description, binding.action,
                                                   active.node, shown or key))
        return list(found.values())

    async def _run(self, action: str, node: Any) -> None:
        await self.app.run_action(action, node)

    async def discover(self) -> Hits:
        for description, action, node, key in sorted(self._commands()):
            yield DiscoveryHit(description, partial(self._run, action, node), help=f"key: {key}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for description, action, node, key in self._commands():
            score = matcher.match(description)
            if score > 0:
                yield Hit(score, matcher.highlight(description), partial(self._run, action, node),
                          text=description, help=f"key: {key}")
