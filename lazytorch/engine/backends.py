"""Backends, and the registry of them: which backend realizes the graphs of each device type.

A backend is registered under a name and serves one device type ("cpu", "cuda", ...). Several
may serve one device type (the compiled C backend and the reference interpreter both serve
"cpu"); the one realizes use is the device type's default, or the one named by
LAZYTORCH_BACKEND / `lazytorch.debug.use_backend(name)` when it serves that device type
(for_device). Both kinds run a prepared graph through one method,
`run(outputs, inputs, key, todo) -> (results, plan or None)`: the output buffers, in the order
of `outputs`, and the plan that ran them. lazytorch/engine/__init__.py registers the CPU's,
and a starter for "cuda" (register_lazy): that backend is made at its first use.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from .. import config
from ..ir.graph import Node
from ..runtime import interpreter, memory
from ..runtime.protocol import Allocator, Compiler, Runtime
from . import dynamic
from . import plan as plans

# name -> backend object; device type -> the names serving it, the default first
_BACKENDS: dict[str, Any] = {}
_BY_TYPE: dict[str, list[str]] = {}
# device type -> the function registering its backend at the type's first use (or raising why
# it cannot run here)
_LAZY: dict[str, Callable[[], None]] = {}


class CompiledBackend:
    """A backend that renders kernels to source (`renderer`), compiles them (`compiler`), calls
    them (`runtime`) on memory of `allocator`, through plans cached by graph structure.
    `devices`: how many devices of its type it serves (indices 0 to devices - 1), or None for
    any index."""

    def __init__(self, name: str, device_type: str, renderer: Any, compiler: Compiler,
                 runtime: Runtime, allocator: Allocator, devices: int | None = None):
        self.name, self.device_type, self.devices = name, device_type, devices
        self.renderer, self.compiler, self.runtime, self.allocator = \
            renderer, compiler, runtime, allocator

    def __repr__(self) -> str:
        return f"CompiledBackend({self.name!r}, {self.device_type!r})"

    def run(self, outputs: list[Node], inputs: list[Node], key: tuple, todo: list[Node]
            ) -> tuple[list, plans.Plan]:
        """Compute `outputs` (prepared from the user's nodes `todo`; `key` is their structure)
        from the buffers `inputs`, with the plan cached for this backend and structure (built
        on a miss). Scalars that changed since the graph's structure was first seen are the
        plan's inputs (engine/dynamic.py)."""
        plan = plans.cached((self.name, key))
        hit = plan is not None
        extra: tuple[list, list] = ([], [])
        if plan is None:
            build = outputs, inputs, key
            found = dynamic.lookup(key)
            if found is not None:
                dkey, positions = found
                plan = plans.cached((self.name, dkey))
                hit = plan is not None
                made = (outputs, inputs) if hit else dynamic.with_inputs(
                    outputs, inputs, key, positions, self.device_type)
                if made is not None:   # (None: the graph's constants could not be found)
                    build = (*made, dkey)
                    extra = dynamic.inputs_of(key, positions, self.allocator)
            if plan is None:
                plan = self._build((self.name, build[2]), build[0], build[1], todo)
        if hit:
            config.STATS["plan_cache_hits"] += 1
        if config.get_level() >= 1:
            config.log(f"realize: {len(plan.steps)} kernels, "
                       + ("plan cache hit" if hit else f"built in {plan.build_ms:.1f} ms"))
        data, address = memory.data, memory.address
        out = plan.run([data(b) for b in inputs] + extra[0],
                       [address(b) for b in inputs] + extra[1])
        if not self.allocator.host_memory:
            return out, plan    # buffers of the device, kept there
        to_host = self.allocator.to_host   # host arrays of the value's dtype and shape
        return [to_host(a, o.dtype, o.shape) for a, o in zip(out, outputs)], plan

    def _build(self, key: tuple, outputs: list[Node], inputs: list[Node], todo: list[Node]
               ) -> plans.Plan:
        """The plan of `outputs` from `inputs`, built and cached under `key`."""
        size = plans.plan_cache_size()
        t0 = time.perf_counter()
        try:
            plan = plans.build_plan(outputs, inputs, self)
        except plans.KernelCompileError as e:
            # name the user lines of the kernels that failed, not the whole graph's
            culprits = [n for k in e.kernels for n in k.nodes] or todo
            names = ", ".join(k.name for k in e.kernels) or "a kernel"
            raise plans.RealizeError(f"CompileError in {names}: {e}", culprits,
                                     walk=not e.kernels) from e
        except Exception as e:
            raise plans.RealizeError(f"{type(e).__name__}: {e}", todo) from e
        plans.keep(key, plan, size)
        config.STATS["plans_built"] += 1
        if config.PROFILER is not None:
            config.PROFILER.event("lazytorch::plan", t0, time.perf_counter())
        return plan


class InterpreterBackend:
    """The reference: numpy runs every op of the graph (runtime/interpreter.py)."""

    def __init__(self, name: str = "interp", device_type: str = "cpu"):
        self.name, self.device_type = name, device_type

    def __repr__(self) -> str:
        return f"InterpreterBackend({self.name!r}, {self.device_type!r})"

    def run(self, outputs: list[Node], inputs: list[Node], key: tuple, todo: list[Node]
            ) -> tuple[list, None]:
        bufs = {b: memory.host_data(b) for b in inputs}
        return interpreter.run_graph(outputs, bufs.get), None


def register(backend: Any, default: bool = False) -> None:
    """Make `backend` (with `.name` and `.device_type`) available; `default`: realizes on its
    device type use it unless another is selected."""
    _BACKENDS[backend.name] = backend
    alloc = getattr(backend, "allocator", None)
    if alloc is not None and not alloc.host_memory and (
            default or backend.device_type not in memory.ALLOCATORS):
        memory.ALLOCATORS[backend.device_type] = alloc   # the device's memory
    names = _BY_TYPE.setdefault(backend.device_type, [])
    if backend.name in names:
        names.remove(backend.name)
    names.insert(0 if default or not names else len(names), backend.name)


def unregister(name: str) -> None:
    """Remove the backend registered as `name` (its device type goes with it when no other
    backend serves it)."""
    backend = _BACKENDS.pop(name)
    kind = backend.device_type
    _BY_TYPE[kind].remove(name)
    if not _BY_TYPE[kind]:
        del _BY_TYPE[kind]
    if memory.ALLOCATORS.get(kind) is getattr(backend, "allocator", None):
        del memory.ALLOCATORS[kind]
        for other in _BY_TYPE.get(kind, []):
            alloc = getattr(_BACKENDS[other], "allocator", None)
            if alloc is not None and not alloc.host_memory:
                memory.ALLOCATORS[kind] = alloc
                break


def register_lazy(device_type: str, start: Callable[[], None]) -> None:
    """`start()` registers the backend of `device_type` when a tensor is first placed there
    (start(device_type)); it raises, with the reason, where that device cannot run."""
    _LAZY[device_type] = start


def start(device_type: str) -> None:
    """Make sure a backend serves `device_type`: a registered one, else the type's starter
    (register_lazy) is run now and raises what keeps the device from running."""
    if device_type in _BY_TYPE:
        return
    begin = _LAZY.get(device_type)
    if begin is None:
        raise RuntimeError(f"no backend serves device type {device_type!r}")
    begin()


def check_index(device_type: str, index: int) -> None:
    """Raise PyTorch's error for a device index the type's backend does not serve."""
    served = getattr(default(device_type), "devices", None)
    if served is not None and not 0 <= index < served:
        raise RuntimeError(f"{device_type.upper()} error: invalid device ordinal (the "
                           f"{device_type} backend serves {device_type}:0"
                           + (f" to {device_type}:{served - 1})" if served > 1 else ")"))


def get(name: str) -> Any:
    """The backend registered as `name`."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}: expected one of "
                         f"{', '.join(sorted(_BACKENDS))}") from None


def names() -> list[str]:
    return sorted(_BACKENDS)


def device_types() -> list[str]:
    """The device types some backend serves."""
    return list(_BY_TYPE)


def default(device_type: str) -> Any:
    """The backend realizes on `device_type` use unless another is selected."""
    try:
        return _BACKENDS[_BY_TYPE[device_type][0]]
    except KeyError:
        raise RuntimeError(f"no backend serves device type {device_type!r} (backends: "
                           f"{', '.join(f'{n} ({_BACKENDS[n].device_type})' for n in names())})"
                           ) from None


def for_device(device_type: str) -> Any:
    """The backend realizes on `device_type` use: the selected one (LAZYTORCH_BACKEND,
    use_backend) if it serves that device type, else the type's default. A selected name that
    no backend has raises, naming the registered ones."""
    name = config.backend()
    if name:
        b = get(name)
        if b.device_type == device_type:
            return b
    return default(device_type)


config.attach_backends(names, lambda device_type: default(device_type).name)
