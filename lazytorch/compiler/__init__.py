"""The compiler: passes, scheduling into kernels, C code generation.

`schedule(*tensors)` shows the kernels realizing the tensors would run, without running them;
`graph(*tensors)` returns the pending graph as a networkx.DiGraph (see compiler/graphviz.py).
Both take Tensors, and the compiler imports nothing of the front end: they are defined in
lazytorch/debug.py, which sets them here when `import lazytorch` imports it.
"""
from __future__ import annotations

from . import schedule as _schedule_module  # noqa: F401  (loaded first: debug's name wins)
from .kernel import Kernel

__all__ = ["Kernel", "graph", "schedule"]
