"""The CPU's threads: the cores this process may use, and the kernels' OpenMP team size."""
from __future__ import annotations

import ctypes
import functools
import os

# OpenMP threads that spin while waiting stall whole kernels when another process holds the
# other core (measured here: a 1024^3 matmul took 304 ms with spinning and 62 ms without);
# but a waiter that sleeps at once makes every barrier a futex round trip: a 256x128x784
# matmul's two threads ran no faster than one. A short spin (1000 pauses, tens of
# microseconds) covers the skew at a barrier inside a kernel and still sleeps between
# kernels: that matmul went from 770 to 420 us. Read when libgomp loads, so set them first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")



@functools.cache
def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


_threads: list[int] = []


def _gomp():
    try:
        return ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None


def set_num_threads(n: int) -> None:
    """Threads used by the kernels of this process (OpenMP's team size)."""
    if n < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer, but got {n}")
    lib = _gomp()
    if lib is not None:
        lib.omp_set_num_threads(int(n))
    _threads[:] = [int(n)]


def get_num_threads() -> int:
    """Threads used by the kernels of this process (the cores it may run on, unless set)."""
    if not _threads:
        try:
            _threads.append(len(os.sched_getaffinity(0)))
        except AttributeError:
            _threads.append(os.cpu_count() or 1)
    return _threads[0]
