"""A compiled realize: build_plan() turns a graph into kernels (passes, schedule, source, at
most two concurrent compiler runs) on a compiled backend's parts, and a Plan that replays them
for new data with one call into the driver. Plans are cached by the backend and the graph's
structure (cached/keep)."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import itertools
import os
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from .. import config
from ..compiler.kernel import FNAME
from ..compiler.passes import optimize
from ..compiler.passes.memory import plan_memory
from ..compiler.schedule import Schedule, schedule_graph
from ..ir import dtypes as dt
from ..ir.graph import Graph, Node, new_node, toposort
from ..ir.ops import SOURCE, Op
from ..ir.sites import inherit
from ..runtime import cache, faults, interpreter, memory
from ..runtime.protocol import Allocator, CompileError
from . import shapes

if TYPE_CHECKING:
    from ..compiler.renderer import Renderer
    from .backends import CompiledBackend


class Plan:
    """A compiled realize: kernels with their argument slots, replayed for new data.

    Slots are numbered inputs first, then the arena. Scratch slots (intermediates) belong to
    the plan and are allocated at its first run (again after release()); output slots come
    from the allocator each run (its pool). A compiled driver calls every kernel in order,
    through the kernels' addresses (they may sit in several modules), with its slots of one
    pointer array, so a replay is one call into C. The schedule it keeps reads data-less
    stand-ins for its inputs, so a plan holds none of the data it ran on.
    """

    def __init__(self, schedule: Schedule, steps: list, n_inputs: int, out_slots: list[int],
                 arena: list[int], keep: set[int], allocator: Allocator, driver=None,
                 fptrs=None, fault_flags: list | None = None, consts: list | None = None):
        self.schedule = schedule
        self.allocator = allocator
        self.steps = steps                  # (kernel function, argument slots) per kernel
        self.n_inputs = n_inputs
        self.out_slots = out_slots
        self.arena = arena                  # bytes per slot past the inputs
        self.keep = keep
        self.driver = driver                # void driver(void** slots, void** kernels)
        self._fptrs = fptrs                 # the kernels' addresses, bound once
        self.build_ms = 0.0
        self._fresh = [(s, arena[s - n_inputs]) for s in sorted(keep)]
        self._scratch: dict[int, object] | None = None
        # (buffer, address) of the kernels' size arrays (engine/shapes.py): slots past the arena
        self.consts = consts or []
        self._argv = (ctypes.c_void_p * (n_inputs + len(arena) + len(self.consts)))()
        for i, (_, a) in enumerate(self.consts):
            self._argv[n_inputs + len(arena) + i] = a
        self._lock = threading.Lock()
        # (a module's lt_fault flag, the integer divisions of its kernels in this plan)
        self.fault_flags = fault_flags or []
        self.used = 0                       # the plan cache's tick of its last use
        self._profile_labels: list | None = None

    def release(self) -> None:
        """Free the scratch arrays (a run on another thread keeps them until it ends)."""
        with self._lock:
            self._scratch = None

    def _check_faults(self) -> None:
        """Raise the fault a kernel flagged while this plan ran (and clear the flag)."""
        for flag, nodes in self.fault_flags:
            if flag.value:
                flag.value = 0
                raise faults.zero_division(nodes)

    def run(self, inputs: list, addrs: list[int]) -> list:
        """Run on the buffers `inputs` (at addresses `addrs`); return the output buffers."""
        observed = (config.get_level() >= 2 or config.check_mode()
                    or config.PROFILER is not None)
        if not self._lock.acquire(blocking=False):
            # this plan is already running (another thread): private arrays
            private = [self.allocator.arena(n) for n in self.arena]
            arrays = list(inputs) + [b for b, _ in private] + [b for b, _ in self.consts]
            ptrs = list(addrs) + [a for _, a in private] + [a for _, a in self.consts]
            if observed:
                self._run_observed(arrays, ptrs)
            else:
                for fn, slots in self.steps:
                    fn(*(ptrs[s] for s in slots))
            config.STATS["kernels_launched"] += len(self.steps)
            if self.fault_flags:
                self._check_faults()
            return [arrays[s] for s in self.out_slots]
        try:
            argv = self._argv
            if self._scratch is None:
                self._scratch = {}
                for i, n in enumerate(self.arena):
                    slot = self.n_inputs + i
                    if slot not in self.keep:
                        self._scratch[slot], argv[slot] = self.allocator.arena(n)
            for i, a in enumerate(addrs):
                argv[i] = a
            made = {}
            alloc = self.allocator.alloc
            for slot, n in self._fresh:
                made[slot], argv[slot] = alloc(n)
            if observed:   # a debug run, a check, a profile: kernel by kernel
                n = self.n_inputs
                arrays = list(inputs) + [made[s] if s in made else self._scratch[s]
                                         for s in range(n, n + len(self.arena))] + [
                    b for b, _ in self.consts]
                self._run_observed(arrays, argv)
            elif self.driver is not None:
                self.driver(argv, self._fptrs)
            else:
                for fn, slots in self.steps:
                    fn(*(argv[s] for s in slots))
        finally:
            self._lock.release()
        config.STATS["kernels_launched"] += len(self.steps)
        if self.fault_flags:
            self._check_faults()
        return [made[s] if s in made else inputs[s] if s < self.n_inputs else self._scratch[s]
                for s in self.out_slots]

    def _labels(self) -> list[tuple[str, tuple, tuple]]:
        """Each kernel's profile event name, fused ops and source lines (made once)."""
        if self._profile_labels is None:
            self._profile_labels = [
                ("kernel " + ("+".join(ops) or "copy"), tuple(ops), kernel_sources(k))
                for k in self.schedule.kernels for ops in [fused_ops(k)]]
        return self._profile_labels

    def _run_observed(self, arrays, ptrs) -> None:
        """Run kernel by kernel: time each (debug level 2, a profile) and/or check it (check
        mode)."""
        lvl, checking, prof = config.get_level(), config.check_mode(), config.PROFILER
        labels = self._labels() if prof is not None else None
        for i, (k, (fn, slots)) in enumerate(zip(self.schedule.kernels, self.steps)):
            t0 = time.perf_counter()
            fn(*(ptrs[s] for s in slots))
            t1 = time.perf_counter()
            dt_s = t1 - t0
            if prof is not None:
                name, ops, sources = labels[i]
                prof.event(name, t0, t1, "kernel", ops, sources, k.output.shape)
            if lvl >= 2:
                nbytes = sum(n.numel * n.dtype.itemsize for n in [k.output, *k.inputs])
                names = fused_ops(k)
                config.log(f"*** {k.name:<10} {dt_s * 1e6:9.1f} us {nbytes / dt_s / 1e9:7.2f} GB/s"
                          f"  {', '.join(names) or 'copy'}")
            if checking:
                _check_kernel(k, [self.allocator.to_host(arrays[s], n.dtype, n.shape)
                                  for s, n in zip(slots, [k.output, *k.inputs])])


def fused_ops(k) -> list[str]:
    """The user-level ops kernel k computes (its API names, in order, each once)."""
    from ..ir.sites import api_of
    return list(dict.fromkeys(api_of(n) or n.op.name.lower() for n in reversed(k.nodes)
                              if n.op not in _QUIET))   # (k.nodes: the output first)


def kernel_sources(k) -> tuple[str, ...]:
    """The user's source lines (`file:line`) of the ops kernel k computes, each once."""
    from ..ir.sites import site_of
    return tuple(dict.fromkeys(s for n in reversed(k.nodes) if n.op not in _QUIET
                               for s in [site_of(n)] if s))


# compiled plans by (backend name, structure key) (see realize.prepare), at most
# plan_cache_size(): the least recently used one goes (each plan's `used` is the tick of its last
# realize: a hit updates it without hashing the key)
PLANS: dict[tuple, Plan] = {}
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


def cached(key: tuple) -> Plan | None:
    """The cached plan of `key`, marked as just used, or None."""
    plan = PLANS.get(key)
    if plan is not None:
        plan.used = _tick()
    return plan


def keep(key: tuple, plan: Plan, size: int) -> None:
    """Cache `plan`, evicting the least recently used plans beyond `size`; an evicted plan's
    scratch arrays are freed (the arrays of a replay running now on another thread once it
    ends)."""
    evicted = []
    with _plans_lock:   # (realizes on other threads insert and evict too)
        plan.used = _tick()
        PLANS[key] = plan
        while len(PLANS) > size:
            old_key, old = min(PLANS.items(), key=_last_use)
            del PLANS[old_key]
            evicted.append(old)
    for old in evicted:
        old.release()
        config.STATS["plans_evicted"] += 1


def _last_use(item: tuple[tuple, Plan]) -> int:
    return item[1].used


def _release_arenas() -> None:
    """empty_cache(): every cached plan's scratch arrays (allocated again by its next run)."""
    for plan in list(PLANS.values()):
        plan.release()


memory.RELEASERS.append(_release_arenas)


class RealizeError(RuntimeError):
    """A failure while compiling or running a graph, naming the user lines that built it."""

    def __init__(self, message: str, nodes: list[Node], walk: bool = True):
        from ..ir.sites import site_of
        sites: list[str] = []
        for n in toposort(nodes, _is_buffer) if walk else nodes:
            s = site_of(n)
            if s and s not in sites:
                sites.append(s)
        where = ", ".join(sites[-8:]) if sites else "unknown"
        super().__init__(f"{message}\n(while computing ops created at {where})")
        self.sites = sites


