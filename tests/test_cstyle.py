"""The C-style core renderer alone (compiler/codegen/cstyle.py), with no dialect: the kernels it
renders are plain C99 that a C compiler builds without OpenMP or GNU extensions, and they compute
what the reference interpreter computes. The C dialect's additions stay out of the core."""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lazytorch.compiler.codegen import cstyle
from lazytorch.compiler.codegen.c import CRenderer
from lazytorch.compiler.codegen.cstyle import CStyleRenderer
from lazytorch.compiler.schedule import schedule_graph
from lazytorch.ir import dtypes as dt
from lazytorch.ir.graph import Graph, Node
from lazytorch.ir.ops import Op
from lazytorch.runtime.interpreter import run_graph

F32, F64, I32, I64, BOOL = dt.float32, dt.float64, dt.int32, dt.int64, dt.bool_
DIALECT_ONLY = ("#pragma", "__attribute__", "_Float16", "__builtin")

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


def _buf(i: int, shape, dtype=F32) -> Node:
    return Node(Op.BUFFER, (), 7100 + i, shape, dtype)


def _bin(op: Op, a: Node, b: Node, dtype=None) -> Node:
    return Node(op, (a, b), None, a.shape, dtype or a.dtype)


def _expand(a: Node, shape) -> Node:
    return Node(Op.EXPAND, (a,), shape, shape, a.dtype)


def _cases():
    """name -> (output node, its input buffers)."""
    x, y = _buf(0, (5, 7)), _buf(1, (5, 7))
    row = _buf(2, (1, 7))
    ix, iy = _buf(3, (5, 7), I64), _buf(4, (5, 7), I64)
    d = _buf(5, (6, 9), F64)
    exp = Node(Op.EXP, (x,), None, x.shape, F32)
    return {
        "elementwise": (_bin(Op.ADD, _bin(Op.MUL, exp, y), Node(Op.SQRT, (
            Node(Op.ABS, (y,), None, y.shape, F32),), None, y.shape, F32)), [x, y]),
        "broadcast": (_bin(Op.SUB, x, _expand(row, (5, 7))), [x, row]),
        "sum": (Node(Op.SUM, (_bin(Op.MUL, x, y),), (1,), (5, 1), F32), [x, y]),
        "max of columns": (Node(Op.RMAX, (d,), (0,), (1, 9), F64), [d]),
        "argmin": (Node(Op.ARGMIN, (x,), (1,), (5, 1), I64), [x]),
        "cumsum": (Node(Op.CUMSUM, (x,), 1, x.shape, F32), [x]),
        "cast": (Node(Op.CAST, (_bin(Op.MUL, x, y),), I32, x.shape, I32), [x, y]),
        "cast to bfloat16": (Node(Op.CAST, (x,), dt.bfloat16, x.shape, dt.bfloat16), [x]),
        "where": (Node(Op.WHERE, (_bin(Op.CMPLT, x, y, BOOL), x, _expand(row, (5, 7))),
                       None, x.shape, F32), [x, y, row]),
        "floor division": (_bin(Op.IDIV, ix, iy), [ix, iy]),
    }


def _data(n: Node, rng) -> np.ndarray:
    if n.dtype == I64:   # signed, never zero (a zero divisor sets the fault flag instead)
        v = rng.integers(1, 20, n.shape) * rng.choice([-1, 1], n.shape)
        return v.astype(np.int64)
    return rng.standard_normal(n.shape).astype(n.dtype.np)


def _compile(source: str, folder: Path) -> ctypes.CDLL:
    src, lib = folder / "kernels.c", folder / "kernels.so"
    src.write_text(source)
    # C99 as the standard has it: no OpenMP, GNU extensions rejected
    subprocess.run(["cc", "-std=c99", "-pedantic-errors", "-O1", "-shared", "-fPIC", "-o",
                    str(lib), str(src), "-lm"], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(lib))


