"""/stats opens the status view with the home's real growth figures."""

from __future__ import annotations

from pilot_helpers import running, send, settle, use_echo, wait_for
from textual.widgets import Static


async def test_stats_view_shows_threads_databases_and_memory(make_app):
    app = use_echo(make_app())
    async with running(app) as pilot:
        await send(pilot, "hello there")
        await send(pilot, "/stats")
        from leon.ui.screens.status import StatusScreen

        await wait_for(pilot, lambda: isinstance(app.screen, StatusScreen), what="status view")
        await settle(pilot)
        now = str(app.screen.query_one("#status-now", Static).render())
        assert "threads" in now and "leon.db" in now and "resident" in now
        assert "(2 messages)" in now  # the user's message and the reply
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, StatusScreen), what="close")
