"""The compiler: passes, scheduling into kernels, C code generation.

`schedule(*tensors)` shows the kernels realizing the tensors would run, without running them;
`graph(*tensors)` returns the pending graph as a networkx.DiGraph (see compiler/graphviz.py).
"""
from __future__ import annotations

from . import schedule as _schedule_module  # noqa: F401  (loaded first: the name below wins)
from .kernel import Kernel


def schedule(*tensors) -> list[Kernel]:
    """The kernels (each with .name, .source, .ops) that realizing `tensors` would run."""
    from ..realize import schedule as _schedule
    from ..tensor import Tensor
    nodes = [t.node if isinstance(t, Tensor) else t for t in tensors]
    return _schedule(nodes).kernels


def graph(*tensors):
    """The pending graph of `tensors` (forward and backward) as a networkx.DiGraph.

    Nodes are named `%0`, `%1`, ... as `lazytorch.debug.ir` prints them and carry op, arg,
    shape, dtype, op_class, kernel (the kernel it fuses into, named as in the schedule; None for
    inputs), kernels, stored, backward (built by autograd), site (user file:line) and api;
    edges go from a source to its user.
    """
    from ..realize import substitute
    from ..tensor import Tensor
    from .graphviz import to_networkx
    nodes = [t.node if isinstance(t, Tensor) else t for t in tensors]
    outs, _ = substitute(nodes)
    return to_networkx(outs)


__all__ = ["Kernel", "graph", "schedule"]
