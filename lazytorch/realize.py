"""realize(): turn pending nodes into buffers.

Passes -> schedule -> C codegen -> compile (cached) -> run, or the reference interpreter.
Whole plans are cached by the graph's structure (ops, args, shapes, dtypes, devices and the
positions of input buffers), so a structure seen before runs with no passes, no codegen and no
compiler. The nodes of one realize are grouped by device, each group realized on its device's
backend.
"""
from __future__ import annotations

import itertools
import os
import threading
import weakref

import numpy as np

from . import config
from . import dtypes as dt
from .compiler.schedule import Schedule
from .graph import Node, NodeTable, new_node, toposort
from .live import FREE_OPS, held_bases, held_py
from .ops import Op
from .plan import (  # noqa: F401
    KernelCompileError,
    KernelMismatch,
    Plan,
    build_plan,
    compile_graph,
    format_schedule,
)
from .runtime import faults, interpreter, memory, native
from .sites import inherit

# a node that has been computed -> the BUFFER node holding its value
REALIZED: NodeTable = NodeTable()
# compiled plans by structure key (see prepare), at most plan_cache_size(): the least recently
# used one goes
# (each plan's `used` is the tick of its last realize: a hit updates it without hashing the key)
_PLANS: dict[tuple, Plan] = {}
_tick = itertools.count(1).__next__
_plans_lock = threading.Lock()
PLAN_CACHE_SIZE = 256


def plan_cache_size() -> int:
    """How many compiled plans are kept (LAZYTORCH_PLAN_CACHE, default 256; 0 keeps none)."""
    v = os.environ.get("LAZYTORCH_PLAN_CACHE")
    if not v:
        return PLAN_CACHE_SIZE
    try:
        n = int(v)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError(f"LAZYTORCH_PLAN_CACHE must be a non-negative integer, got {v!r}")
    return n


def _keep(key: tuple, plan: Plan, size: int) -> None:
    """Cache `plan`, evicting the least recently used plans beyond `size`; an evicted plan's
    scratch arrays are freed (the arrays of a replay running now on another thread once it
    ends)."""
    evicted = []
    with _plans_lock:   # (realizes on other threads insert and evict too)
        plan.used = _tick()
        _PLANS[key] = plan
        while len(_PLANS) > size:
            old_key, old = min(_PLANS.items(), key=_last_use)
            del _PLANS[old_key]
            evicted.append(old)
    for old in evicted:
        old.release()
        config.STATS["plans_evicted"] += 1


def _last_use(item: tuple[tuple, Plan]) -> int:
    return item[1].used


def _release_arenas() -> None:
    """empty_cache(): every cached plan's scratch arrays (allocated again by its next run)."""
    for plan in list(_PLANS.values()):
        plan.release()


memory.RELEASERS.append(_release_arenas)


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
    earlier step holds, instead of that step's whole graph (lazytorch/live.py)."""
    realized = REALIZED._d
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
    realized = REALIZED._d          # id(node) -> (weakref, buffer node)
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
                b = n if op is BUFFER else realized[id(n)][1]
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


def _views(plan: Plan, arrays: list[np.ndarray], outputs: list[Node]) -> list[np.ndarray]:
    out = []
    for a, o in zip(arrays, outputs):
        if a.dtype != o.dtype.np or a.shape != o.shape:
            a = a.view(o.dtype.np).reshape(o.shape)
        out.append(a)
    return out


def _anomaly(n: Node, value: np.ndarray, srcs: list[np.ndarray]) -> None:
    """Anomaly mode: stop at the first op whose output has nan/inf and whose inputs do not."""
    if not dt.is_float_array(value) or np.isfinite(value).all():
        return
    if any(dt.is_float_array(s) and not np.isfinite(s).all() for s in srcs):
        return
    from .sites import BACKWARD, SITES
    site = SITES.get(n)
    what = "nan" if np.isnan(value).any() else "inf"
    name = (site[1] if site and site[1] else n.op.name.lower())
    kind = "backward" if n in BACKWARD else "forward"
    raise RuntimeError(f"Anomaly detected: {kind} op '{name}' ({n.op.name.lower()}) returned "
                       f"{what} values in its output, created at "
                       f"{site[0] if site else 'an unknown line'}")


_VIEW_OPS = {Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.SLICE, Op.PAD, Op.UNFOLD, Op.DETACH,
             Op.CONTIGUOUS, Op.CONST, Op.BUFFER}


