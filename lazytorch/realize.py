"""realize(): turn pending nodes into buffers.

Passes -> schedule -> C codegen -> compile (cached) -> run, or the reference interpreter.
Whole plans are cached by the graph's structure (ops, args, shapes, dtypes and the positions of
input buffers), so a structure seen before runs with no passes, no codegen and no compiler.
"""
from __future__ import annotations

import ctypes
import functools
import os
import threading
import time
import weakref

import numpy as np

from . import debug
from .compiler import codegen_c
from .compiler.passes import optimize
from .compiler.passes.memory import plan_memory
from .compiler.schedule import Schedule, schedule_graph
from .graph import Graph, Node, NodeTable, toposort
from .ops import Op
from .runtime import cpu, interpreter, memory
from .sites import inherit

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


def prepare(outputs: list[Node]) -> tuple[list[Node], list[Node], tuple]:
    """substitute() and structure_key() in one walk (the steady-state path of realize):
    (new outputs, input buffers in order, the structure key).

    The key numbers the nodes of the walk over the given graph, buffers by their input
    position; equal keys mean equal substituted graphs, so one compiled plan serves both."""
    BUFFER, CONST, DETACH = Op.BUFFER, Op.CONST, Op.DETACH
    realized = REALIZED._d          # id(node) -> (weakref, buffer node)
    new: dict[int, Node] = {}       # id(original node) -> node to use (None: being visited)
    num: dict[int, int] = {}        # id(original node) -> its number in the key
    pos: dict[int, int] = {}        # id(buffer) -> input position
    inputs: list[Node] = []
    key: list[tuple] = []
    for out in outputs:
        if id(out) in new:
            continue
        new[id(out)] = None
        stack = [(out, iter(out.srcs))]
        while stack:
            n, it = stack[-1]
            i = id(n)
            leaf = n.op is BUFFER or (i in realized and not _is_constant(n))
            if not leaf:
                for src in it:
                    if id(src) not in new:
                        new[id(src)] = None
                        stack.append((src, iter(src.srcs)))
                        break
                else:
                    leaf = None   # every source is done
                if leaf is not None:
                    continue
            stack.pop()
            if leaf:
                b = n if n.op is BUFFER else realized[i][1]
                p = pos.get(id(b))
                if p is None:
                    p = pos[id(b)] = len(inputs)
                    inputs.append(b)
                new[i] = b
                key.append(("B", p, b.shape, b.dtype.name))
            else:
                srcs = n.srcs
                rebuilt = tuple([new[id(x)] for x in srcs])
                if rebuilt == srcs:
                    new[i] = n
                else:
                    m = new[i] = Node(n.op, rebuilt, n.arg, n.shape, n.dtype)
                    inherit(m, n)  # the user's line follows the rebuilt node
                op = n.op
                arg = repr(n.arg) if op is CONST else None if op is DETACH else n.arg
                key.append((op, arg, n.shape, n.dtype.name, tuple([num[id(x)] for x in srcs])))
            num[i] = len(key) - 1
    key.append(tuple([num[id(o)] for o in outputs]))
    return [new[id(o)] for o in outputs], inputs, tuple(key)


def _is_constant(n: Node) -> bool:
    """A broadcast constant: kernels read it as an immediate, never from a buffer, even if it
    was once realized (constants are shared by every tensor that uses the value)."""
    while n.op in (Op.RESHAPE, Op.EXPAND):
        n = n.srcs[0]
    return n.op is Op.CONST


def structure_key(outputs: list[Node], inputs: list[Node]) -> tuple:
    """Everything that decides the compiled code: not the buffers' contents or identities."""
    pos: dict[Node, int] = {b: i for i, b in enumerate(inputs)}
    ids: dict[Node, int] = {}  # every node's number in the walk (buffers included)
    key = []
    for n in toposort(outputs, lambda n: n.op is Op.BUFFER):
        if n.op is Op.BUFFER:
            key.append(("B", pos[n], n.shape, n.dtype.name))
        else:
            arg = repr(n.arg) if n.op is Op.CONST else None if n.op is Op.DETACH else n.arg
            key.append((n.op, arg, n.shape, n.dtype.name, tuple(ids[s] for s in n.srcs)))
        ids[n] = len(ids)
    return tuple(key) + (tuple(ids[o] for o in outputs),)