# ops a kernel's log line does not name: its data, and the reshapes, broadcasts and detaches
# that every kernel has and no user wrote as a computation
_QUIET = SOURCE | {Op.RESHAPE, Op.EXPAND, Op.DETACH}


class KernelMismatch(RuntimeError):
    """Check mode: a compiled kernel disagreed with the reference interpreter."""


def _check_kernel(k, arrays: list[np.ndarray]) -> None:
    from ..ir.sites import site_of
    got, ins = arrays[0], dict(zip(k.inputs, arrays[1:]))
    # a buffer the kernel never reads (an empty tensor, a fully padded region) is no param
    (ref,) = interpreter.run_graph([k.output], lambda n: ins.get(n) if n.op is not Op.BUFFER
                                   else ins.get(n, np.zeros(n.shape, n.dtype.np)))
    if dt.is_float_array(got):
        eps = dt.finfo(dt.from_numpy(got.dtype)).eps  # half types differ in the last bits
        # more often
        bad = ~np.isclose(got.astype(np.float64), ref.astype(np.float64),
                          rtol=max(1e-4, 8 * eps), atol=max(1e-5, eps), equal_nan=True)
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


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection inside: compiling a graph allocates many objects and
    frees no cycles, and with a large graph alive each collection walks all of it (a third
    of the time to schedule 10,000 ops)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def compile_graph(outputs: list[Node], renderer: Renderer, lvl: int = 0
                  ) -> tuple[Graph, Schedule]:
    """Passes, schedule (for the renderer's capabilities) and source (each kernel's `code`,
    rendered once by `renderer`) for the graph of `outputs`."""
    with gc_paused():
        g = Graph(outputs)
        if lvl >= 3:
            config.log(f"--- IR before passes\n{g}")
        g = optimize(g, (lambda name, gr: config.log(f"--- after {name}\n{gr}")) if lvl >= 5
                     else None)
        sched = schedule_graph(g, renderer.caps)
        for k in sched.kernels:
            k.code = renderer.render_kernel(k, FNAME)
    return g, sched


def _stand_ins(outputs: list[Node], inputs: list[Node]) -> tuple[list[Node], list[Node]]:
    """`outputs` and `inputs` with each input buffer replaced by a BUFFER node of its shape and
    dtype that holds no data: what a plan keeps (its schedule, for debug runs) must not keep
    the first realize's inputs alive, nor, through its nodes, the values realized from them."""
    new = {b: memory.placeholder(b.shape, b.dtype, b.device) for b in inputs}
    get = new.get
    for n in toposort(outputs, _is_buffer):
        if n.op is not Op.BUFFER:
            srcs = tuple([get(s, s) for s in n.srcs])
            if srcs != n.srcs:
                m = new[n] = new_node(n.op, srcs, n.arg, n.shape, n.dtype)
                inherit(m, n)   # the user's line follows the rebuilt node
    return [get(o, o) for o in outputs], [new[b] for b in inputs]


def _is_buffer(n: Node) -> bool:
    return n.op is Op.BUFFER


