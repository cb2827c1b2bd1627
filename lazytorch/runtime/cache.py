"""The compile cache on disk, for every backend: where it is and whether it may be trusted,
content keys, binary entries verified before use, a size limit with least-recently-used
eviction, and clearing it (`python -m lazytorch.cache --help`).

What the cache holds is code that this process will load and run, so nothing in it is used
unless the current user wrote it: the cache directory, its folders and every file read from it
must be owned by the current user and not writable by group or others (CacheError otherwise,
saying how to fix it). A binary entry is stored with its size and sha256, written after the
entry itself is complete, and `get` checks both, and a backend's structural check, before
returning it: a damaged entry is removed, so the caller builds it again.

Layout: <dir>/<folder>/<key><suffix> with `<key><suffix>.sum` beside binary entries; a key's
folder is its first two hex digits unless the caller names one. Files being written are named
`.tmp-*` in the folder that receives them.
"""
from __future__ import annotations

import argparse
import atexit
import errno
import hashlib
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import warnings
from typing import Callable

from .. import config
from .files import atomic_write

ENV_DIR = "LAZYTORCH_CACHE_DIR"
ENV_SIZE = "LAZYTORCH_CACHE_SIZE"
DEFAULT_SIZE = 512 * 2**20
TEMP_PREFIX = ".tmp-"
STALE_S = 3600.0            # a temporary file this old was left by a writer that was killed
SWEEP_EVERY_S = 600.0       # the least time between two sweeps of one cache (any process)
SWEEP_STAMP = ".last-sweep"
TAG = "CACHEDIR.TAG"        # tells backup tools to skip the directory (bford.info/cachedir)
TAG_TEXT = (b"Signature: 8a477f597d28d172789f06886806bc55\n"
            b"# lazytorch's compile cache: python -m lazytorch.cache --clear\n")
_NAME = re.compile(r"[0-9a-f]{64}(\..*)?\Z")   # files of ours: a key and a suffix


class CacheError(RuntimeError):
    """The cache cannot be used: not trusted, or not a directory."""


class CacheWarning(UserWarning):
    """A cache problem worked around: a cache directory that cannot be written (a private
    temporary one serves instead), an untrusted entry that is not used."""


def key(*parts: str) -> str:
    """The key of content made of `parts` (sha256 of them, joined by NUL bytes)."""
    return sha256("\0".join(parts).encode())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def configured() -> str:
    """The cache directory asked for: $LAZYTORCH_CACHE_DIR, else $XDG_CACHE_HOME/lazytorch,
    else ~/.cache/lazytorch."""
    d = os.environ.get(ENV_DIR)
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "lazytorch")
    return d


_roots: dict[str, str] = {}     # configured directory -> the one used (itself or a fallback)
_trusted: set[str] = set()      # folders checked by this process
_in_use: set[str] = set()       # entries this process loaded or wrote (a sweep keeps them)
_lock = threading.RLock()


def directory() -> str:
    """The cache directory, created (mode 0700) and checked; if it cannot be written, a private
    temporary directory instead (with one warning). Raises CacheError if it is not a directory
    or not trusted."""
    want = configured()
    d = _roots.get(want)
    if d is None:
        with _lock:
            d = _roots.get(want)
            if d is None:
                d = _roots[want] = _open(want)
    return d


def _open(path: str) -> str:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except FileExistsError:
        raise CacheError(f"the compile cache {path} is a file, not a directory: remove it or "
                         f"set {ENV_DIR} to a directory") from None
    except NotADirectoryError:
        raise CacheError(f"the compile cache {path} cannot be created: part of its path is a "
                         f"file, not a directory; set {ENV_DIR} to a directory") from None
    except OSError as e:
        return _fallback(path, e.strerror or str(e))
    if not os.path.isdir(path):
        raise CacheError(f"the compile cache {path} is not a directory: remove it or set "
                         f"{ENV_DIR} to a directory")
    _check(path, os.stat(path), "directory")
    if not _writable(path):
        return _fallback(path, "not writable")
    if not os.path.exists(os.path.join(path, TAG)):
        try:
            _write(os.path.join(path, TAG), TAG_TEXT)
        except OSError as e:
            return _fallback(path, e.strerror or str(e))
    _trusted.add(path)
    return path


def _writable(path: str) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


_private: list[str] = []   # fallback directories, removed at exit


@atexit.register   # (registered on import, before any module's exit handler that builds)
def _remove_private() -> None:
    for d in _private:
        shutil.rmtree(d, ignore_errors=True)


def persistent() -> bool:
    """Whether what is stored now outlives this process (not so in a private fallback)."""
    return _roots.get(configured()) not in _private