def _is_view(n: Node) -> bool:
    """Is n only movement over buffers and constants (nothing to compute)?"""
    while n.op in _VIEW_OPS and len(n.srcs) == 1:
        n = n.srcs[0]
    return n.op in (Op.BUFFER, Op.CONST)


class RealizeError(RuntimeError):
    """A failure while compiling or running a graph, naming the user lines that built it."""

    def __init__(self, message: str, nodes: list[Node], walk: bool = True):
        from .sites import site_of
        sites: list[str] = []
        for n in toposort(nodes, lambda n: n.op is Op.BUFFER) if walk else nodes:
            s = site_of(n)
            if s and s not in sites:
                sites.append(s)
        where = ", ".join(sites[-8:]) if sites else "unknown"
        super().__init__(f"{message}\n(while computing ops created at {where})")
        self.sites = sites


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
    try:
        results, plan = _run(outputs, inputs, key, todo, device)
    except faults.Fault as e:
        raise RealizeError(str(e), e.nodes, walk=False) from None
    for hook in config.REALIZE_HOOKS:
        hook(outputs, plan)
    for n, r in zip(todo, results):
        REALIZED[n] = memory.buffer_node(r, n.dtype, device=device)


def _run(outputs: list[Node], inputs: list[Node], key, todo: list[Node], device: str = "cpu"
         ) -> tuple[list, Plan | None]:
    """Compute `outputs` (prepared from the user's nodes `todo`) from the buffers `inputs`, on
    `device`: the arrays, and the plan that ran, if any. (Until the registry has for_device,
    every device type's buffers are host arrays and run on the host backends below.)"""
    arrays_in = [memory.data(b) for b in inputs]
    plan = None
    if all(_is_view(o) for o in outputs):
        # views of buffers (x[i], x.t(), ...): numpy does them without compiling a kernel
        # per index
        bufs = {b: a for b, a in zip(inputs, arrays_in)}
        results = interpreter.run_graph(outputs, lambda n: bufs.get(n))
    elif config.anomaly_mode():
        bufs = {b: a for b, a in zip(inputs, arrays_in)}
        results = interpreter.run_graph(outputs, lambda n: bufs.get(n), _anomaly)
    elif config.backend() == "interp":
        bufs = {b: a for b, a in zip(inputs, arrays_in)}
        results = interpreter.run_graph(outputs, lambda n: bufs.get(n))
    else:
        plan = _PLANS.get(key)
        if plan is None:
            size = plan_cache_size()
            try:
                plan = build_plan(outputs, inputs)
            except KernelCompileError as e:
                # name the user lines of the kernels that failed, not the whole graph's
                culprits = [n for k in e.kernels for n in k.nodes] or todo
                names = ", ".join(k.name for k in e.kernels) or "a kernel"
                raise RealizeError(f"CompileError in {names}: {e}", culprits,
                                   walk=not e.kernels) from e
            except Exception as e:
                raise RealizeError(f"{type(e).__name__}: {e}", todo) from e
            _keep(key, plan, size)
            hit = False
        else:
            plan.used = _tick()
            config.STATS["plan_cache_hits"] += 1
            hit = True
        if config.get_level() >= 1:
            config.log(f"realize: {len(plan.steps)} kernels, "
                      + ("plan cache hit" if hit else f"built in {plan.build_ms:.1f} ms"))
        results = _views(plan, plan.run(arrays_in, [memory.address(b) for b in inputs]),
                         outputs)
    return results, plan


def schedule(nodes: list[Node]) -> Schedule:
    """The kernels realizing `nodes` would run, with their C source (nothing is run)."""
    outputs, _ = substitute([n for n in nodes if n.op is not Op.BUFFER])
    return compile_graph(outputs)[1]


def _use_native(mod) -> None:
    """The compiled walk takes over from prepare_py."""
    global _prepare, _held
    mod.setup(REALIZED._d, Op.BUFFER, Op.CONST, Op.DETACH, _is_constant, new_node, inherit,
              Op.FUNCTION)
    _prepare = mod.prepare
    free = frozenset(FREE_OPS)
    _held = lambda order, order_new, key: mod.held(order, order_new, key, free)


if native.module() is not None:   # (chosen once, when lazytorch's import began)
    _use_native(native.module())
