"""The permission prompt says what "always" would allow, computed by the same parser the
policy uses: a prefix for a simple literal command, the exact command otherwise."""

from __future__ import annotations

import asyncio

import pytest
from pilot_helpers import running, wait_for

from leon.agent.permissions import Decision, PermissionRequest


@pytest.mark.parametrize("tool, args, shown", [
    ("bash", {"command": "git  'status' -s"},
     "Always: commands matching git status* in this thread."),
    ("bash", {"command": "git status ${x@P}"},
     "Always: this exact command only (it is not one simple command)."),
    ("bash", {"command": "git status; rm -rf ~"},
     "Always: this exact command only (it is not one simple command)."),
    ("write_file", {"path": "a.txt", "content": "x"},
     "Always: every write_file call in this thread."),
])
async def test_the_prompt_shows_what_always_allows(make_app, tool, args, shown):
    from leon.ui.modals.permission import PermissionScreen

    app = make_app()
    async with running(app) as pilot:
        request = PermissionRequest(thread_id="t1", tool=tool, input=args, title="Run it",
                                    detail=str(args))
        task = asyncio.create_task(app.ask_permission(request))
        await wait_for(pilot, lambda: isinstance(app.screen, PermissionScreen),
                       what="the permission prompt")
        assert str(app.screen.query_one("#permission-always").content) == shown
        await pilot.press("d")
        await wait_for(pilot, task.done)
        assert task.result() == Decision.DENY