def build_plan(outputs: list[Node], inputs: list[Node], backend: CompiledBackend) -> Plan:
    """The plan computing `outputs` from the buffers `inputs` on `backend`'s parts: kernels
    found by symbol through its compiler (the misses compiled into at most `_split`'s modules,
    with the driver), called through its runtime, on memory of its allocator."""
    renderer, compiler, runtime = backend.renderer, backend.compiler, backend.runtime
    lvl = config.get_level()
    t0 = time.perf_counter()
    outputs, inputs = _stand_ins(outputs, inputs)
    struct, vary = shapes.observe(outputs) if shapes.enabled() else (None, False)
    with shapes.rendering(vary):
        g, sched = compile_graph(outputs, renderer, lvl)
    sizes = shapes.kernel_sizes(struct, sched.kernels, renderer.name, vary)
    if lvl >= 3:
        config.log(f"--- scheduled\n{format_schedule(sched)}")
    if lvl >= 4:
        for k in sched.kernels:
            config.log(f"--- {k.name}\n{k.source}")
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
    consts = [backend.allocator.from_host(v) for v in sizes.values()]
    for i, name in enumerate(sizes):
        sizes[name] = len(inputs) + len(arena) + i   # the kernel's size array's slot

    def slots_of(k) -> list[int]:
        return [slot[n] for n in [k.output, *k.inputs]] + (
            [sizes[k.name]] if k.name in sizes else [])
    steps = []
    driver = fptrs = None
    if sched.kernels:
        head = _module_header_sha(renderer)
        syms: dict[str, str] = {}      # kernel name -> symbol (a hash of its code)
        first: dict[str, object] = {}  # symbol -> its first kernel
        cost: dict[str, int] = {}
        for k in sched.kernels:
            src = k.code
            sym = syms[k.name] = "lt_" + cache.sha256((head + src).encode())[:16]
            if sym not in first:
                first[sym] = k
                cost[sym] = len(src) + _KERNEL_COST + (_GEMM_COST if "lt_gemm_" in src else 0)
        fidx = {sym: i for i, sym in enumerate(first)}
        calls = [(fidx[syms[k.name]], slots_of(k)) for k in sched.kernels]
        dname = "lt_plan_" + cache.sha256((head + repr(calls)).encode())[:16]
        # a renderer without drivers: the plan calls the kernels one by one
        dsrc = renderer.render_driver(dname, calls)
        libs = {sym: compiler.find(sym) for sym in [*first, *([dname] if dsrc else [])]}
        todo = [sym for sym in first if libs[sym] is None]
        groups = _split(todo, cost, compiler.workers())
        srcs = [renderer.render_module([first[sym].named(sym) for sym in g]) for g in groups]
        if dsrc and libs[dname] is None:   # the driver joins the lighter module, or alone
            if not groups:
                groups, srcs = [[]], [""]
            i = min(range(len(groups)), key=lambda i: sum(cost[s] for s in groups[i]))
            groups[i] = groups[i] + [dname]
            srcs[i] += dsrc
        if srcs:
            t_c = time.perf_counter()
            try:
                built = compiler.compile(srcs, groups)
            except CompileError as e:
                failing = _failing_kernels([first[s] for s in todo], syms, renderer, compiler)
                raise KernelCompileError(str(e), failing) from e
            if config.PROFILER is not None:
                config.PROFILER.event("lazytorch::compile", t_c, time.perf_counter())
            libs.update((sym, lib) for grp, lib in zip(groups, built) for sym in grp)
        config.STATS["kernels_compiled"] += sum(syms[k.name] in todo for k in sched.kernels)
        for k in sched.kernels:
            fn = runtime.function(libs[syms[k.name]], syms[k.name],
                                  len(k.params) + (k.name in sizes), renderer.launch(k))
            steps.append((fn, tuple(slots_of(k))))
        fptrs = (ctypes.c_void_p * len(first))(*(runtime.address(libs[s], s) for s in first))
        driver = runtime.function(libs[dname], dname, 2) if dsrc else None
        fault_flags = _fault_flags(sched.kernels, [libs[syms[k.name]] for k in sched.kernels],
                                   runtime)
    plan = Plan(sched, steps, len(inputs), [slot[o] for o in g.outputs], arena,
                {slot[o] for o in outs}, backend.allocator, driver, fptrs,
                fault_flags if sched.kernels else None, consts)
    plan.build_ms = (time.perf_counter() - t0) * 1e3
    return plan


def _fault_flags(kernels, libs, runtime) -> list:
    """(the fault flag of a module, the integer divisions of its kernels) for every module
    whose kernels can fault."""
    by_lib: dict[int, tuple] = {}
    for k, lib in zip(kernels, libs):
        divs = [n for n in k.nodes if faults.can_fault(n)]
        if divs:
            entry = by_lib.setdefault(id(lib), (runtime.fault_flag(lib), []))
            entry[1].extend(divs)
    return list(by_lib.values())


# compile cost of a kernel, in characters of its C source: gcc's time grows with the source,
# plus about this much per function (measured here: ~60 ms a process, ~40 ms a small kernel,
# ~200 ms a 3,900-character GEMM)
_KERNEL_COST = 600
# a GEMM kernel is short but calls the shared lt_gemm core, which a module compiles once
_GEMM_COST = 1500
# below this total (~200 ms of compiling) a second compiler process saves little time and
# costs another header parse
_SPLIT_COST = 4000


def _split(syms: list[str], cost: dict[str, int], workers: int) -> list[list[str]]:
    """The kernels to compile in one module, or in two of about equal cost compiled at once
    when `workers` (compiler processes that may run at once) allows (each compiler process also
    parses the headers). Deterministic, so the same plan yields the same modules and a new
    process finds them on disk."""
    if len(syms) < 2 or sum(cost[s] for s in syms) < _SPLIT_COST or workers < 2:
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
def _module_header_sha(renderer) -> str:
    """Hash of the renderer's name and of what every module it renders starts with: part of
    each kernel's symbol, since the disk index finds compiled kernels by symbol."""
    return cache.sha256(f"{renderer.name}\0{renderer.header()}".encode())


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


def _failing_kernels(kernels, syms, renderer, compiler) -> list:
    """Compile each kernel alone to find the ones the compiler rejects (only on failure)."""
    bad = []
    for k in kernels:
        try:
            compiler.compile([renderer.render_module([k.named(syms[k.name])])], [[]])
        except CompileError:
            bad.append(k)
    return bad
