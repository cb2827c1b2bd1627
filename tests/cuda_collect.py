"""The CUDA kernels of a test run, collected without a GPU (LAZYTORCH_CUDA_COLLECT=DIR, read by
conftest.py): while the op, autograd and nn suites (tests/suites.py) run on the CPU as usual,
every graph the C backend builds a plan for in their tests is also scheduled and rendered for
CUDA (the same passes, the CUDA renderer's capabilities), and each distinct kernel is written
to DIR/<sha256 of its code>.cu (a temp name and a rename: xdist workers and separate runs
share the folder). Other tests' graphs are not collected. tools/cuda_sweep.py compiles the
folder with nvcc.

A file is the kernel's code (its function named FNAME) after a header of `//` lines: the test
that made it first, and the kernel's name in its schedule and its ops. A graph the CUDA
renderer fails on is written as DIR/<sha256 of the error>.err (the test and the traceback).
At its exit each process (an xdist worker) writes DIR/made-<pid>.txt: a line "file sha256" for
every kernel each test file made (the kernels per suite)."""
from __future__ import annotations

import atexit
import hashlib
import os
import traceback

from lazytorch.compiler.codegen.cuda import CudaRenderer
from lazytorch.engine import plan as plans
from lazytorch.runtime.files import atomic_write
from tests import suites

ENV = "LAZYTORCH_CUDA_COLLECT"
HEADER = "// lazytorch-cuda-collect"
_SUITES = frozenset(suites.ALL)
_MADE: dict[str, set[str]] = {}      # test file -> the hashes of the kernels it made


def _test() -> str:
    """The test running now (pytest's PYTEST_CURRENT_TEST without its phase)."""
    now = os.environ.get("PYTEST_CURRENT_TEST", "")
    return now.rsplit(" (", 1)[0] or "(outside a test)"


def _write(folder: str, name: str, text: str) -> None:
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        atomic_write(path, text.encode())


def record(folder: str, outputs, renderer: CudaRenderer) -> int:
    """Write the CUDA kernels of the graph of `outputs` that `folder` lacks; how many the
    graph has. A renderer error is written, not raised: the test goes on on the CPU."""
    test = _test()
    made = _MADE.setdefault(test.split("::")[0], set())
    try:
        kernels = plans.compile_graph(outputs, renderer)[1].kernels
    except Exception:    # noqa: BLE001 - every renderer failure is reported by the sweep
        err = traceback.format_exc()
        h = hashlib.sha256(err.encode()).hexdigest()[:32]
        _write(folder, f"{h}.err", f"{HEADER} test: {test}\n{err}")
        return 0
    for k in kernels:
        h = hashlib.sha256(k.code.encode()).hexdigest()[:32]
        made.add(h)
        _write(folder, f"{h}.cu", f"{HEADER} test: {test}\n// kernel: {k.name} "
                                  f"({', '.join(k.ops) or 'copy'})\n{k.code}")
    return len(kernels)


def install(folder: str) -> None:
    """From now on, every plan built for a CPU backend also writes its CUDA kernels to
    `folder`."""
    os.makedirs(folder, exist_ok=True)
    renderer = CudaRenderer()
    build = plans.build_plan

    def build_plan(outputs, inputs, backend):
        if backend.device_type == "cpu" and _test().split("::")[0] in _SUITES:
            record(folder, outputs, renderer)
        return build(outputs, inputs, backend)

    plans.build_plan = build_plan
    atexit.register(_write_made, folder)


def _write_made(folder: str) -> None:
    lines = [f"{f} {h}\n" for f, hs in sorted(_MADE.items()) for h in sorted(hs)]
    atomic_write(os.path.join(folder, f"made-{os.getpid()}.txt"), "".join(lines).encode())
