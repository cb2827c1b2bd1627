"""The symbol index every kernel Compiler keeps: for each kernel symbol, the cache key of the
module that defines it, on disk (so a kernel compiled once, in whatever module and process, is
never compiled again) and in memory (the modules this process has loaded)."""
from __future__ import annotations

import threading
from typing import Any

from .. import config
from . import cache

INDEX = "symbols"   # the cache folder naming, for each kernel symbol, the module defining it
_HEX = frozenset("0123456789abcdef")


class SymbolIndex:
    """Loaded modules by cache key and the symbols found in them; a Compiler subclass gives
    `key(source)` and `_open(key, symbol)`, and may refine `_defines(module, symbol)`."""

    def __init__(self) -> None:
        self._mods: dict[str, Any] = {}     # loaded modules by cache key
        self._where: dict[str, str] = {}    # symbol -> cache key of a loaded module
        self._lock = threading.Lock()

    def key(self, source: str) -> str:
        raise NotImplementedError

    def _open(self, key: str, symbol: str) -> Any | None:
        """The cached module `key` loaded, or None when it is missing or does not define
        `symbol` (a stale or damaged entry: compile() builds it again)."""
        raise NotImplementedError

    def _defines(self, module: Any, symbol: str) -> bool:
        """Whether a loaded module defines `symbol` (checked when it was opened)."""
        return True

    def _index_key(self, symbol: str) -> str:
        """The disk index entry naming the cached module that defines `symbol`."""
        return self.key("symbol " + symbol)

    def find(self, symbol: str) -> Any | None:
        """The loaded module that defines `symbol`, through memory, then the disk index; None
        when no cached module is known to define it."""
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
            mod = self._open(k, symbol)
            if mod is None:
                return None
            config.STATS["compile_cache_hits"] += 1
        elif not self._defines(mod, symbol):
            return None   # a stale entry: compile it again
        with self._lock:
            mod = self._mods.setdefault(k, mod)
            self._where[symbol] = k
        return mod

    def _indexed(self, key: str, symbols: list[str], written: bool) -> None:
        """Record that module `key` defines `symbols` (on disk too when it was just built or
        loaded)."""
        for sym in symbols:
            if written:
                cache.write(self._index_key(sym), key.encode(), INDEX)
            with self._lock:
                self._where[sym] = key
