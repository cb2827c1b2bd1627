"""Faults that running a graph can find only in the data: integer division by zero.

The interpreter raises `Fault` from its rules; compiled kernels set their module's `lt_fault`
flag, which the runtime reads after the kernels ran. Realize turns a Fault into an error naming
the user's lines that created the faulting ops."""
from __future__ import annotations

from ..ir.ops import Op

# ops whose integer form faults on a zero divisor
DIVISIONS = (Op.IDIV, Op.MOD)


class Fault(RuntimeError):
    """An arithmetic fault while running the ops `nodes` (PyTorch's message in `args[0]`)."""

    def __init__(self, message: str, nodes: list) -> None:
        super().__init__(message)
        self.nodes = nodes


def can_fault(n) -> bool:
    """Whether node n is an integer division (a zero divisor faults)."""
    return n.op in DIVISIONS and n.dtype.kind in "iub"


def zero_division(nodes: list) -> Fault:
    return Fault("ZeroDivisionError", nodes)