class Plan:
    """A compiled realize: kernels with their argument slots, replayed for new data.

    Slots are numbered inputs first, then the arena. Scratch slots (intermediates) belong to
    the plan and are allocated once; output slots come from the buffer pool each run. A
    compiled driver calls every kernel in order, through the kernels' addresses (they may sit
    in several modules), with its slots of one pointer array, so a replay is one call into C.
    """

    def __init__(self, schedule: Schedule, steps: list, n_inputs: int, out_slots: list[int],
                 arena: list[int], keep: set[int], driver=None, fptrs=None):
        self.schedule = schedule
        self.steps = steps                  # (kernel function, argument slots) per kernel
        self.n_inputs = n_inputs
        self.out_slots = out_slots
        self.arena = arena                  # bytes per slot past the inputs
        self.keep = keep
        self.driver = driver                # void driver(void** slots, void** kernels)
        self._fptrs = fptrs                 # the kernels' addresses, bound once
        self.build_ms = 0.0
        self._fresh = [(s, arena[s - n_inputs]) for s in sorted(keep)]
        self._scratch: dict[int, np.ndarray] | None = None
        self._argv = (ctypes.c_void_p * (n_inputs + len(arena)))()
        self._lock = threading.Lock()

    def run(self, inputs: list[np.ndarray], addrs: list[int] | None = None) -> list[np.ndarray]:
        """Run on `inputs` (their addresses in `addrs` if known); return the outputs."""
        if addrs is None:
            addrs = [a.ctypes.data for a in inputs]
        observed = debug.get_level() >= 2 or debug.check_mode()
        if observed or not self._lock.acquire(blocking=False):
            # a debug run, or this plan is already running (another thread): private arrays
            arrays = list(inputs) + [np.empty(n, np.uint8) for n in self.arena]
            ptrs = [a.ctypes.data for a in arrays]
            if observed:
                self._run_observed(arrays, ptrs)
            else:
                for fn, slots in self.steps:
                    fn(*(ptrs[s] for s in slots))
            debug.STATS["kernels_launched"] += len(self.steps)
            return [arrays[s] for s in self.out_slots]
        try:
            argv = self._argv
            if self._scratch is None:
                self._scratch = {}
                for i, n in enumerate(self.arena):
                    slot = self.n_inputs + i
                    if slot not in self.keep:
                        a = self._scratch[slot] = np.empty(n, np.uint8)
                        argv[slot] = a.ctypes.data
            for i, a in enumerate(addrs):
                argv[i] = a
            made = {}
            for slot, n in self._fresh:
                made[slot], argv[slot] = memory.alloc(n)
            if self.driver is not None:
                self.driver(argv, self._fptrs)
        finally:
            self._lock.release()
        debug.STATS["kernels_launched"] += len(self.steps)
        return [made[s] if s in made else inputs[s] if s < self.n_inputs else self._scratch[s]
                for s in self.out_slots]

    def _run_observed(self, arrays, ptrs) -> None:
        """Run kernel by kernel: time each (debug level 2) and/or check it (check mode)."""
        from .sites import api_of
        lvl, checking = debug.get_level(), debug.check_mode()
        for k, (fn, slots) in zip(self.schedule.kernels, self.steps):
            t0 = time.perf_counter()
            fn(*(ptrs[s] for s in slots))
            dt_s = time.perf_counter() - t0
            if lvl >= 2:
                nbytes = sum(n.numel * n.dtype.itemsize for n in [k.output, *k.inputs])
                names = list(dict.fromkeys(api_of(n) or n.op.name.lower() for n in k.nodes
                                           if n.op not in _QUIET))
                debug.log(f"*** {k.name:<10} {dt_s * 1e6:9.1f} us {nbytes / dt_s / 1e9:7.2f} GB/s"
                          f"  {', '.join(names) or 'copy'}")
            if checking:
                _check_kernel(k, [_typed(arrays[s], n) for s, n in zip(slots,
                                                                         [k.output, *k.inputs])])


