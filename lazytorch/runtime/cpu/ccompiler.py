"""The CPU's Compiler: C modules of kernels built with the system cc into the disk cache, loaded
through ctypes, and indexed by kernel symbol on disk and in memory, so that a kernel compiled
once, in whatever module, is never compiled again."""
from __future__ import annotations

import ctypes

from ... import config
from ..protocol import CompileError, Compiler
from ..symbols import SymbolIndex
from . import scratch, threads, toolchain


class CCompiler(SymbolIndex, Compiler):
    """Kernel modules compiled by cc with `flags` (toolchain.CFLAGS by default)."""

    name = "cc"

    def __init__(self, flags: list[str] | None = None):
        self.flags = list(toolchain.CFLAGS if flags is None else flags)
        super().__init__()

    def key(self, source: str) -> str:
        """The disk-cache key of `source` compiled by this compiler."""
        return toolchain.cache_key(source, self.flags)

    def workers(self) -> int:
        return threads.cores()

    @staticmethod
    def _load(key: str, symbols: list[str]) -> ctypes.CDLL | None:
        # kernel modules call the scratch library by name: it is loaded globally first
        scratch.load()
        return toolchain.load(key, symbols)

    def _open(self, key: str, symbol: str) -> ctypes.CDLL | None:
        lib = self._load(key, [symbol])
        return lib if lib is not None and self._defines(lib, symbol) else None

    def _defines(self, module: ctypes.CDLL, symbol: str) -> bool:
        try:
            module[symbol]
        except AttributeError:
            return False
        return True

    def compile(self, sources: list[str], symbols: list[list[str]] | None = None
                ) -> list[ctypes.CDLL]:
        """(All misses compile in parallel, one compiler process each.)"""
        keys = [self.key(s) for s in sources]
        syms = list(symbols or []) + [[]] * (len(sources) - len(symbols or []))
        loaded: dict[str, ctypes.CDLL] = {}
        running = []
        for src, key, want in zip(sources, keys, syms):
            if key in self._mods or key in loaded or any(k == key for k, _ in running):
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
                self._mods.setdefault(key, lib)
        for key, want in zip(keys, syms):
            self._indexed(key, want, written=key in loaded)
        return [self._mods[k] for k in keys]
