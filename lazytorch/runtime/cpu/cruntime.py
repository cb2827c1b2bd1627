"""The CPU's Runtime: a loaded module's functions through ctypes."""
from __future__ import annotations

import ctypes

from ..protocol import Runtime


class CRuntime(Runtime):
    """Functions of modules loaded with ctypes, called with buffer addresses."""

    def function(self, module: ctypes.CDLL, name: str, nargs: int, launch=None):
        fn = module[name]
        fn.argtypes = [ctypes.c_void_p] * nargs
        fn.restype = None
        return fn

    def address(self, module: ctypes.CDLL, name: str) -> int:
        return ctypes.cast(module[name], ctypes.c_void_p).value

    def fault_flag(self, module: ctypes.CDLL) -> ctypes.c_int:
        """The module's `int lt_fault`."""
        return ctypes.c_int.in_dll(module, "lt_fault")
