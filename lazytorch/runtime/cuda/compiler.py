"""The CUDA backend's Compiler: modules of kernels built by nvcc into cubins for one GPU
architecture through the one disk cache, loaded by the runtime's `load` (pycuda's
module_from_buffer on a GPU machine), and indexed by kernel symbol on disk and in memory, as
the CPU's CCompiler does: a kernel compiled once, in whatever module, is never compiled again.
Everything up to `load` runs without a GPU."""
from __future__ import annotations

import os
from typing import Any, Callable

from ..protocol import CompileError, Compiler
from ..symbols import SymbolIndex
from . import nvcc


class CudaCompiler(SymbolIndex, Compiler):
    """Kernel modules compiled by nvcc for compute capability `arch` (90: sm_90) and loaded
    by `load(cubin bytes) -> module`."""

    name = "nvcc"

    def __init__(self, arch: int, load: Callable[[bytes], Any], flags: list[str] | None = None):
        self.arch, self.load = arch, load
        self.flags = list(nvcc.FLAGS if flags is None else flags)
        super().__init__()

    def key(self, source: str) -> str:
        """The disk-cache key of `source` compiled by this compiler."""
        return nvcc.key(source, self.arch, self.flags)

    def workers(self) -> int:
        return os.cpu_count() or 1

    def _loaded(self, k: str, data: bytes) -> Any:
        with self._lock:
            mod = self._mods.get(k)
        if mod is None:
            mod = self.load(data)
            with self._lock:
                mod = self._mods.setdefault(k, mod)
        return mod

    def _open(self, key: str, symbol: str) -> Any | None:
        data = nvcc.cached(key)
        if data is None:
            return None
        try:
            nvcc.defines(data, [symbol])
        except CompileError:   # a stale entry: compile it again
            return None
        return self._loaded(key, data)

    def compile(self, sources: list[str], symbols: list[list[str]] | None = None
                ) -> list[Any]:
        """(The misses compile in parallel, one nvcc process each, as many as workers().)"""
        syms = list(symbols or []) + [[]] * (len(sources) - len(symbols or []))
        built = nvcc.build(sources, self.arch, syms, self.flags, self.workers())
        mods = []
        for (k, data), want in zip(built, syms):
            mods.append(self._loaded(k, data))
            self._indexed(k, want, written=True)
        return mods