def _fallback(path: str, why: str) -> str:
    d = tempfile.mkdtemp(prefix="lazytorch-cache-")
    _private.append(d)
    warnings.warn(f"the compile cache {path} cannot be written ({why}): compiled code is kept "
                  f"in {d} until this process ends; set {ENV_DIR} to a writable directory",
                  CacheWarning, stacklevel=2)
    _trusted.add(d)
    return d


def _check(path: str, st: os.stat_result, what: str) -> None:
    """Raise CacheError unless `st` (of `path`) is owned by this user and not writable by
    group or others."""
    if not hasattr(os, "getuid"):
        return
    uid = os.getuid()
    fix = (f"chown it (`chown -R {uid} {path}`)" if what == "directory"
           else f"remove it (`rm {path}`)")
    if st.st_uid != uid:
        raise CacheError(
            f"refusing to use the compile cache {what} {path}: it is owned by uid {st.st_uid}, "
            f"not by you (uid {uid}), and lazytorch runs the code it holds; {fix} if you trust "
            f"it, or set {ENV_DIR} to a directory of your own")
    if st.st_mode & 0o022:
        cmd = (f"`chmod go-w {path}`, then `python -m lazytorch.cache --clear`"
               if what == "directory" else f"`rm {path}`")
        raise CacheError(
            f"refusing to use the compile cache {what} {path}: its mode "
            f"{stat.S_IMODE(st.st_mode):04o} lets group or others write it, and lazytorch runs "
            f"the code it holds; run {cmd}, or set {ENV_DIR} to a directory of your own")


def folder(name: str) -> str:
    """A folder of the cache (created 0700 and checked)."""
    d = os.path.join(directory(), name)
    if d not in _trusted:
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode):
            raise CacheError(f"the compile cache folder {d} is not a directory: remove it")
        _check(d, st, "directory")
        _trusted.add(d)
    return d


def path(k: str, name: str | None = None, suffix: str = "") -> str:
    """Where the entry of key `k` lives (in folder `name`, else its key's first two digits)."""
    return os.path.join(directory(), name or k[:2], k + suffix)


def read(k: str, name: str | None = None, suffix: str = "") -> bytes | None:
    """The content of a small entry (no checksum: its reader validates it), or None. Reading
    marks it used."""
    p = path(k, name, suffix)
    data = _read(p)
    if data is not None:
        _check_folder(os.path.dirname(p))
        _touch(p)
    return data


def write(k: str, data: bytes, name: str | None = None, suffix: str = "") -> str:
    """Store a small entry (replacing it whole); its path."""
    def store() -> str:
        p = os.path.join(folder(name or k[:2]), k + suffix)
        _write(p, data)
        return p
    p = _writing(store)
    _in_use.add(p)
    return p


def get(k: str, name: str | None = None, suffix: str = "",
        check: Callable[[bytes], None] | None = None) -> str | None:
    """The path of the binary entry for key `k`, if it is complete: its size and checksum
    match what put() recorded and `check(content)` raises no ValueError. A damaged entry is
    removed and None returned, as for a missing one. Marks the entry used."""
    p = path(k, name, suffix)
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        _check(p, st, "file")
        data = f.read()
    _check_folder(os.path.dirname(p))
    recorded = _read(p + ".sum")
    if recorded is None:   # not yet complete (or its writer was killed): a miss
        return None
    fields = recorded.split()
    why = None
    if len(fields) != 2 or fields[1] != str(len(data)).encode():
        why = "its size differs from the one recorded"
    elif fields[0].decode(errors="replace") != sha256(data):
        why = "its checksum differs from the one recorded"
    elif check is not None:
        try:
            check(data)
        except ValueError as e:
            why = str(e)
    if why is not None:
        discard(k, name, suffix, st)
        if config.get_level() >= 1:
            config.log(f"cache: {p} is damaged ({why}): removed, to be built again")
        return None
    _touch(p)
    _in_use.add(p)
    return p


def new_file(k: str, name: str | None = None, suffix: str = "") -> str:
    """A new temporary file (mode 0600) in the folder of `k`'s entry, for a writer (a compiler)
    to fill and put() to store."""
    fd, tmp = _writing(lambda: tempfile.mkstemp(dir=folder(name or k[:2]), prefix=TEMP_PREFIX,
                                                suffix=suffix))
    os.close(fd)
    return tmp


