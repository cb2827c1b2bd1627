"""Dead-code elimination."""
from __future__ import annotations

from ...ir.graph import Graph


def dce(g: Graph) -> Graph:
    """Keep only the nodes the outputs depend on."""
    return Graph(g.outputs)
