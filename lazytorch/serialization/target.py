"""Where a save writes: a binary file object, or a path written through a temporary file next
to it that is renamed into place once complete.

A path's file gets the mode a plain `open(path, "wb")` would give it: its current mode when
it exists, else 0666 less the umask. A symlink is written through (its target is replaced, the
link stays). A save that fails removes its temporary file; one that was killed leaves a file
named `.lazytorch-save-*.tmp`, which the next save into that folder removes once it is an hour
old.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
import time
from typing import BinaryIO, Iterator

TEMP_PREFIX = ".lazytorch-save-"
TEMP_SUFFIX = ".tmp"
STALE_AFTER_S = 3600.0


def is_path(f) -> bool:
    return isinstance(f, (str, bytes, os.PathLike))


def sweep_stale(folder: str, now: float | None = None) -> list[str]:
    """Remove this user's temporary files of killed saves in folder older than an hour;
    return their names."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for e in entries:
        if not (e.name.startswith(TEMP_PREFIX) and e.name.endswith(TEMP_SUFFIX)):
            continue
        try:
            st = e.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or (uid is not None and st.st_uid != uid):
                continue
            if now - st.st_mtime > STALE_AFTER_S:
                os.unlink(e.path)
                removed.append(e.name)
        except OSError:
            continue
    return removed


def _create_temp(folder: str) -> tuple[int, str]:
    """A new file in folder, created with mode 0666 so that the umask applies as it does to
    open(path, 'wb')."""
    for _ in range(100):
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", folder)


@contextlib.contextmanager
def open_target(f, what: str = "lazytorch.save") -> Iterator[BinaryIO]:
    """A binary stream to write a checkpoint into; a path is replaced only once the block
    completes without an exception."""
    if not is_path(f):
        if not hasattr(f, "write"):
            raise AttributeError(f"expected a path or a binary file object, got "
                                 f"{type(f).__name__}")
        if isinstance(f, io.TextIOBase):
            raise TypeError(f"{what} needs a file opened in binary mode ('wb')")
        yield f
        return
    path = os.path.realpath(os.fsdecode(f))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise RuntimeError(f"Parent directory {os.path.dirname(os.path.abspath(os.fsdecode(f)))}"
                           " does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fsdecode(f))
    sweep_stale(folder)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = _create_temp(folder)
    try:
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
