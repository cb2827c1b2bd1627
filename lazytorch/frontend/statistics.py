"""Reductions and statistics built from the primitive ones: count_nonzero, nansum, nanmean,
aminmax, cummax/cummin, diff, trapezoid, cov/corrcoef, histc, bincount, isin, quantile.

Most stay lazy. cummax/cummin and quantile find their positions with numpy (the input is
computed, as sort does) and gather the lazy input there, so gradients flow; bincount's length
is the data's largest value, so its input is computed.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import const
from . import elementwise as ew
from . import reduce as rd
from .sorting import _longs, _result_type, _rows, _take, _unrows
from .tensor import Tensor, _canon_dim, device_name

__all__ = ["count_nonzero", "nansum", "nanmean", "aminmax", "cummax", "cummin", "diff",
           "trapezoid", "trapz", "cumulative_trapezoid", "cov", "corrcoef", "histc", "bincount",
           "isin", "quantile", "nanquantile"]
METHODS = ["count_nonzero", "nansum", "nanmean", "aminmax", "cummax", "cummin", "diff",
           "cov", "corrcoef", "histc", "bincount", "isin", "quantile", "nanquantile"]

cummax_result = _result_type("cummax")
cummin_result = _result_type("cummin")


class aminmax_result(tuple):
    """(min, max), printing as torch.return_types.aminmax."""

    def __new__(cls, min: Tensor, max: Tensor):
        return super().__new__(cls, (min, max))

    min = property(lambda self: self[0])
    max = property(lambda self: self[1])

    def __repr__(self) -> str:
        return f"torch.return_types.aminmax(\nmin={self[0]!r},\nmax={self[1]!r})"


def _check(x, name: str, arg: str = "input", pos: int = 1) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")


# ------------------------------------------------------------------------------ reductions
def count_nonzero(input: Tensor, dim=None) -> Tensor:
    """The number of nonzero elements over dim (all when None), as int64."""
    _check(input, "count_nonzero")
    return rd.sum(ew.ne(input, 0), dim, dtype=dt.int64)


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """sum with NaN read as 0."""
    _check(input, "nansum")
    x = ew.where_nodes(input.isnan(), 0, input) if input.dtype.is_floating_point else input
    return rd.sum(x, dim, keepdim, dtype=dtype)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """mean over the elements that are not NaN."""
    _check(input, "nanmean")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex "
                           f"dtype but got {dt.scalar_type_name(input.dtype)}")
    count = rd.sum(input.isnan().logical_not(), dim, keepdim, dtype=dtype or input.dtype)
    return nansum(input, dim, keepdim, dtype=dtype) / count


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False):
    """(amin, amax) over dim (all elements when None)."""
    _check(input, "aminmax")
    if dim is None:
        if input.numel() == 0:
            raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as "
                               "the operation has no identity.")
        lo, hi = rd.amin(input), rd.amax(input)
        if keepdim:
            shape = (1,) * input.ndim
            lo, hi = lo.reshape(shape), hi.reshape(shape)
        return aminmax_result(lo, hi)
    return aminmax_result(rd.amin(input, dim, keepdim), rd.amax(input, dim, keepdim))


def _cumulative_extreme(input: Tensor, dim: int, largest: bool, result):
    a, d = _rows(input, dim)
    n = a.shape[-1]
    if n == 0:
        idx = np.zeros(a.shape, np.int64)
    else:
        # the running best's position: ties and NaN move it forward, as in PyTorch
        better = np.greater_equal if largest else np.less_equal
        idx = np.empty(a.shape, np.int64)
        best = a[..., 0].copy()
        pos = np.zeros(a.shape[:-1], np.int64)
        idx[..., 0] = 0
        nan_seen = np.isnan(best) if a.dtype.kind == "f" else np.zeros(best.shape, bool)
        for i in range(1, n):
            v = a[..., i]
            isnan = np.isnan(v) if a.dtype.kind == "f" else False
            take = ~nan_seen & (better(v, best) | isnan)
            best = np.where(take, v, best)
            pos = np.where(take, i, pos)
            nan_seen = nan_seen | isnan
            idx[..., i] = pos
    idx = _unrows(idx, input.ndim, d)
    return result(_take(input, d, idx), _longs(idx, device_name(input)))


def cummax(input: Tensor, dim: int):
    """(values, indices): the running maximum along dim and where it was found."""
    _check(input, "cummax")
    return _cumulative_extreme(input, dim, True, cummax_result)


def cummin(input: Tensor, dim: int):
    """(values, indices): the running minimum along dim and where it was found."""
    _check(input, "cummin")
    return _cumulative_extreme(input, dim, False, cummin_result)


# ------------------------------------------------------------------------------ differences
def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Tensor | None = None,
         append: Tensor | None = None) -> Tensor:
    """The n-th forward difference along dim (after joining prepend and append)."""
    _check(input, "diff")
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = _canon_dim(dim, input.ndim)
    from .joining import cat
    x = input
    if prepend is not None or append is not None:
        parts = [p for p in (prepend, x, append) if p is not None]
        x = cat([p if p.ndim else p.expand(*x.shape[:d], 1, *x.shape[d + 1:])
                 for p in parts], d)
    for _ in range(n):
        size = x.shape[d]
        if size == 0:
            break
        hi, lo = x.narrow(d, 1, size - 1), x.narrow(d, 0, size - 1)
        x = ew.logical_xor(hi, lo) if x.dtype == dt.bool_ else hi - lo
    return x


def _spacing(y: Tensor, x, dx, d: int):
    """The interval widths along dim d: from x (coordinates), or the constant dx."""
    if x is None:
        return 1.0 if dx is None else dx
    if isinstance(x, Tensor):
        if x.ndim == 1:
            if x.shape[0] != y.shape[d]:
                raise RuntimeError("trapezoid: There must be one `x` value for each sample "
                                   "point")
            shape = [1] * y.ndim
            shape[d] = x.shape[0]
            x = x.reshape(*shape)
        return diff(x, dim=d if x.ndim == y.ndim else -1)
    return float(x)


def trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The trapezoid rule along dim: sum of (y[i] + y[i+1]) / 2 * width[i]."""
    _check(y, "trapezoid", "y")
    d = _canon_dim(dim, y.ndim)
    n = y.shape[d]
    if n == 0:
        return rd.sum(y, d) * 0
    w = _spacing(y, x, dx, d)
    mid = (y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)) / 2
    return rd.sum(mid * w, d)


