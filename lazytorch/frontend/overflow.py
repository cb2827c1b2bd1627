"""Checked conversion of Python values to a dtype, with PyTorch's overflow errors.

`torch.tensor(data, dtype=...)` and the scalar fills (`full`, `fill_`, `masked_fill`,
`index_fill`, `clamp`) refuse a value the dtype cannot hold, where a cast would wrap silently.
Arithmetic with a scalar (`uint8_tensor + 300`) wraps, as in PyTorch, and is not checked here.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes as dt

# the C++ type names PyTorch's scalar checks print (tensor() prints the dtype's name instead)
_CPP = {"uint8": "uint8_t", "int8": "int8_t", "int16": "short", "int32": "int",
        "int64": "int64_t", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
        "float32": "float", "float64": "double", "bool": "bool"}

_LONG_OVERFLOW = "Overflow when unpacking long long"


def _int_range(d: dt.DType) -> tuple[int, int]:
    """The values a conversion to integer dtype d accepts: a signed type its own range, an
    unsigned one [-max, max] (PyTorch lets -1 wrap to 255 for uint8)."""
    info = np.iinfo(d.np)
    return (int(info.min), int(info.max)) if d.kind == "i" else (-int(info.max), int(info.max))


def _fits(v, d: dt.DType) -> bool:
    if d.kind == "b":
        return True
    if d.kind == "f":
        if isinstance(v, float) and not math.isfinite(v):
            return True
        return abs(float(v)) <= dt.finfo(d).max if not _huge(v) else False
    if isinstance(v, float):
        if not math.isfinite(v):
            return False
        v = math.trunc(v)
    lo, hi = _int_range(d)
    return lo <= int(v) <= hi


def _huge(v) -> bool:
    return isinstance(v, int) and abs(v) > 1 << 1100   # beyond any float: float(v) raises


def scalar(value, d: dt.DType):
    """`value` (a Python number) for a fill of dtype d; raises as PyTorch does when d cannot
    hold it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return value
    v = value.item() if isinstance(value, np.number) else value
    if isinstance(v, int) and not -(1 << 64) < v < (1 << 64):
        raise OverflowError("int too big to convert")
    if not _fits(v, d):
        raise RuntimeError(f"value cannot be converted to type {_CPP.get(d.name, d.name)} "
                           "without overflow")
    if d.kind == "u" and v < 0:
        return int(v) % (int(np.iinfo(d.np).max) + 1)    # -1 fills a uint8 with 255
    return value


def data(arr: np.ndarray, d: dt.DType | None, source) -> None:
    """Check `arr`, the numpy array made from tensor()'s Python data `source`, against the
    target dtype d (None: the inferred dtype)."""
    if d is None or d.kind in "iu":
        if arr.dtype.kind == "u" and arr.dtype.itemsize == 8:
            # numpy gives uint64 only for ints past int64's maximum
            raise ValueError(_LONG_OVERFLOW)
        if arr.dtype.kind == "f" and arr.size and np.abs(arr).max() >= 2.0 ** 63:
            # ints past int64 that numpy made floats of: fine where a float in the data
            # makes the tensor a float one
            object_data(source, floats_ok=d is None)
    if d is None or d.kind not in "iu" or arr.size == 0:
        return
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        bad = not finite.all()
        if not bad:
            t = np.trunc(arr.astype(np.float64))
            lo, hi = _int_range(d)
            bad = bool((t < lo).any() or (t > hi).any())
    elif arr.dtype.kind in "iu":
        lo, hi = _int_range(d)
        bad = bool((arr.min() < lo) or (arr.max() > hi))
    else:
        return
    if bad:
        raise RuntimeError(f"value cannot be converted to type {d.name} without overflow")


def object_data(data, floats_ok: bool = False) -> None:
    """Python ints beyond int64 in tensor()'s data get PyTorch's error (unless `floats_ok` and
    the data holds a float, which makes them floats)."""
    stack, huge, floats = [data], False, False
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, float):
            floats = True
        elif isinstance(x, int) and not isinstance(x, bool) and \
                not -(1 << 63) <= x < (1 << 63):
            huge = True
    if huge and not (floats_ok and floats):
        raise ValueError(_LONG_OVERFLOW)
