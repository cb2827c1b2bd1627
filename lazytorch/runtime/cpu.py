"""The CPU runtime: compile C with the system cc into shared objects, cached on disk and in
memory, and load kernels through ctypes."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading

from .. import debug
from .files import atomic_write

# OpenMP threads that spin while waiting stall whole kernels when another process holds the
# other core (measured here: a 1024^3 matmul took 304 ms with spinning and 62 ms without);
# but a waiter that sleeps at once makes every barrier a futex round trip: a 256x128x784
# matmul's two threads ran no faster than one. A short spin (1000 pauses, tens of
# microseconds) covers the skew at a barrier inside a kernel and still sleeps between
# kernels: that matmul went from 770 to 420 us. Read when libgomp loads, so set them first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

CFLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math",
          "-fopenmp", "-std=gnu11", "-w"]


class CompileError(RuntimeError):
    pass


def compiler() -> str:
    return os.environ.get("CC", "cc")


@functools.cache
def compiler_version() -> str:
    try:
        out = subprocess.run([compiler(), "--version"], capture_output=True, text=True)
        return out.stdout.splitlines()[0] if out.stdout else "unknown"
    except OSError as e:
        raise CompileError(f"no C compiler: {compiler()!r} could not be run ({e}); "
                           "install gcc or set CC") from None


def cache_dir() -> str:
    d = os.environ.get("LAZYTORCH_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "lazytorch")
    os.makedirs(d, exist_ok=True)
    return d


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_key(source: str) -> str:
    return _sha("\0".join([source, compiler(), compiler_version(), *CFLAGS]).encode())


def _cached(key: str, folder: str | None = None) -> str | None:
    """Path of a valid cached .so for key (in `folder` of the cache, else the key's own); a
    damaged entry (checksum mismatch) is removed."""
    so = os.path.join(cache_dir(), folder or key[:2], key + ".so")
    try:
        with open(so, "rb") as f:
            data = f.read()
        with open(so + ".sha256") as f:
            want = f.read().strip()
    except OSError:
        return None
    if _sha(data) != want:
        for p in (so, so + ".sha256"):
            try:
                os.unlink(p)
            except OSError:
                pass
        return None
    return so


def _start_compile(source: str, key: str, flags: list[str] | None = None, nice: bool = False,
                   folder: str | None = None) -> tuple[subprocess.Popen, str, str]:
    """Start compiling `source` into the cache entry for `key` (CFLAGS unless `flags`; at low
    priority if `nice` and the system has a `nice` command; in `folder` as _cached)."""
    d = os.path.join(cache_dir(), folder or key[:2])
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, key + ".c")
    atomic_write(src, source.encode())
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".so")
    os.close(fd)
    prefix = ["nice", "-n", "10"] if nice and shutil.which("nice") else []
    proc = subprocess.Popen([*prefix, compiler(), *(CFLAGS if flags is None else flags), "-o",
                             tmp, src, "-lm"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, tmp, os.path.join(d, key + ".so")


def _finish_compile(proc: subprocess.Popen, tmp: str, so: str, count: bool = True) -> str:
    _, err = proc.communicate()
    if proc.returncode != 0:
        with contextlib.suppress(OSError):   # (gone if whoever stopped the run removed it)
            os.unlink(tmp)
        raise CompileError(f"cc failed (exit {proc.returncode}):\n{err}")
    with open(tmp, "rb") as f:
        data = f.read()
    os.replace(tmp, so)
    atomic_write(so + ".sha256", _sha(data).encode())
    if count:
        debug.STATS["compiler_runs"] += 1
    return so


_libs: dict[str, ctypes.CDLL] = {}    # loaded modules by cache key
_where: dict[str, str] = {}             # symbol -> cache key of a loaded module defining it
_lock = threading.Lock()


def _index_path(symbol: str) -> str:
    """The disk index entry naming the cached module that defines `symbol`."""
    return os.path.join(cache_dir(), "symbols", cache_key("symbol " + symbol))


def find(symbol: str) -> ctypes.CDLL | None:
    """A module defining `symbol`, already loaded or in the disk cache (where build() indexed
    it), or None: a kernel compiled once, in whatever module, is never compiled again.

    A symbol must name one definition: callers make it a hash of the function's source."""
    key = _where.get(symbol)
    if key is not None:
        return _libs[key]
    try:
        with open(_index_path(symbol)) as f:
            key = f.read().strip()
    except OSError:
        return None
    with _lock:
        lib = _libs.get(key)
    if lib is None:
        so = _cached(key)
        if so is None:
            return None
        lib = ctypes.CDLL(so)
        debug.STATS["compile_cache_hits"] += 1
    try:
        lib[symbol]
    except AttributeError:   # a stale entry: compile it again
        return None
    with _lock:
        lib = _libs.setdefault(key, lib)
        _where[symbol] = key
    return lib


def build(sources: list[str], symbols: list[list[str]] | None = None) -> list[ctypes.CDLL]:
    """Compile (or find in the caches) each C module; all misses compile in parallel (one
    compiler process each). `symbols[i]`, the functions source i defines, are indexed on disk
    and in memory for find()."""
    keys = [cache_key(s) for s in sources]
    paths: dict[str, str] = {}
    running = []
    for src, key in zip(sources, keys):
        if key in _libs or key in paths:
            continue
        so = _cached(key)
        if so is not None:
            paths[key] = so
            debug.STATS["compile_cache_hits"] += 1
        else:
            running.append((key, _start_compile(src, key)))
    errors = []
    for key, job in running:
        try:
            paths[key] = _finish_compile(*job)
        except CompileError as e:
            errors.append(e)
    if errors:
        raise errors[0]
    with _lock:
        for key, path in paths.items():
            if key not in _libs:
                _libs[key] = ctypes.CDLL(path)
    if symbols and paths:
        os.makedirs(os.path.join(cache_dir(), "symbols"), exist_ok=True)
    for key, syms in zip(keys, symbols or []):
        for sym in syms:
            if key in paths:
                atomic_write(_index_path(sym), key.encode())
            _where[sym] = key
    return [_libs[k] for k in keys]


def address(lib: ctypes.CDLL, name: str) -> int:
    """The address of function `name` of a loaded module."""
    return ctypes.cast(lib[name], ctypes.c_void_p).value


@functools.cache
def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def function(lib: ctypes.CDLL, name: str, nargs: int):
    fn = lib[name]
    fn.argtypes = [ctypes.c_void_p] * nargs
    fn.restype = None
    return fn


_threads: list[int] = []


def _gomp():
    try:
        return ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None


def set_num_threads(n: int) -> None:
    """Threads used by the kernels of this process (OpenMP's team size)."""
    if n < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer, but got {n}")
    lib = _gomp()
    if lib is not None:
        lib.omp_set_num_threads(int(n))
    _threads[:] = [int(n)]


def get_num_threads() -> int:
    if not _threads:
        try:
            _threads.append(len(os.sched_getaffinity(0)))
        except AttributeError:
            _threads.append(os.cpu_count() or 1)
    return _threads[0]