def trapz(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """torch.trapz(y, x, dim) or torch.trapz(y, dx=1, dim): trapezoid under its old name."""
    if x is not None and not isinstance(x, Tensor) and dx is None:
        x, dx = None, x
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The running trapezoid rule along dim (one element shorter than y along it)."""
    _check(y, "cumulative_trapezoid", "y")
    d = _canon_dim(dim, y.ndim)
    n = y.shape[d]
    w = _spacing(y, x, dx, d)
    if n == 0:
        return y.narrow(d, 0, 0)
    mid = (y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)) / 2
    return (mid * w).cumsum(d)


# ------------------------------------------------------------------------------ covariance
def cov(input: Tensor, *, correction: int = 1, fweights: Tensor | None = None,
        aweights: Tensor | None = None) -> Tensor:
    """The covariance matrix of the variables in input's rows (observations in columns),
    with frequency and observation weights, as numpy.cov."""
    _check(input, "cov")
    if input.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an "
                           f"input with {input.ndim} dimensions")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    if not x.dtype.is_floating_point:
        x = x.to(dt.get_default_dtype())
    n = x.shape[1]
    w = None
    if fweights is not None:
        if fweights.dtype.is_floating_point:
            raise RuntimeError(f"cov(): expected fweights to have integral dtype but got "
                               f"fweights with {dt.scalar_type_name(fweights.dtype)} dtype")
        w = fweights.to(x.dtype)
    if aweights is not None:
        if not aweights.dtype.is_floating_point:
            raise RuntimeError(f"cov(): expected aweights to have floating point dtype but got "
                               f"aweights with {dt.scalar_type_name(aweights.dtype)} dtype")
        w = aweights.to(x.dtype) if w is None else w * aweights.to(x.dtype)
    if w is None:
        w_sum = float(n)
        avg = rd.mean(x, 1, keepdim=True)
        norm_factor = w_sum - correction
    else:
        w_sum = rd.sum(w)
        avg = rd.sum(x * w, 1, keepdim=True) / w_sum
        if aweights is None or correction == 0:
            norm_factor = w_sum - correction
        else:
            norm_factor = w_sum - correction * rd.sum(w * aweights.to(x.dtype)) / w_sum
    if not isinstance(norm_factor, Tensor) and norm_factor <= 0:
        warnings.warn("cov(): degrees of freedom is <= 0. Correction should be strictly less "
                      "than the number of observations.", UserWarning, stacklevel=2)
        norm_factor = 0.0
    elif isinstance(norm_factor, Tensor):
        norm_factor = ew.where_nodes(norm_factor <= 0, 0.0, norm_factor)
    xm = x - avg
    xw = xm if w is None else xm * w
    c = (xw @ xm.t()) / norm_factor
    return c.reshape(()) if input.ndim < 2 else c


def corrcoef(input: Tensor) -> Tensor:
    """Pearson's correlation coefficients of the variables in input's rows, clipped to
    [-1, 1]."""
    _check(input, "corrcoef")
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal()
    s = d.sqrt()
    return (c / s.unsqueeze(1) / s.unsqueeze(0)).clamp(-1, 1)


# ------------------------------------------------------------------------------ counting
def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """Counts of input's elements in `bins` equal bins over [min, max] (the data's range when
    both are 0); elements outside are ignored."""
    _check(input, "histc")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f'"histogram_cpu" not implemented for '
                           f"'{dt.scalar_type_name(input.dtype)}'")
    if bins <= 0:
        raise RuntimeError("torch.histc: bins must be > 0")
    x = input.reshape(-1)
    if min == max == 0 and x.numel():
        lo, hi = rd.amin(x).detach(), rd.amax(x).detach()
    else:
        if min > max:
            raise RuntimeError("torch.histc: max must be larger than min")
        lo, hi = min, max
    width = hi - lo
    if not isinstance(width, Tensor):
        if width == 0:
            lo, hi, width = lo - 1, hi + 1, 2
    else:  # an all-equal input: the range widens by one on each side, as PyTorch's
        same = width == 0
        lo, hi = ew.where_nodes(same, lo - 1, lo), ew.where_nodes(same, hi + 1, hi)
        width = hi - lo
    inside = (x >= lo) & (x <= hi)
    pos = ((x - lo) * bins / width).floor().clamp(0, bins - 1)
    pos = ew.where_nodes(inside, pos, 0).to(dt.int64)
    from .creation import zeros
    counts = zeros(bins, dtype=input.dtype, device=input.device)
    return counts.scatter_add(0, pos, inside.to(input.dtype))


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each value 0, 1, ... occurs in the 1-D non-negative integer input (or the sum
    of its weights)."""
    _check(input, "bincount")
    if input.ndim != 1 or input.dtype.is_floating_point or input.dtype == dt.bool_:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    vals = np.asarray(input._array())
    if vals.size and vals.min() < 0:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if weights is not None and (weights.ndim != 1 or weights.shape[0] != input.shape[0]):
        raise RuntimeError("weights should be 1-d and have the same length as input")
    length = max(int(vals.max()) + 1 if vals.size else 0, minlength)
    from .creation import zeros
    if weights is None:
        ones = Tensor._make(const(1, dt.int64, tuple(input.shape)))
        return zeros(length, dtype=dt.int64, device=input.device).scatter_add(
            0, input.to(dt.int64), ones)
    # float weights keep their dtype; others are counted in double, as PyTorch's
    d = weights.dtype if weights.dtype in (dt.float32, dt.float64) else dt.float64
    out = zeros(length, dtype=d, device=input.device)
    return out.scatter_add(0, input.to(dt.int64), weights.to(d))



