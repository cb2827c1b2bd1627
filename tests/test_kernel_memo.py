"""Lowering once per kernel structure (compiler/kernel_memo.py), on hand-built graphs."""
from __future__ import annotations

import importlib

import numpy as np

import lazytorch as torch
from lazytorch.compiler import kernel_memo
from lazytorch.compiler.codegen.c import CRenderer
from lazytorch.compiler.kernel import lower_kernel
from lazytorch.engine import backends
from lazytorch.engine.plan import compile_graph
from lazytorch.ir import dtypes as dt
from lazytorch.ir.graph import Node, const
from lazytorch.ir.ops import Op

schedule = importlib.import_module("lazytorch.compiler.schedule")
F32 = dt.float32
_bid = iter(range(10**9, 2 * 10**9))

C_RENDERER = backends.get("c").renderer


def buf(*shape, dtype=F32) -> Node:
    return Node(Op.BUFFER, (), next(_bid), shape, dtype)


def block(a: Node, b: Node, c: float = 2.0) -> Node:
    """(a - b) * a + c: asymmetric in its inputs, with a shared source."""
    d = Node(Op.SUB, (a, b), None, a.shape, a.dtype)
    m = Node(Op.MUL, (d, a), None, a.shape, a.dtype)
    return Node(Op.ADD, (m, const(c, a.dtype, a.shape)), None, a.shape, a.dtype)


def is_buf(n: Node) -> bool:
    return n.op is Op.BUFFER


def test_structure_names_shape_sharing_and_constants():
    a, b, x, y = buf(4, 5), buf(4, 5), buf(4, 5), buf(4, 5)
    key = kernel_memo.structure(block(a, b), is_buf)[0]
    assert kernel_memo.structure(block(x, y), is_buf)[0] == key
    assert kernel_memo.structure(block(y, x), is_buf)[0] == key       # positions, not names
    assert kernel_memo.structure(block(a, a), is_buf)[0] != key       # one input, not two
    assert kernel_memo.structure(block(buf(4, 6), buf(4, 6)), is_buf)[0] != key
    assert kernel_memo.structure(block(x, y, 3.0), is_buf)[0] != key
    assert kernel_memo.structure(block(x, y, 0.0), is_buf)[0] != \
        kernel_memo.structure(block(x, y, -0.0), is_buf)[0]
    f64 = buf(4, 5, dtype=dt.float64)
    assert kernel_memo.structure(block(f64, buf(4, 5, dtype=dt.float64)), is_buf)[0] != key


def test_structure_stops_at_the_kernel_boundary():
    a, b = buf(4, 5), buf(4, 5)
    inner = Node(Op.EXP, (a,), None, a.shape, F32)
    out = Node(Op.ADD, (inner, b), None, a.shape, F32)
    whole, order = kernel_memo.structure(out, is_buf)
    cut, order2 = kernel_memo.structure(out, lambda n: n.op is Op.BUFFER or n is inner)
    assert whole != cut
    assert order2 == [inner, b, out] and order[-1] is out


def test_a_repeat_is_a_copy_with_its_own_nodes_and_values():
    memo: dict = {}
    a, b, x, y = buf(4, 5), buf(4, 5), buf(4, 5), buf(4, 5)
    k1 = kernel_memo.lower_kernel_memo(block(a, b), is_buf, memo)
    assert len(memo) == 1
    out2 = block(y, x)
    k2 = kernel_memo.lower_kernel_memo(out2, is_buf, memo)
    ref = lower_kernel(out2, is_buf, "")
    assert k2.output is out2
    assert k2.inputs == ref.inputs == [y, x]
    assert set(k2.nodes) == set(ref.nodes)
    assert not {id(v) for v in k2.vals} & {id(v) for v in k1.vals}
    assert not {id(v) for v in k2.vals} & {id(v) for v in memo[next(iter(memo))][0].vals}
    assert k2.store_val in k2.vals
    assert CRenderer().render_kernel(k2, "f") == CRenderer().render_kernel(ref, "f")


def test_reductions_copy_their_accumulator():
    memo: dict = {}
    outs = []
    for _ in range(2):
        a = buf(6, 7)
        e = Node(Op.EXP, (a,), None, a.shape, F32)
        s = Node(Op.SUM, (e,), (1,), (6, 1), F32)
        outs.append(Node(Op.MUL, (s, const(0.5, F32, (6, 1))), None, (6, 1), F32))
    k1 = kernel_memo.lower_kernel_memo(outs[0], is_buf, memo)
    k2 = kernel_memo.lower_kernel_memo(outs[1], is_buf, memo)
    assert k2.acc is not None and k2.acc is not k1.acc and k2.acc in k2.vals
    assert k2.level[id(k2.acc)] == 2
    ref = lower_kernel(outs[1], is_buf, "")
    assert CRenderer().render_kernel(k2, "f") == CRenderer().render_kernel(ref, "f")


def test_gathers_are_lowered_each_time():
    memo: dict = {}
    for _ in range(2):
        x, i = buf(5, 3), buf(5, 1, dtype=dt.int64)
        g = Node(Op.GATHER, (x, i), 1, (5, 1), F32)
        kernel_memo.lower_kernel_memo(g, is_buf, memo)
    assert memo == {}


def test_schedules_equal_the_unmemoized_ones(monkeypatch, rng):
    """A graph repeating a block with row kernels (softmax rewrites values in place)."""
    xs = [torch.tensor(rng.standard_normal((8, 16)).astype(np.float32)) for _ in range(4)]
    y = xs[0]
    for x in xs[1:]:
        y = torch.softmax(y * 0.5 + x, dim=1) - x.mean(1, keepdim=True)
    memo_sched = compile_graph([y.node], C_RENDERER)[1]
    monkeypatch.setattr(schedule, "lower_kernel_memo",
                        lambda n, is_buffer, memo, depth=None: lower_kernel(n, is_buffer, "",
                                                                            depth))
    plain = compile_graph([y.node], C_RENDERER)[1]
    assert [k.source for k in memo_sched.kernels] == [k.source for k in plain.kernels]
    assert [k.inputs for k in memo_sched.kernels] == [k.inputs for k in plain.kernels]


def test_repeated_blocks_compute_what_numpy_does(rng, monkeypatch):
    # a deep network's shape: each block an elementwise chain and a reduction of its input
    xv = rng.standard_normal(64).astype(np.float32)
    x = torch.tensor(xv)
    y, ref = x, xv.astype(np.float64)
    for _ in range(40):
        y = ((y * 0.5 + x).tanh() * 2 - 1).exp() - y.mean() + 1
        ref = np.exp(np.tanh(ref * 0.5 + xv) * 2 - 1) - ref.mean() + 1
    lowered = []
    real = kernel_memo.lower_kernel
    monkeypatch.setattr(kernel_memo, "lower_kernel",
                        lambda *a: lowered.append(a[0]) or real(*a))
    n_kernels = len(compile_graph([y.node], C_RENDERER)[1].kernels)
    assert n_kernels >= 40 and len(lowered) < n_kernels / 4     # the repeats were copies
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-4)
