"""Tensor creation: tensor, zeros, ones, arange, rand, ... and the seeded generator."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import const
from ..runtime import memory
from . import overflow
from .tensor import Tensor, _np_from_data, check_device


def _dtype(dtype, default: dt.DType | None = None) -> dt.DType:
    if dtype is None:
        return default or dt.get_default_dtype()
    return dt.to_dtype(dtype)


def _finish(t: Tensor, requires_grad: bool) -> Tensor:
    if requires_grad:
        t.requires_grad_(True)
    return t


def _sizes(size) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = tuple(int(s) for s in size)
    for s in out:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: "
                               f"{list(out)}")
    return out


def from_array(arr: np.ndarray, dtype: dt.DType | None = None, device: str = "cpu") -> Tensor:
    """A tensor over `arr` (not copied if it is C-contiguous in dtype) on the IR's `device`."""
    return Tensor._make(memory.buffer_node(arr, dtype, device=device))


def tensor(data: Any, *, dtype=None, device=None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of data (nested lists, numpy arrays, scalars, tensors)."""
    where = check_device(device)
    d = dt.to_dtype(dtype) if dtype is not None else None
    arr = np.array(_np_from_data(data, d), copy=True)
    t = from_array(arr, device=where)
    if requires_grad and not t.dtype.is_floating_point:
        raise RuntimeError("Only Tensors of floating point and complex dtype can require "
                           "gradients")
    return _finish(t, requires_grad)


def as_tensor(data: Any, dtype=None, device=None) -> Tensor:
    """data as a tensor, shared where dtype and device allow (a tensor, a numpy array)."""
    if isinstance(data, Tensor):
        out = data if dtype is None else data.to(dt.to_dtype(dtype))
        return out if device is None else out.to(device)
    if isinstance(data, np.ndarray) and check_device(device) == "cpu":
        return from_numpy(data) if dtype is None else tensor(data, dtype=dtype)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor over arr's memory (no copy when arr is C-contiguous)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    return from_array(arr, dt.from_numpy(arr.dtype))


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        d = {0: dt.bool_, 1: dt.int64, 2: dt.get_default_dtype()}[dt.scalar_category(fill_value)]
    else:
        d = dt.to_dtype(dtype)
    where = check_device(device)
    t = Tensor._make(const(overflow.scalar(fill_value, d), d, _sizes((size,)), where))
    return _finish(t, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    where = check_device(device)
    return _finish(Tensor._make(const(0, _dtype(dtype), _sizes(size), where)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    where = check_device(device)
    return _finish(Tensor._make(const(1, _dtype(dtype), _sizes(size), where)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, **_) -> Tensor:
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _like(fn):
    def like(input: Tensor, *args, dtype=None, device=None, requires_grad: bool = False,
             **_kw) -> Tensor:
        return fn(input.shape, *args, dtype=dtype or input.dtype, device=device or input.device,
                  requires_grad=requires_grad)
    like.__name__ = fn.__name__ + "_like"
    return like


zeros_like, ones_like, empty_like = _like(zeros), _like(ones), _like(empty)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None,
              requires_grad: bool = False, **_) -> Tensor:
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    where = check_device(device)
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0 and end != start:
        raise RuntimeError("upper bound and larger bound inconsistent with step sign")
    if dtype is None:
        floating = any(isinstance(v, float) for v in vals)
        d = dt.get_default_dtype() if floating else dt.int64
    else:
        d = dt.to_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    arr = (start + np.arange(n, dtype=np.float64) * step) if d.kind == "f" or any(
        isinstance(v, float) for v in vals) else np.arange(start, end, step, dtype=np.int64)
    return _finish(from_array(dt.astype(arr, d), device=where), requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    where = check_device(device)
    d = _dtype(dtype)
    if steps < 0:
        raise RuntimeError("linspace(): number of steps must be non-negative")
    arr = np.linspace(float(start), float(end), steps, dtype=np.float64)
    return _finish(from_array(dt.astype(arr, d), device=where), requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    where = check_device(device)
    arr = np.eye(n, n if m is None else m, dtype=_dtype(dtype).np)
    return _finish(from_array(arr, device=where), requires_grad)


# ---------------------------------------------------------------------------- randomness
class Generator:
    """torch.Generator: a seeded stream of random numbers (numpy's PCG64 underneath)."""

    def __init__(self, device="cpu"):
        self._seed = 67280421310721
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy) % (2 ** 63)
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        from .creation import tensor
        st = self._rng.bit_generator.state
        vals = [st["state"]["state"], st["state"]["inc"], st["has_uint32"], st["uinteger"]]
        raw = b"".join(int(v).to_bytes(16, "little") for v in vals)
        return tensor(np.frombuffer(raw, np.uint8).copy())

    def set_state(self, state: Tensor) -> Generator:
        raw = bytes(state._array().tobytes())
        v = [int.from_bytes(raw[i:i + 16], "little") for i in range(0, 64, 16)]
        self._rng.bit_generator.state = {"bit_generator": "PCG64",
                                         "state": {"state": v[0], "inc": v[1]},
                                         "has_uint32": v[2], "uinteger": v[3]}
        return self


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator: the same seed gives the same numbers."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(state: Tensor) -> None:
    default_generator.set_state(state)


def _rng(generator: Generator | None) -> np.random.Generator:
    return (generator or default_generator)._rng


def _floating_only(d: dt.DType, kernel: str) -> None:
    if not d.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for '
                                  f"'{dt.scalar_type_name(d)}'")


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    where = check_device(device)
    d = _dtype(dtype)
    _floating_only(d, "check_uniform_bounds")
    arr = _rng(generator).random(_sizes(size), dtype=np.float64)
    return _finish(from_array(dt.astype(arr, d), device=where), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    where = check_device(device)
    d = _dtype(dtype)
    _floating_only(d, "normal_kernel_cpu")
    arr = _rng(generator).standard_normal(_sizes(size), dtype=np.float64)
    return _finish(from_array(dt.astype(arr, d), device=where), requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= "
                           f"to={high}")
    where = check_device(device)
    d = _dtype(dtype, dt.int64)
    arr = _rng(generator).integers(low, high, _sizes((size,)), dtype=np.int64)
    return _finish(from_array(dt.astype(arr, d), device=where), requires_grad)


def randperm(n: int, *, generator=None, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    where = check_device(device)
    d = _dtype(dtype, dt.int64)
    return _finish(from_array(dt.astype(_rng(generator).permutation(n), d), device=where),
                   requires_grad)


def rand_like(input: Tensor, *, dtype=None, device=None, **kw) -> Tensor:
    return rand(input.shape, dtype=dtype or input.dtype, device=device or input.device, **kw)


def randn_like(input: Tensor, *, dtype=None, device=None, **kw) -> Tensor:
    return randn(input.shape, dtype=dtype or input.dtype, device=device or input.device, **kw)


def randint_like(input: Tensor, low, high=None, *, dtype=None, device=None, **kw) -> Tensor:
    return randint(low, high, input.shape, dtype=dtype or input.dtype,
                   device=device or input.device, **kw)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    if size is None:
        t = mean if isinstance(mean, Tensor) else std
        return randn(t.shape, generator=generator, device=t.device) * std + mean
    return randn(size, generator=generator, dtype=dtype, device=device) * std + mean
