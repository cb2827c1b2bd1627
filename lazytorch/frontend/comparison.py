"""Whole-tensor comparisons: equal, allclose, isclose."""
from __future__ import annotations

from ..ir import dtypes as dt
from .tensor import Tensor


def _check(x, name: str, arg: str, pos: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")


def equal(input: Tensor, other: Tensor) -> bool:
    """True if both tensors have the same shape and equal elements (NaN equals nothing)."""
    _check(input, "equal", "input", 1)
    _check(other, "equal", "other", 2)
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool(input.eq(other).all().item())


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """Elementwise |input - other| <= atol + rtol * |other| (equal values, infinities
    included, are close; NaNs only with equal_nan), as a bool tensor."""
    _check(input, "isclose", "input", 1)
    _check(other, "isclose", "other", 2)
    if input.dtype != other.dtype:
        raise RuntimeError(f"{dt.scalar_type_name(input.dtype)} did not match "
                           f"{dt.scalar_type_name(other.dtype)}")
    if rtol < 0:
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol:g}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol:g}")
    close = input.eq(other)
    if equal_nan and input.dtype.is_floating_point:
        close = close.logical_or(input.isnan().logical_and(other.isnan()))
    if rtol == 0 and atol == 0:
        return close
    a, b = input, other
    if input.dtype == dt.bool_:
        a, b = input.to(dt.get_default_dtype()), other.to(dt.get_default_dtype())
    allowed = (b * rtol).abs() + atol
    actual = (a - b).abs()
    return close.logical_or(actual.isfinite().logical_and(actual.le(allowed)))


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """True if every pair of elements is close (see isclose)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


__all__ = ["equal", "isclose", "allclose"]
METHODS = __all__
