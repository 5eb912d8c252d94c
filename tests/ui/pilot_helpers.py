"""Waiting helpers for the app tests: they poll the app (pilot.pause) and never sleep."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any


async def wait_for(pilot: Any, predicate: Callable[[], Any], *, rounds: int = 400,
                   what: str = "condition") -> None:
    """Let the app run (pilot.pause, never sleep) until ``predicate()`` is true."""
    for _ in range(rounds):
        if predicate():
            return
        await pilot.pause()
    raise AssertionError(f"timed out waiting for {what}")


async def settle(pilot: Any) -> None:
    """Until no worker runs and the message queues are drained."""
    app = pilot.app
    for _ in range(200):
        await pilot.pause()
        busy = [w for w in app.workers if w.is_running or w.state.name == "PENDING"]
        if not busy:
            return
        with contextlib.suppress(Exception):
            await app.workers.wait_for_complete(busy)
    raise AssertionError("the app never settled")


async def drain_workers(pilot: Any) -> None:
    """Let queued messages run and the workers they start finish, until nothing is left
    (no sleeps: each key press may start a worker after the previous one finished)."""
    for _ in range(50):
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            await pilot.pause()
            if not any(w.is_running for w in pilot.app.workers):
                return
        await pilot.app.workers.wait_for_complete()
    raise AssertionError("workers kept running")


@contextlib.asynccontextmanager
async def running(app: Any, *, size: tuple[int, int] = (120, 36),
                  message_hook: Callable[[Any], None] | None = None) -> AsyncIterator[Any]:
    """Run ``app`` headless until its agent is loaded; always release its stores."""
    try:
        async with app.run_test(size=size, message_hook=message_hook) as pilot:
            await wait_for(pilot, lambda: app.chat.agent is not None, what="the agent")
            await settle(pilot)
            yield pilot
    finally:
        await app.close()


async def send(pilot: Any, text: str) -> None:
    """Type ``text`` into the prompt, press Enter, and wait for the turn to end."""
    chat = pilot.app.chat
    chat.prompt.focus()
    chat.prompt.load_text(text)
    await pilot.press("enter")
    await settle(pilot)


async def long_thread(stores: Any, name: str, turns: int) -> Any:
    """A scoped thread ``name`` of ``turns`` question/answer pairs ("question 0", "answer
    0", ...); returns it."""
    thread = await stores.leon.create_thread("scoped", name=name, title=name)
    for i in range(turns):
        await stores.leon.append_message(thread.id, "user", [{"type": "text",
                                                             "text": f"question {i}"}])
        await stores.leon.append_message(thread.id, "assistant", [{"type": "text",
                                                                  "text": f"answer {i}"}])
    return thread


class EchoProvider:
    """A tiny model for flow tests: it streams ``echo: <your text>`` in a few fragments.
    The demo model's long Markdown replies cost most of a test's time to draw; tests
    about prompts, history, rollback or settings do not need them."""

    name = "echo"
    is_demo = False

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        from leon.llm.base import Completed, ModelResponse, TextDelta, Usage

        last = request.messages[-1]["content"]
        said = "".join(b.get("text", "") for b in last if b.get("type") == "text")
        reply = f"echo: {said}"
        for word in reply.split(" "):
            yield TextDelta(word + " ")
        yield Completed(ModelResponse(
            content=[{"type": "text", "text": reply + " "}], stop_reason="end_turn",
            usage=Usage(input_tokens=len(str(request.messages)) // 4, output_tokens=5),
            model="echo"))


def use_echo(app: Any) -> Any:
    """Make ``app`` (not yet running) talk to :class:`EchoProvider`."""
    from leon.runtime import ProviderChoice

    app.choice = ProviderChoice(EchoProvider(), "echo", None)
    return app
