"""pycuda, reached only when CUDA is first used: whether it can run here, PyTorch's messages when
it cannot, and the device this process computes on (its primary context).

Nothing here imports pycuda at import time: `installed()` asks the import system whether pycuda
exists without importing it, and `load()` imports and initializes it at the first CUDA tensor
(or a `lazytorch.cuda` query that needs the driver). pycuda's extension links the driver
library (libcuda.so.1), so on a machine without an NVIDIA driver `import pycuda.driver` itself
fails; with the library but no usable GPU, cuInit fails. Both are told apart from a missing
pycuda, and the outcome is kept: a process asks the driver once.
"""
from __future__ import annotations

import importlib.util
import threading
from typing import Any

# PyTorch's messages: a build without CUDA, a CUDA build on a machine without a driver or a GPU
NOT_COMPILED = "Torch not compiled with CUDA enabled"
NO_DRIVER = ("Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU "
             "and installed a driver from http://www.nvidia.com/Download/index.aspx")
NO_DEVICE = "No CUDA GPUs are available"
INSTALL = "lazytorch's CUDA backend needs pycuda (pip install 'lazytorch[cuda]')"


class CudaUnavailable(RuntimeError):
    """CUDA cannot be used in this process. `kind`: "not compiled" (pycuda is missing or does
    not import), "no driver" (no NVIDIA driver library, or cuInit failed) or "no device"; the
    message is PyTorch's, followed by the cause in parentheses."""

    def __init__(self, kind: str, message: str, cause: str = ""):
        # (a build without CUDA says what to install after a colon, as this one always has)
        text = message if not cause else f"{message}: {cause}" if kind == "not compiled" \
            else f"{message} ({cause})"
        super().__init__(text)
        self.kind, self.message, self.cause = kind, message, cause

    def again(self) -> CudaUnavailable:
        """The same error, new (a kept error raised again would grow its traceback)."""
        return CudaUnavailable(self.kind, self.message, self.cause)


# the outcome of load(): the initialized pycuda.driver module, or the CudaUnavailable to raise
_outcome: list[Any] = []
_lock = threading.Lock()


def installed() -> bool:
    """Whether pycuda can be found (nothing is imported)."""
    try:
        return importlib.util.find_spec("pycuda") is not None
    except (ImportError, ValueError):
        return False


def loaded() -> bool:
    """Whether load() has succeeded in this process."""
    return bool(_outcome) and not isinstance(_outcome[0], CudaUnavailable)


def load() -> Any:
    """pycuda.driver, with the driver initialized and at least one device, or CudaUnavailable
    saying why not (the same outcome every time)."""
    if not _outcome:
        with _lock:
            if not _outcome:
                try:
                    _outcome.append(_init())
                except CudaUnavailable as e:
                    _outcome.append(e)
    got = _outcome[0]
    if isinstance(got, CudaUnavailable):
        raise got.again() from None
    return got


def _init() -> Any:
    if not installed():
        raise CudaUnavailable("not compiled", NOT_COMPILED, INSTALL)
    try:
        import pycuda.driver as drv
    except ImportError as e:
        if "libcuda" in str(e):   # the extension's link to the driver library
            raise CudaUnavailable("no driver", NO_DRIVER, f"pycuda: {e}") from None
        raise CudaUnavailable("not compiled", NOT_COMPILED,
                              f"pycuda is installed but does not import: {e}") from None
    try:
        drv.init()
        count = drv.Device.count()
    except drv.Error as e:
        text = str(e)
        if "no CUDA-capable device" in text or "NO_DEVICE" in text:
            raise CudaUnavailable("no device", NO_DEVICE, f"pycuda: {text}") from None
        raise CudaUnavailable("no driver", NO_DRIVER, f"pycuda: {text}") from None
    if count == 0:
        raise CudaUnavailable("no device", NO_DEVICE, "the driver reports 0 devices")
    return drv


def device_count() -> int:
    """The CUDA devices the driver reports; 0 where CUDA cannot run (pycuda is imported only
    where it is installed)."""
    if not installed():
        return 0
    try:
        return load().Device.count()
    except CudaUnavailable:
        return 0


class Device:
    """The GPU this process computes on (device 0) and its primary context (the one the CUDA
    runtime, and so PyTorch or CuPy in the same process, also use), made current on each thread
    that calls current()."""

    def __init__(self, drv: Any, ordinal: int = 0):
        self.drv = drv
        self.ordinal = ordinal
        self.device = drv.Device(ordinal)
        self.context = self.device.retain_primary_context()
        self._local = threading.local()
        self.current()

    def current(self) -> Any:
        """pycuda.driver, with this device's context current on the calling thread."""
        local = self._local
        if not getattr(local, "pushed", False):
            self.context.push()
            local.pushed = True
        return self.drv

    def name(self) -> str:
        return self.device.name()

    def capability(self) -> tuple[int, int]:
        return tuple(self.device.compute_capability())

    def arch(self) -> str:
        """nvcc's name of the device's architecture ("sm_90")."""
        major, minor = self.capability()
        return f"sm_{major}{minor}"

    def total_memory(self) -> int:
        return int(self.device.total_memory())

    def attributes(self) -> dict:
        return self.device.get_attributes()

    def synchronize(self) -> None:
        """Wait for every kernel and copy issued on this device."""
        self.current().Context.synchronize()


_device: list[Device] = []


def device() -> Device:
    """The device (created at the first call: load() first, which may raise)."""
    if not _device:
        drv = load()
        with _lock:
            if not _device:
                _device.append(Device(drv))
    return _device[0]


def started() -> bool:
    """Whether the device's context exists in this process (device() was called)."""
    return bool(_device)
