"""nvcc, CUDA's compiler: where it is, its version and flags (part of every cache key), and
cubins for a GPU architecture through the one disk cache (runtime/cache.py). Nothing here
needs a GPU or a driver: nvcc compiles for an architecture it is told."""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import struct
import subprocess

from ... import config
from .. import cache
from ..protocol import CompileError

FOLDER = "cuda"                 # the cache folder of the cubins
# IEEE float semantics (no fast math), as the CPU's kernels; no warning for the prelude's
# helpers that a module does not call
FLAGS = ["-cubin", "-O3", "--diag-suppress=177"]
EM_CUDA = 190                   # a cubin's ELF machine
_DIRS = ("/usr/local/cuda/bin", "/opt/cuda/bin")


def find() -> str:
    """The nvcc to run: $NVCC, else the one on PATH, else CUDA's usual install folders."""
    env = os.environ.get("NVCC")
    if env:
        return env
    found = shutil.which("nvcc")
    if found:
        return found
    for d in _DIRS:
        p = os.path.join(d, "nvcc")
        if os.access(p, os.X_OK):
            return p
    raise CompileError("no nvcc: CUDA kernels are compiled with CUDA's nvcc; install the CUDA "
                       "toolkit, put its bin folder on PATH or set NVCC")


def available() -> bool:
    """Whether an nvcc that runs is there."""
    try:
        version()
    except CompileError:
        return False
    return True


@functools.cache
def _version(nvcc: str) -> str:
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True)
    except OSError as e:
        raise CompileError(f"nvcc {nvcc!r} could not be run: {e}") from None
    if out.returncode != 0:
        raise CompileError(f"nvcc {nvcc!r} --version failed:\n{out.stderr}")
    lines = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown"


def version() -> str:
    """nvcc's build line (`Build cuda_13.0.r13.0/compiler...`)."""
    return _version(find())


def arch_flag(arch: int) -> str:
    """The -arch flag of compute capability `arch` (90: sm_90)."""
    return f"-arch=sm_{arch}"


def key(source: str, arch: int, flags: list[str] | None = None) -> str:
    """The disk-cache key of `source` compiled for `arch`: the source, nvcc's version, the
    flags and the architecture."""
    return cache.key(source, "nvcc", version(), *(FLAGS if flags is None else flags),
                     arch_flag(arch))


def check(data: bytes) -> None:
    """Raise ValueError unless `data` is a complete cubin: a CUDA ELF whose section table lies
    inside it."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    machine, = struct.unpack_from("<H", data, 18)
    if machine != EM_CUDA:
        raise ValueError(f"ELF machine {machine}, not CUDA's ({EM_CUDA})")
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    if shoff + shentsize * shnum > len(data):
        raise ValueError("cut short: its section table lies past its end")


def defines(data: bytes, symbols: list[str] | tuple[str, ...]) -> None:
    """Raise CompileError unless the cubin `data` names every one of `symbols`."""
    for s in symbols:
        if s.encode() + b"\0" not in data:
            raise CompileError(f"the cubin defines no {s}")


def start(source: str, arch: int, flags: list[str] | None = None):
    """Start compiling `source` for `arch` unless it is cached: (key, None) on a hit, else
    (key, a job for finish())."""
    flags = FLAGS if flags is None else flags
    k = key(source, arch, flags)
    if cache.get(k, FOLDER, ".cubin", check) is not None:
        return k, None
    src = cache.write(k, source.encode(), FOLDER, ".cu")
    tmp = cache.new_file(k, FOLDER, ".cubin")
    proc = subprocess.Popen([find(), *flags, arch_flag(arch), "-o", tmp, src],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return k, (proc, tmp)


def finish(k: str, job, symbols: list[str] | tuple[str, ...] = ()) -> bytes:
    """The cubin of a start(): read from the cache, or when compiled, checked and stored.
    nvcc's errors raise CompileError with its log."""
    if job is not None:
        proc, tmp = job
        out, err = proc.communicate()
        if proc.returncode != 0:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise CompileError(f"nvcc failed (exit {proc.returncode}):\n{out}{err}")
        try:
            cache.put(tmp, k, FOLDER, ".cubin", check)
        except ValueError as e:
            raise CompileError(f"nvcc wrote an unusable cubin: {e}") from None
        config.STATS["compiler_runs"] += 1
    p = cache.get(k, FOLDER, ".cubin", check)
    if p is None:
        raise CompileError(f"the cubin of {k} is missing from the cache just after it was "
                           "stored")
    with open(p, "rb") as f:
        data = f.read()
    defines(data, symbols)
    return data


def cubin(source: str, arch: int, symbols: list[str] | tuple[str, ...] = (),
          flags: list[str] | None = None) -> bytes:
    """`source` compiled by nvcc for compute capability `arch` (a cached cubin when there is
    a sound one: a damaged entry is compiled again); CompileError unless it defines
    `symbols`."""
    k, job = start(source, arch, flags)
    return finish(k, job, symbols)


def build(sources: list[str], arch: int, symbols: list[list[str]] | None = None,
          flags: list[str] | None = None, jobs: int | None = None
          ) -> list[tuple[str, bytes]]:
    """(cache key, cubin) of each source, the misses compiled `jobs` at a time (one nvcc
    process each; by default as many as the machine has cores). The first error raises,
    after every run ended."""
    syms = symbols or [[] for _ in sources]
    jobs = jobs or os.cpu_count() or 1
    out: list[tuple[str, bytes] | None] = [None] * len(sources)
    running: list[tuple[int, str, object]] = []
    errors: list[CompileError] = []

    def settle(i: int, k: str, job) -> None:
        try:
            out[i] = (k, finish(k, job, syms[i]))
        except CompileError as e:
            errors.append(e)

    for i, src in enumerate(sources):
        k, job = start(src, arch, flags)
        if job is None:
            config.STATS["compile_cache_hits"] += 1
            settle(i, k, None)
            continue
        running.append((i, k, job))
        if len(running) >= jobs:
            settle(*running.pop(0))
    for entry in running:
        settle(*entry)
    if errors:
        raise errors[0]
    return out   # type: ignore[return-value]


def cubins(sources: list[str], arch: int, symbols: list[list[str]] | None = None,
           flags: list[str] | None = None, jobs: int | None = None) -> list[bytes]:
    """Several sources' cubins (build()'s, without the keys)."""
    return [c for _, c in build(sources, arch, symbols, flags, jobs)]


def cached(k: str) -> bytes | None:
    """The sound cubin stored under key `k`, or None."""
    p = cache.get(k, FOLDER, ".cubin", check)
    if p is None:
        return None
    with open(p, "rb") as f:
        return f.read()
