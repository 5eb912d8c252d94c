"""Finished replies are drawn as Markdown (through Rich, one widget each), in the theme's
colours, and follow a theme change."""

from __future__ import annotations

from pilot_helpers import running, settle, use_echo

from leon.ui.widgets.markdown_text import MarkdownText

REPLY = ("**Found it**: the cache is never invalidated. See `src/cache.py`.\n\n"
         "- the store writes through\n- the reader keeps a stale copy\n\n"
         "```python\ndef cache(value):\n    return store(value)\n```\n\n# Next steps\n")


async def test_stored_markdown_reply_is_rendered_not_shown_raw(make_app, stores):
    thread = await stores.leon.create_thread("scoped", name="md", title="md")
    await stores.leon.append_message(thread.id, "user", [{"type": "text", "text": "why?"}])
    await stores.leon.append_message(thread.id, "assistant", [{"type": "text", "text": REPLY}])
    app = use_echo(make_app(thread="md"))
    async with running(app, size=(100, 40)) as pilot:
        body = app.chat.transcript.query_one(MarkdownText)
        lines = [strip.text for strip in body.render_lines(body.region.reset_offset)]
        shown = "\n".join(lines)
        assert "Found it: the cache" in shown and "**" not in shown
        assert "src/cache.py" in shown and "`" not in shown
        assert "• the store writes through" in shown
        assert "def cache(value):" in shown and "```" not in shown
        # headings stay at the left edge, as in a streamed reply (Rich centres a level 1)
        assert any(line.lstrip().startswith("Next steps") and line.startswith("Next")
                   for line in lines), lines
        # inline code takes the theme's warning colour; a light theme changes it
        dark = _style_of(body, "src/cache.py")
        app.theme = "leon-light"
        await settle(pilot)
        light = _style_of(body, "src/cache.py")
        assert dark is not None and light is not None and dark != light


def _style_of(widget, needle: str):
    for strip in widget.render_lines(widget.region.reset_offset):
        for segment in strip:
            if needle in segment.text:
                return segment.style
    return None
