"""Constant folding and algebraic simplification."""
from __future__ import annotations

import numpy as np

from ...ir import dtypes as dt
from ...ir.graph import Graph, Node, const
from ...ir.ops import ELEMENTWISE, Op
from .rewrite import rewrite


def const_value(n: Node):
    """The scalar a node is filled with, if it is a (broadcast) constant, else None."""
    while n.op in (Op.RESHAPE, Op.EXPAND, Op.PERMUTE):
        n = n.srcs[0]
    return n.arg if n.op is Op.CONST else None


def _is(n: Node, v) -> bool:
    c = const_value(n)
    return c is not None and c == v and not (isinstance(c, bool) and not isinstance(v, bool)
                                             and n.dtype.kind != "b")


def _fold(n: Node, srcs: tuple[Node, ...]) -> Node | None:
    vals = [const_value(s) for s in srcs]
    if any(v is None for v in vals):
        return None
    from ...runtime.interpreter import NUMPY
    arrays = [np.array(v, dtype=s.dtype.np) for v, s in zip(vals, srcs)]
    with np.errstate(all="ignore"):
        out = NUMPY[n.op](n, *arrays)
    return const(dt.astype(out, n.dtype).item(), n.dtype, n.shape)


def _is_argbest(n: Node, x: Node, axis: int, op: Op) -> bool:
    """n is op (ARGMAX/ARGMIN) of x over `axis` alone, keeping it as a size-1 dim."""
    return (n.op is op and n.srcs[0] is x and n.arg == (axis,) and len(n.shape) == len(x.shape)
            and n.shape[axis] == 1)



def _simplify_node(n: Node, srcs: tuple[Node, ...]) -> Node:
    op = n.op
    if op is Op.DETACH or op is Op.FUNCTION:  # only autograd cares
        return srcs[0]
    if op in ELEMENTWISE and srcs:
        folded = _fold(n, srcs)
        if folded is not None:
            return folded
        float_ = n.dtype.kind == "f"
        if op is Op.ADD and _is(srcs[1], 0) and not float_:
            return srcs[0]
        if op is Op.ADD and _is(srcs[0], 0) and not float_:
            return srcs[1]
        if op is Op.SUB and _is(srcs[1], 0):
            return srcs[0]
        if op is Op.MUL and _is(srcs[1], 1):
            return srcs[0]
        if op is Op.MUL and _is(srcs[0], 1):
            return srcs[1]
        if op is Op.DIV and _is(srcs[1], 1):
            return srcs[0]
        if op is Op.NEG and srcs[0].op is Op.NEG:
            return srcs[0].srcs[0]
        if op is Op.CAST and srcs[0].dtype == n.dtype:
            return srcs[0]
        if op is Op.WHERE:
            c = const_value(srcs[0])
            if c is not None:
                return srcs[1] if c else srcs[2]
            if srcs[1] is srcs[2]:
                return srcs[1]
    if op is Op.GATHER and _is_argbest(srcs[1], srcs[0], n.arg, Op.ARGMAX):
        # x gathered at its own argmax along that axis is its max there (max-pool's value):
        # a vectorized reduction instead of an index pass and a data-dependent load
        return Node(Op.RMAX, (srcs[0],), (n.arg,), n.shape, n.dtype)
    if op is Op.GATHER and _is_argbest(srcs[1], srcs[0], n.arg, Op.ARGMIN):
        return Node(Op.RMIN, (srcs[0],), (n.arg,), n.shape, n.dtype)
    if op in (Op.RESHAPE, Op.EXPAND) and srcs[0].shape == n.shape:
        return srcs[0]
    if op is Op.PERMUTE and n.arg == tuple(range(len(n.shape))):
        return srcs[0]
    if op is Op.SLICE and srcs[0].shape == n.shape and all(
            a == (0, 1) for a in n.arg):
        return srcs[0]
    if op is Op.RESHAPE and srcs[0].op is Op.RESHAPE:
        return Node(Op.RESHAPE, srcs[0].srcs, n.arg, n.shape, n.dtype)
    if op is Op.PERMUTE and srcs[0].op is Op.PERMUTE:
        inner = srcs[0].arg
        perm = tuple(inner[p] for p in n.arg)
        return _simplify_node(Node(Op.PERMUTE, srcs[0].srcs, perm, n.shape, n.dtype),
                              srcs[0].srcs)
    return n if srcs == n.srcs else Node(op, srcs, n.arg, n.shape, n.dtype)


def simplify(g: Graph) -> Graph:
    """Fold constant subexpressions; drop identities (x*1, x-0, casts to the same dtype,
    no-op views); merge chains of reshapes and of permutes.

    `x + 0.0` is kept for floats: it turns -0.0 into +0.0, as PyTorch computes it.
    """
    return rewrite(g, _simplify_node)