# a write failing with one of these moves the cache to a private temporary directory
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _writing(fn: Callable):
    """fn(), once more in a private temporary directory if the cache cannot be written."""
    try:
        return fn()
    except OSError as e:
        if e.errno not in _UNWRITABLE:
            raise
        want = configured()
        with _lock:
            if _roots.get(want) != want:   # already elsewhere: a real failure
                raise
            _roots[want] = _fallback(want, e.strerror or str(e))
    return fn()


def put(tmp: str, k: str, name: str | None = None, suffix: str = "",
        check: Callable[[bytes], None] | None = None) -> str:
    """Store the completely written file `tmp` (from new_file) as the entry for `k`, and
    record its size and checksum after it; its path. Raises ValueError (and removes `tmp`) if
    `check(content)` does."""
    p = os.path.join(os.path.dirname(tmp), k + suffix)
    try:
        os.chmod(tmp, 0o600)   # (a linker makes its output with the umask's mode)
        with open(tmp, "rb") as f:
            data = f.read()
        if check is not None:
            check(data)
        _unlink(p + ".sum")   # (until the new record is written, readers see a miss)
        os.replace(tmp, p)
    except BaseException:
        _unlink(tmp)
        raise
    _write(p + ".sum", f"{sha256(data)} {len(data)}\n".encode())
    _in_use.add(p)
    _wrote(len(data))
    return p


def discard(k: str, name: str | None = None, suffix: str = "",
            seen: os.stat_result | None = None) -> None:
    """Remove an entry (one that failed to load); if `seen` is given, only if the file is still
    that one (not a new entry that another process just stored)."""
    p = path(k, name, suffix)
    if seen is not None:
        try:
            now = os.lstat(p)
        except OSError:
            return
        if (now.st_ino, now.st_dev) != (seen.st_ino, seen.st_dev):
            return
    _unlink(p)
    _unlink(p + ".sum")
    _in_use.discard(p)
    config.STATS["cache_entries_discarded"] += 1


def _check_folder(d: str) -> None:
    if d not in _trusted:
        _check(d, os.lstat(d), "directory")
        _trusted.add(d)


def _read(p: str) -> bytes | None:
    """A file's content if it exists, after checking who may have written it."""
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        _check(p, os.fstat(f.fileno()), "file")
        return f.read()


def _write(p: str, data: bytes) -> None:
    atomic_write(p, data)   # (its temporary file is a .tmp-* one: a sweep removes it if stale)


def _touch(p: str) -> None:
    try:
        os.utime(p)
    except OSError:
        pass


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


# ---- size limit ----

def size_limit() -> int:
    """The cache's size limit in bytes: $LAZYTORCH_CACHE_SIZE (bytes, or with a K, M or G
    suffix: powers of 1024), else 512M."""
    v = os.environ.get(ENV_SIZE, "").strip()
    if not v:
        return DEFAULT_SIZE
    m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kmgt]?)i?b?", v, re.IGNORECASE)
    if m is None:
        raise CacheError(f"{ENV_SIZE}={v!r} is not a size: expected bytes, or a number with a "
                         "K, M or G suffix (e.g. 512M)")
    return int(float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2).lower() or "_"))


_written = 0   # bytes this process stored since its last sweep
_sweeper: threading.Thread | None = None
_sweep_lock = threading.Lock()


def _wrote(n: int) -> None:
    """After a store: sweep, in a background thread, if no process swept this cache for
    SWEEP_EVERY_S or this process alone stored an eighth of the limit since it last swept (a
    sweep stats every file of the cache: ~10 ms per thousand; a store costs a stat else)."""
    global _written, _sweeper
    _written += n
    root = directory()
    try:
        due = time.time() - os.stat(os.path.join(root, SWEEP_STAMP)).st_mtime > SWEEP_EVERY_S
    except OSError:
        due = True
    if not due and _written <= size_limit() // 8:
        return
    limit = size_limit()
    with _lock:
        if _sweeper is None or not _sweeper.is_alive():
            _written = 0
            t = threading.Thread(target=_sweep_quietly, args=(limit, root), daemon=True,
                                 name="lazytorch-cache-sweep")
            try:
                t.start()
            except RuntimeError:   # (the interpreter is exiting: the next process sweeps)
                return
            _sweeper = t


def _sweep_quietly(limit: int, root: str) -> None:
    try:
        sweep(limit, root=root)
    except Exception as e:   # a cache being removed under it, ...: the next sweep tries again
        if config.get_level() >= 1:
            config.log(f"cache: sweeping {root} failed: {type(e).__name__}: {e}")


class _Group:
    """One entry's files (module, record, source): when last used, their bytes, whether this
    process uses it."""

    __slots__ = ("used", "size", "paths", "kept")

    def __init__(self):
        self.used, self.size, self.paths, self.kept = 0.0, 0, [], False


