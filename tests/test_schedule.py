"""Fusion pinned by kernel counts, the materialization rule, and the values fused kernels give."""
from __future__ import annotations

import contextlib
import signal

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.compiler import kernel, schedule
from lazytorch.compiler.codegen.c import CRenderer
from lazytorch.compiler.kernel import LoweringError
from lazytorch.compiler.schedule import must_materialize, schedule_graph
from lazytorch.ir import dtypes as dt
from lazytorch.ir.graph import Graph, Node, const
from lazytorch.ir.ops import Op
from tests.conftest import check

# the C renderer's strategies (row kernels, GEMMs, column sums) decide what fuses
C_CAPS = CRenderer.capabilities(1)

F32 = dt.float32


def _chain(t, xp):
    """Ten elementwise ops; `xp` supplies exp/abs/sqrt/tanh/maximum (numpy or torch-like)."""
    t = t * 2
    t = t + 1
    t = xp["exp"](t * 0.1)
    t = -t
    t = xp["abs"](t)
    t = xp["sqrt"](t)
    t = xp["tanh"](t)
    t = t - 0.5
    return xp["relu"](t)


_LT = {"exp": lambda t: t.exp(), "abs": lambda t: t.abs(), "sqrt": lambda t: t.sqrt(),
       "tanh": lambda t: t.tanh(), "relu": lambda t: t.relu()}
_NP = {"exp": np.exp, "abs": np.abs, "sqrt": np.sqrt, "tanh": np.tanh,
       "relu": lambda a: np.maximum(a, 0)}


def test_elementwise_chain_is_one_kernel(rng):
    a = rng.standard_normal((8, 16)).astype(np.float32)
    y = _chain(torch.tensor(a), _LT)
    ks = schedule(y)
    assert len(ks) == 1
    assert sorted(ks[0].ops) == sorted(["mul", "add", "mul", "exp", "neg", "abs", "sqrt",
                                        "tanh", "sub", "max"])
    check(y, _chain(a, _NP), rtol=1e-5, atol=1e-6)


def test_broadcast_add_relu_sum_is_one_kernel(backend, rng):
    a = rng.standard_normal((6, 7)).astype(np.float32)
    b = rng.standard_normal((7,)).astype(np.float32)
    y = (torch.tensor(a) + torch.tensor(b)).relu().sum(1)
    ks = schedule(y)
    assert len(ks) == 1
    assert set(ks[0].ops) == {"add", "max", "sum"}
    check(y, np.maximum(a + b, 0).sum(1), rtol=1e-5, atol=1e-5)


def test_permute_exp_sum_is_one_kernel(backend, rng):
    a = rng.standard_normal((5, 9)).astype(np.float32)
    y = torch.tensor(a).permute(1, 0).exp().sum()
    ks = schedule(y)
    assert len(ks) == 1
    assert set(ks[0].ops) == {"exp", "sum"}
    check(y, np.exp(a.T).sum(), rtol=1e-5)


def _softmax(x):
    e = (x - x.max(-1, keepdim=True).values).exp()
    return e / e.sum(-1, keepdim=True)


