"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakeapi import FakeAnthropic


@pytest.fixture
def fake_api() -> Iterator[FakeAnthropic]:
    """A running fake Anthropic Messages API on 127.0.0.1 (see tests/fakeapi.py)."""
    with FakeAnthropic() as api:
        yield api


@pytest.fixture
def leon_paths(tmp_path, monkeypatch):
    """An isolated LEON_HOME and cache: no test ever touches ~/.leon."""
    from leon.paths import Paths

    home, cache = tmp_path / "home", tmp_path / "cache"
    monkeypatch.setenv("LEON_HOME", str(home))
    monkeypatch.setenv("LEON_CACHE", str(cache))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)  # leon talks to Claude with it
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    return Paths(home=home, cache=cache)


@pytest.fixture
async def stores(leon_paths):
    from leon.store import Stores

    s = await Stores.open(leon_paths)
    yield s
    await s.close()
