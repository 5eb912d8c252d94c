"""Helpers for the app tests: an isolated LEON_HOME (from tests/conftest.py's
``leon_paths``), the demo model with no delay, a fixed clock for the event feed, no
cursor blink. The waiting helpers are in pilot_helpers.py."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

README = "# demo project\n\nA small workspace for the TUI tests.\n\n- one\n- two\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README.md").write_text(README)
    return ws


@pytest.fixture
def make_app(leon_paths, workspace) -> Callable[..., Any]:
    """Build the app the way the CLI does, with test-friendly options."""
    from leon.config import load_settings
    from leon.ui.app import make_app as factory

    def build(**options: Any) -> Any:
        settings = options.pop("settings", None) or load_settings(leon_paths.config)
        options.setdefault("model", "demo")
        options.setdefault("demo_delay", 0.0)
        options.setdefault("env", {})
        options.setdefault("workspace", workspace)
        options.setdefault("time_format", lambda ts: "12:00")
        options.setdefault("cursor_blink", False)
        return factory(leon_paths, settings, **options)

    return build


@pytest.fixture
def utc():
    """Render times in UTC, so snapshots and time columns are the same everywhere."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()
