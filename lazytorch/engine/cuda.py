"""The CUDA backend, assembled at the first use of a CUDA device (engine/__init__.py registers
start() with backends.register_lazy): the device's primary context through pycuda, the CUDA
renderer for its compute capability, nvcc's compiler loading cubins into the context, the
runtime's prepared calls and the caching allocator.

Importing this module imports no pycuda; start() raises runtime.cuda.driver.CudaUnavailable
(PyTorch's messages: no pycuda, no driver, no GPU) or, on a machine with a GPU but no nvcc,
CompileError, at the user's call that placed a tensor on "cuda".
"""
from __future__ import annotations

import threading

from ..runtime.cuda import driver
from . import backends

_lock = threading.Lock()


def start() -> None:
    """Register the "cuda" backend (device 0), or raise why CUDA cannot run here."""
    with _lock:
        if "cuda" in backends.device_types():
            return
        dev = driver.device()          # pycuda imported, cuInit, the primary context
        from ..compiler.codegen.cuda import CudaRenderer
        from ..runtime.cuda import nvcc
        from ..runtime.cuda.allocator import CudaAllocator
        from ..runtime.cuda.compiler import CudaCompiler
        from ..runtime.cuda.runtime import CudaRuntime
        nvcc.version()                 # (raises CompileError, naming what to install)
        major, minor = dev.capability()
        arch = 10 * major + minor
        runtime = CudaRuntime(dev.drv, dev.current)
        backends.register(backends.CompiledBackend(
            "cuda", "cuda", CudaRenderer(CudaRenderer.capabilities(arch), arch=arch),
            CudaCompiler(arch, load=runtime.load), runtime,
            CudaAllocator(dev.drv, dev.current), devices=1), default=True)


def backend():
    """The registered CUDA backend, or None before start()."""
    return backends.default("cuda") if "cuda" in backends.device_types() else None
