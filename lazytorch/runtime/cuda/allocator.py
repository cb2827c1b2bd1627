"""The CUDA backend's memory: a caching device allocator and page-locked host memory.

PyTorch's CUDACachingAllocator is the model. cuMemAlloc and cuMemFree synchronize the device
and cost tens of microseconds, and a training loop frees and needs the same sizes every step,
so freed blocks are kept by size class and lent again: a request is rounded up to its class
(512-byte steps below 1 MiB, then four classes per power of two), and a block goes back to its
class's free list when the buffer lent over it dies (the last BUFFER node or plan holding it).
empty_cache() (release) gives the free blocks back to the driver; an allocation the driver
refuses is retried once after that, then raises PyTorch's out-of-memory message.

The counters are PyTorch's: memory_allocated (bytes of blocks lent now), max_memory_allocated
(their peak since the start or reset_peak()), memory_reserved (every block held, lent or free).

`drv` is pycuda.driver's interface, or anything with its mem_alloc, memcpy_htod, memcpy_dtoh
and pagelocked_empty (the tests give one over host memory).
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable

import numpy as np

from ...ir.dtypes import DType
from ..protocol import Allocator

SMALL = 1 << 20          # below: 512-byte steps; from here on: four classes per power of two
STEP = 512
_PIN_FREE_KEEP = 2       # free pinned blocks kept per size, beyond the ones in use


def size_class(nbytes: int) -> int:
    """The bytes of the block that serves a request of `nbytes` (at least one step, so that
    every buffer has an address of its own)."""
    if nbytes <= SMALL:
        return max(STEP, -(-nbytes // STEP) * STEP)
    quarter = 1 << (nbytes - 1).bit_length() - 3       # a quarter of the power of two below
    return -(-nbytes // quarter) * quarter


class Block:
    """A device allocation the pool holds: its address, its bytes, pycuda's handle (whose
    death frees the memory)."""

    __slots__ = ("ptr", "size", "handle")

    def __init__(self, handle: Any, size: int):
        self.handle, self.size, self.ptr = handle, size, int(handle)


class CudaBuffer:
    """A block lent to one buffer: what BUFFER nodes and plans hold. When it dies, the block
    returns to its pool."""

    __slots__ = ("block", "pool", "__weakref__")

    def __init__(self, block: Block, pool: CudaAllocator):
        self.block, self.pool = block, pool

    @property
    def ptr(self) -> int:
        return self.block.ptr

    @property
    def nbytes(self) -> int:
        return self.block.size

    def __int__(self) -> int:
        return self.block.ptr

    def __del__(self) -> None:
        pool = self.pool
        if pool is not None:
            pool._give_back(self.block)

    def __repr__(self) -> str:
        return f"CudaBuffer(0x{self.block.ptr:x}, {self.block.size} bytes)"


class CudaAllocator(Allocator):
    """Device memory through a caching pool of size classes; `drv` is pycuda.driver or what
    stands for it, `current` (optional) makes the device's context current on the calling
    thread before each driver call and returns `drv`."""

    host_memory = False

    def __init__(self, drv: Any, current: Callable[[], Any] | None = None):
        self._drv = drv
        self._current = current or (lambda: drv)
        self._free: dict[int, list[Block]] = {}
        # reentrant: a buffer collected while the pool holds its lock (a garbage collection
        # started by an allocation inside) gives its block back on the same thread
        self._lock = threading.RLock()
        self.allocated = 0          # bytes of blocks lent now
        self.peak = 0               # the most lent at once since the start or reset_peak()
        self.reserved = 0           # bytes of every block held, lent or free
        self.driver_allocs = 0      # blocks asked of the driver
        self.pinned = PinnedPool(drv, self._current)

    # ------------------------------------------------------------------ the pool
    def _lend(self, nbytes: int) -> CudaBuffer:
        size = size_class(nbytes)
        with self._lock:
            free = self._free.get(size)
            block = free.pop() if free else None
            if block is None:
                block = self._new_block(size)
            self.allocated += size
            if self.allocated > self.peak:
                self.peak = self.allocated
        return CudaBuffer(block, self)

    def _new_block(self, size: int) -> Block:
        drv = self._current()
        try:
            handle = drv.mem_alloc(size)
        except drv.MemoryError:
            self._release_locked()      # the cached blocks first, then once more
            try:
                handle = drv.mem_alloc(size)
            except drv.MemoryError:
                raise self._out_of_memory(size) from None
        self.reserved += size
        self.driver_allocs += 1
        return Block(handle, size)

    def _out_of_memory(self, size: int) -> RuntimeError:
        mib = 2 ** 20
        free = total = None
        try:
            free, total = self._drv.mem_get_info()
        except Exception:   # (a driver in a bad state: the message says less)
            pass
        where = "" if total is None else (f" GPU 0 has a total capacity of {total / 2**30:.2f} "
                                          f"GiB of which {free / mib:.2f} MiB is free.")
        cached = (self.reserved - self.allocated) / mib
        return RuntimeError(f"CUDA out of memory. Tried to allocate {size / mib:.2f} MiB."
                            f"{where} Of the allocated memory {self.allocated / mib:.2f} MiB "
                            f"is allocated by lazytorch, and {cached:.2f} MiB is reserved by "
                            "lazytorch but unallocated.")

    def _give_back(self, block: Block) -> None:
        """A lent block is free again (its buffer died)."""
        try:
            with self._lock:
                self.allocated -= block.size
                self._free.setdefault(block.size, []).append(block)
        except Exception:   # (interpreter shutdown: the driver frees the memory with the
            pass            # context)

    def _release_locked(self) -> None:
        for blocks in self._free.values():
            for b in blocks:
                self.reserved -= b.size
                b.handle.free()
        self._free.clear()

    # ------------------------------------------------------------------ Allocator
    def alloc(self, nbytes: int) -> tuple[CudaBuffer, int]:
        buf = self._lend(nbytes)
        return buf, buf.block.ptr

    def arena(self, nbytes: int) -> tuple[CudaBuffer, int]:
        """A block lent to the plan for as long as it keeps the buffer (its scratch)."""
        return self.alloc(nbytes)

    def address(self, buffer: CudaBuffer) -> int:
        return buffer.block.ptr

    def from_host(self, array: np.ndarray) -> tuple[CudaBuffer, int]:
        """A new device buffer holding the array's bytes (copied now)."""
        if not array.flags.c_contiguous:
            array = np.array(array, order="C")
        buf = self._lend(array.nbytes)
        if array.nbytes:
            drv = self._current()
            drv.memcpy_htod(buf.block.ptr, _bytes(array))
        return buf, buf.block.ptr

    def to_host(self, buffer: CudaBuffer, dtype: DType, shape: tuple[int, ...]) -> np.ndarray:
        """The buffer's first bytes as a new host array of `dtype` and `shape` (copied now,
        after the kernels issued before it)."""
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        raw = np.empty(n, np.uint8)
        if n:
            self._current().memcpy_dtoh(raw, buffer.block.ptr)
        return raw.view(dtype.np).reshape(shape)

    def release(self) -> None:
        """Give the free blocks (and the free pinned host blocks) back to the driver."""
        with self._lock:
            self._release_locked()
        self.pinned.release()

    # ------------------------------------------------------------------ counters
    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.allocated

    def cached_blocks(self) -> int:
        """Free blocks kept for reuse."""
        return sum(len(b) for b in self._free.values())

    def pin(self, array: np.ndarray) -> np.ndarray:
        """A copy of the host array in page-locked memory (see PinnedPool)."""
        return self.pinned.copy(array)


