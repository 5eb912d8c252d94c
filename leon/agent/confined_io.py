"""Reading, replacing and deleting one file without following a symlink anywhere.

File history checks a path with the file tools' confinement first (see
:mod:`leon.agent.filehistory`); this module then does the I/O so that a symlink swapped
in *after* that check cannot lead it elsewhere: the already resolved directory is opened
one component at a time from ``/`` with ``O_NOFOLLOW | O_DIRECTORY``, and the file is
read, replaced (temporary file + rename) and unlinked relative to that directory's
descriptor, never through a path string. A component that became a symlink makes the
call fail with an :class:`OSError` instead.

What remains: a directory that was checked can still be *moved* (renamed) elsewhere by
someone with write access to both places while leon holds its descriptor; leon then
writes into it where it now is. That needs no symlink and gives nobody more access than
they already have.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator

# O_PATH (Linux) needs only search permission on each directory, like a path lookup;
# elsewhere O_RDONLY does the same job for directories that are readable.
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

FILE, MISSING, SYMLINK, OTHER = "file", "missing", "symlink", "other"


class DirMissing(Exception):
    """A component of the directory does not exist (and was not to be created)."""


def _components(real_dir: str) -> list[str]:
    if not os.path.isabs(real_dir):
        raise ValueError(f"not an absolute directory: {real_dir!r}")
    return [p for p in real_dir.split(os.sep) if p]


@contextlib.contextmanager
def open_dir(real_dir: str, *, create: bool = False) -> Iterator[int]:
    """A descriptor for ``real_dir`` (a path without symlinks), reached from ``/`` with no
    symlink followed. Missing components are created (mode 0777 less the umask, as the
    file tools do: they are the user's project directories) when ``create``, else
    :class:`DirMissing` is raised. A component that is a symlink or not a directory
    raises ``OSError`` naming it."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        done = ""
        for part in _components(real_dir):
            if part in (".", ".."):
                raise OSError(errno.EINVAL, f"{real_dir} is not a resolved path")
            done += os.sep + part
            try:
                nxt = _open_subdir(fd, part, done)
            except FileNotFoundError:
                if not create:
                    raise DirMissing(done) from None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
                nxt = _open_subdir(fd, part, done)
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _open_subdir(fd: int, part: str, shown: str) -> int:
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            raise OSError(exc.errno, f"{shown} is not a directory (or is a symlink)") from None
        raise


def kind_of(dir_fd: int, name: str) -> str:
    """What stands at ``name`` in the directory: FILE, MISSING, SYMLINK or OTHER."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return MISSING
    if stat.S_ISLNK(st.st_mode):
        return SYMLINK
    return FILE if stat.S_ISREG(st.st_mode) else OTHER


def read_file(dir_fd: int, name: str) -> tuple[str, bytes | None]:
    """(kind, content): the content only for a regular file. Never follows a symlink at
    ``name`` and never blocks on a FIFO (it is reported as OTHER, unread)."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return MISSING, None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return SYMLINK, None
        if exc.errno in (errno.ENXIO, errno.EISDIR):  # a socket, a directory
            return OTHER, None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return OTHER, None
        os.set_blocking(fd, True)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return FILE, b"".join(chunks)
    finally:
        os.close(fd)


def replace_file(dir_fd: int, name: str, data: bytes) -> None:
    """Replace ``name`` with ``data`` through a temporary file in the same directory (a
    crash leaves the old or the new content). An existing regular file keeps its
    permission bits; a symlink at ``name`` is replaced, never followed."""
    mode: int | None = None
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            mode = stat.S_IMODE(st.st_mode)
    tmp = f".leon-restore-{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, _TMP_FLAGS, 0o666, dir_fd=dir_fd)  # the umask applies
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def remove_file(dir_fd: int, name: str) -> None:
    """Delete ``name`` (a symlink there is removed itself); gone already is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)
