"""The CPU runtime: compile C with the system cc into shared objects, cached on disk and in
memory, and load kernels through ctypes."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shlex
import shutil
import subprocess
import threading
from typing import Callable

from .. import config
from . import cache, elf

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


def compiler_version() -> str:
    """The compiler's version line."""
    return _probe(compiler())[0]


def target() -> str:
    """What `-march=native` resolves to on this machine (the compiler's own target options),
    so that a cache shared between machines never hands one of them another's instructions."""
    return _probe(compiler())[1]


# the compiler's internal command line holds the resolved target in these options (gcc's cc1:
# -march=znver3 -mavx2 ... --param l1-cache-size=32; clang's -cc1: -target-cpu, -target-feature)
_TARGET_ARGS = ("--param", "-target-cpu", "-target-feature", "-tune-cpu", "-triple")


@functools.cache
def _probe(cc: str) -> tuple[str, str]:
    """(version, resolved target) of compiler `cc`, from one dry run of its driver (`-###`
    runs no compiler pass: ~5 ms, as `cc --version`)."""
    try:
        out = subprocess.run([cc, "-march=native", "-###", "-E", "-x", "c", os.devnull],
                             capture_output=True, text=True)
    except OSError as e:
        raise CompileError(f"no C compiler: {cc!r} could not be run ({e}); "
                           "install gcc or set CC") from None
    text = out.stderr + out.stdout
    version = next((ln.strip() for ln in text.splitlines() if " version " in ln), "unknown")
    for line in text.splitlines():
        words = line.split()
        if out.returncode == 0 and words and (words[0].endswith("cc1") or '"-cc1"' in words):
            args = shlex.split(line)
            kept = [a for i, a in enumerate(args)
                    if a.startswith("-m") or a.startswith("--param")
                    or (i > 0 and args[i - 1] in _TARGET_ARGS)]
            return version, " ".join(kept)
    # another driver: the target's predefined macros (a full preprocessor run, ~30 ms)
    macros = subprocess.run([cc, "-march=native", "-dM", "-E", "-x", "c", os.devnull],
                            capture_output=True, text=True)
    return version, cache.sha256((macros.stdout or text).encode())


def cache_key(source: str, flags: list[str] | None = None) -> str:
    """The disk cache key of `source` compiled with `flags` (CFLAGS by default): the source,
    the compiler and its version, the flags and, with -march=native, the resolved target."""
    flags = CFLAGS if flags is None else flags
    native_arch = ["target " + target()] if "-march=native" in flags else []
    return cache.key(source, compiler(), compiler_version(), *flags, *native_arch)


def _sha(data: bytes) -> str:   # (plan.py names kernels and drivers with it)
    return cache.sha256(data)


def library_check(symbols: list[str] | tuple[str, ...] = ()
                  ) -> Callable[[bytes], None] | None:
    """The structural check of a cached module: a complete ELF shared library for this
    machine defining `symbols` (nothing to check on a platform whose binaries are not ELF)."""
    if elf.host() is None:
        return None
    return lambda data: elf.check(data, symbols)


class Job:
    """A compiler run in flight, writing a temporary file of the cache."""

    __slots__ = ("proc", "tmp", "key", "folder", "symbols")

    def __init__(self, proc: subprocess.Popen, tmp: str, key: str, folder: str | None,
                 symbols: tuple[str, ...]):
        self.proc, self.tmp, self.key, self.folder, self.symbols = proc, tmp, key, folder, symbols


