"""Row fusion: softmax, log_softmax, layer_norm and cross-entropy in one pass over memory.

Each of them reduces the rows of a [rows, cols] view one or more times (max, then the sum of
exp(x - max); or the mean, then the variance) and then maps every element of the row using
those per-row values. Scheduled plainly, that is one kernel per reduction plus one for the
map, each streaming the whole input from memory. A row fits in cache, so one kernel can loop
over the rows and, per row, run each reduction in turn, keeping its result in a register for
the later ones, and finish with the map (or a last reduction whose result is stored).

`fuse_rows` is a pure function over a schedule's kernel list: groups of kernels that match
this shape become one RowKernel at the position of the group's last kernel. It runs when the
renderer's capabilities offer row kernels, and leaves alone the reductions the renderer has
strategies of its own for (a GEMM, a column sum).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import Node
from ..ir.ops import TRANSCENDENTAL, Op
from .kernel import Kernel, Param, Val
from .renderer import Capabilities
from .symbolic import Lin, Var

# reductions a stage may do (their accumulators are plain scalars)
_STAGE_OPS = {Op.SUM, Op.PROD, Op.RMAX, Op.RMIN}


@dataclass(eq=False)
class RowKernel:
    """Stages (row reductions whose results stay in registers) and a final kernel that is
    either a row map over [rows, cols] or one more row reduction, the one stored."""

    name: str
    params: list[Param]
    rows: int
    cols: int
    stages: list[Kernel]
    final: Kernel
    output: Node
    inputs: list[Node]
    nodes: list[Node]
    code: str = ""          # the rendered source, its function named FNAME
    scatter: None = None
    # values the final loop reuses from a stage's loop (stage index, the stage's Val): the
    # stage stores them in a row-sized array rowJ (J the position in this list), e.g.
    # softmax's exp(x - max), computed once instead of twice
    saved: list = field(default_factory=list)

    @property
    def ops(self) -> list[str]:
        return [op for k in [*self.stages, self.final] for op in k.ops]

    def __repr__(self) -> str:
        return f"<Kernel {self.name}: {', '.join(self.ops)} (row-fused)>"

    named = Kernel.named
    source = Kernel.source


def _is(e: Lin, terms: dict[str, int]) -> bool:
    """Is e exactly the sum of coef * variable in `terms` (no constant)?"""
    return e.const == 0 and len(e.terms) == len(terms) and all(
        isinstance(a, Var) and terms.get(a.name) == c for a, c in e.terms)


def _stage_shape(k: Kernel, caps: Capabilities) -> tuple[int, int] | None:
    """(rows, cols) if k reduces each row of a [rows, cols] view to one stored value."""
    if (k.red_op not in _STAGE_OPS or len(k.loops) != 1 or len(k.red_loops) != 1
            or k.scatter is not None or k.loops[0] < 2 or k.red_loops[0] < 2):
        return None
    if not _is(k.store_index, {"o0": 1}) or caps.column_reduce(k) or caps.gemm(k):
        return None
    return k.loops[0], k.red_loops[0]


def _map_shape(k: Kernel) -> tuple[int, int] | None:
    """(rows, cols) if k is elementwise over a row-major [rows, cols] output."""
    if k.red_op is not None or len(k.loops) != 2 or k.scatter is not None:
        return None
    rows, cols = k.loops
    if rows < 2 or cols < 2 or not _is(k.store_index, {"o0": cols, "o1": 1}):
        return None
    return rows, cols


def _reads_ok(k: Kernel, internal: set[Node]) -> bool:
    """Does k read each internal node only at its own row (index o0, unguarded)?"""
    for v in k.vals:
        if v.kind == "load" and k.inputs[v.arg[0] - 1] in internal:
            if v.arg[2] or not _is(v.arg[1], {"o0": 1}):
                return False
    return True


def fuse_rows(kernels: list, outputs: set[Node], caps: Capabilities) -> list:
    """The kernel list with row-fusable groups replaced by RowKernels (kernels not in a
    group are returned as they are)."""
    producer = {k.output: k for k in kernels}
    readers: dict[Node, list] = {}
    for k in kernels:
        for n in dict.fromkeys(k.inputs):
            readers.setdefault(n, []).append(k)
    fused: dict[int, RowKernel] = {}   # id(final kernel) -> replacement
    taken: set[int] = set()
    for k in reversed(kernels):
        if id(k) in taken:
            continue
        shape = _map_shape(k) or _stage_shape(k, caps)
        if shape is None:
            continue
        # the stages feeding k: row reductions of the same shape, read only inside the group
        members: dict[int, Kernel] = {}
        todo = [k]
        while todo:
            m = todo.pop()
            for n in m.inputs:
                p = producer.get(n)
                if (p is not None and id(p) not in members and p is not k and id(p) not in taken
                        and n not in outputs and _stage_shape(p, caps) == shape):
                    members[id(p)] = p
                    todo.append(p)
        changed = True
        while changed:  # drop stages that something outside the group reads
            changed = False
            group = set(members) | {id(k)}
            for i, p in list(members.items()):
                if any(id(r) not in group for r in readers.get(p.output, ())):
                    del members[i]
                    changed = True
        if not members:
            continue
        stages = [p for p in kernels if id(p) in members]   # in execution order
        internal = {p.output for p in stages}
        if not all(_reads_ok(m, internal) for m in [*stages, k]):
            continue
        fused[id(k)] = _build(k, stages, internal, shape)
        taken |= set(members) | {id(k)}
    if not fused:
        return kernels
    return [fused.get(id(k), k) for k in kernels if id(k) not in taken or id(k) in fused]


def _build(final: Kernel, stages: list[Kernel], internal: set[Node],
           shape: tuple[int, int]) -> RowKernel:
    """Renumber the members' parameters into one list; internal loads become registers."""
    inputs: list[Node] = []
    ref = {p.output: f"st{i}" for i, p in enumerate(stages)}
    for m in [*stages, final]:
        for v in m.vals:
            if v.kind != "load":
                continue
            node = m.inputs[v.arg[0] - 1]
            if node in internal:
                v.kind, v.arg = "ref", ref[node]
                continue
            if node not in inputs:
                inputs.append(node)
            v.arg = (inputs.index(node) + 1, *v.arg[1:])
    params = [final.params[0]] + [Param(f"in{i}", n.dtype, n.numel, False)
                                  for i, n in enumerate(inputs)]
    nodes = list(dict.fromkeys(n for m in [*stages, final] for n in m.nodes))
    k = RowKernel(final.name, params, shape[0], shape[1], stages, final, final.output, inputs,
                  nodes)
    if final.red_op is None and shape[1] <= MAX_SAVED_COLS:
        _reuse(k)
    return k


