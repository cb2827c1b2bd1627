"""Realized data: each BUFFER node's array lives in a side table for as long as the node does."""
from __future__ import annotations

import ctypes
import functools
import itertools
import sys
from typing import Callable

import numpy as np

from .. import dtypes as dt
from ..graph import ID_TABLES, Node, new_node
from ..ops import Op
from . import native, scratch

# id(BUFFER node) -> (its array, the array's address); the node-death callback drops the entry
# (graph.ID_TABLES), so a buffer's memory lives exactly as long as its node
_BUFS: dict[int, tuple[np.ndarray, int]] = {}
ID_TABLES.append(_BUFS)
_ids = itertools.count()
_BUFFER = Op.BUFFER


def address_of_py(a: np.ndarray) -> int:
    """The address of a C-contiguous array's first byte."""
    return a.ctypes.data


address_of = address_of_py   # the compiled one (runtime/native) unless that is off: below


def buffer_node(arr: np.ndarray, dtype: dt.DType | None = None, ptr: int | None = None,
                device: str = "cpu") -> Node:
    """A new BUFFER node on `device` owning `arr` (C-contiguous, in the node's dtype; not copied
    if it already is). `ptr`, when the caller knows it, is arr's address."""
    d = dtype or dt.from_numpy(arr.dtype)
    if type(arr) is not np.ndarray or arr.dtype != d.np or not arr.flags.c_contiguous:
        arr = np.array(arr, d.np, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        ptr = None
    node = new_node(_BUFFER, (), next(_ids), tuple(arr.shape), d, device)
    _BUFS[id(node)] = (arr, address_of(arr) if ptr is None else ptr)
    return node


def placeholder(shape: tuple[int, ...], dtype: dt.DType, device: str = "cpu") -> Node:
    """A new BUFFER node of `shape` and `dtype` on `device` that holds no data (a plan's
    stand-in for an input)."""
    return new_node(_BUFFER, (), next(_ids), shape, dtype, device)


def data(node: Node) -> np.ndarray:
    return _BUFS[id(node)][0]


def address(node: Node) -> int:
    """The address of a BUFFER node's data (what kernels are called with)."""
    return _BUFS[id(node)][1]


# Output buffers of compiled plans come from a pool of blocks kept by exact size: a training
# loop frees and needs the same sizes every step, and fresh large allocations cost page faults
# (glibc maps big blocks from the OS and unmaps them on free). A block is free again when
# nothing but the pool refers to it: every array using its memory keeps it alive as its base.
POOL_MIN_BYTES = 1 << 14
_POOL: dict[int, list[tuple[np.ndarray, int]]] = {}
_POOL_FREE_KEEP = 2          # free blocks kept per size, beyond the ones in use


def alloc(nbytes: int) -> tuple[np.ndarray, int]:
    """A C-contiguous uint8 array of `nbytes` and its address."""
    if nbytes < POOL_MIN_BYTES:
        a = np.empty(nbytes, np.uint8)
        return a, address_of(a)
    blocks = _POOL.setdefault(nbytes, [])
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


# what else empty_cache() frees: functions registered by the layers that keep memory for
# reuse (realize: the cached plans' scratch arrays)
RELEASERS: list[Callable[[], None]] = []


def empty_cache() -> None:
    """Give back the memory kept for reuse: the pool's free blocks, cached plans' scratch
    arrays (a plan replaying on another thread is waited for) and every thread's kernel
    scratch (what a kernel running now holds is freed when it is done with it), then return
    the allocator's free memory to the system."""
    for release in RELEASERS:
        release()
    for size, blocks in list(_POOL.items()):
        blocks[:] = [b for b in blocks if sys.getrefcount(b[0]) > 2]
        if not blocks:
            del _POOL[size]
    scratch.release()
    _trim_heap()


def pool_bytes() -> int:
    """Bytes of the pool's blocks, in use or free."""
    return sum(b[0].nbytes for blocks in _POOL.values() for b in blocks)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim   # glibc
    except (OSError, AttributeError):
        return None


def _trim_heap() -> None:
    """Return the C allocator's free memory to the system (glibc keeps freed blocks of up to
    32 MB in its heap, so a freed buffer may not leave the process's resident memory)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def live_buffers() -> int:
    return len(_BUFS)


def _use_native(mod) -> None:
    global address_of
    address_of = mod.address


if native.module() is not None:   # (chosen once, when lazytorch's import began)
    _use_native(native.module())