def start_compile(source: str, key: str, flags: list[str] | None = None, nice: bool = False,
                  folder: str | None = None, symbols: list[str] | tuple[str, ...] = ()) -> Job:
    """Start compiling `source` into the cache entry for `key` (CFLAGS unless `flags`; at low
    priority if `nice` and the system has a `nice` command; in cache folder `folder`, else
    the key's own) that must define `symbols`."""
    src = cache.write(key, source.encode(), folder, ".c")
    tmp = cache.new_file(key, folder, ".so")
    prefix = ["nice", "-n", "10"] if nice and shutil.which("nice") else []
    proc = subprocess.Popen([*prefix, compiler(), *(CFLAGS if flags is None else flags), "-o",
                             tmp, src, "-lm"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Job(proc, tmp, key, folder, tuple(symbols))


def finish_compile(job: Job, count: bool = True) -> str:
    """Wait for a compiler run and store its module in the cache (checked as a cached one
    would be); its path."""
    _, err = job.proc.communicate()
    if job.proc.returncode != 0:
        with contextlib.suppress(OSError):   # (gone if whoever stopped the run removed it)
            os.unlink(job.tmp)
        raise CompileError(f"cc failed (exit {job.proc.returncode}):\n{err}")
    try:
        path = cache.put(job.tmp, job.key, job.folder, ".so", library_check(job.symbols))
    except ValueError as e:
        raise CompileError(f"cc wrote an unusable module: {e}") from None
    if count:
        config.STATS["compiler_runs"] += 1
    return path


def cancel_compile(job: Job) -> None:
    """Stop a compiler run, leaving no partial file."""
    job.proc.kill()
    job.proc.wait()
    with contextlib.suppress(OSError):
        os.unlink(job.tmp)


_libs: dict[str, ctypes.CDLL] = {}    # loaded modules by cache key
_where: dict[str, str] = {}             # symbol -> cache key of a loaded module defining it
_lock = threading.Lock()
INDEX = "symbols"   # the cache folder naming, for each kernel symbol, the module defining it
_HEX = frozenset("0123456789abcdef")


def _index_key(symbol: str) -> str:
    """The disk index entry naming the cached module that defines `symbol`."""
    return cache_key("symbol " + symbol)


def _load(key: str, symbols: list[str] | tuple[str, ...], folder: str | None = None,
          mode: int = ctypes.DEFAULT_MODE) -> ctypes.CDLL | None:
    """The cached module of `key`, checked and loaded, or None (missing, or damaged: then it
    is removed, to be compiled again)."""
    path = cache.get(key, folder, ".so", library_check(symbols))
    if path is None:
        return None
    try:
        return ctypes.CDLL(path, mode=mode)
    except OSError:
        cache.discard(key, folder, ".so")
        return None


def library(source: str, flags: list[str], folder: str, symbols: list[str],
            mode: int = ctypes.DEFAULT_MODE) -> ctypes.CDLL:
    """A module of the runtime's own (not a kernel module) compiled with `flags` into its
    folder of the disk cache, and loaded with dlopen `mode`: from the cache if it is there and
    sound, else compiled (once: a module just compiled that fails is a CompileError)."""
    key = cache_key(source, flags)
    lib = _load(key, symbols, folder, mode)
    if lib is None:
        # (not a kernel: debug's compiler_runs counts kernel modules only)
        path = finish_compile(start_compile(source, key, flags, folder=folder, symbols=symbols),
                              count=False)
        try:
            lib = ctypes.CDLL(path, mode=mode)
        except OSError as e:
            raise CompileError(f"the module just compiled does not load: {e}") from None
    return lib


def find(symbol: str) -> ctypes.CDLL | None:
    """A module defining `symbol`, already loaded or in the disk cache (where build() indexed
    it), or None: a kernel compiled once, in whatever module, is never compiled again.

    A symbol must name one definition: callers make it a hash of the function's source."""
    key = _where.get(symbol)
    if key is not None:
        return _libs[key]
    raw = cache.read(_index_key(symbol), INDEX)
    if raw is None:
        return None
    key = raw.decode("ascii", "replace").strip()
    if len(key) != 64 or not _HEX.issuperset(key):
        return None   # a damaged index entry: build() writes it again
    with _lock:
        lib = _libs.get(key)
    if lib is None:
        lib = _load(key, [symbol])
        if lib is None:
            return None
        config.STATS["compile_cache_hits"] += 1
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
    compiler process each). `symbols[i]`, the functions source i defines, are checked in the
    module and indexed on disk and in memory for find(). A cached module that fails its
    checks or does not load is compiled again; one just compiled that fails is an error."""
    keys = [cache_key(s) for s in sources]
    syms = list(symbols or []) + [[]] * (len(sources) - len(symbols or []))
    loaded: dict[str, ctypes.CDLL] = {}
    running = []
    for src, key, want in zip(sources, keys, syms):
        if key in _libs or key in loaded or any(k == key for k, _ in running):
            continue
        lib = _load(key, want)
        if lib is not None:
            loaded[key] = lib
            config.STATS["compile_cache_hits"] += 1
        else:
            running.append((key, start_compile(src, key, symbols=want)))
    errors = []
    for key, job in running:
        try:
            path = finish_compile(job)
            try:
                loaded[key] = ctypes.CDLL(path)
            except OSError as e:
                raise CompileError(f"the module just compiled does not load: {e}") from None
        except CompileError as e:
            errors.append(e)
    if errors:
        raise errors[0]
    with _lock:
        for key, lib in loaded.items():
            _libs.setdefault(key, lib)
    for key, want in zip(keys, syms):
        for sym in want:
            if key in loaded:
                cache.write(_index_key(sym), key.encode(), INDEX)
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
