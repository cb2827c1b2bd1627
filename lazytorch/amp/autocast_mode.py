"""torch.autocast / torch.amp.autocast: the autocast state of each device type.

The state is kept as PyTorch keeps it (`torch.is_autocast_enabled("cpu")` is True inside
`autocast("cpu")`, the dtype is `torch.get_autocast_dtype("cpu")`), and regions nest and
restore. A "cuda" region warns and disables itself, as PyTorch's does without CUDA; a CPU
region accepts only bfloat16 and float16, as PyTorch's. Inside a CPU region lazytorch computes
every op in its inputs' dtypes: the casts that PyTorch's CPU autocast makes (matmul, linear and
convolution inputs to the autocast dtype) are not made yet, so an autocast region computes what
the same code computes outside it.
"""
from __future__ import annotations

import functools
import threading
import warnings
from typing import Any, Callable

from ..ir import dtypes as _dt

__all__ = ["autocast", "custom_bwd", "custom_fwd", "is_autocast_available",
           "is_autocast_enabled", "set_autocast_enabled", "get_autocast_dtype",
           "set_autocast_dtype", "is_autocast_cpu_enabled", "set_autocast_cpu_enabled",
           "get_autocast_cpu_dtype", "set_autocast_cpu_dtype", "get_autocast_gpu_dtype",
           "set_autocast_gpu_dtype", "is_autocast_cache_enabled", "set_autocast_cache_enabled",
           "clear_autocast_cache"]

_DEVICE_TYPES = ("cpu", "cuda")
# PyTorch's defaults: bfloat16 on the CPU (torch.bfloat16 arrives with issue #13; until then the
# CPU default has no dtype to name), float16 on CUDA
_DEFAULT_DTYPE = {"cpu": getattr(_dt, "bfloat16", None), "cuda": _dt.float16}


class _State(threading.local):
    def __init__(self) -> None:
        self.enabled = {d: False for d in _DEVICE_TYPES}
        self.dtype = dict(_DEFAULT_DTYPE)
        self.cache = True


_state = _State()


def _device_type(device_type: str | None) -> str:
    d = "cuda" if device_type is None else str(device_type)
    if d not in _DEVICE_TYPES:
        raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: "
                           f"{d}")
    return d


def is_autocast_available(device_type: str) -> bool:
    """Whether autocast can be enabled for the device type: the CPU only, in this build."""
    return str(device_type) == "cpu"


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Inside an enabled autocast region of `device_type` (CUDA's when not given, as in
    PyTorch)?"""
    return _state.enabled[_device_type(device_type)]


def set_autocast_enabled(device_type, enabled: bool | None = None) -> None:
    """set_autocast_enabled(device_type, enabled), or the legacy set_autocast_enabled(enabled)
    for CUDA."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
    _state.enabled[_device_type(device_type)] = bool(enabled)


def get_autocast_dtype(device_type: str):
    return _state.dtype[_device_type(device_type)]


def set_autocast_dtype(device_type: str, dtype) -> None:
    _state.dtype[_device_type(device_type)] = _dt.to_dtype(dtype)


def is_autocast_cpu_enabled() -> bool:
    return is_autocast_enabled("cpu")


def set_autocast_cpu_enabled(enabled: bool) -> None:
    set_autocast_enabled("cpu", enabled)


def get_autocast_cpu_dtype():
    return get_autocast_dtype("cpu")


def set_autocast_cpu_dtype(dtype) -> None:
    set_autocast_dtype("cpu", dtype)


def get_autocast_gpu_dtype():
    return get_autocast_dtype("cuda")


def set_autocast_gpu_dtype(dtype) -> None:
    set_autocast_dtype("cuda", dtype)


def is_autocast_cache_enabled() -> bool:
    return _state.cache


def set_autocast_cache_enabled(enabled: bool) -> None:
    _state.cache = bool(enabled)


def clear_autocast_cache() -> None:
    """Nothing is cached: no casts are made."""


class autocast:
    """A region (context manager or decorator) in which autocast is enabled for a device
    type, with PyTorch's checks and warnings; see the module's docstring for what it computes."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        self.device = _device_type(device_type)
        self.fast_dtype = _dt.to_dtype(dtype) if dtype is not None else \
            get_autocast_dtype(self.device)
        self._cache_enabled = is_autocast_cache_enabled() if cache_enabled is None else \
            bool(cache_enabled)
        enabled = bool(enabled)
        if enabled and self.device == "cuda":
            warnings.warn("CUDA is not available or torch_xla is imported. Disabling autocast.",
                          UserWarning, stacklevel=2)
            enabled = False
        if enabled and self.device == "cpu" and (
                self.fast_dtype is None or self.fast_dtype not in _cpu_dtypes()):
            warnings.warn("In CPU autocast, but the target dtype is not supported. Disabling "
                          "autocast.\nCPU Autocast only supports dtypes of torch.bfloat16, "
                          "torch.float16 currently.", UserWarning, stacklevel=2)
            enabled = False
        self._enabled = enabled

    def __enter__(self) -> autocast:
        self._prev = (_state.enabled[self.device], _state.dtype[self.device], _state.cache)
        _state.enabled[self.device] = self._enabled
        _state.dtype[self.device] = self.fast_dtype
        _state.cache = self._cache_enabled
        return self

    def __exit__(self, *exc: Any) -> bool:
        _state.enabled[self.device], _state.dtype[self.device], _state.cache = self._prev
        return False

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return fn(*args, **kwargs)
        return wrapper


def _cpu_dtypes() -> tuple:
    return tuple(d for d in (getattr(_dt, "bfloat16", None), _dt.float16) if d is not None)


def custom_fwd(fwd: Callable | None = None, *, device_type: str | None = None,
               cast_inputs=None) -> Callable:
    """Decorator for a custom autograd forward. With `cast_inputs`, inside an enabled autocast
    region of the device type, the floating-point tensor arguments are cast to it and the
    forward runs with autocast disabled, as PyTorch's; otherwise it runs as it is."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    if cast_inputs is None:
        return fwd
    dev, to = _device_type(device_type), _dt.to_dtype(cast_inputs)

    def cast(x):
        from ..frontend.tensor import Tensor
        if isinstance(x, Tensor) and x.is_floating_point():
            return x.to(to)
        if isinstance(x, (list, tuple)):
            return type(x)(cast(v) for v in x)
        if isinstance(x, dict):
            return {k: cast(v) for k, v in x.items()}
        return x

    @functools.wraps(fwd)
    def forward(*args, **kwargs):
        if not is_autocast_enabled(dev):
            return fwd(*args, **kwargs)
        with autocast(dev, enabled=False):
            return fwd(*cast(args), **cast(kwargs))
    return forward


def custom_bwd(bwd: Callable | None = None, *, device_type: str | None = None) -> Callable:
    """Decorator for a custom autograd backward: it runs as it is (no casts are made)."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd
