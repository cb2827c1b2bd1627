"""realize(): turn pending nodes into buffers.

Passes -> schedule -> render -> compile (cached) -> run on the device's backend (engine/
backends.py: the compiled C backend, or the reference interpreter). Whole plans are cached by
the backend and the graph's structure (ops, args, shapes, dtypes, devices and the positions of
input buffers), so a structure seen before runs with no passes, no codegen and no compiler. The
nodes of one realize are grouped by device, each group realized on its device's backend.
"""
from __future__ import annotations

import time
import weakref

import numpy as np

from .. import config
from ..compiler.schedule import Schedule
from ..ir import dtypes as dt
from ..ir.graph import Node, NodeTable, new_node, toposort
from ..ir.ops import SOURCE, VIEW, Op
from ..ir.sites import inherit
from ..runtime import faults, interpreter, memory, native
from . import backends
from .live import FREE_OPS, held_bases, held_py
from .plan import (  # noqa: F401
    PLAN_CACHE_SIZE,
    KernelCompileError,
    KernelMismatch,
    Plan,
    RealizeError,
    build_plan,
    compile_graph,
    format_schedule,
    plan_cache_size,
)
from .plan import PLANS as _PLANS  # noqa: F401  (compiled plans by backend and structure)

# a node that has been computed -> the BUFFER node holding its value
REALIZED: NodeTable = NodeTable()
def substitute(outputs: list[Node]) -> tuple[list[Node], list[Node]]:
    """Replace computed nodes by their buffers; return (new outputs, input buffers in order)."""
    new: dict[Node, Node] = {}
    inputs: list[Node] = []

    def is_leaf(n: Node) -> bool:
        return n.op is Op.BUFFER or (n in REALIZED and not _is_constant(n))

    for n in toposort(outputs, is_leaf):
        if n.op is Op.BUFFER:
            new[n] = n
            inputs.append(n)
        elif n in REALIZED and not _is_constant(n):
            b = REALIZED[n]
            new[n] = b
            if b not in inputs:
                inputs.append(b)
        else:
            srcs = tuple(new[s] for s in n.srcs)
            if srcs == n.srcs:
                new[n] = n
            else:
                new[n] = Node(n.op, srcs, n.arg, n.shape, n.dtype)
                inherit(new[n], n)  # the user's line follows the rebuilt node
    return [new[o] for o in outputs], inputs


def computed_near(n: Node, limit: int = 32) -> Node:
    """n, with the computed values that its graph reaches within `limit` nodes replaced by
    their buffers (n itself if there are none): what a detached view of a state computed in an
    earlier step holds, instead of that step's whole graph (lazytorch/engine/live.py)."""
    realized = REALIZED.d
    if id(n) in realized and not _is_constant(n):
        return REALIZED[n]
    seen: set[int] = set()
    stack = list(n.srcs)
    found = False
    while stack:
        m = stack.pop()
        i = id(m)
        if i in seen or m.op is _BUFFER or m.op is _CONST:
            continue
        seen.add(i)
        if i in realized:
            found = True
            continue
        limit -= 1
        if limit < 0:
            return n
        stack.extend(m.srcs)
    return substitute([n])[0][0] if found else n


def prepare(outputs: list[Node]) -> tuple[list[Node], list[Node], tuple, list[Node], list[Node]]:
    """substitute() and the structure key in one walk (the steady-state path of realize):
    (new outputs, input buffers in order, the structure key, and by number in the key the
    walked nodes and what stands for each: itself, its buffer or its rebuilt node). Compiled
    (runtime/native/prepare.c) unless that is off; prepare_py is the reference."""
    return _prepare(outputs)


