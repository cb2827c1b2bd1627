"""Graph passes: each a pure function Graph -> Graph, run in PIPELINE order."""
from __future__ import annotations

from ...ir.graph import Graph
from .cse import cse
from .dce import dce
from .distribute import distribute_sums
from .rewrite import rewrite
from .simplify import simplify
from .verify import verify

PIPELINE = (simplify, distribute_sums, cse, dce)


def optimize(g: Graph, after_each=None) -> Graph:
    """Run every pass; `after_each(name, graph)` sees the graph after each one."""
    for p in PIPELINE:
        g = p(g)
        if after_each is not None:
            after_each(p.__name__, g)
    return g


__all__ = ["PIPELINE", "cse", "dce", "distribute_sums", "optimize", "rewrite", "simplify", "verify"]
