"""Scheduling: cut a graph into kernels, each storing one node.

The rule, in one place (`must_materialize` says why a node gets a buffer of its own):
- graph outputs, CONTIGUOUS, scans and scatters are stored by kernels of their own;
- an elementwise chain fuses into its consumer; a node used by several kernels is recomputed in
  each (it reads only buffers, so this costs arithmetic, not a pass over memory)...
- ...except a computed node that is broadcast (EXPAND grows it): recomputing it per broadcast
  element would multiply its work, so it is stored;
- a reduction absorbs its elementwise producers and its elementwise consumers up to the stored
  node, one reduction per kernel; a reduction used by several nodes, broadcast, or met inside
  another reduction is stored;
- then, when the renderer's capabilities offer row kernels, row reductions feeding a map over
  the same rows (softmax, layer_norm) fuse into one kernel that keeps each row's reduced values
  in registers (rowfuse.py); such buffers are never written.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph, Node
from ..ir.ops import ELEMENTWISE, MOVEMENT, REDUCE, SCAN, SOURCE, TRANSCENDENTAL, Op
from .kernel import Kernel, LoweringError, NeedsBuffer
from .kernel_memo import lower_kernel_memo
from .renderer import Capabilities
from .rowfuse import fuse_rows


def must_materialize(g: Graph) -> dict[Node, str]:
    """The nodes that need a buffer, each with the reason (a pure function of the graph)."""
    users = g.users()
    out: dict[Node, str] = {}
    for o in g.outputs:
        if o.op is not Op.BUFFER:
            out[o] = "output"
    for n in g.nodes:
        if n.op is Op.CONTIGUOUS:
            out[n] = "contiguous"
        elif n.op in SCAN:
            out[n] = "scan"
        elif n.op is Op.SCATTER:
            out[n] = "scatter"
        elif n.op in REDUCE and len(users[n]) > 1:
            out.setdefault(n, "reduction used by several nodes")
        elif n.op is Op.EXPAND and n.numel > n.srcs[0].numel:
            s = n.srcs[0]
            while s.op in MOVEMENT:
                s = s.srcs[0]
            if s.op not in SOURCE:
                out.setdefault(s, "broadcast")
    _limit_recompute(g, users, out)
    return out


# per-element work above which a value read by several kernels is stored once rather than
# recomputed in each (a store and a load cost about this much arithmetic); transcendental ops
# count as several
RECOMPUTE_LIMIT = 24
_MANY = -1


def _limit_recompute(g: Graph, users: dict[Node, list[Node]], mat: dict[Node, str]) -> None:
    """Store the values that several kernels would each recompute at a high cost (a residual
    stream x + f(x) + ... read by every layer's reduction would otherwise be recomputed from
    the start by each, quadratic in depth). Linear: one walk back for which kernel reads a
    node (the kernel's stored node, or _MANY), one walk forward for the recompute cost."""
    owner: dict[Node, int] = {}
    for n in reversed(g.nodes):
        if n in mat or not users[n]:
            owner[n] = id(n)
            continue
        o = None
        for u in users[n]:
            ou = owner[u]
            if o is None:
                o = ou
            elif ou != o:
                o = _MANY
                break
        owner[n] = o
    cost: dict[Node, int] = {}
    for n in g.nodes:
        if n.op in SOURCE:
            cost[n] = 0
            continue
        c = sum(cost[s] for s in n.srcs)
        if n.op in ELEMENTWISE:
            c += 8 if n.op in TRANSCENDENTAL else 1
        elif n.op in REDUCE or n.op in SCAN:
            c += RECOMPUTE_LIMIT + 1
        c = min(c, RECOMPUTE_LIMIT + 1)
        if owner[n] == _MANY and c > RECOMPUTE_LIMIT and n not in mat and \
                n.op not in MOVEMENT:
            mat[n] = "recomputed by several kernels"
        cost[n] = 0 if n in mat else c


@dataclass
class Schedule:
    kernels: list[Kernel]
    buffers: dict[Node, str]      # materialized node -> reason
    graph: Graph


def schedule_graph(g: Graph, caps: Capabilities,
                   is_input=lambda n: n.op is Op.BUFFER) -> Schedule:
    """Kernels, in execution order, that compute g's outputs from its input buffers, for a
    renderer with capabilities `caps`."""
    mat = must_materialize(g)
    kernels: dict[Node, Kernel] = {}
    memo: dict = {}   # kernel structure -> a kernel lowered before (see kernel_memo.py)

    def is_buffer(n: Node) -> bool:
        return is_input(n) or n in mat

    pending = [n for n in g.nodes if n in mat]
    while pending:
        n = pending.pop(0)
        if n in kernels:
            continue
        try:
            kernels[n] = lower_kernel_memo(n, is_buffer, memo, len(g.nodes))
        except NeedsBuffer as e:
            if e.node in mat:   # stored already: the kernel storing it cannot compute it
                raise LoweringError(e.node, "no kernel computes it, not even one of its own") \
                    from None
            mat[e.node] = "reduction that cannot fuse here"
            pending = [m for m in g.nodes if m in mat and m not in kernels]
            # a kernel built before may have fused the new buffer: rebuild those
            for m, k in list(kernels.items()):
                if e.node in k.nodes and e.node is not m:
                    del kernels[m]
            pending = [m for m in g.nodes if m in mat and m not in kernels]
    ks = [kernels[n] for n in g.nodes if n in kernels]
    if caps.row_kernels:
        ks = fuse_rows(ks, set(g.outputs), caps)
    for i, k in enumerate(ks):
        k.name = f"kernel_{i}"
    return Schedule(ks, mat, g)
