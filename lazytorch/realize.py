"""realize(): turn pending nodes into buffers.

Passes -> schedule -> C codegen -> compile (cached) -> run, or the reference interpreter.
Whole plans are cached by the graph's structure (ops, args, shapes, dtypes and the positions of
input buffers), so a structure seen before runs with no passes, no codegen and no compiler.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from . import debug
from .compiler import codegen_c
from .compiler.passes import optimize
from .compiler.passes.memory import plan_memory
from .compiler.schedule import Schedule, schedule_graph
from .graph import Graph, Node, toposort
from .ops import Op
from .runtime import cpu, interpreter, memory

# a node that has been computed -> the BUFFER node holding its value
REALIZED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def substitute(outputs: list[Node]) -> tuple[list[Node], list[Node]]:
    """Replace computed nodes by their buffers; return (new outputs, input buffers in order)."""
    new: dict[Node, Node] = {}
    inputs: list[Node] = []

    def is_leaf(n: Node) -> bool:
        return n.op is Op.BUFFER or n in REALIZED

    for n in toposort(outputs, is_leaf):
        if n.op is Op.BUFFER:
            new[n] = n
            inputs.append(n)
        elif n in REALIZED:
            b = REALIZED[n]
            new[n] = b
            if b not in inputs:
                inputs.append(b)
        else:
            srcs = tuple(new[s] for s in n.srcs)
            new[n] = n if srcs == n.srcs else Node(n.op, srcs, n.arg, n.shape, n.dtype)
    return [new[o] for o in outputs], inputs


def structure_key(outputs: list[Node], inputs: list[Node]) -> tuple:
    """Everything that decides the compiled code: not the buffers' contents or identities."""
    pos: dict[Node, int] = {b: i for i, b in enumerate(inputs)}
    key = []
    for n in toposort(outputs, lambda n: n.op is Op.BUFFER):
        if n.op is Op.BUFFER:
            key.append(("B", pos[n], n.shape, n.dtype.name))
        else:
            arg = repr(n.arg) if n.op is Op.CONST else None if n.op is Op.DETACH else n.arg
            key.append((n.op, arg, n.shape, n.dtype.name, tuple(pos[s] for s in n.srcs)))
        pos[n] = len(pos)
    return tuple(key) + (tuple(pos[o] for o in outputs),)


@dataclass
class Plan:
    """A compiled realize: kernels with their argument slots, replayed for new data."""

    schedule: Schedule
    steps: list[tuple[object, tuple[int, ...]]]
    n_inputs: int
    out_slots: list[int]
    arena: list[tuple[tuple[int, ...], np.dtype]]   # per slot past the inputs
    keep: set[int]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        arrays: list[np.ndarray] = list(inputs)
        for shape, dtype in self.arena:
            arrays.append(np.empty(shape, dtype))
        ptrs = [a.ctypes.data for a in arrays]
        for fn, slots in self.steps:
            fn(*(ptrs[s] for s in slots))
        debug.STATS["kernels_launched"] += len(self.steps)
        return [arrays[s] for s in self.out_slots]


_PLANS: dict[tuple, Plan] = {}


def build_plan(outputs: list[Node], inputs: list[Node]) -> Plan:
    g = optimize(Graph(outputs))
    sched = schedule_graph(g)
    for k in sched.kernels:
        k.source = codegen_c.render_kernel(k)
    slot: dict[Node, int] = {b: i for i, b in enumerate(inputs)}
    outs = set(o for o in g.outputs if o.op is not Op.BUFFER)
    order = [(k.output, k.inputs) for k in sched.kernels]
    arena_of = plan_memory(order, outs)
    arena: list[tuple[tuple[int, ...], np.dtype]] = []
    arena_slot: dict[int, int] = {}
    for k in sched.kernels:
        a = arena_of[k.output]
        if a not in arena_slot:
            arena_slot[a] = len(inputs) + len(arena)
            arena.append(((k.output.numel * k.output.dtype.itemsize,), np.dtype(np.uint8)))
        slot[k.output] = arena_slot[a]
    steps = []
    if sched.kernels:
        syms = {}
        bodies = []
        for k in sched.kernels:
            sym = "lt_" + cpu._sha(codegen_c.render_kernel_named(k, "F").encode())[:16]
            syms[k.name] = sym
            if sym not in bodies:
                bodies.append(sym)
        src = codegen_c.render_module(sched.kernels, syms)
        lib = cpu.build([src])[0]
        debug.STATS["kernels_compiled"] += len(sched.kernels)
        for k in sched.kernels:
            fn = cpu.function(lib, syms[k.name], len(k.params))
            steps.append((fn, tuple(slot[n] for n in [k.output, *k.inputs])))
    return Plan(sched, steps, len(inputs), [slot[o] for o in g.outputs], arena,
                {slot[o] for o in outs})


def _views(plan: Plan, arrays: list[np.ndarray], outputs: list[Node]) -> list[np.ndarray]:
    out = []
    for a, o in zip(arrays, outputs):
        if a.dtype != o.dtype.np or a.shape != o.shape:
            a = a.view(o.dtype.np).reshape(o.shape)
        out.append(a)
    return out


def realize(nodes: list[Node]) -> list[Node]:
    """Compute `nodes`; return a BUFFER node for each (and remember it in REALIZED)."""
    todo = [n for n in nodes if n.op is not Op.BUFFER and n not in REALIZED]
    if todo:
        debug.STATS["realizes"] += 1
        outputs, inputs = substitute(todo)
        arrays_in = [memory.data(b) for b in inputs]
        if debug.backend() == "interp":
            bufs = {b: a for b, a in zip(inputs, arrays_in)}
            results = interpreter.run_graph(outputs, lambda n: bufs.get(n))
        else:
            key = structure_key(outputs, inputs)
            plan = _PLANS.get(key)
            if plan is None:
                plan = _PLANS[key] = build_plan(outputs, inputs)
            else:
                debug.STATS["plan_cache_hits"] += 1
            results = _views(plan, plan.run(arrays_in), outputs)
        for n, r in zip(todo, results):
            REALIZED[n] = memory.buffer_node(r, n.dtype)
    return [n if n.op is Op.BUFFER else REALIZED[n] for n in nodes]


def schedule(nodes: list[Node]) -> Schedule:
    """The kernels realizing `nodes` would run, with their C source (nothing is run)."""
    outputs, _ = substitute([n for n in nodes if n.op is not Op.BUFFER])
    sched = schedule_graph(optimize(Graph(outputs)))
    for k in sched.kernels:
        k.source = codegen_c.render_kernel(k)
    return sched
