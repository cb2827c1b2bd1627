"""The CPU's Compiler: C modules of kernels built with the system cc into the disk cache, loaded
through ctypes, and indexed by kernel symbol on disk and in memory, so that a kernel compiled
once, in whatever module, is never compiled again."""
from __future__ import annotations

import ctypes
import threading

from ... import config
from .. import cache
from ..protocol import CompileError, Compiler
from . import scratch, threads, toolchain

INDEX = "symbols"   # the cache folder naming, for each kernel symbol, the module defining it
_HEX = frozenset("0123456789abcdef")


class CCompiler(Compiler):
    """Kernel modules compiled by cc with `flags` (toolchain.CFLAGS by default)."""

    name = "cc"

    def __init__(self, flags: list[str] | None = None):
        self.flags = list(toolchain.CFLAGS if flags is None else flags)
        self._libs: dict[str, ctypes.CDLL] = {}   # loaded modules by cache key
        self._where: dict[str, str] = {}          # symbol -> cache key of a loaded module
        self._lock = threading.Lock()

    def key(self, source: str) -> str:
        """The disk-cache key of `source` compiled by this compiler."""
        return toolchain.cache_key(source, self.flags)

    def _index_key(self, symbol: str) -> str:
        """The disk index entry naming the cached module that defines `symbol`."""
        return self.key("symbol " + symbol)

    def workers(self) -> int:
        return threads.cores()

    @staticmethod
    def _load(key: str, symbols: list[str]) -> ctypes.CDLL | None:
        # kernel modules call the scratch library by name: it is loaded globally first
        scratch.load()
        return toolchain.load(key, symbols)

    def find(self, symbol: str) -> ctypes.CDLL | None:
        key = self._where.get(symbol)
        if key is not None:
            return self._libs[key]
        raw = cache.read(self._index_key(symbol), INDEX)
        if raw is None:
            return None
        key = raw.decode("ascii", "replace").strip()
        if len(key) != 64 or not _HEX.issuperset(key):
            return None   # a damaged index entry: compile() writes it again
        with self._lock:
            lib = self._libs.get(key)
        if lib is None:
            lib = self._load(key, [symbol])
            if lib is None:
                return None
            config.STATS["compile_cache_hits"] += 1
        try:
            lib[symbol]
        except AttributeError:   # a stale entry: compile it again
            return None
        with self._lock:
            lib = self._libs.setdefault(key, lib)
            self._where[symbol] = key
        return lib

    def compile(self, sources: list[str], symbols: list[list[str]] | None = None
                ) -> list[ctypes.CDLL]:
        """(All misses compile in parallel, one compiler process each.)"""
        keys = [self.key(s) for s in sources]
        syms = list(symbols or []) + [[]] * (len(sources) - len(symbols or []))
        loaded: dict[str, ctypes.CDLL] = {}
        running = []
        for src, key, want in zip(sources, keys, syms):
            if key in self._libs or key in loaded or any(k == key for k, _ in running):
                continue
            lib = self._load(key, want)
            if lib is not None:
                loaded[key] = lib
                config.STATS["compile_cache_hits"] += 1
            else:
                running.append((key, toolchain.start_compile(src, key, self.flags,
                                                             symbols=want)))
        errors = []
        for key, job in running:
            try:
                path = toolchain.finish_compile(job)
                try:
                    loaded[key] = ctypes.CDLL(path)
                except OSError as e:
                    raise CompileError(f"the module just compiled does not load: {e}") from None
            except CompileError as e:
                errors.append(e)
        if errors:
            raise errors[0]
        with self._lock:
            for key, lib in loaded.items():
                self._libs.setdefault(key, lib)
        for key, want in zip(keys, syms):
            for sym in want:
                if key in loaded:
                    cache.write(self._index_key(sym), key.encode(), INDEX)
                self._where[sym] = key
        return [self._libs[k] for k in keys]
