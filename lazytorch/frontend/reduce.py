"""Reductions and scans: sum, mean, max (with indices), var, logsumexp, cumsum, ..."""
from __future__ import annotations

import math
import sys
from collections import namedtuple

from ..ir import dtypes as dt
from ..ir.graph import Node, new_node
from ..ir.ops import Op
from ..ir.sites import SITES, named, record_from
from .elementwise import cast_node
from .tensor import Tensor, _canon_dim

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _dims(self: Tensor, dim) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(self.ndim))
    if isinstance(dim, (list, tuple)):
        given = [_canon_dim(d, self.ndim) for d in dim]
        dims = tuple(sorted(set(given)))
        if len(dims) != len(dim):
            dup = next(d for d in given if given.count(d) > 1)
            raise RuntimeError(f"dim {dup} appears multiple times in the list of dims")
        return dims if dims else tuple(range(self.ndim))
    return (_canon_dim(dim, self.ndim),)


def reduce_node(op: Op, x: Node, axes: tuple[int, ...], keepdim: bool, dtype=None) -> Node:
    """Reduce x over axes (0-d tensors: no axes), dropping them unless keepdim."""
    d = dtype or x.dtype
    if x.shape == ():
        n = x if op not in (Op.ARGMAX, Op.ARGMIN) else None
        if n is None:
            from ..ir.graph import const
            return const(0, dt.int64)
        return cast_node(n, d)
    axes = tuple(a for a in axes)
    kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    r = new_node(op, (x,), axes, kept, d)
    if keepdim:
        return r
    out = tuple(s for i, s in enumerate(x.shape) if i not in axes)
    return new_node(_RESHAPE, (r,), out, out, d)


_RESHAPE = Op.RESHAPE


def _record(node: Node) -> Tensor:
    if id(node) not in _SITES:
        record_from(node, sys._getframe(1), "record")  # record(node) (we are private)
    return Tensor._make(node)


_SITES = SITES.d


def _sum_dtype(x: Tensor, dtype) -> dt.DType:
    if dtype is not None:
        return dt.to_dtype(dtype)
    return x.dtype if x.dtype.is_floating_point else dt.int64


