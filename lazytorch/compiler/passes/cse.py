"""Common-subexpression elimination."""
from __future__ import annotations

from ...ir.graph import Graph, Node
from ...ir.ops import COMMUTATIVE
from .rewrite import rewrite


def cse(g: Graph) -> Graph:
    """Merge nodes that compute the same value.

    Hash-consing already makes identical nodes one object; this pass also puts the operands of
    commutative ops in a canonical order, so `a + b` and `b + a` become one node.
    """
    order = {n: i for i, n in enumerate(g.nodes)}
    rank: dict[Node, tuple] = {}

    def key(n: Node) -> tuple:
        # a structural key, independent of how the user wrote the operands
        k = rank.get(n)
        if k is None:
            k = (n.op.value, repr(n.arg), n.shape, n.dtype.name,
                 tuple(rank.get(s, (order.get(s, -1),)) for s in n.srcs))
            rank[n] = k
        return k

    def fn(n: Node, srcs: tuple[Node, ...]) -> Node:
        if n.op in COMMUTATIVE and len(srcs) == 2:
            srcs = tuple(sorted(srcs, key=key))
        out = n if srcs == n.srcs else Node(n.op, srcs, n.arg, n.shape, n.dtype)
        key(out)
        return out

    return rewrite(g, fn)