_PLANS: dict[tuple, Plan] = {}
_QUIET = {Op.RESHAPE, Op.EXPAND, Op.CONST, Op.BUFFER, Op.DETACH}


def _typed(a: np.ndarray, n: Node) -> np.ndarray:
    return a if a.dtype == n.dtype.np and a.shape == n.shape else \
        a.view(n.dtype.np).reshape(n.shape)


class KernelMismatch(RuntimeError):
    """Check mode: a compiled kernel disagreed with the reference interpreter."""


def _check_kernel(k, arrays: list[np.ndarray]) -> None:
    from .sites import site_of
    got, ins = arrays[0], dict(zip(k.inputs, arrays[1:]))
    # a buffer the kernel never reads (an empty tensor, a fully padded region) is no param
    (ref,) = interpreter.run_graph([k.output], lambda n: ins.get(n) if n.op is not Op.BUFFER
                                   else ins.get(n, np.zeros(n.shape, n.dtype.np)))
    if got.dtype.kind == "f":
        eps = float(np.finfo(got.dtype).eps)  # half differs in the last bits more often
        bad = ~np.isclose(got, ref, rtol=max(1e-4, 8 * eps), atol=max(1e-5, eps),
                          equal_nan=True)
    else:
        bad = got != ref
    if not bad.any():
        return
    where = np.argwhere(bad)[:5]
    diffs = "; ".join(f"at {tuple(int(i) for i in w)}: kernel {got[tuple(w)]!r} vs "
                      f"interpreter {ref[tuple(w)]!r}" for w in where)
    lines = list(dict.fromkeys(s for n in k.nodes if (s := site_of(n))))
    raise KernelMismatch(f"{k.name} ({', '.join(k.ops) or 'copy'}) differs from the reference "
                         f"interpreter in {int(bad.sum())} of {bad.size} elements: {diffs}\n"
                         f"ops created at: {', '.join(lines) or 'unknown'}\n"
                         f"source:\n{k.source}")