MAX_SAVED_COLS = 1 << 14   # a saved row lives on the stack of the thread running the row


def _key(v: Val, loop_var: str, memo: dict) -> tuple:
    """v's expression with the loop variable over the row's columns renamed to `c`."""
    k = memo.get(id(v))
    if k is None:
        if v.kind == "load":
            sub = {loop_var: Lin.of(Var("c", 1 << 62))}
            arg = (v.arg[0], v.arg[1].substitute(sub).key(),
                   tuple((e.substitute(sub).key(), lo, hi) for e, lo, hi in v.arg[2]))
        else:
            arg = repr(v.arg)
        k = memo[id(v)] = (v.kind, v.dtype, v.op, arg,
                           tuple(_key(s, loop_var, memo) for s in v.srcs))
    return k


def _costly(v: Val) -> bool:
    return v.op in TRANSCENDENTAL or any(_costly(s) for s in v.srcs)


def _reuse(k: RowKernel) -> None:
    """Final-loop values that a stage already computed for each column: the stage saves them
    in a row array and the final loop reads them back."""
    offered: dict[tuple, tuple[int, Val]] = {}
    for i, st in enumerate(k.stages):
        memo: dict = {}
        for v in st.vals:
            if v.kind == "alu" and st.level[id(v)] == 1 and _costly(v):
                offered.setdefault(_key(v, "r0", memo), (i, v))
    if not offered:
        return
    memo = {}
    for v in reversed(k.final.vals):   # largest expressions first
        if v.kind != "alu" or not _costly(v):
            continue
        hit = offered.get(_key(v, "o1", memo))
        if hit is None:
            continue
        k.saved.append(hit)
        v.kind, v.op, v.srcs, v.arg = "ref", None, (), f"row{len(k.saved) - 1}[o1]"
        # its sources now feed nothing here unless other values read them: the C compiler
        # drops the dead ones
