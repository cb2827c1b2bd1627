"""The engine: what turns a realize into work on a backend. realize.py (the pending graph's key,
the realize itself), plan.py (compiled plans built from a backend's parts and replayed),
live.py (what live tensors hold, stored by the same realize) and backends.py (the registry).

The CPU's backends are registered here, when the engine starts: "c" (the default for "cpu": C
for this host's cores rendered by the compiler package's CRenderer, built by cc, run through
ctypes on host memory) and "interp" (the numpy reference). The CUDA backend is made at the
first use of a CUDA device (engine/cuda.py: nothing imports pycuda before that)."""
from __future__ import annotations

from ..compiler.codegen.c import CRenderer
from ..runtime import cpu
from . import backends, cuda

backends.register(backends.CompiledBackend(
    "c", "cpu", CRenderer(CRenderer.capabilities(cpu.cores())), cpu.CCompiler(), cpu.CRuntime(),
    cpu.HOST), default=True)
backends.register(backends.InterpreterBackend("interp", "cpu"))
backends.register_lazy("cuda", cuda.start)