@needs_cc
@pytest.mark.parametrize("name", list(_cases()))
def test_bare_core_kernels_compile_as_c99_and_match_the_interpreter(name, rng, tmp_path):
    out, inputs = _cases()[name]
    r = CStyleRenderer()
    sched = schedule_graph(Graph([out]), r.caps)
    assert sched.kernels
    fnames = [f"k{i}" for i in range(len(sched.kernels))]
    lib = _compile(r.render_module([r.render_kernel(k, f)
                                    for k, f in zip(sched.kernels, fnames)]), tmp_path)
    arrays = {b: _data(b, rng) for b in inputs}
    for k, f in zip(sched.kernels, fnames):
        arrays[k.output] = np.zeros(k.output.shape, k.output.dtype.np)
        fn = lib[f]
        fn.argtypes = [ctypes.c_void_p] * len(k.params)
        fn(*(arrays[n].ctypes.data for n in [k.output, *k.inputs]))
    (ref,) = run_graph([out], lambda n: arrays.get(n) if n.op is Op.BUFFER else None)
    got = arrays[out]
    assert got.dtype == ref.dtype and got.shape == ref.shape
    if out.dtype.kind == "f":
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64),
                                   rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, ref)
    assert ctypes.c_int.in_dll(lib, "lt_fault").value == 0


@needs_cc
def test_bare_core_flags_an_integer_division_by_zero(tmp_path):
    a, b = _buf(0, (4,), I64), _buf(1, (4,), I64)
    out = _bin(Op.MOD, a, b)
    r = CStyleRenderer()
    (k,) = schedule_graph(Graph([out]), r.caps).kernels
    lib = _compile(r.render_module([r.render_kernel(k, "f")]), tmp_path)
    x, y = np.array([7, -7, 5, 3]), np.array([2, 2, 0, -2])
    res = np.zeros(4, np.int64)
    lib.f.argtypes = [ctypes.c_void_p] * 3
    lib.f(res.ctypes.data, x.ctypes.data, y.ctypes.data)
    assert ctypes.c_int.in_dll(lib, "lt_fault").value == 1
    assert res[[0, 1, 3]].tolist() == [1, 1, -1]   # Python's modulo


def test_core_source_has_no_dialect_extensions():
    r = CStyleRenderer()
    rendered = [r.render_kernel(k, "f") for out, _ in _cases().values()
                for k in schedule_graph(Graph([out]), r.caps).kernels]
    texts = {"cstyle.py": Path(cstyle.__file__).read_text(),
             "header": r.header(), "module": r.render_module(rendered),
             "driver": r.render_driver("d", [(0, [0, 1]), (1, [1, 2])])}
    for where, text in texts.items():
        found = [w for w in DIALECT_ONLY if w in text]
        assert not found, f"{where} holds {found}"
    # ... while the C dialect's header has them (its half type: test_the_core_has_no_half_type)
    assert all(w in CRenderer().header() for w in ("#pragma", "__attribute__", "__builtin"))


def test_core_caps_offer_no_strategies_and_leave_rows_unfused():
    # softmax's row reductions stay kernels of their own without row kernels
    x = _buf(0, (8, 32))
    m = Node(Op.RMAX, (x,), (1,), (8, 1), F32)
    e = Node(Op.EXP, (_bin(Op.SUB, x, _expand(m, (8, 32))),), None, (8, 32), F32)
    s = Node(Op.SUM, (e,), (1,), (8, 1), F32)
    y = _bin(Op.DIV, e, _expand(s, (8, 32)))
    core = schedule_graph(Graph([y]), CStyleRenderer().caps).kernels
    fused = schedule_graph(Graph([y]), CRenderer.capabilities(1)).kernels
    assert len(core) == 3 and len(fused) == 1


def test_the_core_has_no_half_type():
    # half precision is a dialect's type (C's _Float16); the core says so by name
    x = _buf(0, (4,), dt.float16)
    (k,) = schedule_graph(Graph([_bin(Op.ADD, x, x)]), CStyleRenderer().caps).kernels
    with pytest.raises(TypeError, match=re.escape("cstyle renderer has no type for torch.float16")):
        CStyleRenderer().render_kernel(k, "f")
    assert "_Float16" in CRenderer().render_kernel(k, "f")
