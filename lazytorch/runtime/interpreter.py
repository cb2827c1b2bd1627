"""The reference interpreter: runs the IR node by node with one numpy rule per Op.

It is the definition of what each Op means; every compiled kernel is tested against it, and
`LAZYTORCH_BACKEND=interp` runs whole programs on it.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import Node, toposort
from ..ir.ops import Op
from . import faults

_erf = np.frompyfunc(math.erf, 1, 1)


def _float(fn):
    return lambda n, a: dt.astype(fn(a), n.dtype)


def _idiv(n, a, b):
    if n.dtype.kind == "f":  # Python's floor division (1.0 // 0.1 == 9), half in float
        return np.floor_divide(a.astype(_acc(a.dtype)), b.astype(_acc(b.dtype)))
    if (b == 0).any():
        raise faults.zero_division([n])
    return np.floor_divide(a, b)


def _mod(n, a, b):
    if n.dtype.kind == "f":
        return np.remainder(a, b)
    if (b == 0).any():
        raise faults.zero_division([n])
    return np.remainder(a, b)


def _pow(n, a, b):
    if n.dtype.kind == "f":
        return np.power(a, b)
    b64 = b.astype(np.int64)
    neg = b64 < 0
    out = np.power(a, np.where(neg, 0, b64).astype(a.dtype))
    special = np.where(a == 1, 1, np.where(a == -1, np.where(b64 % 2 == 1, -1, 1), 0))
    return np.where(neg, special.astype(a.dtype), out)


def _sign(n, a):
    return np.sign(a)


def _minmax(fn):
    return lambda n, a, b: fn(a, b)


def _reduce(fn):
    def run(n, a):
        if fn in (np.max, np.min) and any(a.shape[ax] == 0 for ax in n.arg):
            raise RuntimeError("reduction over an empty dimension")
        if fn in (np.sum, np.prod) and _acc(a.dtype) != a.dtype:
            return fn(a, axis=n.arg, keepdims=True, dtype=_acc(a.dtype))
        return fn(a, axis=n.arg, keepdims=True)
    return run


def _arg(fn):
    def run(n, a):
        ax = n.arg[0]
        if dt.is_float_array(a):
            # NaN counts as the extreme value, as in PyTorch
            nan = np.isnan(a)
            first_nan = np.argmax(nan, axis=ax)
            idx = np.where(nan.any(axis=ax), first_nan, fn(np.where(nan, 0, a), axis=ax))
        else:
            idx = fn(a, axis=ax)
        return np.expand_dims(idx, ax).astype(np.int64)
    return run


def _acc(d: np.dtype) -> np.dtype:
    # half and bfloat16 are accumulated (sums, scans) or composed (sigmoid, rsqrt) in float
    # and rounded once, as PyTorch and the C kernels do
    return np.dtype(np.float32) if d == np.float16 or d.name == "bfloat16" else d


def _cast(n, a):
    return dt.astype(a, n.dtype)


def _pad(n, a):
    pads, value = n.arg
    return np.pad(a, pads, constant_values=value)


def _slice(n, a):
    idx = []
    for (start, step), size in zip(n.arg, n.shape):
        stop = start + step * size
        idx.append(slice(start, stop if stop >= 0 else None, step))
    return a[tuple(idx)]


def _unfold(n, a):
    dim, size, step = n.arg
    win = np.lib.stride_tricks.sliding_window_view(a, size, axis=dim)
    return np.take(win, np.arange(0, win.shape[dim], step), axis=dim)


def _gather(n, a, index):
    # x may be larger than the index along the other dims (torch.gather's rule): read its corner
    a = a[tuple(slice(None) if d == n.arg else slice(0, k) for d, k in enumerate(index.shape))]
    return np.take_along_axis(a, index.astype(np.int64), axis=n.arg)


def _scatter(n, base, index, src):
    """out = base; out[.., index[i], ..] = src[i] along the axis, in row-major order of i (so
    the last write wins), or folded in with + / * for the "add" / "multiply" modes."""
    axis, mode = n.arg
    out = np.array(base, copy=True, order="C")
    pos = list(np.indices(index.shape, sparse=True))
    pos[axis] = index.astype(np.int64)
    flat = np.ravel_multi_index(tuple(np.broadcast_to(p, index.shape).ravel() for p in pos),
                                out.shape)
    vals = np.ascontiguousarray(src).ravel()
    view = out.reshape(-1)
    if mode is None:
        # keep the last write to each position (numpy's fancy assignment leaves it unspecified)
        _, first = np.unique(flat[::-1], return_index=True)
        keep = len(flat) - 1 - first
        view[flat[keep]] = vals[keep]
    else:
        (np.add if mode == "add" else np.multiply).at(view, flat, vals)
    return out


NUMPY = {
    Op.NEG: lambda n, a: np.negative(a) if a.dtype != np.bool_ else ~a,
    Op.NOT: lambda n, a: np.logical_not(a),
    Op.ABS: lambda n, a: np.abs(a),
    Op.SIGN: _sign,
    Op.EXP: lambda n, a: np.exp(a),
    Op.EXP2: lambda n, a: np.exp2(a),
    Op.EXPM1: lambda n, a: np.expm1(a),
    Op.LOG: lambda n, a: np.log(a),
    Op.LOG2: lambda n, a: np.log2(a),
    Op.LOG1P: lambda n, a: np.log1p(a),
    Op.SQRT: lambda n, a: np.sqrt(a),
    Op.RSQRT: lambda n, a: (1 / np.sqrt(a.astype(_acc(a.dtype)))).astype(a.dtype),
    Op.RECIP: lambda n, a: (1 / a).astype(a.dtype),
    Op.SIN: lambda n, a: np.sin(a),
    Op.COS: lambda n, a: np.cos(a),
    Op.TAN: lambda n, a: np.tan(a),
    Op.ASIN: lambda n, a: np.arcsin(a),
    Op.ACOS: lambda n, a: np.arccos(a),
    Op.ATAN: lambda n, a: np.arctan(a),
    Op.SINH: lambda n, a: np.sinh(a),
    Op.COSH: lambda n, a: np.cosh(a),
    Op.ASINH: lambda n, a: np.arcsinh(a),
    Op.ACOSH: lambda n, a: np.arccosh(a),
    Op.ATANH: lambda n, a: np.arctanh(a),
    Op.TANH: lambda n, a: np.tanh(a),
    Op.SIGMOID: lambda n, a: (1 / (1 + np.exp(-a.astype(_acc(a.dtype))))).astype(a.dtype),
    Op.ERF: _float(lambda a: np.asarray(_erf(a), dtype=np.float64)),
    Op.FLOOR: lambda n, a: np.floor(a),
    Op.CEIL: lambda n, a: np.ceil(a),
    Op.ROUND: lambda n, a: np.round(a),
    Op.TRUNC: lambda n, a: np.trunc(a),
    Op.ISNAN: lambda n, a: np.isnan(a),
    Op.ISINF: lambda n, a: np.isinf(a),
    Op.CAST: _cast,
    Op.ADD: lambda n, a, b: a + b if a.dtype != np.bool_ else a | b,
    Op.SUB: lambda n, a, b: a - b,
    Op.MUL: lambda n, a, b: a * b if a.dtype != np.bool_ else a & b,
    Op.DIV: lambda n, a, b: a / b,
    Op.IDIV: _idiv,
    Op.MOD: _mod,
    Op.POW: _pow,
    Op.ATAN2: lambda n, a, b: np.arctan2(a, b),
    Op.MAX: _minmax(np.maximum),
    Op.MIN: _minmax(np.minimum),
    Op.CMPEQ: lambda n, a, b: a == b,
    Op.CMPNE: lambda n, a, b: a != b,
    Op.CMPLT: lambda n, a, b: a < b,
    Op.CMPLE: lambda n, a, b: a <= b,
    Op.AND: lambda n, a, b: a & b,
    Op.OR: lambda n, a, b: a | b,
    Op.XOR: lambda n, a, b: a ^ b,
    Op.WHERE: lambda n, c, a, b: np.where(c, a, b),
    Op.SUM: _reduce(np.sum),
    Op.PROD: _reduce(np.prod),
    Op.RMAX: _reduce(np.max),
    Op.RMIN: _reduce(np.min),
    Op.ARGMAX: _arg(np.argmax),
    Op.ARGMIN: _arg(np.argmin),
    Op.CUMSUM: lambda n, a: np.cumsum(a, axis=n.arg, dtype=_acc(a.dtype)).astype(a.dtype),
    Op.CUMPROD: lambda n, a: np.cumprod(a, axis=n.arg, dtype=_acc(a.dtype)).astype(a.dtype),
    Op.RESHAPE: lambda n, a: a.reshape(n.shape),
    Op.PERMUTE: lambda n, a: a.transpose(n.arg),
    Op.EXPAND: lambda n, a: np.broadcast_to(a, n.shape),
    Op.PAD: _pad,
    Op.SLICE: _slice,
    Op.GATHER: _gather,
    Op.UNFOLD: _unfold,
    Op.SCATTER: _scatter,
    Op.CONTIGUOUS: lambda n, a: a.copy(order="C"),
    Op.DETACH: lambda n, a: a,
    Op.FUNCTION: lambda n, a, *inputs: a,
}


def eval_node(n: Node, *srcs: np.ndarray) -> np.ndarray:
    """One node's value from its sources' values, with n's exact shape and dtype."""
    with np.errstate(all="ignore"):
        out = NUMPY[n.op](n, *srcs)
    out = np.asarray(out)
    if out.dtype != n.dtype.np:
        out = dt.astype(out, n.dtype)
    return out.reshape(n.shape) if out.shape != n.shape else out


def run_graph(outputs: list[Node], value_of, on_value=None) -> list[np.ndarray]:
    """Evaluate `outputs`; `value_of(node)` returns the array of a leaf or None;
    `on_value(node, array, src_arrays)` sees each computed value (anomaly checks)."""
    vals: dict[Node, np.ndarray] = {}
    leaves: dict[Node, np.ndarray] = {}

    def is_leaf(n: Node) -> bool:
        v = value_of(n)
        if v is not None:
            leaves[n] = v
            return True
        return False

    for n in toposort(outputs, is_leaf):
        if n in leaves:
            vals[n] = leaves[n]
        elif n.op is Op.CONST:
            vals[n] = np.array(n.arg, dtype=n.dtype.np)
        else:
            vals[n] = eval_node(n, *(vals[s] for s in n.srcs))
            if on_value is not None:
                on_value(n, vals[n], [vals[s] for s in n.srcs])
    return [np.array(vals[o], order="C", copy=True) for o in outputs]
