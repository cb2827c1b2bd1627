"""Seeing and debugging what the compiler does.

- counters: stats() / reset_stats()
- LAZYTORCH_DEBUG=N or `with level(N)`: 1 a line per realize, 2 a line per kernel run (with the
  user-level ops it fused, its time and bandwidth), 3 the IR before/after scheduling, 4 the
  generated source, 5 the IR after every pass. Everything goes to stderr.
- LAZYTORCH_EAGER=1|interp|compiled or `with eager()`: every op runs when it is called.
- LAZYTORCH_CHECK=1 or `with check()`: every compiled kernel is compared with the interpreter.
- ir(*tensors): the pending graph as a readable program; viz(*tensors, path=...) draws it.
- schedule(*tensors), graph(*tensors): the kernels realizing the tensors would run, and the
  pending graph as a networkx.DiGraph; published as lazytorch.compiler.schedule and .graph.

The settings live in lazytorch/config.py (which imports nothing of lazytorch, so that the
compiler and the runtime can read them); this module re-exports them next to the tools, which
take Tensors and so belong to the front end.
"""
from __future__ import annotations

from . import compiler as _compiler
from .compiler.graphviz import render, to_networkx
from .config import (
    EAGER_SOMEWHERE,
    REALIZE_HOOKS,
    STATS,
    anomaly_mode,
    backend,
    check,
    check_mode,
    eager,
    eager_mode,
    get_level,
    lazy,
    level,
    log,
    reset_stats,
    stats,
    use_backend,
)
from .engine.realize import schedule as _schedule
from .engine.realize import substitute
from .frontend.tensor import Tensor
from .ir.graph import Graph, format_graph
from .ir.sites import BACKWARD, SITES

__all__ = ["EAGER_SOMEWHERE", "REALIZE_HOOKS", "STATS", "anomaly_mode", "backend", "check",
           "check_mode", "eager", "eager_mode", "get_level", "graph", "ir", "lazy", "level", "log",
           "reset_stats", "schedule", "stats", "use_backend", "viz"]


def _nodes(tensors) -> list:
    return [t.node if isinstance(t, Tensor) else t for t in tensors]


def ir(*tensors, sites: bool = True) -> str:
    """The pending graph of `tensors` (forward and backward) as a readable program; with
    sites=True each line ends with the user's source line that created it."""
    outs, _ = substitute(_nodes(tensors))

    def comment(n):
        if not sites:
            return None
        s = SITES.get(n)
        if s is None:
            return "backward" if n in BACKWARD else None
        return f"{s[0]} {s[1]}".strip() + (" backward" if n in BACKWARD and
                                            "backward" not in s[1] else "")
    return format_graph(Graph(outs), comments=comment)


def schedule(*tensors, device=None) -> list[_compiler.Kernel]:
    """The kernels (each with .name, .source, .ops) that realizing `tensors` would run on
    `device` (a device or its name; by default the tensors' own): `device="cuda"` gives the
    CUDA kernels of tensors built on the CPU, with or without a GPU."""
    if device is None:
        device = tensors[0].device if tensors else "cpu"
    return _schedule(_nodes(tensors), str(device)).kernels


def graph(*tensors):
    """The pending graph of `tensors` (forward and backward) as a networkx.DiGraph.

    Nodes are named `%0`, `%1`, ... as `lazytorch.debug.ir` prints them and carry op, arg,
    shape, dtype, op_class, kernel (the kernel it fuses into, named as in the schedule; None for
    inputs), kernels, stored, backward (built by autograd), site (user file:line) and api;
    edges go from a source to its user.
    """
    outs, _ = substitute(_nodes(tensors))
    return to_networkx(outs)


def viz(*tensors, path: str = "graph.svg", title: str | None = None) -> str:
    """Draw the pending graph of `tensors` (forward and backward) to `path`: nodes coloured by
    op class, fused kernels as clusters named as in the printed schedule, backward nodes dashed.
    The format follows the extension (svg, png, pdf, dot); without graphviz's `dot` program the
    DOT text is written instead (same name, .dot). Returns the path written."""
    return render(graph(*tensors), path, title)


# the compiler package's entry points for users take Tensors, so they are defined here, on the
# front end's side, and published there (the compiler imports nothing of the front end)
_compiler.schedule = schedule
_compiler.graph = graph
