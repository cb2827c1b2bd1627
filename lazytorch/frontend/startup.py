"""The process-wide switches a PyTorch script sets at start-up, as a lazy CPU build answers them.

`torch.compile` returns its argument: laziness already compiles (every realize fuses the pending
graph into generated C, and a repeated graph structure replays its compiled plan). The matmul
precision, deterministic-algorithm and warn-always settings are kept and reported back as
PyTorch does; they change no result here: float32 products are computed in float32, and the
generated kernels have no nondeterministic variants to choose from.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

__all__ = ["compile", "set_float32_matmul_precision", "get_float32_matmul_precision",
           "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
           "is_deterministic_algorithms_warn_only_enabled", "set_deterministic_debug_mode",
           "get_deterministic_debug_mode", "set_warn_always", "is_warn_always_enabled",
           "set_flush_denormal", "get_num_interop_threads", "set_num_interop_threads",
           "get_default_device", "set_default_device"]


class _Settings:
    matmul_precision = "highest"
    deterministic = False
    deterministic_warn_only = False
    warn_always = False
    interop_threads = 1


_s = _Settings()


def compile(model: Callable | None = None, *, fullgraph: bool = False, dynamic: bool | None = None,
            backend: str | Callable | None = None, mode: str | None = None,
            options: dict | None = None, disable: bool = False, **kwargs: Any):
    """torch.compile: returns `model` itself, working, since laziness already compiles: each
    realize fuses the pending graph into kernels of generated C, and a training or
    inference step that repeats a graph's structure replays the compiled plan. The options
    (backend, mode, fullgraph, dynamic, ...) are accepted and have nothing to select. Called
    without a model (`@torch.compile(mode=...)`), it returns a decorator doing the same."""
    if model is None:
        return lambda fn: fn
    if not callable(model):
        raise RuntimeError("torch.compile: the model must be callable (an nn.Module or a "
                           f"function), not {type(model).__name__}")
    return model


# ------------------------------------------------------------------------------- matmul
_PRECISIONS = ("highest", "high", "medium")


def set_float32_matmul_precision(precision: str) -> None:
    """Record the float32 matmul precision ("highest", "high" or "medium"). lazytorch always
    multiplies float32 in float32, which every level permits."""
    if precision not in _PRECISIONS:
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      f"setFloat32MatmulPrecision call has no effect.", UserWarning, stacklevel=2)
        return
    _s.matmul_precision = precision


def get_float32_matmul_precision() -> str:
    return _s.matmul_precision


# ------------------------------------------------------------------------------- determinism
_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Record the request; lazytorch's kernels are deterministic whatever it says."""
    _s.deterministic = bool(mode)
    _s.deterministic_warn_only = bool(mode) and bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _s.deterministic


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _s.deterministic_warn_only


def set_deterministic_debug_mode(debug_mode: str | int) -> None:
    """0/"default", 1/"warn", 2/"error", as use_deterministic_algorithms(False), (True,
    warn_only=True) and (True)."""
    if isinstance(debug_mode, str):
        if debug_mode not in _DEBUG_MODES:
            raise RuntimeError(f"invalid value of debug_mode, expected one of `default`, "
                               f"`warn`, `error`, but got {debug_mode}")
        debug_mode = _DEBUG_MODES[debug_mode]
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got "
                           f"{debug_mode}")
    use_deterministic_algorithms(debug_mode > 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    if not _s.deterministic:
        return 0
    return 1 if _s.deterministic_warn_only else 2


# ------------------------------------------------------------------------------- misc
def set_warn_always(b: bool) -> None:
    _s.warn_always = bool(b)


def is_warn_always_enabled() -> bool:
    return _s.warn_always


def set_flush_denormal(mode: bool) -> bool:
    """Whether the request holds: denormals are never flushed here (turning flushing on would
    change every float in the process, numpy's too), so True for False and False for True."""
    return not mode


def get_num_interop_threads() -> int:
    """1: realizes run one after another; kernels use `torch.get_num_threads()` threads."""
    return _s.interop_threads


def set_num_interop_threads(nthreads: int) -> None:
    """Accepted (a positive count) and recorded; realizes still run one after another."""
    if int(nthreads) <= 0:
        raise RuntimeError("Expected positive number of threads")
    _s.interop_threads = int(nthreads)


def get_default_device():
    """The device creation functions use when given none."""
    from .tensor import _DEVICES, DEFAULT_DEVICE
    return _DEVICES[DEFAULT_DEVICE[0]]


def set_default_device(device) -> None:
    """Make creation functions (tensor, zeros, randn, arange, ...) put their tensors on
    `device` when given none (None: the CPU); a device type no backend serves raises."""
    from .tensor import DEFAULT_DEVICE, check_device
    DEFAULT_DEVICE[0] = "cpu" if device is None else check_device(device)

