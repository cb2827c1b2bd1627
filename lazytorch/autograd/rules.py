"""Gradient rules: one entry per differentiable Op, each building new Nodes.

GRAD[op](node, g) returns one gradient Node (or None) per source of `node`, given `g`, the
gradient of the output (same shape and dtype as node). Rules only build graph: nothing runs.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import Node, const, new_node
from ..ir.ops import COMPARE, VIEW, Op

# the ops the common rules build, as module constants (an Enum member lookup costs a call)
_ADD, _SUB, _MUL, _DIV, _NEG, _WHERE = Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.NEG, Op.WHERE
_RESHAPE, _EXPAND, _SUM, _PERMUTE = Op.RESHAPE, Op.EXPAND, Op.SUM, Op.PERMUTE


def _n(op: Op, *srcs: Node, arg=None, shape=None, dtype=None) -> Node:
    return new_node(op, srcs, arg, srcs[0].shape if shape is None else tuple(shape),
                    srcs[0].dtype if dtype is None else dtype)


def c(v, like: Node) -> Node:
    return const(v, like.dtype, like.shape, like.device)


def add(a, b):
    return new_node(_ADD, (a, b), None, a.shape, a.dtype)


def sub(a, b):
    return new_node(_SUB, (a, b), None, a.shape, a.dtype)


def mul(a, b):
    return new_node(_MUL, (a, b), None, a.shape, a.dtype)


def div(a, b):
    return new_node(_DIV, (a, b), None, a.shape, a.dtype)


def neg(a):
    return new_node(_NEG, (a,), None, a.shape, a.dtype)


def where(cond, a, b):
    return new_node(_WHERE, (cond, a, b), None, tuple(a.shape), a.dtype)


def cmp(op: Op, a, b):
    return new_node(op, (a, b), None, a.shape, _BOOL)


_BOOL = dt.bool_


def zeros_like(n: Node) -> Node:
    return const(0, n.dtype, n.shape, n.device)


def reshape(n: Node, shape) -> Node:
    shape = tuple(shape)
    return n if n.shape == shape else new_node(_RESHAPE, (n,), shape, shape, n.dtype)


def sum_to(g: Node, shape) -> Node:
    """Sum g over the axes where `shape` has 1 and g does not (undoing an expand)."""
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if a != b)
    if not axes:
        return g
    return new_node(_SUM, (g,), axes, tuple(shape), g.dtype)


def expand(n: Node, shape) -> Node:
    shape = tuple(shape)
    return n if n.shape == shape else new_node(_EXPAND, (n,), shape, shape, n.dtype)


def _unary(fn):
    return lambda n, g: (fn(n, g, n.srcs[0]),)


def _pow(n, g):
    a, b = n.srcs
    zero = zeros_like(g)
    ga = where(cmp(Op.CMPEQ, b, zero), zero, mul(g, mul(b, _n(Op.POW, a, sub(b, c(1, b))))))
    # PyTorch: d/db a**b is 0 where a == 0 and b >= 0 (not a*log(a) = 0*-inf)
    zero_base = _n(Op.AND, cmp(Op.CMPEQ, a, zero), cmp(Op.CMPLE, zero, b), dtype=dt.bool_)
    gb = where(zero_base, zero, mul(g, mul(n, _n(Op.LOG, a))))
    return ga, gb


def _is_const(n: Node) -> bool:
    while n.op in (Op.EXPAND, Op.RESHAPE):
        n = n.srcs[0]
    return n.op is Op.CONST


def _maxmin(is_max: bool):
    """maximum/minimum: ties share the gradient equally (PyTorch's rule); against a constant
    (relu, clamp) the tensor gets the gradient only where it strictly won."""
    def rule(n, g):
        a, b = n.srcs
        zero = zeros_like(g)
        a_wins = cmp(Op.CMPLT, b, a) if is_max else cmp(Op.CMPLT, a, b)
        b_wins = cmp(Op.CMPLT, a, b) if is_max else cmp(Op.CMPLT, b, a)
        # against a constant c, `a` won exactly where the result differs from c on the
        # winning side: the mask reads the output (relu's result, which the forward stores
        # anyway) rather than the input, so backward never recomputes what produced it
        if _is_const(b):
            won = cmp(Op.CMPLT, b, n) if is_max else cmp(Op.CMPLT, n, b)
            return where(won, g, zero), None
        if _is_const(a):
            won = cmp(Op.CMPLT, a, n) if is_max else cmp(Op.CMPLT, n, a)
            return None, where(won, g, zero)
        half = mul(g, c(0.5, g))
        eq = cmp(Op.CMPEQ, a, b)
        return (where(eq, half, where(a_wins, g, zero)), where(eq, half, where(b_wins, g, zero)))
    return rule


def _floor_divide(n, g):
    """PyTorch defines no derivative of floor_divide (`//`); div(rounding_mode="floor") has a
    zero one, recorded apart (elementwise._zero_gradient)."""
    raise RuntimeError("derivative for aten::floor_divide is not implemented")


def _floor_quotient(a: Node, b: Node) -> Node:
    """a // b with a zero derivative (PyTorch's div(rounding_mode="floor"), which remainder's
    gradient uses): computed from detached sources and joined to each through
    where(true, q, source), so a second derivative through it is zero rather than an error."""
    q = _n(Op.IDIV, _n(Op.DETACH, a), _n(Op.DETACH, b))
    yes = const(True, _BOOL, q.shape)
    return where(yes, where(yes, q, a), b)


def _reduce_sum(n, g):
    return (expand(g, n.srcs[0].shape),)


# views whose values _stored follows down to their source (UNFOLD's windows are not followed:
# a value read through them counts as computed)
_VIEWS = VIEW - {Op.UNFOLD}


def _stored(n: Node) -> bool:
    """Whether every value of `n` is read from a buffer or a constant (through views only), so
    two kernels reading it see the same bits."""
    while n.op in _VIEWS:
        n = n.srcs[0]
    return n.op is Op.BUFFER or n.op is Op.CONST


def _reduce_maxmin(n, g):
    """amax/amin/max()/min(): the gradient is shared evenly among the elements equal to the
    result (a NaN result: among the NaNs), as PyTorch does.

    The comparison reads stored values: an input that is computed (`x.exp().max()`) is first
    stored and its extreme taken again from the stored copy, since the forward kernel and the
    backward kernel may compute it in differently vectorized loops whose floats differ in the
    last bit, and then nothing would equal the stored extreme."""
    x = n.srcs[0]
    m = n
    if not _stored(x):
        x = _n(Op.CONTIGUOUS, x)
        m = _n(n.op, x, arg=n.arg, shape=n.shape)
    me = expand(m, x.shape)
    hit = cmp(Op.CMPEQ, x, me)
    if x.dtype.kind == "f":
        both_nan = _n(Op.AND, _n(Op.ISNAN, x, dtype=_BOOL), _n(Op.ISNAN, me, dtype=_BOOL),
                      dtype=_BOOL)
        hit = _n(Op.OR, hit, both_nan, dtype=_BOOL)
    hit = _n(Op.CAST, hit, arg=x.dtype, dtype=x.dtype)
    count = _n(Op.SUM, hit, arg=n.arg, shape=n.shape)
    return (mul(hit, expand(div(g, count), x.shape)),)


def _exclusive_cumprod(x: Node, reverse: bool) -> Node:
    """Products of the elements before each one along the last axis (after, if reverse)."""
    k = x.shape[-1]
    nd = len(x.shape)
    if reverse:
        flip = tuple((k - 1, -1) if i == nd - 1 else (0, 1) for i in range(nd))
        x = _n(Op.SLICE, x, arg=flip)
    pads = tuple((1, 0) if i == nd - 1 else (0, 0) for i in range(nd))
    padded = _n(Op.PAD, x, arg=(pads, x.dtype.np(1).item()), shape=x.shape[:-1] + (k + 1,))
    cp = _n(Op.CUMPROD, padded, arg=nd - 1)
    out = _n(Op.SLICE, cp, arg=tuple((0, 1) for _ in range(nd)), shape=x.shape)
    if reverse:
        out = _n(Op.SLICE, out, arg=flip)
    return out


def _reduce_prod(n, g):
    """Exact even with zeros: d/dx_i prod(x) = prod of the other elements."""
    x = n.srcs[0]
    axes = n.arg
    keep = [i for i in range(len(x.shape)) if i not in axes]
    perm = tuple(keep + list(axes))
    xp = _n(Op.PERMUTE, x, arg=perm, shape=tuple(x.shape[i] for i in perm))
    k = math.prod(x.shape[a] for a in axes)
    flat = reshape(xp, xp.shape[:len(keep)] + (k,))
    others = mul(_exclusive_cumprod(flat, False), _exclusive_cumprod(flat, True))
    others = reshape(others, xp.shape)
    inv = tuple(sorted(range(len(perm)), key=lambda i: perm[i]))
    others = _n(Op.PERMUTE, others, arg=inv, shape=x.shape)
    return (mul(others, expand(g, x.shape)),)


def _cumsum(n, g):
    ax = n.arg
    nd = len(n.shape)
    flip = tuple((s - 1, -1) if i == ax and s > 0 else (0, 1) for i, s in enumerate(n.shape))
    rev = _n(Op.SLICE, g, arg=flip)
    return (_n(Op.SLICE, _n(Op.CUMSUM, rev, arg=ax), arg=flip),) if nd else (g,)


def _cumprod(n, g):
    """d/dx_i = sum_{j>=i} g_j * prod_{k<=j, k!=i} x_k, exact with zeros (as PyTorch).

    With z the first zero along the axis and x' = x with that zero replaced by 1, out' =
    cumprod(x') and R = the reverse cumsum of g * out': positions before z get
    (R_i - R_z) / x_i, position z gets R_z, positions after z get 0. Without a zero this is
    R_i / x_i. Divisions only see nonzero x, so double backward stays finite."""
    (x,) = n.srcs
    ax = n.arg
    zero, one = zeros_like(x), c(1, x)
    is_zero = cmp(Op.CMPEQ, x, zero)
    zeros_so_far = _n(Op.CUMSUM, _n(Op.CAST, is_zero, arg=x.dtype, dtype=x.dtype), arg=ax)
    before = cmp(Op.CMPEQ, zeros_so_far, zero)
    first = _n(Op.AND, is_zero, cmp(Op.CMPEQ, zeros_so_far, one), dtype=dt.bool_)
    out1 = _n(Op.CUMPROD, where(first, one, x), arg=ax)
    r = _cumsum(n, mul(g, out1))[0]
    kept = tuple(1 if i == ax else s for i, s in enumerate(x.shape))
    r_z = expand(_n(Op.SUM, where(first, r, zero), arg=(ax,), shape=kept), x.shape)
    safe_x = where(before, x, one)
    return (where(before, div(sub(r, r_z), safe_x), where(first, r_z, zero)),)


def _permute(n, g):
    inv = tuple(sorted(range(len(n.arg)), key=n.arg.__getitem__))
    return (new_node(_PERMUTE, (g,), inv, tuple(n.srcs[0].shape), g.dtype),)


def _pad(n, g):
    pads, _ = n.arg
    return (_n(Op.SLICE, g, arg=tuple((lo, 1) for lo, _ in pads), shape=n.srcs[0].shape),)


def _slice(n, g):
    from ..frontend.views import _unslice
    return (_unslice(g, n.arg, n.srcs[0].shape, g.dtype.np(0).item()),)


def _unfold(n, g):
    """Each window element came from src[dim] = o * step + t: add the windows back."""
    dim, size, step = n.arg
    src_shape = n.srcs[0].shape
    nd = len(g.shape)
    total = None
    for t in range(size):
        arg = tuple((t, 1) if i == nd - 1 else (0, 1) for i in range(nd))
        piece = Node(Op.SLICE, (g,), arg, g.shape[:-1] + (1,), g.dtype)
        piece = reshape(piece, g.shape[:-1])
        from ..frontend.views import _unslice
        place = tuple((t, step) if i == dim else (0, 1) for i in range(nd - 1))
        placed = _unslice(piece, place, src_shape, g.dtype.np(0).item())
        total = placed if total is None else add(total, placed)
    return (total,)


def _gather(n, g):
    x, index = n.srcs
    axis = n.arg
    if index.shape[axis] == 1 and all(a == b for d, (a, b) in enumerate(zip(index.shape, x.shape))
                                      if d != axis):
        # one index per row (an argmax's, max-pool's): the gradient is g where the position
        # along the axis equals the index, else 0; elementwise, so it fuses with what
        # follows, where a scatter would be a kernel of its own over a zero-filled buffer
        return (_one_hot_grad(g, index, axis, x.shape), None)
    zero = zeros_like(_n(Op.CAST, x, arg=g.dtype, dtype=g.dtype)) if x.dtype != g.dtype \
        else zeros_like(x)
    return (Node(Op.SCATTER, (zero, index, g), (axis, "add"), x.shape, g.dtype), None)


def _one_hot_grad(g: Node, index: Node, axis: int, shape) -> Node:
    shape = tuple(shape)
    pos = _positions(shape[axis], axis, len(shape), index.dtype, index.device)
    hit = cmp(Op.CMPEQ, expand(pos, shape), expand(index, shape))
    return where(hit, expand(g, shape), zeros_like(expand(g, shape)))


_POSITIONS: dict[tuple, Node] = {}


def _positions(n: int, axis: int, ndim: int, dtype: dt.DType, device: str | None) -> Node:
    """A buffer 0..n-1 along `axis` of an ndim-dim shape of ones, on `device` (None: the CPU)
    (kept: a training loop asks for the same few each step)."""
    key = (n, axis, ndim, dtype, device or "cpu")
    b = _POSITIONS.get(key)
    if b is None:
        from ..runtime import memory
        shape = [1] * ndim
        shape[axis] = n
        b = memory.buffer_node(np.arange(n, dtype=dtype.np).reshape(shape), device=key[-1])
        if n <= 4096 and len(_POSITIONS) < 256:
            _POSITIONS[key] = b
    return b


def _scatter(n, g):
    base, index, src = n.srcs
    axis, mode = n.arg
    g_src = Node(Op.GATHER, (g, index), axis, index.shape, g.dtype)
    if mode == "add":
        return g, None, g_src
    if mode is not None:  # reduce="multiply": PyTorch has no derivative either
        raise RuntimeError("derivative for aten::scatter is not implemented")
    # overwritten positions get no gradient from the base
    hole = Node(Op.SCATTER, (g, index, zeros_like(src)), (axis, None), g.shape, g.dtype)
    return hole, None, g_src


def _cast(n, g):
    src = n.srcs[0]
    if not src.dtype.is_floating_point:
        return (None,)
    return (_n(Op.CAST, g, arg=src.dtype, dtype=src.dtype),)


def _atan2(n, g):
    """d atan2(y, x) = (x dy - y dx) / (x^2 + y^2)."""
    y, x = n.srcs
    r = div(g, add(mul(x, x), mul(y, y)))
    return mul(r, x), neg(mul(r, y))


LN2 = math.log(2.0)

GRAD = {
    Op.ADD: lambda n, g: (g, g),
    Op.SUB: lambda n, g: (g, neg(g)),
    Op.MUL: lambda n, g: (mul(g, n.srcs[1]), mul(g, n.srcs[0])),
    Op.DIV: lambda n, g: (div(g, n.srcs[1]), neg(div(mul(g, n), n.srcs[1]))),
    Op.NEG: lambda n, g: (neg(g),),
    Op.EXP: lambda n, g: (mul(g, n),),
    Op.EXP2: lambda n, g: (mul(g, mul(n, c(LN2, n))),),
    Op.EXPM1: lambda n, g: (mul(g, add(n, c(1, n))),),
    Op.LOG: _unary(lambda n, g, a: div(g, a)),
    Op.LOG2: _unary(lambda n, g, a: div(g, mul(a, c(LN2, a)))),
    Op.LOG1P: _unary(lambda n, g, a: div(g, add(a, c(1, a)))),
    Op.SQRT: lambda n, g: (div(mul(g, c(0.5, g)), n),),
    Op.RSQRT: lambda n, g: (mul(g, mul(c(-0.5, n), mul(n, mul(n, n)))),),
    Op.RECIP: lambda n, g: (neg(mul(g, mul(n, n))),),
    Op.SIN: _unary(lambda n, g, a: mul(g, _n(Op.COS, a))),
    Op.COS: _unary(lambda n, g, a: neg(mul(g, _n(Op.SIN, a)))),
    Op.TAN: lambda n, g: (mul(g, add(c(1, n), mul(n, n))),),
    Op.ASIN: _unary(lambda n, g, a: mul(g, _n(Op.RSQRT, sub(c(1, a), mul(a, a))))),
    Op.ACOS: _unary(lambda n, g, a: neg(mul(g, _n(Op.RSQRT, sub(c(1, a), mul(a, a)))))),
    Op.ATAN: _unary(lambda n, g, a: div(g, add(c(1, a), mul(a, a)))),
    Op.SINH: _unary(lambda n, g, a: mul(g, _n(Op.COSH, a))),
    Op.COSH: _unary(lambda n, g, a: mul(g, _n(Op.SINH, a))),
    Op.ASINH: _unary(lambda n, g, a: mul(g, _n(Op.RSQRT, add(mul(a, a), c(1, a))))),
    Op.ACOSH: _unary(lambda n, g, a: mul(g, _n(Op.RSQRT, sub(mul(a, a), c(1, a))))),
    Op.ATANH: _unary(lambda n, g, a: div(g, sub(c(1, a), mul(a, a)))),
    Op.ATAN2: _atan2,
    Op.TANH: lambda n, g: (mul(g, sub(c(1, n), mul(n, n))),),
    Op.SIGMOID: lambda n, g: (mul(g, mul(n, sub(c(1, n), n))),),
    Op.ERF: _unary(lambda n, g, a: mul(g, mul(c(2 / math.sqrt(math.pi), a),
                                                 _n(Op.EXP, neg(mul(a, a)))))),
    Op.ABS: _unary(lambda n, g, a: mul(g, _n(Op.SIGN, a))),
    Op.SIGN: lambda n, g: (zeros_like(g),),
    Op.FLOOR: lambda n, g: (zeros_like(g),),
    Op.CEIL: lambda n, g: (zeros_like(g),),
    Op.ROUND: lambda n, g: (zeros_like(g),),
    Op.TRUNC: lambda n, g: (zeros_like(g),),
    Op.CAST: _cast,
    Op.POW: _pow,
    Op.MAX: _maxmin(True),
    Op.MIN: _maxmin(False),
    Op.IDIV: _floor_divide,
    Op.MOD: lambda n, g: (g, neg(mul(g, _floor_quotient(*n.srcs)))),
    Op.WHERE: lambda n, g: (None, where(n.srcs[0], g, zeros_like(g)),
                            where(n.srcs[0], zeros_like(g), g)),
    Op.SUM: _reduce_sum,
    Op.PROD: _reduce_prod,
    Op.RMAX: _reduce_maxmin,
    Op.RMIN: _reduce_maxmin,
    Op.CUMSUM: _cumsum,
    Op.CUMPROD: _cumprod,
    Op.RESHAPE: lambda n, g: (reshape(g, n.srcs[0].shape),),
    Op.PERMUTE: _permute,
    Op.EXPAND: lambda n, g: (sum_to(g, n.srcs[0].shape),),
    Op.PAD: _pad,
    Op.SLICE: _slice,
    Op.GATHER: _gather,
    Op.SCATTER: _scatter,
    Op.UNFOLD: _unfold,
    Op.CONTIGUOUS: lambda n, g: (g,),
}

# ops whose outputs carry no gradient (integer or boolean results, or constants)
NO_GRAD = COMPARE | {Op.NOT, Op.AND, Op.OR, Op.XOR, Op.ARGMAX, Op.ARGMIN, Op.BUFFER, Op.CONST,
                     Op.DETACH}
