"""Regenerate ``screenshots/*.png`` from headless runs of the real app.

    pip install -e '.[screenshots]'      # cairosvg
    apt-get install fonts-firacode       # the SVGs name Fira Code; without it glyphs overlap
    python scripts/screenshots.py

Each scene builds leon with :func:`leon.ui.app.make_app` (the same factory the CLI uses)
on the offline demo model, in a throw-away LEON_HOME, drives it with Pilot at 120x36,
saves an SVG with ``save_screenshot`` and converts it to PNG with cairosvg. Panes that
are not in this build are skipped with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 36)
FONT = '"Fira Code", "DejaVu Sans Mono", monospace'

README = """# inventory-service

A small service that tracks stock levels across warehouses.

## Layout

- `src/inventory/api.py` — HTTP handlers
- `src/inventory/store.py` — the SQLite layer
- `src/inventory/reorder.py` — reorder rules (TODO: per-supplier lead times)

## Running

    make dev        # starts the API on :8080
    make test       # runs the suite
"""


def _workspace(root: Path) -> Path:
    ws = root / "inventory-service"
    (ws / "src" / "inventory").mkdir(parents=True)
    (ws / "README.md").write_text(README)
    (ws / "src" / "inventory" / "reorder.py").write_text(
        "# TODO: per-supplier lead times\nLEAD_DAYS = 7\n\n"
        "def needs_reorder(level: int, minimum: int) -> bool:\n"
        "    return level < minimum\n")
    log = "".join(f"2025-06-0{1 + i % 9} 12:{i % 60:02d}:00 INFO request id={i:05d} "
                  f"path=/stock/{i % 40} status=200 took={(i * 7) % 90}ms\n"
                  for i in range(600))
    (ws / "access.log").write_text(log)
    return ws


async def _settle(pilot: Any) -> None:
    app = pilot.app
    for _ in range(300):
        await pilot.pause()
        busy = [w for w in app.workers if w.is_running or w.state.name == "PENDING"]
        if not busy:
            return
        await app.workers.wait_for_complete(busy)


async def _ready(pilot: Any) -> None:
    for _ in range(400):
        if pilot.app.chat.agent is not None:
            break
        await pilot.pause()
    await _settle(pilot)


async def _send(pilot: Any, text: str) -> None:
    chat = pilot.app.chat
    chat.prompt.load_text(text)
    await pilot.press("enter")
    await _settle(pilot)


async def _seed_threads(paths: Any) -> None:
    """A few other threads, so the browser has something to show."""
    from leon.store import Stores

    stores = await Stores.open(paths)
    try:
        leon = stores.leon
        samples = [
            ("scoped", "refactor the reorder rules", ["split needs_reorder by supplier",
                                                      "Done: three rules, one per supplier."]),
            ("scoped", "flaky test in test_api.py", ["why does test_stock_update fail?",
                                                     "It depends on wall-clock time."]),
            ("general", "General 2025-06-02", ["morning: what is left from yesterday?",
                                               "Two open threads: reorder and the flaky test."]),
            ("oneshot", "summarise access.log", ["summarise access.log",
                                                 "600 requests, all 200, p95 84 ms."]),
        ]
        for kind, title, turns in samples:
            thread = await leon.create_thread(kind, title=title, model="demo")
            for i, text in enumerate(turns):
                await leon.append_message(thread.id, "user" if i % 2 == 0 else "assistant",
                                          [{"type": "text", "text": text}])
    finally:
        await stores.close()


Scene = Callable[[Any], Awaitable[bool]]


async def scene_chat(pilot: Any) -> bool:
    app = pilot.app
    # Small limits so one short session shows trimming, spilling and their events.
    for key, value in (("memory.pruning.protect_recent", 1),
                       ("memory.pruning.min_prune_tokens", 0),
                       ("memory.pruning.soft_trim_chars", 400)):
        app.settings.set(key, value)
    await _send(pilot, "read README.md")
    await _send(pilot, "read access.log")
    await _send(pilot, "grep TODO")
    # Show the middle of the session: the spilled read, its notice and the pruning.
    from leon.ui.widgets.message import UserMessage

    transcript = app.chat.transcript
    second = [u for u in transcript.query(UserMessage) if u.text == "read access.log"][0]
    transcript.release_anchor()
    transcript.scroll_to_widget(second, top=True, animate=False)
    await _settle(pilot)
    return True


async def _pane(pilot: Any, action: str, screen_name: str) -> bool:
    await _send(pilot, "read README.md")
    await _send(pilot, "grep TODO")
    getattr(pilot.app.chat, action)()
    await _settle(pilot)
    return type(pilot.app.screen).__name__ == screen_name


async def scene_threads(pilot: Any) -> bool:
    return await _pane(pilot, "action_threads", "ThreadBrowserScreen")


async def scene_timeline(pilot: Any) -> bool:
    return await _pane(pilot, "action_timeline", "TimelineScreen")


async def scene_spill(pilot: Any) -> bool:
    await _send(pilot, "read access.log")
    pilot.app.chat.action_spill()
    await _settle(pilot)
    return type(pilot.app.screen).__name__ == "SpillScreen"


async def scene_settings(pilot: Any) -> bool:
    await _send(pilot, "hello")
    pilot.app.chat.action_settings()
    await _settle(pilot)
    return type(pilot.app.screen).__name__ == "SettingsScreen"


async def scene_help(pilot: Any) -> bool:
    await _send(pilot, "grep TODO")
    await pilot.press("f1")
    await _settle(pilot)
    return True


# name -> (scene, theme or None for the default)
SCENES: dict[str, tuple[Scene, str | None]] = {
    "chat": (scene_chat, None),
    "chat-light": (scene_chat, "leon-light"),
    "help": (scene_help, None),
    "threads": (scene_threads, None),
    "timeline": (scene_timeline, None),
    "spill": (scene_spill, None),
    "settings": (scene_settings, None),
}


def svg_to_png(svg: Path, png: Path) -> None:
    import cairosvg

    text = svg.read_text(encoding="utf-8")
    # cairo uses installed fonts only: name Fira Code (fonts-firacode) and a mono fallback.
    text = re.sub(r"font-family: Fira Code, monospace", f"font-family: {FONT}", text)
    cairosvg.svg2png(bytestring=text.encode("utf-8"), write_to=str(png), output_width=1800)


async def shoot(name: str, scene: Scene, out: Path, theme: str | None) -> bool:
    from leon.config import Settings
    from leon.paths import Paths
    from leon.ui.app import make_app

    with tempfile.TemporaryDirectory(prefix="leon-shots-") as tmp:
        root = Path(tmp)
        paths = Paths(home=root / "home", cache=root / "cache")
        os.environ["LEON_HOME"], os.environ["LEON_CACHE"] = str(paths.home), str(paths.cache)
        await _seed_threads(paths)
        settings = Settings(path=paths.config)
        if theme:
            settings.set("ui.theme", theme)
        app = make_app(paths, settings, thread="inventory-service", model="demo",
                       demo_delay=0.0, env={}, workspace=_workspace(root), cursor_blink=False)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await _ready(pilot)
                if not await scene(pilot):
                    print(f"  {name}: skipped (that pane is not in this build)")
                    return False
                await pilot.pause()
                svg = out / f"{name}.svg"
                app.save_screenshot(filename=svg.name, path=str(out))
        finally:
            await app.close()
    svg_to_png(svg, out / f"{name}.png")
    svg.unlink()
    print(f"  {name}: {out / (name + '.png')}")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", nargs="*", choices=[*SCENES, []], help="default: all")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--theme", help="a theme for every scene (default: each scene's)")
    args = parser.parse_args()
    if shutil.which("fc-list") and "Fira Code" not in os.popen("fc-list").read():
        print("warning: Fira Code is not installed (apt-get install fonts-firacode); "
              "the PNGs will use another font", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.scenes or list(SCENES):
        scene, theme = SCENES[name]
        asyncio.run(shoot(name, scene, args.out, args.theme or theme))
    return 0


if __name__ == "__main__":
    sys.exit(main())