def _bytes(array: np.ndarray) -> np.ndarray:
    """The array's bytes as a 1-d uint8 array (the same memory; any dtype, 0-d included)."""
    return array.reshape(-1).view(np.uint8) if array.ndim else array.reshape(1).view(np.uint8)


class PinnedPool:
    """Page-locked host memory, which the GPU copies from and to without staging (what
    DataLoader(pin_memory=True) and Tensor.pin_memory() give tensors). Allocating it is slow
    (it is mapped for the device), so blocks are kept by exact size and reused once no array
    uses them, as the host pool does (an array made from a block keeps it alive as its base)."""

    def __init__(self, drv: Any, current: Callable[[], Any]):
        self._drv, self._current = drv, current
        self._blocks: dict[int, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def empty(self, nbytes: int) -> np.ndarray:
        """A page-locked uint8 block of at least `nbytes` that no array uses."""
        nbytes = max(nbytes, 1)
        with self._lock:
            blocks = self._blocks.setdefault(nbytes, [])
            found = None
            spare = 0
            for i in range(len(blocks) - 1, -1, -1):
                # references: the pool's list and getrefcount's argument (a view adds its own)
                if sys.getrefcount(blocks[i]) <= 2:
                    if found is None:
                        found = blocks[i]
                    else:
                        spare += 1
                        if spare > _PIN_FREE_KEEP:
                            del blocks[i]
            if found is not None:
                return found
            block = self._current().pagelocked_empty(nbytes, np.uint8)
            blocks.append(block)
            return block

    def copy(self, array: np.ndarray) -> np.ndarray:
        """The array's values in a page-locked block, as an array of its dtype and shape."""
        if not array.flags.c_contiguous:   # (ascontiguousarray would make 0-d arrays 1-d)
            array = np.array(array, order="C")
        out = self.empty(array.nbytes)[:array.nbytes].view(array.dtype).reshape(array.shape)
        np.copyto(out, array)
        return out

    def holds(self, array: np.ndarray) -> bool:
        """Whether the array's memory lies in one of the pool's blocks."""
        addr = array.ctypes.data
        with self._lock:
            return any(b.ctypes.data <= addr < b.ctypes.data + b.nbytes
                       for bs in self._blocks.values() for b in bs)

    def release(self) -> None:
        """Drop the blocks no array uses."""
        with self._lock:
            for size in list(self._blocks):
                blocks = self._blocks[size]
                for i in range(len(blocks) - 1, -1, -1):
                    if sys.getrefcount(blocks[i]) <= 2:
                        del blocks[i]
                if not blocks:
                    del self._blocks[size]

    def bytes(self) -> int:
        """Bytes of the pool's blocks, in use or free."""
        with self._lock:
            return sum(b.nbytes for bs in self._blocks.values() for b in bs)
