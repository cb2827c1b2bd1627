"""Kernels' scratch memory, shared by every kernel module: a small runtime library
(runtime/cpu/scratch.c) keeps one set of scratch buffers per thread, which empty_cache() can free.

The library is compiled once per machine into the disk cache, like the kernels, and loaded into
the process's global symbol scope before any kernel module: kernel modules call
`lazytorch_scratch` and `lazytorch_release` by name (their declarations are part of every
module's header, so of every kernel's symbol). A kernel module loaded without it fails to load
(ctypes binds every symbol at load) rather than run.
"""
from __future__ import annotations

import ctypes
import os
import threading

from . import toolchain

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scratch.c")
FOLDER = "runtime"   # its folder in the disk cache, apart from the kernels' modules
FLAGS = ["-O2", "-fPIC", "-shared", "-std=gnu11", "-pthread", "-fvisibility=hidden"]
SYMBOLS = ("lazytorch_scratch", "lazytorch_release", "lazytorch_scratch_trim",
           "lazytorch_scratch_bytes", "lazytorch_scratch_threads")

_lib: ctypes.CDLL | None = None
_lock = threading.Lock()


def load() -> ctypes.CDLL:
    """The runtime library, loaded (and first compiled, if the disk cache lacks it)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            with open(SOURCE) as f:
                text = f.read()
            lib = toolchain.library(text, FLAGS, FOLDER, list(SYMBOLS), mode=os.RTLD_GLOBAL)
            for name in ("lazytorch_scratch_trim", "lazytorch_scratch_bytes"):
                getattr(lib, name).restype = ctypes.c_size_t
                getattr(lib, name).argtypes = []
            lib.lazytorch_scratch_threads.argtypes = []
            _lib = lib
    return _lib


def held_bytes() -> int:
    """Bytes of scratch that all threads hold now."""
    return 0 if _lib is None else _lib.lazytorch_scratch_bytes()


def threads() -> int:
    """Threads holding a scratch record (every thread that has run a GEMM and not exited)."""
    return 0 if _lib is None else _lib.lazytorch_scratch_threads()


def release() -> int:
    """Free every thread's scratch buffers that no kernel is using; a buffer in use by a kernel
    running on another thread is freed when that kernel finishes with it. Returns the bytes
    still held."""
    return 0 if _lib is None else _lib.lazytorch_scratch_trim()
