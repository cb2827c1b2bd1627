"""The IR verifier: checks every node's shape and dtype against its op's rule."""
from __future__ import annotations

import math

from ...ir.dtypes import bool_, int64
from ...ir.graph import Graph, Node, format_graph
from ...ir.ops import BINARY, COMPARE, REDUCE, SCAN, UNARY, Op


def _problem(n: Node) -> str | None:
    op, s = n.op, n.srcs
    if op in (Op.BUFFER, Op.CONST):
        return None if not s else "sources have no srcs"
    if op in UNARY or op in BINARY:
        want = 1 if op in UNARY else 2
        if len(s) != want:
            return f"expects {want} srcs"
        if any(x.shape != n.shape for x in s):
            return "srcs must have the node's shape"
        if op in COMPARE and n.dtype != bool_:
            return "comparisons give bool"
        if op is not Op.CAST and op not in COMPARE and any(x.dtype != s[0].dtype for x in s):
            return "srcs of an elementwise op must share a dtype"
        return None
    if op is Op.WHERE:
        if len(s) != 3 or s[0].dtype != bool_ or any(x.shape != n.shape for x in s):
            return "where takes (bool cond, a, b) of the node's shape"
        return None
    if op in REDUCE:
        src = s[0]
        if any(not 0 <= a < len(src.shape) for a in n.arg):
            return "reduce axis out of range"
        want = tuple(1 if i in n.arg else d for i, d in enumerate(src.shape))
        if n.shape != want:
            return f"reduce keeps reduced dims as 1: expected {want}"
        if op in (Op.ARGMAX, Op.ARGMIN) and n.dtype != int64:
            return "argmax/argmin give int64"
        return None
    if op in SCAN:
        return None if s[0].shape == n.shape else "scan keeps the shape"
    if op is Op.RESHAPE:
        return None if math.prod(s[0].shape) == math.prod(n.shape) else "reshape changes numel"
    if op is Op.PERMUTE:
        ok = sorted(n.arg) == list(range(len(n.shape)))
        return None if ok and tuple(s[0].shape[p] for p in n.arg) == n.shape else "bad permute"
    if op is Op.EXPAND:
        ok = len(s[0].shape) == len(n.shape) and all(
            a == b or a == 1 for a, b in zip(s[0].shape, n.shape))
        return None if ok else "expand only broadcasts size-1 dims"
    if op is Op.UNFOLD:
        dim, size, step = n.arg
        src = s[0].shape
        want = src[:dim] + ((src[dim] - size) // step + 1,) + src[dim + 1:] + (size,)
        ok = 0 <= dim < len(src) and 0 < size <= src[dim] and step > 0 and n.shape == want
        return None if ok else f"unfold of {src} by {n.arg} gives {want}"
    if op is Op.GATHER:
        return _gather_problem(n)
    if op is Op.SCATTER:
        return _scatter_problem(n)
    return None


def _gather_problem(n: Node) -> str | None:
    if len(n.srcs) != 2:
        return "gather takes (x, index)"
    x, index = n.srcs
    if not isinstance(n.arg, int) or not 0 <= n.arg < len(x.shape):
        return "gather axis out of range"
    if index.dtype.kind not in "iu" or index.shape != n.shape or x.dtype != n.dtype:
        return "gather's index is an integer tensor of the output's shape, x has its dtype"
    if len(x.shape) != len(n.shape) or any(
            a < b for d, (a, b) in enumerate(zip(x.shape, n.shape)) if d != n.arg):
        return "gather's x is no smaller than the output except along the axis"
    return None


def _scatter_problem(n: Node) -> str | None:
    if len(n.srcs) != 3 or not isinstance(n.arg, tuple) or len(n.arg) != 2:
        return "scatter takes (base, index, src) with arg (axis, mode)"
    (base, index, src), (axis, mode) = n.srcs, n.arg
    if base.shape != n.shape or base.dtype != n.dtype or src.dtype != n.dtype:
        return "scatter's base and src have the output's shape and dtype"
    if not isinstance(axis, int) or not 0 <= axis < len(n.shape):
        return "scatter axis out of range"
    if mode not in (None, "add", "multiply"):
        return "scatter mode is None, 'add' or 'multiply'"
    if index.dtype.kind not in "iu" or index.shape != src.shape:
        return "scatter's index is an integer tensor of src's shape"
    if len(index.shape) != len(n.shape) or any(
            a > b for d, (a, b) in enumerate(zip(index.shape, n.shape)) if d != axis):
        return "scatter's index is no larger than the output except along the axis"
    return None


def verify(g: Graph) -> Graph:
    """Raise ValueError quoting the offending line if a node is malformed; return g."""
    for i, n in enumerate(g.nodes):
        p = _problem(n)
        if p is not None:
            text = format_graph(g).splitlines()
            lo = max(0, i - 2)
            ctx = "\n".join(("> " if j == i else "  ") + text[j]
                            for j in range(lo, min(len(text), i + 3)))
            raise ValueError(f"invalid IR at %{i} ({n.op.name.lower()}): {p}\n{ctx}")
    return g