def build_plan(outputs: list[Node], inputs: list[Node]) -> Plan:
    lvl = debug.get_level()
    t0 = time.perf_counter()
    g = Graph(outputs)
    if lvl >= 3:
        debug.log(f"--- IR before passes\n{g}")
    g = optimize(g, (lambda name, gr: debug.log(f"--- after {name}\n{gr}")) if lvl >= 5
                 else None)
    sched = schedule_graph(g)
    for k in sched.kernels:
        k.source = codegen_c.render_kernel(k)
    if lvl >= 3:
        debug.log(f"--- scheduled\n{format_schedule(sched)}")
    if lvl >= 4:
        for k in sched.kernels:
            debug.log(f"--- {k.name}\n{k.source}")
    slot: dict[Node, int] = {b: i for i, b in enumerate(inputs)}
    outs = set(o for o in g.outputs if o.op is not Op.BUFFER)
    order = [(k.output, k.inputs) for k in sched.kernels]
    arena_of = plan_memory(order, outs)
    arena: list[int] = []
    arena_slot: dict[int, int] = {}
    for k in sched.kernels:
        a = arena_of[k.output]
        if a not in arena_slot:
            arena_slot[a] = len(inputs) + len(arena)
            arena.append(k.output.numel * k.output.dtype.itemsize)
        slot[k.output] = arena_slot[a]
    steps = []
    driver = fptrs = None
    if sched.kernels:
        head = _module_header_sha()
        syms: dict[str, str] = {}      # kernel name -> symbol (a hash of its code)
        first: dict[str, object] = {}  # symbol -> its first kernel
        cost: dict[str, int] = {}
        for k in sched.kernels:
            src = codegen_c.render_kernel_named(k, "F")
            sym = syms[k.name] = "lt_" + cpu._sha((head + src).encode())[:16]
            if sym not in first:
                first[sym] = k
                cost[sym] = len(src) + _KERNEL_COST + (_GEMM_COST if "lt_gemm_" in src else 0)
        fidx = {sym: i for i, sym in enumerate(first)}
        calls = [(fidx[syms[k.name]], [slot[n] for n in [k.output, *k.inputs]])
                 for k in sched.kernels]
        dname = "lt_plan_" + cpu._sha(repr(calls).encode())[:16]
        libs = {sym: cpu.find(sym) for sym in [*first, dname]}
        todo = [sym for sym in first if libs[sym] is None]
        groups = _split(todo, cost)
        srcs = [codegen_c.render_module([first[sym] for sym in g], syms) for g in groups]
        if libs[dname] is None:   # the driver joins the lighter module, or compiles alone
            if not groups:
                groups, srcs = [[]], [""]
            i = min(range(len(groups)), key=lambda i: sum(cost[s] for s in groups[i]))
            groups[i] = groups[i] + [dname]
            srcs[i] += codegen_c.render_driver(dname, calls)
        if srcs:
            try:
                built = cpu.build(srcs, groups)
            except cpu.CompileError as e:
                raise KernelCompileError(
                    str(e), _failing_kernels([first[s] for s in todo], syms)) from e
            libs.update((sym, lib) for grp, lib in zip(groups, built) for sym in grp)
        debug.STATS["kernels_compiled"] += sum(syms[k.name] in todo for k in sched.kernels)
        for k in sched.kernels:
            fn = cpu.function(libs[syms[k.name]], syms[k.name], len(k.params))
            steps.append((fn, tuple(slot[n] for n in [k.output, *k.inputs])))
        fptrs = (ctypes.c_void_p * len(first))(*(cpu.address(libs[s], s) for s in first))
        driver = cpu.function(libs[dname], dname, 2)
    plan = Plan(sched, steps, len(inputs), [slot[o] for o in g.outputs], arena,
                {slot[o] for o in outs}, driver, fptrs)
    plan.build_ms = (time.perf_counter() - t0) * 1e3
    return plan


# compile cost of a kernel, in characters of its C source: gcc's time grows with the source,
# plus about this much per function (measured here: ~60 ms a process, ~40 ms a small kernel,
# ~200 ms a 3,900-character GEMM)
_KERNEL_COST = 600
# a GEMM kernel is short but calls the shared lt_gemm core, which a module compiles once
_GEMM_COST = 1500
# below this total (~200 ms of compiling) a second compiler process saves little time and
# costs another header parse
_SPLIT_COST = 4000


def _split(syms: list[str], cost: dict[str, int]) -> list[list[str]]:
    """The kernels to compile in one module, or in two of about equal cost compiled at once
    (the machine has two cores; each compiler process also parses the headers). Deterministic,
    so the same plan yields the same modules and a new process finds them on disk."""
    if len(syms) < 2 or sum(cost[s] for s in syms) < _SPLIT_COST or _cores() < 2:
        return [syms] if syms else []
    a: list[str] = []
    b: list[str] = []
    wa = wb = 0
    for sym in sorted(syms, key=lambda s: -cost[s]):   # longest first, into the lighter
        if wa <= wb:
            a.append(sym)
            wa += cost[sym]
        else:
            b.append(sym)
            wb += cost[sym]
    order = {s: i for i, s in enumerate(syms)}
    return [sorted(a, key=order.get), sorted(b, key=order.get)]


@functools.cache
def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@functools.cache
def _module_header_sha() -> str:
    """Hash of what every kernel module starts with: part of each kernel's symbol, since the
    disk index finds compiled kernels by symbol."""
    return cpu._sha(codegen_c.header_text().encode())