def sweep(limit: int | None = None, now: float | None = None, root: str | None = None) -> int:
    """Remove least recently used entries until the cache (`root`, else this process's) holds
    at most `limit` bytes (the size limit by default), and temporary files older than an hour;
    the bytes removed. The entries this process uses are kept."""
    limit = size_limit() if limit is None else limit
    now = time.time() if now is None else now
    root = directory() if root is None else root
    with _sweep_lock:
        try:
            stamp = os.path.join(root, SWEEP_STAMP)   # (empty: its time is what counts)
            os.close(os.open(stamp, os.O_WRONLY | os.O_CREAT, 0o600))
            os.utime(stamp)
        except OSError:
            pass
        groups: dict[str, _Group] = {}   # folder/key -> its files
        freed = 0
        for p, st in _files(root):
            name = os.path.basename(p)
            if name.startswith(TEMP_PREFIX):
                if now - st.st_mtime > STALE_S:
                    _unlink(p)
                    freed += st.st_size
                continue
            g = groups.get(p[:len(p) - len(name) + 64])
            if g is None:
                g = groups[p[:len(p) - len(name) + 64]] = _Group()
            g.used = max(g.used, st.st_mtime)
            g.size += st.st_size
            g.paths.append(p)
            g.kept = g.kept or p in _in_use
        total = sum(g.size for g in groups.values())
        for g in sorted(groups.values(), key=lambda g: g.used):
            if total <= limit:
                break
            if g.kept:
                continue
            for p in g.paths:
                _unlink(p)
            total -= g.size
            freed += g.size
    return freed


def _files(root: str):
    """(path, stat) of each file of ours: keyed entries in the folders, and temporary files
    there and at the top."""
    try:
        top = list(os.scandir(root))
    except OSError:
        return
    yield from _stats(e for e in top if e.name.startswith(TEMP_PREFIX))
    for d in top:
        if d.is_dir(follow_symlinks=False):
            try:
                entries = list(os.scandir(d.path))
            except OSError:
                continue
            yield from _stats(e for e in entries
                              if e.name.startswith(TEMP_PREFIX) or _NAME.match(e.name))


def _stats(entries):
    for e in entries:
        try:
            if e.is_file(follow_symlinks=False):
                yield e.path, e.stat(follow_symlinks=False)
        except OSError:
            pass


def usage(root: str | None = None) -> tuple[int, int]:
    """(entries, bytes) in the cache."""
    keys = set()
    total = 0
    for p, st in _files(root or directory()):
        name = os.path.basename(p)
        if not name.startswith(TEMP_PREFIX):
            keys.add(p[:len(p) - len(name) + 64])
        total += st.st_size
    return len(keys), total


def clear(root: str | None = None) -> int:
    """Remove every entry of the cache (the configured directory, whoever owns it: only the
    files it names as its own) and the folders left empty; the bytes removed."""
    root = root or configured()
    freed = 0
    for p, st in _files(root):
        try:
            os.unlink(p)
            freed += st.st_size
        except FileNotFoundError:
            pass
    for p in (os.path.join(root, SWEEP_STAMP),):
        _unlink(p)
    try:
        for e in os.scandir(root):
            if e.is_dir(follow_symlinks=False):
                try:
                    os.rmdir(e.path)
                except OSError:
                    pass
    except OSError:
        pass
    with _lock:
        _in_use.clear()
        _trusted.difference_update({d for d in _trusted if d.startswith(root)})
    return freed


def main(argv: list[str] | None = None) -> int:
    """The command `python -m lazytorch.cache`: report, sweep or clear the cache."""
    ap = argparse.ArgumentParser(prog="python -m lazytorch.cache",
                                 description="lazytorch's compile cache: where it is, its size; "
                                             "clear it or trim it to its limit.")
    ap.add_argument("--clear", action="store_true", help="remove every entry")
    ap.add_argument("--sweep", action="store_true",
                    help=f"remove least recently used entries down to the limit ({ENV_SIZE})")
    args = ap.parse_args(argv)
    root = configured()
    if args.clear:
        freed = clear(root)
        print(f"cleared {root}: {freed / 2**20:.1f} MiB removed")
        return 0
    try:
        if args.sweep:
            print(f"swept {directory()}: {sweep() / 2**20:.1f} MiB removed")
        n, size = usage(directory())
    except CacheError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{directory()}: {n} entries, {size / 2**20:.1f} MiB of {size_limit() / 2**20:.0f} "
          f"MiB ({ENV_SIZE})")
    return 0


