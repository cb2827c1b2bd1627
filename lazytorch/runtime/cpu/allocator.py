"""The CPU's Allocator: buffers are numpy arrays in host memory, so from_host and to_host share
the array instead of copying it.

Output buffers of compiled plans come from a pool of blocks kept by exact size: a training
loop frees and needs the same sizes every step, and fresh large allocations cost page faults
(glibc maps big blocks from the OS and unmaps them on free). A block is free again when
nothing but the pool refers to it: every array using its memory keeps it alive as its base.
"""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np

from ...ir.dtypes import DType
from ..protocol import Allocator

POOL_MIN_BYTES = 1 << 14
_POOL_FREE_KEEP = 2          # free blocks kept per size, beyond the ones in use


def address_of_py(a: np.ndarray) -> int:
    """The address of a C-contiguous array's first byte."""
    return a.ctypes.data


# the compiled one (runtime/native_prepare.c) once loaded: runtime/memory.py binds it
address_of: Callable[[np.ndarray], int] = address_of_py


def use_address(fn: Callable[[np.ndarray], int]) -> None:
    """Take `fn` (an array's address, faster) for address_of."""
    global address_of
    address_of = fn


class HostAllocator(Allocator):
    """Host memory: C-contiguous uint8 arrays."""

    host_memory = True

    def __init__(self):
        self._pool: dict[int, list[tuple[np.ndarray, int]]] = {}

    def alloc(self, nbytes: int) -> tuple[np.ndarray, int]:
        if nbytes < POOL_MIN_BYTES:
            a = np.empty(nbytes, np.uint8)
            return a, address_of(a)
        blocks = self._pool.setdefault(nbytes, [])
        found = None
        spare = 0
        for i in range(len(blocks) - 1, -1, -1):
            # references: the pool's tuple, and getrefcount's own argument
            if sys.getrefcount(blocks[i][0]) <= 2:
                if found is None:
                    found = blocks[i]
                else:
                    spare += 1
                    if spare > _POOL_FREE_KEEP:
                        del blocks[i]
        if found is not None:
            return found
        block = np.empty(nbytes, np.uint8)  # owns its memory: every view's base is the block
        entry = (block, address_of(block))
        blocks.append(entry)
        return entry

    def arena(self, nbytes: int) -> tuple[np.ndarray, int]:
        a = np.empty(nbytes, np.uint8)
        return a, address_of(a)

    def address(self, buffer: np.ndarray) -> int:
        return address_of(buffer)

    def from_host(self, array: np.ndarray) -> tuple[np.ndarray, int]:
        """The array itself (made C-contiguous if it is not)."""
        if not array.flags.c_contiguous:
            array = np.array(array, order="C")
        return array, address_of(array)

    def to_host(self, buffer: np.ndarray, dtype: DType, shape: tuple[int, ...]) -> np.ndarray:
        """The buffer itself, viewed as `dtype` and `shape` (no copy)."""
        if buffer.dtype != dtype.np or buffer.shape != shape:
            buffer = buffer.view(dtype.np).reshape(shape)
        return buffer

    def release(self) -> None:
        """Drop the pool's free blocks."""
        for size, blocks in list(self._pool.items()):
            blocks[:] = [b for b in blocks if sys.getrefcount(b[0]) > 2]
            if not blocks:
                del self._pool[size]

    def pool_bytes(self) -> int:
        """Bytes of the pool's blocks, in use or free."""
        return sum(b[0].nbytes for blocks in self._pool.values() for b in blocks)


# the process's host memory: the C backend's allocator, and what empty_cache() trims
HOST = HostAllocator()
