"""A provider that is still being built.

Importing the ``anthropic`` SDK takes about 2 s of CPU (and 79 MB) here. The TUI should
not make the user wait for it before showing the thread, and running the import in a
thread *beside* the start-up is no better: it holds the GIL, and every hand-off to
aiosqlite's thread then waits out the interpreter's switch interval (opening the stores
went from 40 to 250 ms). So the app starts the build after the thread is painted
(:meth:`DeferredProvider.start`), and the first call waits for it if the user was
quicker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from leon.llm.base import ModelRequest, Provider, StreamEvent


class DeferredProvider:
    """Builds the real provider with ``make`` in a worker thread, once; :meth:`stream`
    waits for it. An error while building (say the SDK is missing) is raised by every
    :meth:`stream` call, so a turn fails with it instead of the app."""

    is_demo = False

    def __init__(self, make: Callable[[], Provider]) -> None:
        self._make = make
        self._built: asyncio.Future[Provider] | None = None

    def start(self) -> None:
        """Begin building now (idempotent; needs a running event loop)."""
        if self._built is None:
            self._built = asyncio.ensure_future(asyncio.to_thread(self._make))

    async def get(self) -> Provider:
        self.start()
        assert self._built is not None
        return await asyncio.shield(self._built)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        provider = await self.get()
        async for event in provider.stream(request):
            yield event
