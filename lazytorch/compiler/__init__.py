"""The compiler: passes, scheduling into kernels, C code generation.

`schedule(*tensors)` shows the kernels realizing the tensors would run, without running them.
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


__all__ = ["Kernel", "schedule"]