def prepare_py(outputs: list[Node]) -> tuple[list[Node], list[Node], tuple, list[Node],
                                             list[Node]]:
    """prepare() in Python.

    The key numbers the nodes in the walk's post-order (sources in order), buffers by their
    input position; equal keys mean equal substituted graphs, so one compiled plan serves
    both. Buffers and constants carry their device (every other node's follows from them), so
    the same graph on two devices has two keys. (Nodes hash by identity: they are the walk's
    dict keys.)"""
    BUFFER, CONST, DETACH, FUNCTION = _BUFFER, _CONST, _DETACH, _FUNCTION
    realized = REALIZED.d           # id(node) -> buffer node
    new: dict[Node, Node | None] = {}   # node -> node to use (None: sources being walked)
    num: dict[Node, int] = {}       # node -> its number in the key
    pos: dict[Node, int] = {}       # buffer -> input position
    inputs: list[Node] = []
    key: list[tuple] = []
    order: list[Node] = []          # the walked nodes by number
    new_of, num_of = new.__getitem__, num.__getitem__
    for out in outputs:
        stack = [out]
        while stack:
            n = stack[-1]
            if n in num:
                stack.pop()
                continue
            op = n.op
            if op is BUFFER or (id(n) in realized and not _is_constant(n)):
                stack.pop()
                b = n if op is BUFFER else realized[id(n)]
                p = pos.get(b)
                if p is None:
                    p = pos[b] = len(inputs)
                    inputs.append(b)
                new[n] = b
                num[n] = len(key)
                order.append(n)
                key.append(("B", p, b.shape, b.dtype.name, b.device))
                continue
            srcs = n.srcs
            if n not in new:
                new[n] = None
                waiting = False
                for src in reversed(srcs):
                    if src not in num:
                        stack.append(src)
                        waiting = True
                if waiting:
                    continue
            stack.pop()
            rebuilt = tuple(map(new_of, srcs))
            if rebuilt == srcs:
                new[n] = n
            else:
                m = new[n] = Node(op, rebuilt, n.arg, n.shape, n.dtype)
                inherit(m, n)  # the user's line follows the rebuilt node
            arg = (repr(n.arg), n.device) if op is CONST else None if op is DETACH or \
                op is FUNCTION else n.arg
            num[n] = len(key)
            order.append(n)
            key.append((op, arg, n.shape, n.dtype.name, tuple(map(num_of, srcs))))
    key.append(tuple(map(num_of, outputs)))
    return list(map(new_of, outputs)), inputs, tuple(key), order, list(map(new_of, order))


# DETACH's and FUNCTION's args name a leaf or an application, not the computation: not in keys
_BUFFER, _CONST, _DETACH, _FUNCTION = Op.BUFFER, Op.CONST, Op.DETACH, Op.FUNCTION
_prepare = prepare_py
_held = held_py


def _is_constant(n: Node) -> bool:
    """A broadcast constant, or an expression of unplaced scalars only (no device): kernels
    compute it inline, never read it from a buffer, even if it was once realized (constants
    are shared by every tensor that uses the value, on every device)."""
    if n.device is None:
        return True
    while n.op in (Op.RESHAPE, Op.EXPAND):
        n = n.srcs[0]
    return n.op is Op.CONST


def _anomaly(n: Node, value: np.ndarray, srcs: list[np.ndarray]) -> None:
    """Anomaly mode: stop at the first op whose output has nan/inf and whose inputs do not."""
    if not dt.is_float_array(value) or np.isfinite(value).all():
        return
    if any(dt.is_float_array(s) and not np.isfinite(s).all() for s in srcs):
        return
    from ..ir.sites import BACKWARD, SITES
    site = SITES.get(n)
    what = "nan" if np.isnan(value).any() else "inf"
    name = (site[1] if site and site[1] else n.op.name.lower())
    kind = "backward" if n in BACKWARD else "forward"
    raise RuntimeError(f"Anomaly detected: {kind} op '{name}' ({n.op.name.lower()}) returned "
                       f"{what} values in its output, created at "
                       f"{site[0] if site else 'an unknown line'}")


# views, and CONTIGUOUS (a copy of its source's values), walked down to their data (the
# sources stop the walk: they have no source)
_VIEW_OPS = VIEW | {Op.CONTIGUOUS} | SOURCE


def _is_view(n: Node) -> bool:
    """Is n only movement over buffers and constants (nothing to compute)?"""
    while n.op in _VIEW_OPS and len(n.srcs) == 1:
        n = n.srcs[0]
    return n.op in (Op.BUFFER, Op.CONST)


# tensors whose pending value rides along with the next realize, whatever it is for: state that
# nothing may read for many steps (BatchNorm's running stats) must not grow a graph every step
_RIDERS: dict[int, weakref.ref] = {}   # by id: tensors' == is elementwise


def realize_later(t) -> None:
    """Have the next realize() also compute tensor t's pending value, and rebind t to it."""
    _RIDERS[id(t)] = weakref.ref(t)


