"""Where leon keeps things. Every location can be overridden by environment, so tests
and users with unusual set-ups never touch ``~/.leon``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class Paths:
    """All of leon's locations for one run."""

    home: Path
    cache: Path

    @property
    def leon_db(self) -> Path:
        return self.home / "leon.db"

    @property
    def sandbox_db(self) -> Path:
        return self.home / "sandbox.db"

    @property
    def chat_db(self) -> Path:
        return self.home / "chat.db"

    @property
    def config(self) -> Path:
        return self.home / "config.toml"

    @property
    def themes(self) -> Path:
        return self.home / "themes"

    @property
    def skills(self) -> Path:
        return self.home / "skills"

    @property
    def agents(self) -> Path:
        return self.home / "agents"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def spill(self) -> Path:
        return self.cache / "spill"

    @property
    def sandboxes(self) -> Path:
        return self.cache / "sandboxes"

    def spill_dir(self, thread_id: str) -> Path:
        """The spill directory of one thread."""
        return self.spill / thread_id

    def ensure(self) -> None:
        """Create the home and cache directories, private to the user (0700)."""
        for d in (self.home, self.cache):
            make_private_dir(d)


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make the leaf 0700: other users may not list
    threads, spill files or sandboxes."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (path.stat().st_mode & 0o777) != 0o700:
        path.chmod(0o700)
    return path


def default_paths() -> Paths:
    """``LEON_HOME`` (default ``~/.leon``) and ``LEON_CACHE`` (default the platform cache dir)."""
    home = Path(os.environ.get("LEON_HOME") or Path.home() / ".leon").expanduser()
    cache_env = os.environ.get("LEON_CACHE")
    cache = Path(cache_env).expanduser() if cache_env else Path(platformdirs.user_cache_dir("leon"))
    return Paths(home=home, cache=cache)
