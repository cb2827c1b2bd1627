"""torch.cuda for this CPU-only build: no GPU exists, and nothing pretends one does.

Queries answer honestly (is_available() is False, device_count() is 0), seeding is accepted and
ignored (as PyTorch queues it until CUDA starts), and anything that needs a device raises
PyTorch's AssertionError.
"""
from __future__ import annotations

from ..runtime import memory

_NOT_COMPILED = "Torch not compiled with CUDA enabled"


def _lazy_init() -> None:
    raise AssertionError(_NOT_COMPILED)


def is_available() -> bool:
    """False: this build has no CUDA."""
    return False


def device_count() -> int:
    """0: this build sees no CUDA devices."""
    return 0


def is_initialized() -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Accept a seed for the (absent) current GPU; nothing to seed."""
    int(seed)


def manual_seed_all(seed: int) -> None:
    """Accept a seed for all (absent) GPUs; nothing to seed."""
    int(seed)


def seed() -> None:
    """Nothing to seed."""


def seed_all() -> None:
    """Nothing to seed."""


def initial_seed() -> int:
    _lazy_init()
    return 0


def synchronize(device=None) -> None:
    _lazy_init()


def current_device() -> int:
    _lazy_init()
    return 0


def get_device_name(device=None) -> str:
    _lazy_init()
    return ""


def get_device_capability(device=None) -> tuple[int, int]:
    _lazy_init()
    return (0, 0)


def get_device_properties(device=None):
    _lazy_init()


def set_device(device) -> None:
    _lazy_init()


def empty_cache() -> None:
    """Free the memory kept for reuse (this build's is host memory: the buffer pool, cached
    plans' scratch arrays and kernels' scratch; see lazytorch.runtime.memory.empty_cache)."""
    memory.empty_cache()


def memory_allocated(device=None) -> int:
    """0 bytes: no CUDA memory is in use."""
    return 0


def max_memory_allocated(device=None) -> int:
    return 0


def memory_reserved(device=None) -> int:
    return 0


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


from . import amp  # noqa: E402  (torch.cuda.amp, after the module's own names)
