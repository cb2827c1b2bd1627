"""Sorting and selection: sort, argsort, msort, topk, kthvalue, median, nanmedian, mode, unique,
unique_consecutive, searchsorted, bucketize.

Their order (and for unique their size) depends on the data, so the input is computed now and
the indices are found with numpy. The values are then a GATHER of the (still lazy) input at
those indices, so gradients flow through them. NaN sorts as the largest value, as in PyTorch.
"""
from __future__ import annotations

from collections import namedtuple
from numbers import Number

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import Node, const
from ..ir.ops import Op
from . import elementwise as ew
from .tensor import Tensor, _canon_dim, device_name, same_device


def _result_type(name: str) -> type:
    """A (values, indices) namedtuple that prints like torch.return_types.<name>."""
    base = namedtuple(name, ["values", "indices"])

    def __repr__(self) -> str:
        return f"torch.return_types.{name}(\nvalues={self.values!r},\nindices={self.indices!r})"
    return type(name, (base,), {"__slots__": (), "__repr__": __repr__})


sort_result = _result_type("sort")
topk_result = _result_type("topk")
kthvalue_result = _result_type("kthvalue")
median_result = _result_type("median")
nanmedian_result = _result_type("nanmedian")
mode_result = _result_type("mode")


# ----------------------------------------------------------------------------- helpers
def _check_tensor(x, name: str, arg: str = "input") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


def _longs(a: np.ndarray, device: str) -> Tensor:
    """`a` as an int64 tensor on `device` (the input's: indices found on the host)."""
    from .creation import from_array
    return from_array(np.require(np.asarray(a, dtype=np.int64), requirements="C"), dt.int64,
                      device)


def _rows(input: Tensor, dim: int) -> tuple[np.ndarray, int]:
    """input's values with `dim` moved last (0-d reads as one element), and dim canonical."""
    d = _canon_dim(dim, input.ndim)
    a = np.asarray(input._array())
    if a.ndim == 0:
        return a.reshape(1), 0
    return np.moveaxis(a, d, -1), d


def _unrows(idx: np.ndarray, ndim: int, d: int) -> np.ndarray:
    """Undo _rows on an index array."""
    return idx.reshape(()) if ndim == 0 else np.moveaxis(idx, -1, d)


def _take(input: Tensor, d: int, idx: np.ndarray) -> Tensor:
    """input gathered along dim d at idx (input's shape except along d; all in range)."""
    where = device_name(input)
    if input.ndim == 0:
        x = Node(Op.RESHAPE, (input.node,), (1,), (1,), input.dtype)
        g = Node(Op.GATHER, (x, _longs(idx.reshape(1), where).node), 0, (1,), input.dtype)
        return ew.make(Op.RESHAPE, (g,), (), (), input.dtype)
    return ew.make(Op.GATHER, (input.node, _longs(idx, where).node), d, idx.shape, input.dtype)


def _argsort(a: np.ndarray, descending: bool) -> np.ndarray:
    """Stable order along the last axis, NaN largest; descending keeps ties in input order."""
    if not descending:
        return np.argsort(a, axis=-1, kind="stable")
    n = a.shape[-1]
    order = np.argsort(a[..., ::-1], axis=-1, kind="stable")
    return (n - 1 - order)[..., ::-1]


# ----------------------------------------------------------------------------- sort family
def sort(input: Tensor, dim: int = -1, descending: bool = False, *,
         stable: bool | None = False):
    """(values, indices): input sorted along dim (ties keep their order; NaN is largest)."""
    _check_tensor(input, "sort")
    a, d = _rows(input, dim)
    idx = _unrows(_argsort(a, descending), input.ndim, d)
    return sort_result(_take(input, d, idx), _longs(idx, device_name(input)))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, *,
            stable: bool = False) -> Tensor:
    """The indices that sort input along dim."""
    return sort(input, dim, descending, stable=stable).indices


