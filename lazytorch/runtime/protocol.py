"""The runtime side of a backend: what turns rendered source into something that runs, and
the memory it runs on. A backend (lazytorch/engine/backends.py) is a renderer (compiler side)
and these three parts:

- Compiler: source to loaded modules, through the one content-addressed disk cache
  (runtime/cache.py), with an index from kernel symbol to the module defining it;
- Runtime: a loaded module's functions, their addresses, its fault flag;
- Allocator: device memory, and copies between it and host arrays.

The CPU's are in runtime/cpu/ (CCompiler, CRuntime, HostAllocator).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..ir.dtypes import DType


class CompileError(RuntimeError):
    """A compiler rejected a source, or wrote a module that cannot be used."""


class Compiler(ABC):
    """Source to modules, cached on disk by content (the compiler's identity and flags are part
    of every key) and indexed by the symbols they define."""

    name: str   # part of every disk-cache key of this compiler

    @abstractmethod
    def compile(self, sources: list[str], symbols: list[list[str]]) -> list[Any]:
        """Modules for `sources` (from the caches, else compiled, the misses at once);
        `symbols[i]` are the functions source i defines: checked in its module and indexed
        for find(). A cached module that fails its checks is compiled again; one just compiled
        that fails raises CompileError."""

    @abstractmethod
    def find(self, symbol: str) -> Any | None:
        """A module defining `symbol`, loaded already or found through the disk index, or
        None. A symbol names one definition (a hash of its source)."""

    def workers(self) -> int:
        """How many compiler processes may usefully run at once."""
        return 1


class Runtime(ABC):
    """What a loaded module offers the engine."""

    @abstractmethod
    def function(self, module: Any, name: str, nargs: int, launch: Any = None) -> Any:
        """A callable for function `name` of `module`, taking `nargs` buffer addresses;
        `launch` (compiler/renderer.py's Launch, or None) is how the renderer said to start
        it on a device with blocks of threads."""

    @abstractmethod
    def address(self, module: Any, name: str) -> int:
        """The address of function `name` of `module`."""

    @abstractmethod
    def fault_flag(self, module: Any) -> Any:
        """The flag (`.value`, nonzero after a fault; the reader clears it) that the module's
        kernels set on an integer division by zero."""


class Allocator(ABC):
    """Buffers on one device; a buffer's address is what kernels are called with.

    `host_memory`: the buffers are host arrays of the value's bytes that the front end may
    read as they are (the CPU's); any other device's are reached only through to_host and
    from_host copies."""

    host_memory: bool = False

    @abstractmethod
    def alloc(self, nbytes: int) -> tuple[Any, int]:
        """A new buffer of `nbytes` (possibly a reused one nothing refers to any more) and its
        address."""

    def arena(self, nbytes: int) -> tuple[Any, int]:
        """A buffer of `nbytes` that a plan keeps across runs (its intermediates) and its
        address: never shared with alloc's reuse."""
        return self.alloc(nbytes)

    @abstractmethod
    def address(self, buffer: Any) -> int:
        """The address of a buffer this allocator made."""

    @abstractmethod
    def from_host(self, array: np.ndarray) -> tuple[Any, int]:
        """A buffer holding a C-contiguous host array's bytes, and its address."""

    @abstractmethod
    def to_host(self, buffer: Any, dtype: DType, shape: tuple[int, ...]) -> np.ndarray:
        """The buffer's data as a host array of `dtype` and `shape`."""

    def release(self) -> None:
        """Give back the memory kept for reuse (empty_cache())."""
        return None
