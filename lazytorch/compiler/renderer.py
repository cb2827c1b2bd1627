"""The renderer side of a backend: what a device can do (Capabilities, read by the scheduler)
and the interface that turns scheduled kernels into source text (Renderer).

A backend's renderer is one object: the scheduler asks its capabilities which fused patterns
it has strategies for, the engine asks it for each kernel's source, for a module holding
kernels, and for a driver calling a plan's kernels in order."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable


def _none(kernel) -> bool:
    return False


@dataclass(frozen=True)
class Launch:
    """How a device with blocks of threads starts one kernel: the grid of blocks, the threads
    of a block (x, y, z each) and the bytes of dynamic shared memory per block."""

    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared: int = 0


@dataclass(frozen=True)
class Capabilities:
    """What the device and its renderer offer the scheduler.

    threads: the workers one kernel may split its work over; vector_bytes: the width of a
    vector register; max_block_threads: threads per block (0: the device has no blocks);
    shared_memory: bytes of shared memory per block (0: none). The strategies: gemm(kernel)
    and column_reduce(kernel) say whether the renderer has a strategy of its own for a
    kernel (a packed matrix product, a sum over a strided axis), which keeps it out of row
    fusion; row_kernels: whether row reductions feeding a map over the same rows may fuse
    into one kernel (compiler/rowfuse.py)."""

    threads: int = 1
    vector_bytes: int = 16
    max_block_threads: int = 0
    shared_memory: int = 0
    gemm: Callable[[object], bool] = _none
    column_reduce: Callable[[object], bool] = _none
    row_kernels: bool = False


class Renderer(ABC):
    """Kernel IR to source for one language dialect.

    `name` is the dialect's name (part of every kernel symbol); `caps` what it renders for.
    A kernel's source is a function; a module is the header and some functions; a driver is a
    function `name(void** p, void** f)` calling a plan's kernels in order: call (i, slots) runs
    the kernel at address f[i] on the slots `slots` of the pointer array p."""

    name: str
    caps: Capabilities

    @abstractmethod
    def render_kernel(self, k, fname: str) -> str:
        """The kernel `k` as a function named `fname`."""

    @abstractmethod
    def render_module(self, functions: list[str]) -> str:
        """One translation unit: the header and the rendered functions `functions`."""

    @abstractmethod
    def render_driver(self, name: str, calls: list[tuple[int, list[int]]]) -> str | None:
        """A function `name` running the calls (kernel address index, argument slots), or
        None where the language has no such host function: the plan then calls the kernels
        one by one through the runtime."""

    def launch(self, k) -> Launch | None:
        """The launch dimensions of kernel `k`, or None where a kernel is a plain function
        call (the CPU's): the plan hands them to the runtime's function()."""
        return None

    @abstractmethod
    def header(self) -> str:
        """The text every module may hold besides its kernels (part of each kernel's
        identity: a kernel's symbol hashes it with the kernel's source)."""
