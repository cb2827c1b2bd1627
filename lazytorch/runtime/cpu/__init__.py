"""The CPU backend's runtime parts: the system C compiler (toolchain), the kernels' Compiler
(CCompiler: cc into the disk cache, indexed by kernel symbol), their Runtime (CRuntime:
ctypes), host memory (HostAllocator; HOST is the process's), the kernels' per-thread scratch
library and the thread count. The renderer is on the compiler side (lazytorch/compiler/); the
backend that joins them is registered in lazytorch/engine/."""
from .allocator import HOST, POOL_MIN_BYTES, HostAllocator
from ..symbols import INDEX
from .ccompiler import CCompiler
from .cruntime import CRuntime
from .threads import cores, get_num_threads, set_num_threads
from .toolchain import (
    CFLAGS,
    CompileError,
    Job,
    cache_key,
    cancel_compile,
    compiler,
    compiler_version,
    finish_compile,
    library,
    library_check,
    start_compile,
    target,
)

__all__ = ["CFLAGS", "HOST", "INDEX", "POOL_MIN_BYTES", "CCompiler", "CRuntime", "CompileError",
           "HostAllocator", "Job", "cache_key", "cancel_compile", "compiler", "compiler_version",
           "cores", "finish_compile", "get_num_threads", "library", "library_check",
           "set_num_threads", "start_compile", "target"]
