"""The system C compiler: its identity and target (part of every disk-cache key), compiler runs
into the disk cache, and loading what they wrote. CCompiler (ccompiler.py) builds the kernels'
modules with it; the runtime's own libraries (cpu/scratch.py, runtime/native.py) use
start_compile/finish_compile and library() directly."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shlex
import shutil
import subprocess
from typing import Callable

from ... import config
from .. import cache
from ..protocol import CompileError
from . import elf

CFLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math",
          "-fopenmp", "-std=gnu11", "-w"]


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


def load(key: str, symbols: list[str] | tuple[str, ...], folder: str | None = None,
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
    lib = load(key, symbols, folder, mode)
    if lib is None:
        # (not a kernel: debug's compiler_runs counts kernel modules only)
        path = finish_compile(start_compile(source, key, flags, folder=folder, symbols=symbols),
                              count=False)
        try:
            lib = ctypes.CDLL(path, mode=mode)
        except OSError as e:
            raise CompileError(f"the module just compiled does not load: {e}") from None
    return lib


