"""A stand-in for pycuda.driver over host memory, for the tests of the CUDA backend's Python
parts on a machine without a GPU.

FakeDriver has what lazytorch's CUDA runtime uses of pycuda.driver (mem_alloc, memcpy_htod,
memcpy_dtoh, pagelocked_empty, mem_get_info, Device, Context, the error classes) with "device
memory" that is host memory no tensor may read directly: device pointers are the addresses of
blocks it owns, and it counts its allocations, frees and copies. `limit` makes mem_alloc fail
as a full GPU does. `cuda_backend(drv)` registers a "cuda" backend made of the CPU's renderer,
compiler and runtime over the CUDA allocator on this memory: every front-end path of a CUDA
device (placement, copies, pools, counters, pinning, save/load) runs, with CPU kernels.
"""
from __future__ import annotations

import ctypes
import itertools

import numpy as np

from lazytorch.compiler.codegen.c import CRenderer
from lazytorch.engine import backends
from lazytorch.runtime.cpu import CCompiler, CRuntime, cores
from lazytorch.runtime.cuda import driver
from lazytorch.runtime.cuda.allocator import CudaAllocator


class FakeError(Exception):
    pass


class FakeMemoryError(FakeError):
    pass


class FakeAllocation:
    """What mem_alloc returns: int() is the device pointer; free() gives the memory back."""

    def __init__(self, drv: FakeDriver, nbytes: int):
        self.drv = drv
        self.block = np.zeros(nbytes, np.uint8)
        self.ptr = self.block.ctypes.data
        drv.live[self.ptr] = self

    def __int__(self) -> int:
        return self.ptr

    def free(self) -> None:
        if self.block is not None:
            self.drv.frees += 1
            self.drv.used -= self.block.nbytes
            del self.drv.live[self.ptr]
            self.block = None


class FakeDriver:
    Error = FakeError
    MemoryError = FakeMemoryError

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self.live: dict[int, FakeAllocation] = {}
        self.used = self.allocs = self.frees = self.htod = self.dtoh = self.pinned = 0
        drv = self

        class Device:
            def __init__(self, ordinal):
                self.ordinal = ordinal

            @staticmethod
            def count():
                return 1

            def name(self):
                return "Fake GPU"

            def compute_capability(self):
                return (9, 0)

            def total_memory(self):
                return drv.limit or 1 << 34

            def get_attributes(self):
                return {"MULTIPROCESSOR_COUNT": 132}

            def retain_primary_context(self):
                return Context()

        class Context:
            pushes = 0

            def push(self):
                Context.pushes += 1

            @staticmethod
            def synchronize():
                return None

        self.Device, self.Context = Device, Context

    def init(self, flags: int = 0) -> None:
        return None

    def mem_alloc(self, nbytes: int) -> FakeAllocation:
        if self.limit is not None and self.used + nbytes > self.limit:
            raise FakeMemoryError("cuMemAlloc failed: out of memory")
        self.allocs += 1
        self.used += nbytes
        return FakeAllocation(self, nbytes)

    def mem_get_info(self) -> tuple[int, int]:
        total = self.limit or 1 << 34
        return total - self.used, total

    def _check(self, ptr: int, nbytes: int) -> None:
        for a in self.live.values():
            if a.ptr <= ptr and ptr + nbytes <= a.ptr + a.block.nbytes:
                return
        raise FakeError(f"invalid device pointer 0x{ptr:x} for {nbytes} bytes")

    def memcpy_htod(self, dst: int, src: np.ndarray) -> None:
        src = np.ascontiguousarray(src)
        self._check(int(dst), src.nbytes)
        self.htod += 1
        ctypes.memmove(int(dst), src.ctypes.data, src.nbytes)

    def memcpy_dtoh(self, dst: np.ndarray, src: int) -> None:
        self._check(int(src), dst.nbytes)
        self.dtoh += 1
        ctypes.memmove(dst.ctypes.data, int(src), dst.nbytes)

    def pagelocked_empty(self, shape, dtype) -> np.ndarray:
        self.pinned += 1
        return np.empty(shape, dtype)


def install(monkeypatch, drv: FakeDriver) -> None:
    """Make runtime.cuda.driver answer as if pycuda had loaded with `drv` (no pycuda
    imported)."""
    monkeypatch.setattr(driver, "_outcome", [drv])
    monkeypatch.setattr(driver, "_device", [driver.Device(drv)])
    monkeypatch.setattr(driver, "installed", lambda: True)


_made = itertools.count()


def cuda_backend(drv: FakeDriver) -> backends.CompiledBackend:
    """A "cuda" backend over `drv`'s memory: the CPU's kernels, the CUDA allocator (not
    registered: the caller registers it and unregisters it by its name after). Each has a name
    of its own, so that no plan cached for an earlier one (on another driver's memory) serves
    it."""
    return backends.CompiledBackend(
        f"fake-cuda-{next(_made)}", "cuda", CRenderer(CRenderer.capabilities(cores())), CCompiler(),
        CRuntime(), CudaAllocator(drv), devices=1)
