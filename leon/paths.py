"""Where leon keeps things, and the one rule for every path leon derives from a name.

Every location can be overridden by environment, so tests and users with unusual set-ups
never touch ``~/.leon``.

**The rule.** Two roots are trusted because the user chose them: ``LEON_HOME`` and
``LEON_CACHE`` (symlinks *in* them are the user's business). Everything else leon creates,
writes, chmods, reads back or deletes lies *below* one of them, at a path made only here:

1. a name that comes from anywhere — a thread id, a spill file name, an archive name (also
   when read back from a database: an imported thread's rows are outside input) — becomes a
   path component only after it matches leon's own format for that kind of name
   (:data:`FORMATS`); every format is one plain component: never empty, ``.``, ``..``, and
   never holds ``/``, NUL or any control character;
2. the joined path, resolved, must be exactly the root's real path plus those components:
   every component below the root is looked at (``lstat``), and a symlink anywhere below
   it (``$LEON_CACHE/spill -> /elsewhere``) is refused, whatever it points at.

The check runs immediately before each operation (:func:`private_dir`,
:func:`open_private_file`, :func:`remove_tree`, :func:`remove_file`), and files are opened
with ``O_NOFOLLOW``. Refusals raise :class:`PathError` with one line saying what and why.

Modes: every directory leon creates is 0700 (also the parents of a root that leon creates;
existing parents are left as they are), every file 0600.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs


class PathError(ValueError):
    """A name that is not in leon's format, or a path that would leave its root."""


# What leon itself makes (see each maker): anything else is refused as a path component.
#: ``LeonStore.create_thread`` makes 10 lowercase hex digits (``secrets.token_hex(5)``);
#: accepted are up to 64 lowercase letters, digits, ``_`` and ``-``, starting with a letter
#: or digit (older and test ids are short words). Lowercase only: case-insensitive file
#: systems must not merge two threads' directories.
THREAD_ID = re.compile(r"[0-9a-z][0-9a-z_-]{0,63}")
#: ``leon.memory.spill.spill_name``: the tool call id made safe, at most 120 characters,
#: plus ``.txt``; no leading dot (no hidden files, never ``.`` or ``..``).
SPILL_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,119}\.txt")
#: ``leon.lifecycle.archive.archive_name``: ``THREADID-YYYYmmddTHHMMSS.json.gz``.
ARCHIVE_NAME = re.compile(r"[0-9a-z][0-9a-z_-]{0,63}-[0-9]{8}T[0-9]{6}\.json\.gz")
FORMATS: dict[str, re.Pattern[str]] = {
    "thread id": THREAD_ID,
    "spill name": SPILL_NAME,
    "archive name": ARCHIVE_NAME,
}


def _shown(value: object) -> str:
    """A value for an error line: repr (control characters escaped), shortened."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_valid(kind: str, value: object) -> bool:
    """Whether ``value`` is a ``kind`` (a key of :data:`FORMATS`) in leon's format."""
    return isinstance(value, str) and FORMATS[kind].fullmatch(value) is not None


def check(kind: str, value: object) -> str:
    """``value`` if it is a ``kind`` in leon's format; raises :class:`PathError`."""
    if not is_valid(kind, value):
        raise PathError(f"not a valid {kind}: {_shown(value)}")
    return value  # type: ignore[return-value]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _plain(part: object) -> str:
    if not isinstance(part, str) or part in ("", ".", "..") or "/" in part \
            or (os.altsep and os.altsep in part) or _CONTROL.search(part):
        raise PathError(f"not a plain file name: {_shown(part)}")
    return part


def confine(root: Path, *parts: str) -> Path:
    """``root/parts…``, checked: each part a plain name, and no component below ``root``
    that exists is a symlink (nor, but for the last, anything other than a directory) —
    so the path, resolved, is exactly the root's real path plus the parts: nothing
    outside the root, whatever a link would point at. Returns the lexical path (as users
    see it); raises :class:`PathError`."""
    if not parts:
        raise PathError(f"no name below {root}")
    for part in parts:
        _plain(part)
    path = Path(root)
    for i, part in enumerate(parts):
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            break  # neither it nor anything below it exists: nothing to follow
        except NotADirectoryError:
            raise PathError(f"{path.parent} is not a directory") from None
        if stat.S_ISLNK(st.st_mode):
            raise PathError(f"{path} is a symlink (to {os.path.realpath(path)}): leon does "
                            f"not follow links below {root}")
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            raise PathError(f"{path} is not a directory")
    return Path(root).joinpath(*parts)


def same_path(a: Path, b: Path) -> bool:
    """Whether two paths name the same place once every symlink is resolved."""
    return os.path.realpath(a) == os.path.realpath(b)