def sum(self: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    d = _sum_dtype(self, dtype)
    return _record(reduce_node(Op.SUM, cast_node(self.node, d), _dims(self, dim), keepdim))


def prod(self: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    d = _sum_dtype(self, dtype)
    return _record(reduce_node(Op.PROD, cast_node(self.node, d), _dims(self, dim), keepdim))


def mean(self: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    d = dt.to_dtype(dtype) if dtype is not None else self.dtype
    if not d.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either "
                           f"a floating point or complex dtype. Got: "
                           f"{self.dtype.name.capitalize()}")
    axes = _dims(self, dim)
    n = math.prod(self.shape[a] for a in axes) if self.ndim else 1
    # half and bfloat16 are accumulated and divided in float, then rounded once (as PyTorch
    # does)
    acc = dt.float32 if d in (dt.float16, dt.bfloat16) else d
    s = sum(self.to(acc), dim, keepdim)
    out = s / n if n else s * math.nan
    return out.to(d)


def _check_nonempty(self: Tensor, axes, name: str) -> None:
    """max/min/argmax/...: PyTorch refuses to reduce over an empty dimension."""
    if self.numel() != 0:
        return
    if not axes or self.ndim == 0:
        exc = IndexError if name in ("argmax", "argmin") else RuntimeError
        rest = "" if exc is IndexError else (" Specify the reduction dim with the 'dim' "
                                             "argument.")
        raise exc(f"{name}(): Expected reduction dim to be specified for input.numel() == 0."
                  + rest)
    for a in axes:
        if self.shape[a] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {a} to have non-zero size.")


def amax(self: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    axes = _dims(self, dim if dim != () else None)
    _check_nonempty(self, () if dim in ((), None) else axes, "amax")
    return _record(reduce_node(Op.RMAX, self.node, axes, keepdim))


def amin(self: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    axes = _dims(self, dim if dim != () else None)
    _check_nonempty(self, () if dim in ((), None) else axes, "amin")
    return _record(reduce_node(Op.RMIN, self.node, axes, keepdim))


def _arg(op: Op, name: str):
    def fn(self: Tensor, dim=None, keepdim: bool = False) -> Tensor:
        if self.dtype is dt.bool_:
            raise RuntimeError(f"{name}(): does not support bool input")
        if dim is None:
            _check_nonempty(self, (), name)
            flat = Node(Op.RESHAPE, (self.node,), (self.numel(),), (self.numel(),), self.dtype)
            out = reduce_node(op, flat, (0,), False, dt.int64)
            if keepdim:
                out = Node(Op.RESHAPE, (out,), (1,) * self.ndim, (1,) * self.ndim, dt.int64)
            return _record(out)
        axes = _dims(self, dim)
        _check_nonempty(self, axes, name)
        return _record(reduce_node(op, self.node, axes, keepdim, dt.int64))
    return named(fn, name)


argmax, argmin = _arg(Op.ARGMAX, "argmax"), _arg(Op.ARGMIN, "argmin")


def _minmax(rop: Op, aop: Op, name: str):
    def fn(self: Tensor, dim=None, keepdim: bool = False):
        if isinstance(dim, Tensor):  # max(a, b): elementwise
            from .elementwise import maximum, minimum
            return (maximum if rop is Op.RMAX else minimum)(self, dim)
        if dim is None:
            _check_nonempty(self, (), name)
            return _record(reduce_node(rop, self.node, tuple(range(self.ndim)), False))
        axes = _dims(self, dim)
        _check_nonempty(self, axes, name)
        values = _record(reduce_node(rop, self.node, axes, keepdim))
        indices = _record(reduce_node(aop, self.node, axes, keepdim, dt.int64))
        if values.requires_grad and self.ndim:
            # PyTorch sends the gradient to the returned index only (amax splits it among ties)
            idx = reduce_node(aop, self.node, axes, True, dt.int64)
            v = Node(Op.GATHER, (self.node, idx), axes[0], idx.shape, self.dtype)
            values = _record(v if keepdim else Node(Op.RESHAPE, (v,), values.shape,
                                                    values.shape, v.dtype))
        return ValuesIndices(values, indices)
    return named(fn, name)


max = _minmax(Op.RMAX, Op.ARGMAX, "max")
min = _minmax(Op.RMIN, Op.ARGMIN, "min")


def var(self: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    if isinstance(unbiased, (int, float)) and not isinstance(unbiased, bool) and dim is None:
        dim, unbiased = unbiased, None  # var(dim) positional
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    if not self.dtype.is_floating_point:
        raise RuntimeError("std and var only support floating point and complex dtypes")
    axes = _dims(self, dim)
    n = math.prod(self.shape[a] for a in axes) if self.ndim else 1
    mu = mean(self, axes if self.ndim else None, keepdim=True)
    sq = (self - mu).square()
    s = sum(sq, axes if self.ndim else None, keepdim)
    denom = n - correction
    return s / denom if denom > 0 else s * math.nan


def std(self: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return var(self, dim, unbiased, keepdim, correction=correction).sqrt()


def logsumexp(self: Tensor, dim, keepdim: bool = False) -> Tensor:
    x = self if self.dtype.is_floating_point else self.float()
    axes = _dims(x, dim)
    if x.numel() == 0:  # nothing to stabilise: log(0) = -inf over empty dims
        return sum(x.exp(), axes, keepdim).log()
    m = amax(x, axes, keepdim=True)
    from .elementwise import where_nodes
    m = where_nodes(m.isinf(), 0.0, m).to(x.dtype)
    s = sum((x - m).exp(), axes, keepdim=True).log() + m
    if keepdim:
        return s
    from .views import squeeze
    return squeeze(s, axes) if self.ndim else s


def _logical_reduce(self: Tensor, op: Op, dim, keepdim: bool, empty: bool) -> Tensor:
    b = self.bool()
    out = _record(reduce_node(op, b.node, _dims(self, dim), keepdim)) if self.numel() \
        else _empty_logical(self, dim, keepdim, empty)
    return out.to(dt.uint8) if self.dtype == dt.uint8 else out  # torch keeps uint8


def all(self: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _logical_reduce(self, Op.RMIN, dim, keepdim, True)


def any(self: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _logical_reduce(self, Op.RMAX, dim, keepdim, False)


def _empty_logical(self: Tensor, dim, keepdim: bool, value: bool) -> Tensor:
    from ..ir.graph import const
    axes = _dims(self, dim)
    shape = tuple(1 if i in axes else s for i, s in enumerate(self.shape)) if keepdim else \
        tuple(s for i, s in enumerate(self.shape) if i not in axes)
    return Tensor._make(const(value, dt.bool_, shape))


def _scan(op: Op, name: str):
    def fn(self: Tensor, dim: int, *, dtype=None) -> Tensor:
        d = _sum_dtype(self, dtype)
        x = cast_node(self.node, d)
        if self.ndim == 0:
            return _record(x)
        axis = _canon_dim(dim, self.ndim)
        return _record(Node(op, (x,), axis, x.shape, d))
    return named(fn, name)


cumsum, cumprod = _scan(Op.CUMSUM, "cumsum"), _scan(Op.CUMPROD, "cumprod")


def norm(self: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Tensor.norm / torch.norm (lazytorch/frontend/norms.py)."""
    from .norms import norm as _norm
    return _norm(self, p, dim, keepdim, dtype)


