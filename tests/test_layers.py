"""The layers, checked on the import graph (tools/imports.py: imports inside functions count).

From the bottom: the settings (config.py) import nothing of lazytorch; the IR core (ops, dtypes,
graph, sites) imports only the settings and itself; the runtime adds the IR; the compiler adds
of the runtime only its reference interpreter (constant folding): what the host offers (its
core count) reaches the code generators through a renderer's Capabilities; the engine
(realize, plan, live) adds the compiler; the front end (the Tensor API, autograd, nn, optim,
data, serialization, the debugging tools) may import anything. No module below the front end
lies on an import cycle.
"""
from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("lt_tools_imports", ROOT / "tools" / "imports.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


imports = _tool()

CONFIG = {"lazytorch.config"}
IR = {
    "lazytorch.ir", "lazytorch.ir.ops", "lazytorch.ir.dtypes", "lazytorch.ir.graph",
    "lazytorch.ir.sites",
}
RUNTIME_PACKAGE = "lazytorch.runtime"
COMPILER_PACKAGE = "lazytorch.compiler"
ENGINE = {"lazytorch.engine.realize", "lazytorch.engine.plan", "lazytorch.engine.live"}
# the front end, by top-level name under lazytorch (a package stands for all its modules);
# a new module must be placed in a layer here
FRONT_END = {
    "__main__", "accelerator", "amp", "as_torch", "autograd", "backends", "cache", "cpu", "cuda",
    "debug", "distributed", "distributions", "frontend", "functional", "jit", "linalg", "nn",
    "onnx", "optim", "profiler", "serialization", "text", "utils", "vision",
}
ORDER = ["config", "ir", "runtime", "compiler", "engine", "front end"]


def layer(module: str) -> str:
    if module in CONFIG:
        return "config"
    if module in IR:
        return "ir"
    if module == RUNTIME_PACKAGE or module.startswith(RUNTIME_PACKAGE + "."):
        return "runtime"
    if module == COMPILER_PACKAGE or module.startswith(COMPILER_PACKAGE + "."):
        return "compiler"
    if module in ENGINE or module.startswith("lazytorch.engine"):
        return "engine"
    if module == "lazytorch" or module.split(".")[1] in FRONT_END:
        return "front end"
    raise KeyError(f"{module} is in no layer: add it to one in tests/test_layers.py")


@pytest.fixture(scope="module")
def graph():
    return imports.import_graph()


def test_every_module_is_in_one_layer(graph):
    assert len(graph) > 100
    for m in graph:
        layer(m)
    # the explicit front-end list names only what exists
    tops = {m.split(".")[1] for m in graph if "." in m}
    assert FRONT_END <= tops


def _upward(graph, top: str) -> list[str]:
    """The edges from a module of layer `top` or below to a layer above its own."""
    rank = ORDER.index
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if rank(layer(a)) <= rank(top) and rank(layer(b)) > rank(layer(a)))


def test_config_imports_nothing_of_lazytorch(graph):
    assert graph["lazytorch.config"] == set()


def test_ir_core_imports_no_runtime_compiler_or_front_end(graph):
    assert _upward(graph, "ir") == []


def test_runtime_imports_no_compiler_engine_or_front_end(graph):
    assert _upward(graph, "runtime") == []


def test_compiler_and_runtime_import_no_front_end(graph):
    assert _upward(graph, "compiler") == []


def test_compiler_imports_only_the_interpreter_of_the_runtime(graph):
    allowed = {RUNTIME_PACKAGE, RUNTIME_PACKAGE + ".interpreter"}
    edges = sorted(f"{a} -> {b}" for a, targets in graph.items() if layer(a) == "compiler"
                   for b in targets if layer(b) == "runtime" and b not in allowed)
    assert edges == []


def test_engine_imports_no_front_end(graph):
    assert _upward(graph, "engine") == []


def test_no_cycle_reaches_below_the_front_end(graph):
    low = [[m for m in comp if layer(m) != "front end"] for comp in imports.cycles(graph)]
    assert [c for c in low if c] == []


def test_compiler_entry_points_take_tensors():
    # they are published on the compiler package by the front end (lazytorch/debug.py)
    import numpy as np

    import lazytorch as torch
    from lazytorch import compiler, debug
    assert compiler.schedule is debug.schedule and compiler.graph is debug.graph
    x = torch.tensor(np.arange(6, dtype=np.float32))
    y = (x * 2 + 1).exp().sum()
    kernels = compiler.schedule(y)
    assert len(kernels) == 1 and "exp" in kernels[0].source
    g = compiler.graph(y)
    assert {d["op"] for _, d in g.nodes(data=True)} >= {"mul", "add", "exp", "sum"}
    assert y.item() == pytest.approx(np.exp(np.arange(6) * 2 + 1).sum(), rel=1e-6)


# the tool itself, on a package written here


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = tmp_path / "lazytorch" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


def test_tool_reads_function_level_relative_and_absolute_imports(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from . import a\n",
        "a.py": """
            from typing import TYPE_CHECKING
            import numpy
            from .sub import b
            if TYPE_CHECKING:
                from . import c
            def f():
                from .sub.b import thing
                import lazytorch.c
        """,
        "c.py": "def g():\n    from .sub import d as _d\n",
        "sub/__init__.py": "from .b import thing\n",
        "sub/b.py": "from .. import a\nfrom ..c import g\nthing = 1\n",
        "sub/d.py": "from . import b\n",
    })
    g = imports.import_graph(root)
    assert g["lazytorch"] == {"lazytorch.a"}
    # `from .sub import b`: the package and its module; TYPE_CHECKING left out; the function's
    # `import lazytorch.c` counted
    assert g["lazytorch.a"] == {"lazytorch.sub", "lazytorch.sub.b", "lazytorch.c"}
    # a module outside a package runs its __init__; one inside it does not (it is running)
    assert g["lazytorch.c"] == {"lazytorch.sub", "lazytorch.sub.d"}
    assert g["lazytorch.sub.d"] == {"lazytorch.sub.b"}
    assert g["lazytorch.sub.b"] == {"lazytorch.a", "lazytorch.c"}
    assert imports.cycles(g) == [["lazytorch.a", "lazytorch.c", "lazytorch.sub",
                                  "lazytorch.sub.b", "lazytorch.sub.d"]]


def test_tool_finds_separate_cycles_and_none_in_a_chain(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from . import a\n",
        "c.py": "from .d import x\n",
        "d.py": "from . import e\nx = 1\n",
        "e.py": "import math\n",
    })
    g = imports.import_graph(root)
    assert imports.cycles(g) == [["lazytorch.a", "lazytorch.b"]]