def msort(input: Tensor) -> Tensor:
    """input sorted along its first dim."""
    return sort(input, 0).values


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices): the k largest (or smallest) elements along dim, in order."""
    _check_tensor(input, "topk")
    a, d = _rows(input, dim)
    if not 0 <= k <= a.shape[-1]:
        raise RuntimeError("selected index k out of range")
    idx = _unrows(_argsort(a, largest)[..., :k], input.ndim, d)
    return topk_result(_take(input, d, idx), _longs(idx, device_name(input)))


def _reduce_dim(input: Tensor, dim: int, name: str) -> tuple[np.ndarray, int]:
    a, d = _rows(input, dim)
    if a.shape[-1] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    return a, d


def _select(input: Tensor, d: int, idx: np.ndarray, keepdim: bool, result):
    """(values, indices) for one index per row (idx with the row axis last, size 1)."""
    idx = _unrows(idx, input.ndim, d)
    values = _take(input, d, idx)
    if not keepdim and input.ndim > 0:
        values = values.squeeze(d)
        idx = np.squeeze(idx, d)
    return result(values, _longs(idx, device_name(input)))


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """(values, indices): the k-th smallest element along dim (k counts from 1)."""
    _check_tensor(input, "kthvalue")
    a, d = _rows(input, dim)
    if not 1 <= k <= a.shape[-1]:
        if a.shape[-1] == 0:
            raise IndexError(f"kthvalue(): Expected reduction dim {d} to have non-zero size.")
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    idx = _argsort(a, False)[..., k - 1:k]
    return _select(input, d, idx, keepdim, kthvalue_result)


def _median_pos(a: np.ndarray, ignore_nan: bool) -> np.ndarray:
    """Per row (last axis), the position in the ascending order of the lower median; a row
    holding NaN gives its first NaN unless ignore_nan (then all-NaN rows give NaN)."""
    n = a.shape[-1]
    nans = np.isnan(a).sum(-1, keepdims=True) if dt.is_float_array(a) else np.zeros(
        a.shape[:-1] + (1,), np.int64)
    if ignore_nan:
        return np.maximum((n - nans - 1) // 2, 0)
    return np.where(nans > 0, n - nans, (n - 1) // 2)


def median(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """The lower median of all elements (a 0-d tensor, NaN if any is NaN), or with dim the
    (values, indices) of the lower median along dim."""
    return _median(input, dim, keepdim, False)


def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """median, ignoring NaN (NaN only where a row is all NaN)."""
    return _median(input, dim, keepdim, True)


def _median(input: Tensor, dim, keepdim: bool, ignore_nan: bool):
    name = "nanmedian" if ignore_nan else "median"
    _check_tensor(input, name)
    if dim is None:
        flat = input.reshape(-1)
        if flat.shape[0] == 0:
            fill = float("nan") if input.dtype.is_floating_point else 0
            return Tensor._make(const(fill, input.dtype, ()))
        a = np.asarray(flat._array())
        pos = _median_pos(a, ignore_nan)
        i = _argsort(a, False)[pos]
        return _take(flat, 0, i).reshape(())
    a, d = _reduce_dim(input, dim, name)
    pos = _median_pos(a, ignore_nan)
    idx = np.take_along_axis(_argsort(a, False), pos, -1)
    result = nanmedian_result if ignore_nan else median_result
    return _select(input, d, idx, keepdim, result)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """(values, indices): the most frequent value along dim (the smallest among equally
    frequent ones) and the index of its last occurrence."""
    _check_tensor(input, "mode")
    a, d = _reduce_dim(input, dim, "mode")
    n = a.shape[-1]
    rows = a.reshape(-1, n)
    out = np.empty((rows.shape[0], 1), np.int64)
    for r, row in enumerate(rows):
        vals, counts = np.unique(row, return_counts=True, equal_nan=False)
        best = vals[np.argmax(counts)]
        same = (row == best) if best == best else np.isnan(row)
        out[r, 0] = n - 1 - int(np.argmax(same[::-1]))
    idx = out.reshape(a.shape[:-1] + (1,))
    return _select(input, d, idx, keepdim, mode_result)


# ----------------------------------------------------------------------------- unique
def _unique_result(values: np.ndarray, d: dt.DType, inverse, counts, return_inverse: bool,
                   return_counts: bool, device: str):
    from .creation import from_array
    out = [from_array(np.require(np.asarray(values, dtype=d.np), requirements="C"), d, device)]
    if return_inverse:
        out.append(_longs(inverse, device))
    if return_counts:
        out.append(_longs(counts, device))
    return out[0] if len(out) == 1 else tuple(out)


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: int | None = None):
    """The distinct elements (or slices along dim) of input, sorted; optionally the index of
    each input element in them and how often each occurs. NaNs are all distinct."""
    _check_tensor(input, "unique")
    a = np.asarray(input._array())
    if dim is None:
        flat = a.reshape(-1)
        vals, inv, counts = np.unique(flat, return_inverse=True, return_counts=True,
                                      equal_nan=False)
        inv = np.asarray(inv).reshape(a.shape)
    else:
        d = _canon_dim(dim, a.ndim)
        if a.ndim == 0:
            raise IndexError(f"Dimension out of range (expected to be in range of [-1, 0], "
                             f"but got {dim})")
        if a.shape[d] == 0:
            vals, inv, counts = a, np.zeros(0, np.int64), np.zeros(0, np.int64)
        else:
            vals, inv, counts = np.unique(a, return_inverse=True, return_counts=True, axis=d,
                                          equal_nan=False)
            inv = np.asarray(inv).reshape(-1)
    return _unique_result(vals, input.dtype, inv, counts, return_inverse, return_counts,
                          device_name(input))


def unique_consecutive(input: Tensor, return_inverse: bool = False, return_counts: bool = False,
                       dim: int | None = None):
    """input with each run of equal consecutive elements (or slices along dim) kept once."""
    _check_tensor(input, "unique_consecutive")
    a = np.asarray(input._array())
    if dim is None:
        moved, inv_shape = a.reshape(-1, 1), a.shape
    else:
        d = _canon_dim(dim, a.ndim)
        moved = np.moveaxis(a, d, 0).reshape(a.shape[d] if a.ndim else 1, -1)
        inv_shape = (moved.shape[0],)
    n = moved.shape[0]
    change = np.ones(n, bool)
    if n > 1:
        change[1:] = (moved[1:] != moved[:-1]).any(axis=1)
    starts = np.flatnonzero(change)
    inv = (np.cumsum(change) - 1).reshape(inv_shape)
    counts = np.diff(np.append(starts, n))
    if dim is None:
        vals = a.reshape(-1)[starts]
    else:
        vals = np.take(a, starts, axis=d)
    return _unique_result(vals, input.dtype, inv, counts, return_inverse, return_counts,
                          device_name(input))


# ----------------------------------------------------------------------------- searchsorted
def _side(right: bool, side: str | None) -> str:
    if side is None:
        return "right" if right else "left"
    if side not in ("left", "right"):
        raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got "
                           f"{side}")
    if right and side == "left":
        raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got "
                           "side of left while right was True")
    return side


def _values(x) -> np.ndarray:
    return np.asarray(x._array()) if isinstance(x, Tensor) else np.asarray(x)


def _positions(out: np.ndarray, out_int32: bool, device: str) -> Tensor:
    from .creation import from_array
    if out_int32:
        return from_array(np.require(np.asarray(out, dtype=np.int32), requirements="C"),
                          dt.int32, device)
    return _longs(out, device)


def searchsorted(sorted_sequence: Tensor, input, *, out_int32: bool = False,
                 right: bool = False, side: str | None = None, out=None,
                 sorter: Tensor | None = None) -> Tensor:
    """For each value, the index in the innermost dim of sorted_sequence at which inserting it
    keeps that dim sorted (side='left': before equal values; 'right': after them)."""
    _check_tensor(sorted_sequence, "searchsorted", "sorted_sequence")
    s = _side(right, side)
    seq = _values(sorted_sequence)
    if sorter is not None:
        seq = np.take_along_axis(seq, _values(sorter).astype(np.int64), -1)
    vals = _values(input)
    where = device_name(sorted_sequence) if not isinstance(input, Tensor) or \
        input.ndim == 0 and device_name(input) == "cpu" else same_device(sorted_sequence, input)
    if seq.ndim == 0:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should have positive "
                           "dimension, but got 0 dimension")
    if seq.ndim == 1:
        return _positions(np.searchsorted(seq, vals, side=s), out_int32, where)
    if vals.ndim == 0 and not isinstance(input, Tensor):
        raise RuntimeError(f"torch.searchsorted(): input value can be a scalar only when "
                           f"boundaries tensor dimension is 1, but we got boundaries tensor "
                           f"dim({seq.ndim}) and input value's dim({vals.ndim}) numel(1)")
    if seq.shape[:-1] != vals.shape[:-1]:
        raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or "
                           f"the first N-1 dimensions of boundaries tensor and input value "
                           f"tensor must match, but we got boundaries tensor "
                           f"{list(seq.shape)} and input value tensor {list(vals.shape)}")
    rows_s, rows_v = seq.reshape(-1, seq.shape[-1]), vals.reshape(-1, vals.shape[-1])
    res = np.stack([np.searchsorted(b, v, side=s) for b, v in zip(rows_s, rows_v)]) \
        if rows_s.shape[0] else np.zeros(rows_v.shape, np.int64)
    return _positions(res.reshape(vals.shape), out_int32, where)


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False,
              right: bool = False) -> Tensor:
    """The bucket of each value: i with boundaries[i-1] < x <= boundaries[i] (right=False) or
    boundaries[i-1] <= x < boundaries[i] (right=True)."""
    _check_tensor(boundaries, "bucketize", "boundaries")
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim("
                           f"{boundaries.ndim})")
    if not isinstance(input, (Tensor, Number)):
        raise TypeError(f"bucketize(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


__all__ = ["sort", "argsort", "msort", "topk", "kthvalue", "median", "nanmedian", "mode",
           "unique", "unique_consecutive", "searchsorted", "bucketize"]
METHODS = ["sort", "argsort", "msort", "topk", "kthvalue", "median", "nanmedian", "mode",
           "unique", "unique_consecutive"]
