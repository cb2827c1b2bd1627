"""The CUDA backend's Runtime: modules loaded from cubins through pycuda, their kernels as
prepared calls with the launch dimensions the renderer gave, and their fault flags.

A kernel is called as the plan calls every kernel, with its buffers' device addresses (ints);
the call packs them once by a prepared format of pointers and launches on the default stream,
so kernels, and the copies made after them, run in order. The fault flag is the module's
`__device__ int lt_fault`, read and cleared through copies (each read waits for the kernels
before it).

`drv` is pycuda.driver or what stands for it (module_from_buffer, memcpy_htod, memcpy_dtoh);
`current` (optional) makes the device's context current on the calling thread and returns it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..protocol import Runtime


class FaultFlag:
    """A module's `lt_fault` in device memory: `.value` copies it to the host, and setting
    `.value` writes it (the plan clears a flag it found set)."""

    __slots__ = ("ptr", "_current")

    def __init__(self, ptr: int, current: Callable[[], Any]):
        self.ptr, self._current = ptr, current

    @property
    def value(self) -> int:
        out = np.zeros(1, np.int32)
        self._current().memcpy_dtoh(out, self.ptr)
        return int(out[0])

    @value.setter
    def value(self, v: int) -> None:
        self._current().memcpy_htod(self.ptr, np.array([v], np.int32))


class CudaRuntime(Runtime):
    """Kernels of pycuda modules, launched as prepared calls."""

    def __init__(self, drv: Any, current: Callable[[], Any] | None = None):
        self._drv = drv
        self._current = current or (lambda: drv)

    def load(self, cubin: bytes) -> Any:
        """A module from a cubin's bytes (what the compiler's `load` is given)."""
        return self._current().module_from_buffer(cubin)

    def function(self, module: Any, name: str, nargs: int, launch: Any = None) -> Callable:
        """kernel(*addresses): `name` of `module` launched with `launch`'s grid, block and
        dynamic shared bytes, its `nargs` arguments pointers."""
        if launch is None:
            raise ValueError(f"CUDA kernel {name} needs launch dimensions (the renderer's "
                             "launch() gave none)")
        fn = module.get_function(name)
        fn.prepare("P" * nargs)
        grid, block, shared = tuple(launch.grid), tuple(launch.block), int(launch.shared)
        call, current = fn.prepared_call, self._current
        if shared:
            def kernel(*ptrs: int) -> None:
                current()   # (the context, on a thread that has not used it yet)
                call(grid, block, *ptrs, shared_size=shared)
        else:
            def kernel(*ptrs: int) -> None:
                current()
                call(grid, block, *ptrs)
        kernel.function = fn   # (for tools that want pycuda's object)
        kernel.launch = launch
        return kernel

    def address(self, module: Any, name: str) -> int:
        """CUDA kernels have no host address (nothing calls them but a launch): checks that
        the module defines `name` and gives 0."""
        module.get_function(name)
        return 0

    def fault_flag(self, module: Any) -> FaultFlag:
        """The module's `__device__ int lt_fault`."""
        ptr, _size = module.get_global("lt_fault")
        return FaultFlag(int(ptr), self._current)
