"""Sums of products become sums of sums: SUM(a*b + c*d + ...) -> SUM(a*b) + SUM(c*d) + ...
when each product multiplies two broadcasts (an outer product, whose sum is a matmul).

Autograd writes such graphs: a weight used at every step of a recurrence is broadcast against
each step's input, and its gradient contributions (one outer product per step) are added at
the broadcast before the broadcast's own gradient sums them. Summed as written, every term is
computed at the broadcast's full size (an LSTM's 35 steps of batch x 4*hidden x hidden) and no
kernel is a matmul; distributed, each term is a matmul over the batch and only weight-sized
results are added.
"""
from __future__ import annotations

from ...ir.graph import Graph, Node
from ...ir.ops import Op
from .rewrite import rewrite, same


def _broadcast_axes(n: Node) -> set[int] | None:
    """The axes an EXPAND at n broadcasts (n's own rank), or None if n is not a broadcast."""
    if n.op is not Op.EXPAND:
        return None
    src = n.srcs[0].shape
    if len(src) != len(n.shape):
        return None
    axes = {i for i, (a, b) in enumerate(zip(src, n.shape)) if a == 1 and b != 1}
    return axes or None


def _is_outer_product(n: Node, reduced: set[int]) -> bool:
    """n = x * y with x and y broadcast along different kept axes and both varying along some
    reduced axis: its sum over `reduced` is a matmul."""
    if n.op is not Op.MUL:
        return False
    ax, bx = (_broadcast_axes(s) for s in n.srcs)
    if ax is None or bx is None:
        return False
    kept = set(range(len(n.shape))) - reduced
    return bool(reduced - ax - bx) and bool(ax & kept) and bool(bx & kept) and ax != bx


def _terms(n: Node, users: dict[Node, list[Node]], out: list[Node]) -> bool:
    """Collect the leaves of the ADD tree at n (whose inner ADDs nothing else uses)."""
    if n.op is Op.ADD and len(users.get(n, ())) <= 1:
        return all(_terms(s, users, out) for s in n.srcs)
    out.append(n)
    return True


def distribute_sums(g: Graph) -> Graph:
    """SUM over an ADD tree of outer products -> an ADD tree of the products' SUMs."""
    users = g.users()
    outputs = set(g.outputs)
    plans: dict[Node, list[Node]] = {}
    for n in g.nodes:
        if n.op is not Op.SUM or n.srcs[0].op is not Op.ADD or n.srcs[0] in outputs:
            continue
        terms: list[Node] = []
        reduced = set(n.arg)
        if _terms(n.srcs[0], users, terms) and len(terms) > 1 and \
                all(_is_outer_product(t, reduced) for t in terms):
            plans[n] = terms
    if not plans:
        return g
    done: dict[Node, Node] = {}     # every node's rewritten version, as rewrite visits them

    def fn(n: Node, srcs: tuple[Node, ...]) -> Node:
        terms = plans.get(n)
        if terms is None:
            out = same(n, srcs)
        else:
            out = None
            for t in terms:
                s = Node(Op.SUM, (done[t],), n.arg, n.shape, n.dtype)
                out = s if out is None else Node(Op.ADD, (out, s), None, n.shape, n.dtype)
        done[n] = out
        return out
    return rewrite(g, fn)