def test_softmax_is_one_kernel(backend, rng):
    a = rng.standard_normal((6, 10)).astype(np.float32) * 3
    y = _softmax(torch.tensor(a))
    assert len(schedule(y)) == 1   # max and sum per row kept in registers (rowfuse.py)
    e = np.exp(a - a.max(-1, keepdims=True))
    check(y, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    check(y.sum(-1), np.ones(6, np.float32), rtol=1e-5)


def test_kernel_attributes():
    x = torch.randn(3, 4)
    ks = schedule(_softmax(x))
    assert [k.name for k in ks] == [f"kernel_{i}" for i in range(len(ks))]
    for k in ks:
        assert f"void {k.name}(" in k.source
        assert k.source.count("{") == k.source.count("}")
        assert isinstance(k.ops, list) and k.ops
        assert all(isinstance(o, str) for o in k.ops)
        assert repr(k).startswith(f"<Kernel {k.name}: ")
    assert "rmax" in ks[0].ops
    assert any("sum" in k.ops for k in ks)
    assert "div" in ks[-1].ops


def test_schedule_runs_nothing():
    x = torch.randn(4, 4)
    y = (x * 3).exp()
    x.numpy()  # realize the input first
    debug.reset_stats()
    ks = schedule(y)
    assert len(ks) == 1
    assert debug.stats()["kernels_launched"] == 0
    assert debug.stats()["realizes"] == 0
    assert y.node.op is not Op.BUFFER  # still pending


def test_schedule_of_realized_tensor_is_empty():
    x = torch.tensor([1.0, 2.0]) * 2
    x.numpy()
    assert schedule(x) == []


def test_schedule_several_tensors():
    x = torch.randn(4, 5)
    ks = schedule(x.sum(0), x.exp())
    assert len(ks) == 2
    assert sorted(tuple(sorted(k.ops)) for k in ks) == [("exp",), ("sum",)]


def test_reduction_broadcast_into_its_consumer_is_stored(backend, rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    y = torch.tensor(a) - torch.tensor(a).mean(0, keepdim=True)
    assert len(schedule(y)) == 2
    check(y, a - a.mean(0, keepdims=True), rtol=1e-5, atol=1e-6)
    # over rows, the reduction and its consumer become one row-fused kernel
    z = torch.tensor(a) - torch.tensor(a).mean(1, keepdim=True)
    assert len(schedule(z)) == 1
    check(z, a - a.mean(1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_reduction_inside_reduction_gets_a_buffer(backend, rng):
    from lazytorch.engine.realize import schedule as full_schedule
    a = rng.standard_normal((3, 4, 5)).astype(np.float32)
    t = torch.tensor(a)
    y = t.exp().sum(2).amax(1)   # one reduction per kernel: the sum is stored
    sched = full_schedule([y.node])
    assert len(sched.kernels) == 2
    assert sorted(sched.buffers.values()) == ["output", "reduction that cannot fuse here"]
    assert set(sched.kernels[0].ops) == {"exp", "sum"}
    check(y, np.exp(a).sum(2).max(1), rtol=1e-5)
    # a reduction broadcast into another reduction is stored for the broadcast
    z = (t.sum(2, keepdim=True) * t).sum(1)
    sched = full_schedule([z.node])
    assert len(sched.kernels) == 2
    assert sorted(sched.buffers.values()) == ["broadcast", "output"]
    check(z, (a.sum(2, keepdims=True) * a).sum(1), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------- must_materialize

def _buf(i, shape=(4,)):
    return Node(Op.BUFFER, (), 2000 + i, shape, F32)


def _exp(x):
    return Node(Op.EXP, (x,), None, x.shape, x.dtype)


def test_materialize_outputs_only_for_a_chain():
    x = _buf(0)
    y = _exp(_exp(x))
    assert must_materialize(Graph([y])) == {y: "output"}
    assert must_materialize(Graph([x])) == {}  # an output that is already a buffer


def test_materialize_contiguous_and_scan():
    x = _buf(0, (2, 3))
    c = Node(Op.CONTIGUOUS, (_exp(x),), None, (2, 3), F32)
    s = Node(Op.CUMSUM, (c,), 1, (2, 3), F32)
    out = _exp(s)
    assert must_materialize(Graph([out])) == {out: "output", c: "contiguous", s: "scan"}


def test_materialize_reduction_with_several_users():
    x = _buf(0, (2, 3))
    r = Node(Op.SUM, (x,), (1,), (2, 1), F32)
    out = Node(Op.MUL, (_exp(r), Node(Op.NEG, (r,), None, (2, 1), F32)), None, (2, 1), F32)
    assert must_materialize(Graph([out])) == {out: "output",
                                             r: "reduction used by several nodes"}
    one_user = _exp(r)
    assert must_materialize(Graph([one_user])) == {one_user: "output"}


def test_materialize_broadcast_of_computed_node():
    x = _buf(0, (3, 1))
    e = _exp(x)
    grown = Node(Op.EXPAND, (e,), (3, 4), (3, 4), F32)
    out = _exp(grown)
    assert must_materialize(Graph([out])) == {out: "output", e: "broadcast"}
    # broadcasting a buffer or a constant costs nothing: no buffer
    out2 = _exp(Node(Op.EXPAND, (x,), (3, 4), (3, 4), F32))
    assert must_materialize(Graph([out2])) == {out2: "output"}
    out3 = _exp(const(2.0, F32, (3, 4)))
    assert must_materialize(Graph([out3])) == {out3: "output"}


def test_schedule_graph_follows_must_materialize():
    x = _buf(0, (3, 1))
    e = _exp(x)
    out = _exp(Node(Op.EXPAND, (e,), (3, 4), (3, 4), F32))
    sched = schedule_graph(Graph([out]), C_CAPS)
    assert [k.output for k in sched.kernels] == [e, out]
    assert sched.buffers == {out: "output", e: "broadcast"}
    assert sched.kernels[1].inputs == [e]


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 4)])
def test_fused_values_match_numpy(backend, rng, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[-1:]).astype(np.float32)
    x, y = torch.tensor(a), torch.tensor(b)
    out = ((x * y + 1).sigmoid() - x.abs().sqrt()).sum(-1)
    assert len(schedule(out)) == 1
    ref = (1 / (1 + np.exp(-(a * b + 1))) - np.sqrt(np.abs(a))).sum(-1)
    check(out, ref, rtol=1e-5, atol=1e-5)


def test_costly_value_read_by_several_kernels_is_stored_once():
    from lazytorch.compiler.schedule import RECOMPUTE_LIMIT
    x = _buf(0, (4, 8))
    y = x
    for _ in range(RECOMPUTE_LIMIT + 1):      # a long elementwise chain ...
        y = Node(Op.ADD, (y, x), None, (4, 8), F32)
    s0 = Node(Op.SUM, (y,), (0,), (1, 8), F32)    # ... read by two reductions
    s1 = Node(Op.SUM, (y,), (1,), (4, 1), F32)
    mat = must_materialize(Graph([s0, s1]))
    assert mat[y] == "recomputed by several kernels"
    # a cheap value is recomputed by each kernel instead
    z = Node(Op.ADD, (x, x), None, (4, 8), F32)
    t0 = Node(Op.SUM, (z,), (0,), (1, 8), F32)
    t1 = Node(Op.SUM, (z,), (1,), (4, 1), F32)
    assert z not in must_materialize(Graph([t0, t1]))


def test_deep_residual_chain_values_match(backend, rng):
    a = rng.standard_normal(16).astype(np.float32)
    x = torch.tensor(a)
    y, ref = x, a.astype(np.float64)
    for _ in range(60):                        # each step reads the whole chain so far
        y = (y * 0.5 + x - y.sum() * 0.01).tanh()
        ref = np.tanh(ref * 0.5 + a - ref.sum() * 0.01)
    check(y, ref.astype(np.float32), rtol=1e-4, atol=1e-5)


@contextlib.contextmanager
def _deadline(seconds: float):
    """Fail a call that runs past `seconds` (a hang) instead of waiting for it forever."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_a_missing_lowering_is_an_error_naming_the_op(monkeypatch):
    monkeypatch.delitem(kernel.LOWER, Op.EXP)
    y = Node(Op.ADD, (_exp(_buf(0)), const(1.0, F32, (4,))), None, (4,), F32)
    with _deadline(10), pytest.raises(LoweringError, match=r"Op\.EXP \(f32\[4\]\).*LOWER"):
        schedule_graph(Graph([y]), C_CAPS)


def test_an_op_no_kernel_computes_is_an_error_not_a_retry(monkeypatch):
    # an op marked as stored by a kernel of its own that lower_kernel cannot lower as a
    # kernel's output either: asking again for a buffer would loop forever
    monkeypatch.delitem(kernel.LOWER, Op.EXP)
    monkeypatch.setattr(kernel, "STORED", kernel.STORED | {Op.EXP})
    y = Node(Op.ADD, (_exp(_buf(0)), const(1.0, F32, (4,))), None, (4,), F32)
    with _deadline(10), pytest.raises(LoweringError, match=r"Op\.EXP .*no kernel computes it"):
        schedule_graph(Graph([y]), C_CAPS)


def test_a_missing_lowering_names_the_users_line(monkeypatch):
    from lazytorch.engine.realize import RealizeError
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    monkeypatch.delitem(kernel.LOWER, Op.EXP)
    x = torch.tensor([0.25, 0.5, 0.75]) * 1.0625
    y = x.exp() + 1.0625        # a structure no other test realizes: not in the plan cache
    with _deadline(30), pytest.raises(RealizeError, match=r"Op\.EXP(.|\n)*test_schedule\.py:"):
        y.tolist()
