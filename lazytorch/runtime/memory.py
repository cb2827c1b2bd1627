"""Realized data: each BUFFER node's buffer lives in a side table for as long as the node does.

A buffer is a host array (a numpy array) or, made by a device's Allocator, a buffer on that
device. Front-end code reads a buffer's value through host_data() only, which copies a device
buffer to the host.
"""
from __future__ import annotations

import ctypes
import functools
import itertools
from typing import Any, Callable

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import Node, NodeTable, new_node
from ..ir.ops import Op
from . import native
from .cpu import HOST, allocator, scratch
from .cpu.allocator import address_of_py
from .protocol import Allocator

# BUFFER node -> (its buffer, the buffer's address); the entry vanishes with the node, so a
# buffer's memory lives exactly as long as its node
_BUFS: NodeTable = NodeTable()
# BUFFER node -> the allocator of its buffer, for buffers not in host memory
_DEVICE: NodeTable = NodeTable()
_BUF_D, _DEVICE_D = _BUFS.d, _DEVICE.d   # (by id: for the paths every buffer takes)
# device type -> the allocator of its memory, for the device types whose buffers are not host
# arrays (the engine registers them with their backends)
ALLOCATORS: dict[str, Allocator] = {}
_ids = itertools.count()
_BUFFER = Op.BUFFER

address_of = address_of_py   # the compiled one (runtime/native) unless that is off: below


def buffer_node(arr: np.ndarray, dtype: dt.DType | None = None, ptr: int | None = None,
                device: str = "cpu") -> Node:
    """A new BUFFER node on `device` holding `arr` (C-contiguous, in the node's dtype; not copied
    if it already is, on a device in host memory; copied there through the device's allocator
    otherwise). `ptr`, when the caller knows it, is arr's address."""
    d = dtype or dt.from_numpy(arr.dtype)
    if type(arr) is not np.ndarray or arr.dtype != d.np or not arr.flags.c_contiguous:
        arr = np.array(arr, d.np, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        ptr = None
    if ALLOCATORS and device != "cpu":
        alloc = ALLOCATORS.get(device.partition(":")[0])
        if alloc is not None:
            buf, addr = alloc.from_host(arr)
            return device_buffer_node(buf, addr, tuple(arr.shape), d, device, alloc)
    node = new_node(_BUFFER, (), next(_ids), tuple(arr.shape), d, device)
    _BUF_D[id(node)] = (arr, address_of(arr) if ptr is None else ptr)
    return node


def adopt(value: Any, dtype: dt.DType, shape: tuple[int, ...], device: str, host: bool) -> Node:
    """A new BUFFER node on `device` for a value computed for it: `host`, a host array of the
    value (copied to the device unless its memory is the host's); else a buffer the device's
    allocator made, kept as it is."""
    alloc = ALLOCATORS.get(device.partition(":")[0]) if ALLOCATORS else None
    if host or alloc is None:
        return buffer_node(value, dtype, device=device)
    return device_buffer_node(value, alloc.address(value), shape, dtype, device, alloc)


def placeholder(shape: tuple[int, ...], dtype: dt.DType, device: str = "cpu") -> Node:
    """A new BUFFER node of `shape` and `dtype` on `device` that holds no data (a plan's
    stand-in for an input)."""
    return new_node(_BUFFER, (), next(_ids), shape, dtype, device)


def device_buffer_node(buffer: Any, address: int, shape: tuple[int, ...], dtype: dt.DType,
                       device: str, allocator: Allocator) -> Node:
    """A new BUFFER node on `device` owning `buffer`, memory of that device's `allocator` at
    `address`."""
    node = new_node(_BUFFER, (), next(_ids), tuple(shape), dtype, device)
    _BUF_D[id(node)] = (buffer, address)
    _DEVICE_D[id(node)] = allocator
    return node


def data(node: Node) -> Any:
    """A BUFFER node's buffer, wherever it is (the engine's view; the front end reads values
    through host_data)."""
    return _BUF_D[id(node)][0]


def host_data(node: Node) -> np.ndarray:
    """A BUFFER node's value as a host array of its dtype and shape: the array itself for a
    buffer in host memory, else a copy from its device."""
    buf = _BUF_D[id(node)][0]
    allocator = _DEVICE_D.get(id(node))
    return buf if allocator is None else allocator.to_host(buf, node.dtype, node.shape)


def address(node: Node) -> int:
    """The address of a BUFFER node's data (what kernels are called with)."""
    return _BUF_D[id(node)][1]


# what else empty_cache() frees: functions registered by the layers that keep memory for
# reuse (realize: the cached plans' scratch arrays)
RELEASERS: list[Callable[[], None]] = []


def empty_cache() -> None:
    """Give back the memory kept for reuse: the pool's free blocks, cached plans' scratch
    arrays (a plan replaying on another thread is waited for), every device allocator's free
    memory and every thread's kernel scratch (what a kernel running now holds is freed when it
    is done with it), then return the allocator's free memory to the system."""
    for release in RELEASERS:
        release()
    for device_allocator in list(ALLOCATORS.values()):   # (a device's free blocks)
        device_allocator.release()
    HOST.release()
    scratch.release()
    _trim_heap()


def pool_bytes() -> int:
    """Bytes of the host pool's blocks, in use or free."""
    return HOST.pool_bytes()


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
    allocator.use_address(mod.address)


if native.module() is not None:   # (chosen once, when lazytorch's import began)
    _use_native(native.module())