def make_private_dir(path: Path) -> Path:
    """Create ``path`` — one of leon's own directories, a root such as ``LEON_HOME`` — 0700,
    with every missing parent 0700 too (``Path.mkdir(parents=True)`` would give parents the
    umask's mode). Existing parents are not touched; the leaf is made 0700 if it is not."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue  # made meanwhile by another leon
        os.chmod(d, 0o700)  # the umask may have taken bits away; never adds any
    if (path.stat().st_mode & 0o777) != 0o700:
        path.chmod(0o700)
    return path


def private_dir(root: Path, *parts: str) -> Path:
    """Create ``root`` (:func:`make_private_dir`) and each of ``parts`` below it, 0700,
    after :func:`confine`; an existing component must be a real directory (not a symlink)
    and is made 0700. Returns the lexical path."""
    confine(root, *parts)
    make_private_dir(root)
    path = Path(root)
    for part in parts:
        path = path / part
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise PathError(f"{path} is not a directory (a symlink or a file is in the way)")
        if (st.st_mode & 0o777) != 0o700:
            try:
                os.chmod(path, 0o700, follow_symlinks=False)
            except OSError as exc:
                raise PathError(f"{path} cannot be made private (0700): {exc.strerror}") \
                    from None
    return confine(root, *parts)  # once more, now that it exists


def open_private_file(root: Path, *parts: str) -> int:
    """Create or truncate the file ``root/parts…`` (its directories made by
    :func:`private_dir`), 0600, never following a symlink at its name; returns the fd."""
    *dirs, _ = parts
    if dirs:
        private_dir(root, *dirs)
    path = confine(root, *parts)
    flags = os.O_CREAT | os.O_TRUNC | os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the name is a symlink (made since the check)
            raise PathError(f"{path} is a symlink; not written") from None
        raise
    os.fchmod(fd, 0o600)
    return fd


def _parent_and_name(root: Path, parts: tuple[str, ...]) -> Path:
    """``root/parts…`` with every component but the last checked by :func:`confine` (the
    last may be a symlink: removing one removes the link, never what it points at)."""
    if not parts:
        raise PathError(f"no name below {root}")
    parent = confine(root, *parts[:-1]) if len(parts) > 1 else Path(root)
    return parent / _plain(parts[-1])


def remove_tree(root: Path, *parts: str) -> bool:
    """Delete the directory (or file) ``root/parts…``, checked as :func:`confine` does up
    to its parent; never ``root`` itself. A symlink at that name is removed as a link,
    never followed. Returns whether it is gone."""
    path = _parent_and_name(root, parts)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)  # fd-based on Linux: never follows links
    else:
        path.unlink(missing_ok=True)
    return not os.path.lexists(path)


def remove_file(root: Path, *parts: str) -> None:
    """Delete the file (or symlink) ``root/parts…``, checked as :func:`remove_tree` does;
    a missing one is fine, a directory is refused."""
    path = _parent_and_name(root, parts)
    if os.path.isdir(path) and not os.path.islink(path):
        raise PathError(f"{path} is a directory, not a file")
    path.unlink(missing_ok=True)


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
        """The spill directory of one thread, checked (:func:`confine`)."""
        return confine(self.cache, "spill", check("thread id", thread_id))

    def spill_file(self, thread_id: str, name: str) -> Path:
        """One spill file of one thread, checked."""
        return confine(self.cache, "spill", check("thread id", thread_id),
                       check("spill name", name))

    def stored_spill(self, thread_id: str, stored: str) -> Path:
        """The spill file a ``spills`` row names (the database is outside input too after
        an import): only its file name is used, and only if it is a spill name; the file
        is then looked for in this thread's own spill directory, nowhere else."""
        if not isinstance(stored, str) or "\x00" in stored:
            raise PathError(f"not a spill path: {_shown(stored)}")
        return self.spill_file(thread_id, Path(stored).name)

    def sandbox_dir(self, thread_id: str) -> Path:
        """The sandbox directory of one thread, checked."""
        return confine(self.cache, "sandboxes", check("thread id", thread_id))

    def archive_file(self, name: str) -> Path:
        """An archive file, checked."""
        return confine(self.home, "archive", check("archive name", name))

    def ensure(self) -> None:
        """Create the home and cache directories, private to the user (0700)."""
        for d in (self.home, self.cache):
            make_private_dir(d)


def spill_dir_under(spill_root: Path, thread_id: str) -> Path:
    """The spill directory of ``thread_id`` below ``spill_root`` (``Paths.spill``, whose
    parent is the trusted cache root), checked like :meth:`Paths.spill_dir`."""
    return confine(spill_root.parent, spill_root.name, check("thread id", thread_id))


def default_paths() -> Paths:
    """``LEON_HOME`` (default ``~/.leon``) and ``LEON_CACHE`` (default the platform cache dir)."""
    home = Path(os.environ.get("LEON_HOME") or Path.home() / ".leon").expanduser()
    cache_env = os.environ.get("LEON_CACHE")
    cache = Path(cache_env).expanduser() if cache_env else Path(platformdirs.user_cache_dir("leon"))
    return Paths(home=home, cache=cache)
