"""Rebuild a graph bottom-up through a node-rewriting function."""
from __future__ import annotations

import threading
from typing import Callable

from ...ir.graph import Graph, Node

# when TRACE.maps is a list, each rewrite appends its old node -> new node dict to it
# (lazytorch.compiler.graphviz follows user nodes through the passes this way)
TRACE = threading.local()


def rewrite(g: Graph, fn: Callable[[Node, tuple[Node, ...]], Node]) -> Graph:
    """Return g with every node n replaced by fn(n, new_srcs), sources first.

    `fn` gets the original node and its already-rewritten sources and returns the node to use
    (often `Node(n.op, new_srcs, n.arg, n.shape, n.dtype)`); unreachable nodes are dropped.
    """
    from ...ir.sites import inherit
    new: dict[Node, Node] = {}
    for n in g.nodes:
        srcs = tuple(new[s] for s in n.srcs)
        out = new[n] = fn(n, srcs)
        if out is not n:
            inherit(out, n)  # the user's line and backward mark follow the rewritten node
    maps = getattr(TRACE, "maps", None)
    if maps is not None:
        maps.append(new)
    return Graph(tuple(new[o] for o in g.outputs))


def same(n: Node, srcs: tuple[Node, ...]) -> Node:
    return n if srcs == n.srcs else Node(n.op, srcs, n.arg, n.shape, n.dtype)
