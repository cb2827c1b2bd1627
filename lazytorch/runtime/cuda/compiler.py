"""The CUDA backend's Compiler: modules of kernels built by nvcc into cubins for one GPU
architecture through the one disk cache, loaded by the runtime's `load` (pycuda's
module_from_buffer on a GPU machine), and indexed by kernel symbol on disk and in memory, as
the CPU's CCompiler does: a kernel compiled once, in whatever module, is never compiled again.
Everything up to `load` runs without a GPU."""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

from ... import config
from .. import cache
from ..protocol import CompileError, Compiler
from . import nvcc

INDEX = "symbols"   # the cache folder naming, for each kernel symbol, the module defining it
_HEX = frozenset("0123456789abcdef")


class CudaCompiler(Compiler):
    """Kernel modules compiled by nvcc for compute capability `arch` (90: sm_90) and loaded
    by `load(cubin bytes) -> module`."""

    name = "nvcc"

    def __init__(self, arch: int, load: Callable[[bytes], Any], flags: list[str] | None = None):
        self.arch, self.load = arch, load
        self.flags = list(nvcc.FLAGS if flags is None else flags)
        self._mods: dict[str, Any] = {}     # loaded modules by cache key
        self._where: dict[str, str] = {}    # symbol -> cache key of a loaded module
        self._lock = threading.Lock()

    def key(self, source: str) -> str:
        """The disk-cache key of `source` compiled by this compiler."""
        return nvcc.key(source, self.arch, self.flags)

    def _index_key(self, symbol: str) -> str:
        return self.key("symbol " + symbol)

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

    def find(self, symbol: str) -> Any | None:
        k = self._where.get(symbol)
        if k is not None:
            return self._mods[k]
        raw = cache.read(self._index_key(symbol), INDEX)
        if raw is None:
            return None
        k = raw.decode("ascii", "replace").strip()
        if len(k) != 64 or not _HEX.issuperset(k):
            return None   # a damaged index entry: compile() writes it again
        with self._lock:
            mod = self._mods.get(k)
        if mod is None:
            data = nvcc.cached(k)
            if data is None:
                return None
            try:
                nvcc.defines(data, [symbol])
            except CompileError:   # a stale entry: compile it again
                return None
            mod = self._loaded(k, data)
            config.STATS["compile_cache_hits"] += 1
        with self._lock:
            self._where[symbol] = k
        return mod

    def compile(self, sources: list[str], symbols: list[list[str]] | None = None
                ) -> list[Any]:
        """(The misses compile in parallel, one nvcc process each, as many as workers().)"""
        syms = list(symbols or []) + [[]] * (len(sources) - len(symbols or []))
        built = nvcc.build(sources, self.arch, syms, self.flags, self.workers())
        mods = []
        for (k, data), want in zip(built, syms):
            mods.append(self._loaded(k, data))
            for sym in want:
                cache.write(self._index_key(sym), k.encode(), INDEX)
                with self._lock:
                    self._where[sym] = k
        return mods