def _views(plan: Plan, arrays: list[np.ndarray], outputs: list[Node]) -> list[np.ndarray]:
    out = []
    for a, o in zip(arrays, outputs):
        if a.dtype != o.dtype.np or a.shape != o.shape:
            a = a.view(o.dtype.np).reshape(o.shape)
        out.append(a)
    return out


def _anomaly(n: Node, value: np.ndarray, srcs: list[np.ndarray]) -> None:
    """Anomaly mode: stop at the first op whose output has nan/inf and whose inputs do not."""
    if value.dtype.kind != "f" or np.isfinite(value).all():
        return
    if any(s.dtype.kind == "f" and not np.isfinite(s).all() for s in srcs):
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


def format_schedule(sched: Schedule) -> str:
    """The scheduled program: one kernel call per line, with the ops it fuses."""
    names: dict[Node, str] = {}
    lines = []
    for k in sched.kernels:
        for n in k.inputs:
            if n not in names:
                names[n] = f"%{len(names)}"
                lines.append(f"{names[n]}: {n.dtype.short}[{','.join(map(str, n.shape))}] = "
                             f"{'buffer' if n.op is Op.BUFFER else 'stored'}")
        names[k.output] = f"%{len(names)}"
        o = k.output
        args = ", ".join(names[n] for n in k.inputs)
        lines.append(f"{names[o]}: {o.dtype.short}[{','.join(map(str, o.shape))}] = "
                     f"{k.name}({args})  # {', '.join(k.ops) or 'copy'}")
    return "\n".join(lines)


class KernelCompileError(RuntimeError):
    """The C compiler rejected some kernels; `kernels` are the ones that fail on their own."""

    def __init__(self, message: str, kernels: list):
        super().__init__(message)
        self.kernels = kernels


def _failing_kernels(kernels, syms) -> list:
    """Compile each kernel alone to find the ones the compiler rejects (only on failure)."""
    bad = []
    for k in kernels:
        try:
            cpu.build([codegen_c.render_module([k], {k.name: syms[k.name]})])
        except cpu.CompileError:
            bad.append(k)
    return bad


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
        debug.STATS["realizes"] += 1
        outputs, inputs, key = prepare(todo)
        arrays_in = [memory.data(b) for b in inputs]
        plan = None
        if all(_is_view(o) for o in outputs):
            # views of buffers (x[i], x.t(), ...): numpy does them without compiling a kernel
            # per index
            bufs = {b: a for b, a in zip(inputs, arrays_in)}
            results = interpreter.run_graph(outputs, lambda n: bufs.get(n))
        elif debug.anomaly_mode():
            bufs = {b: a for b, a in zip(inputs, arrays_in)}
            results = interpreter.run_graph(outputs, lambda n: bufs.get(n), _anomaly)
        elif debug.backend() == "interp":
            bufs = {b: a for b, a in zip(inputs, arrays_in)}
            results = interpreter.run_graph(outputs, lambda n: bufs.get(n))
        else:
            plan = _PLANS.get(key)
            if plan is None:
                try:
                    plan = _PLANS[key] = build_plan(outputs, inputs)
                except KernelCompileError as e:
                    # name the user lines of the kernels that failed, not the whole graph's
                    culprits = [n for k in e.kernels for n in k.nodes] or todo
                    names = ", ".join(k.name for k in e.kernels) or "a kernel"
                    raise RealizeError(f"CompileError in {names}: {e}", culprits,
                                       walk=not e.kernels) from e
                except Exception as e:
                    raise RealizeError(f"{type(e).__name__}: {e}", todo) from e
                hit = False
            else:
                debug.STATS["plan_cache_hits"] += 1
                hit = True
            if debug.get_level() >= 1:
                debug.log(f"realize: {len(plan.steps)} kernels, "
                          + ("plan cache hit" if hit else f"built in {plan.build_ms:.1f} ms"))
            results = _views(plan, plan.run(arrays_in, [memory.address(b) for b in inputs]),
                             outputs)
        for hook in debug.REALIZE_HOOKS:
            hook(outputs, plan)
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