def realize(nodes: list[Node]) -> list[Node]:
    """Compute `nodes`; return a BUFFER node for each (and remember it in REALIZED)."""
    if _RIDERS:
        riders = [t for t in (r() for r in _RIDERS.values()) if t is not None]
        _RIDERS.clear()
        done = realize(list(nodes) + [t.node for t in riders])
        for t, b in zip(riders, done[len(nodes):]):
            if t._base is None and t._grad_node is None:
                t._node = b
        return done[:len(nodes)]
    todo = [n for n in nodes if n.op is not Op.BUFFER and n not in REALIZED]
    if todo:
        device = todo[0].device
        if any(n.device != device for n in todo):
            groups: dict[str, list[Node]] = {}
            for n in todo:
                groups.setdefault(n.device or "cpu", []).append(n)
            for device, group in groups.items():
                _realize_on(group, device)
        else:
            _realize_on(todo, device or "cpu")  # (a graph of unplaced scalars: on the CPU)
    return [n if n.op is Op.BUFFER else REALIZED[n] for n in nodes]


def _realize_on(todo: list[Node], device: str) -> None:
    """Compute the nodes `todo`, all on `device` (or unplaced), on that device's backend, and
    remember their buffers in REALIZED."""
    config.STATS["realizes"] += 1
    prof = config.PROFILER
    if prof is not None:
        t0 = time.perf_counter()
    outputs, inputs, key, order, order_new = prepare(todo)
    held = _held(order, order_new, key)
    if held:
        # (an unplaced expression is computed inline wherever it is used: never stored)
        held = held_bases([i for i in held if order[i].device is not None], key)
    if held:
        # values that live tensors (or pending graphs) still hold: stored with the rest
        outputs = outputs + [order_new[i] for i in held]
        todo = todo + [order[i] for i in held]
        key = key[:-1] + (key[-1] + tuple(held),)
    del order, order_new
    if prof is not None:
        prof.event("lazytorch::prepare", t0, time.perf_counter())
    try:
        results, plan = _run(outputs, inputs, key, todo, device)
    except faults.Fault as e:
        raise RealizeError(str(e), e.nodes, walk=False) from None
    for hook in config.REALIZE_HOOKS:
        hook(outputs, plan)
    for n, r in zip(todo, results):
        REALIZED[n] = memory.adopt(r, n.dtype, n.shape, device, host=plan is None)
    if prof is not None:
        prof.event("lazytorch::realize", t0, time.perf_counter())


def _run(outputs: list[Node], inputs: list[Node], key, todo: list[Node], device: str = "cpu"
         ) -> tuple[list, Plan | None]:
    """Compute `outputs` (prepared from the user's nodes `todo`) from the buffers `inputs`, on
    the backend of `device`'s type: the buffers, and the plan that ran, if any."""
    if all(_is_view(o) for o in outputs) or config.anomaly_mode():
        # views of buffers (x[i], x.t(), ...): numpy does them without compiling a kernel
        # per index; anomaly mode checks every op's output
        bufs = {b: memory.host_data(b) for b in inputs}
        check = _anomaly if config.anomaly_mode() else None
        prof = config.PROFILER
        if prof is None:
            return interpreter.run_graph(outputs, bufs.get, check), None
        t0 = time.perf_counter()
        out = interpreter.run_graph(outputs, bufs.get, check)
        prof.event("lazytorch::interpret", t0, time.perf_counter())
        return out, None
    return backends.for_device(device.split(":")[0]).run(outputs, inputs, key, todo)


def schedule(nodes: list[Node], device: str = "cpu") -> Schedule:
    """The kernels realizing `nodes` would run, with their source (nothing is run): those of
    the device's compiled backend (the selected one, else the device type's default); for
    "cuda" where no CUDA backend is registered, those of the CUDA renderer (no GPU needed)."""
    outputs, _ = substitute([n for n in nodes if n.op is not Op.BUFFER])
    kind = device.split(":")[0]
    if kind == "cuda" and kind not in backends.device_types():
        # no GPU here (or not yet used): the CUDA kernels are rendered all the same
        from ..compiler.codegen.cuda import CudaRenderer
        return compile_graph(outputs, CudaRenderer())[1]
    backend = backends.for_device(kind)
    if not isinstance(backend, backends.CompiledBackend):
        backend = backends.default(kind)
    return compile_graph(outputs, backend.renderer)[1]


def _use_native(mod) -> None:
    """The compiled walk takes over from prepare_py."""
    global _prepare, _held
    mod.setup(REALIZED.d, Op.BUFFER, Op.CONST, Op.DETACH, _is_constant, new_node, inherit,
              Op.FUNCTION)
    _prepare = mod.prepare
    free = frozenset(FREE_OPS)
    _held = lambda order, order_new, key: mod.held(order, order_new, key, free)


if native.module() is not None:   # (chosen once, when lazytorch's import began)
    _use_native(native.module())