def isin(elements, test_elements, *, assume_unique: bool = False,
         invert: bool = False) -> Tensor:
    """True where an element of `elements` is among `test_elements` (False with invert)."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin(): at least one of 'elements' and 'test_elements' must be a "
                        "Tensor")
    if not isinstance(test_elements, Tensor):
        found = ew.eq(elements, test_elements)
    else:
        flat = test_elements.reshape(-1)
        if not isinstance(elements, Tensor):
            found = rd.any(ew.eq(flat, elements))
        elif flat.numel() == 0:
            found = Tensor._make(const(False, dt.bool_, tuple(elements.shape)))
        else:
            found = rd.any(ew.eq(elements.unsqueeze(-1), flat), -1)
    return found.logical_not() if invert else found


# ------------------------------------------------------------------------------ quantiles
_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input: Tensor, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool,
              name: str) -> Tensor:
    _check(input, name)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest. Got {interpolation}")
    scalar_q = not isinstance(q, Tensor)
    qs = np.atleast_1d(np.asarray(q._array() if isinstance(q, Tensor) else q, np.float64))
    if isinstance(q, Tensor) and q.ndim > 1:
        raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
    if ((qs < 0) | (qs > 1)).any():
        raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else _canon_dim(dim, input.ndim)
    if x.ndim == 0:
        x = x.reshape(1)
    a, _ = _rows(x, d)  # (rows..., n)
    n = a.shape[-1]
    if n == 0:
        raise IndexError(f"{name}() input tensor must be non-empty")
    order = np.argsort(a, axis=-1, kind="stable")  # NaN last
    nans = np.isnan(a).sum(-1, keepdims=True)
    valid = n - nans if ignore_nan else np.full_like(nans, n)
    outs = []
    for qv in qs.astype(x.dtype.np):
        # the rank in the input's dtype, as PyTorch's (0.2f * 5 is exactly 1 there)
        rank = (qv * (valid - 1).astype(x.dtype.np)).astype(x.dtype.np)  # (rows..., 1)
        lo_r = np.floor(rank).astype(np.int64)
        hi_r = np.ceil(rank).astype(np.int64)
        if interpolation == "lower":
            hi_r = lo_r
        elif interpolation == "higher":
            lo_r = hi_r
        elif interpolation == "nearest":
            lo_r = hi_r = np.round(rank).astype(np.int64)  # half to even, as PyTorch
        lo_r, hi_r = np.clip(lo_r, 0, n - 1), np.clip(hi_r, 0, n - 1)
        lo_i = np.take_along_axis(order, lo_r, -1)
        hi_i = np.take_along_axis(order, hi_r, -1)
        lo = _take(x, d, _unrows(lo_i, x.ndim, d))
        hi = _take(x, d, _unrows(hi_i, x.ndim, d))
        if interpolation == "midpoint":
            v = lo + (hi - lo) * 0.5
        elif interpolation == "linear":
            frac = _unrows((rank - np.floor(rank)).astype(x.dtype.np), x.ndim, d)
            from .creation import from_array
            v = ew.lerp(lo, hi, from_array(np.ascontiguousarray(frac), x.dtype,
                                                device_name(x)))
        else:
            v = lo
        # a row holding NaN (and no NaN-ignoring) is NaN; an all-NaN row is NaN either way
        has_nan = _unrows((nans > 0) if not ignore_nan else (valid == 0), x.ndim, d)
        if has_nan.any():
            from .creation import from_array
            v = ew.where_nodes(from_array(np.ascontiguousarray(has_nan), None,
                                                       device_name(x)), math.nan, v)
        v = v if keepdim and dim is not None else v.squeeze(d)
        if keepdim and dim is None:
            v = v.reshape((1,) * input.ndim)
        outs.append(v)
    if scalar_q:
        return outs[0]
    from .joining import stack
    return stack(outs, 0)


def quantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """The q-th quantiles along dim (of all elements when None); a row with NaN gives NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Tensor:
    """quantile over the elements that are not NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")
