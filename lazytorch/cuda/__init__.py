"""torch.cuda: the CUDA device through lazytorch's CUDA backend (pycuda), as PyTorch's CUDA build
answers, and as its CPU-only build answers where pycuda is missing.

Queries that need no device answer without starting CUDA (is_available, device_count,
is_initialized, memory_allocated before any CUDA tensor, manual_seed): nothing imports pycuda
until a CUDA tensor is made or a function that needs the device is called, and where pycuda is
not installed nothing ever does. A function that needs the device starts the backend
(_lazy_init): without pycuda it raises PyTorch's CPU-only AssertionError ("Torch not compiled
with CUDA enabled"), without a driver or a GPU PyTorch's RuntimeError ("Found no NVIDIA driver
on your system...", "No CUDA GPUs are available").

The backend serves one device, cuda:0 (the first GPU the driver lists; CUDA_VISIBLE_DEVICES
chooses it). Random values of CUDA tensors are drawn by the CPU's generator and copied, so a
seed gives the CPU's values on either device: torch.manual_seed seeds them, and
torch.cuda.manual_seed has no generator of its own to seed.
"""
from __future__ import annotations

from typing import Any

from ..engine import backends
from ..engine import cuda as _engine
from ..runtime import memory
from ..runtime.cuda import driver

_NOT_COMPILED = driver.NOT_COMPILED


def _lazy_init() -> Any:
    """Start the CUDA backend (once) and return it; PyTorch's errors where it cannot run."""
    try:
        backends.start("cuda")
    except driver.CudaUnavailable as e:
        if e.kind == "not compiled":
            raise AssertionError(_NOT_COMPILED) from None
        raise
    return _engine.backend()


def _index(device: Any) -> int:
    """The index of `device` (None: the current one, an int, "cuda:N", a torch.device)."""
    if device is None:
        return 0
    if isinstance(device, int):
        return device
    from ..frontend.tensor import device as torch_device
    d = torch_device(device)
    if d.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return d.index or 0


def _check(device: Any) -> int:
    """The index of `device`, which must be the one the backend serves (PyTorch's error for
    an index the driver does not list)."""
    i = _index(device)
    n = device_count()
    if not 0 <= i < n:
        raise RuntimeError("CUDA error: invalid device ordinal")
    if i != 0:
        raise RuntimeError(f"lazytorch's CUDA backend serves cuda:0 only (of {n} devices): "
                           "choose the GPU with CUDA_VISIBLE_DEVICES")
    return i


def is_available() -> bool:
    """Whether a CUDA device can be used: pycuda imports, the driver starts and lists a GPU
    (False without importing anything where pycuda is not installed)."""
    return device_count() > 0


def device_count() -> int:
    """The CUDA devices the driver lists (0 where CUDA cannot run here)."""
    return driver.device_count()


def is_initialized() -> bool:
    """Whether this process has started its CUDA backend."""
    return "cuda" in backends.device_types()


def init() -> None:
    """Start CUDA now (it starts at the first CUDA tensor anyway)."""
    _lazy_init()


def current_device() -> int:
    """0: the backend's one device."""
    _lazy_init()
    return 0


def set_device(device: Any) -> None:
    """Accept cuda:0 (the one device served); another index raises."""
    _lazy_init()
    _check(device)


def synchronize(device: Any = None) -> None:
    """Wait for every kernel and copy issued on the device."""
    _lazy_init()
    _check(device)
    driver.device().synchronize()


def get_device_name(device: Any = None) -> str:
    _lazy_init()
    _check(device)
    return driver.device().name()


def get_device_capability(device: Any = None) -> tuple[int, int]:
    _lazy_init()
    _check(device)
    return driver.device().capability()


class _CudaDeviceProperties:
    """What get_device_properties reports: name, major, minor, total_memory,
    multi_processor_count."""

    def __init__(self, dev: driver.Device):
        self.name = dev.name()
        self.major, self.minor = dev.capability()
        self.total_memory = dev.total_memory()
        attrs = {str(k).rsplit(".", 1)[-1]: v for k, v in dev.attributes().items()}
        self.multi_processor_count = int(attrs.get("MULTIPROCESSOR_COUNT", 0))

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, "
                f"minor={self.minor}, total_memory={self.total_memory // 2**20}MB, "
                f"multi_processor_count={self.multi_processor_count})")


def get_device_properties(device: Any = None) -> _CudaDeviceProperties:
    _lazy_init()
    _check(device)
    return _CudaDeviceProperties(driver.device())


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether the GPU computes in bfloat16 (compute capability 8.0 or newer; lazytorch's
    kernels compute half types in float, so any GPU when emulation counts)."""
    if not is_available():
        return False
    return including_emulation or get_device_capability()[0] >= 8


# ----------------------------------------------------------------------------- random
def manual_seed(seed: int) -> None:
    """Accepted: CUDA tensors draw from the CPU's generator (torch.manual_seed seeds it)."""
    int(seed)


def manual_seed_all(seed: int) -> None:
    """Accepted: CUDA tensors draw from the CPU's generator (torch.manual_seed seeds it)."""
    int(seed)


def seed() -> None:
    """Nothing of its own to seed (see manual_seed)."""


def seed_all() -> None:
    """Nothing of its own to seed (see manual_seed)."""


def initial_seed() -> int:
    """The seed of the generator CUDA tensors draw from (the CPU's)."""
    _lazy_init()
    from ..frontend.creation import default_generator
    return default_generator.initial_seed()


# ----------------------------------------------------------------------------- memory
def _allocator():
    """The CUDA allocator, or None before the backend started (nothing is started here)."""
    b = _engine.backend()
    return None if b is None else b.allocator


def empty_cache() -> None:
    """Give back the memory kept for reuse: the CUDA allocator's free blocks and pinned host
    blocks (once CUDA has started), and the host's (lazytorch.runtime.memory.empty_cache)."""
    memory.empty_cache()


def memory_allocated(device: Any = None) -> int:
    """Bytes of device memory held by tensors and plans now (0 before CUDA starts)."""
    a = _allocator()
    return 0 if a is None else a.allocated


def max_memory_allocated(device: Any = None) -> int:
    """The most bytes held at once since the start or reset_peak_memory_stats()."""
    a = _allocator()
    return 0 if a is None else a.peak


def memory_reserved(device: Any = None) -> int:
    """Bytes of device memory the allocator holds, held by tensors or kept for reuse."""
    a = _allocator()
    return 0 if a is None else a.reserved


def max_memory_reserved(device: Any = None) -> int:
    return memory_reserved(device)


def reset_peak_memory_stats(device: Any = None) -> None:
    a = _allocator()
    if a is not None:
        a.reset_peak()


def reset_max_memory_allocated(device: Any = None) -> None:
    reset_peak_memory_stats(device)


def mem_get_info(device: Any = None) -> tuple[int, int]:
    """(free, total) bytes of the device, as the driver reports them."""
    _lazy_init()
    _check(device)
    return tuple(driver.device().current().mem_get_info())


from . import amp  # noqa: E402  (torch.cuda.amp, after the module's own names)
