"""Row fusion (compiler/rowfuse.py): row reductions feeding a map over the same rows run as
one kernel; checked on hand-built graphs and against numpy on the ops that use it."""
import numpy as np
import pytest

import lazytorch as torch
from lazytorch.compiler.codegen.c import CRenderer
from lazytorch.compiler.rowfuse import RowKernel, fuse_rows
from lazytorch.compiler.schedule import schedule_graph
from lazytorch.engine.realize import schedule as full_schedule
from lazytorch.ir import dtypes as dt
from lazytorch.ir.graph import Graph, Node
from lazytorch.ir.ops import Op

from .conftest import check

# the C renderer's strategies (row kernels, GEMMs, column sums) decide what fuses
C_CAPS = CRenderer.capabilities(1)

F32 = dt.float32


def _x(shape=(8, 32)):
    return Node(Op.BUFFER, (), 3000, shape, F32)


def _row_max_sub(x):
    m = Node(Op.RMAX, (x,), (1,), (x.shape[0], 1), F32)
    e = Node(Op.EXPAND, (m,), x.shape, x.shape, F32)
    return m, Node(Op.SUB, (x, e), None, x.shape, F32)


def test_hand_built_row_group_fuses():
    x = _x()
    m, y = _row_max_sub(x)
    sched = schedule_graph(Graph([y]), C_CAPS)
    assert len(sched.kernels) == 1 and isinstance(sched.kernels[0], RowKernel)
    k = sched.kernels[0]
    assert (k.rows, k.cols) == (8, 32) and k.inputs == [x] and k.output is y
    assert len(k.stages) == 1 and k.stages[0].output is m


def test_stage_read_outside_the_group_is_not_fused():
    x = _x()
    m, y = _row_max_sub(x)
    # the max is an output too: it must be stored
    sched = schedule_graph(Graph([y, m]), C_CAPS)
    assert len(sched.kernels) == 2
    assert not any(isinstance(k, RowKernel) for k in sched.kernels)


def test_column_reduction_is_not_a_row_stage():
    x = _x()
    s = Node(Op.SUM, (x,), (0,), (1, 32), F32)
    e = Node(Op.EXPAND, (s,), x.shape, x.shape, F32)
    y = Node(Op.DIV, (x, e), None, x.shape, F32)
    sched = schedule_graph(Graph([y]), C_CAPS)
    assert len(sched.kernels) == 2


def test_fuse_rows_without_groups_returns_the_list():
    x = _x()
    y = Node(Op.EXP, (x,), None, x.shape, F32)
    ks = schedule_graph(Graph([y]), C_CAPS).kernels
    assert fuse_rows(ks, {y}, C_CAPS) is ks


@pytest.mark.parametrize("shape", [(5, 7), (64, 1000), (3, 2, 33)])
def test_softmax_and_log_softmax_one_kernel(backend, rng, shape):
    a = (rng.standard_normal(shape) * 4).astype(np.float32)
    x = torch.tensor(a)
    e = np.exp(a - a.max(-1, keepdims=True))
    sm = e / e.sum(-1, keepdims=True)
    # (one at a time: a pending log_softmax would hold the row sums its softmax computes,
    # which that realize would then store for it: lazytorch/engine/live.py)
    for fn, ref in [(torch.softmax, sm), (torch.log_softmax, np.log(sm))]:
        y = fn(x, -1)
        assert len(full_schedule([y.node]).kernels) == 1
        check(y, ref, rtol=1e-5, atol=1e-6)


def test_layer_norm_one_kernel(backend, rng):
    a = rng.standard_normal((33, 70)).astype(np.float32) * 2 + 1
    w = rng.standard_normal(70).astype(np.float32)
    b = rng.standard_normal(70).astype(np.float32)
    y = torch.nn.functional.layer_norm(torch.tensor(a), (70,), torch.tensor(w), torch.tensor(b))
    ks = full_schedule([y.node]).kernels
    assert len(ks) == 1 and isinstance(ks[0], RowKernel) and len(ks[0].stages) == 2
    mu = a.mean(-1, keepdims=True)
    var = ((a - mu) ** 2).mean(-1, keepdims=True)
    check(y, (a - mu) / np.sqrt(var + 1e-5) * w + b, rtol=1e-4, atol=1e-5)


def test_cross_entropy_and_its_gradient(backend, rng):
    a = rng.standard_normal((40, 13)).astype(np.float32) * 3
    t = rng.integers(0, 13, 40)
    x = torch.tensor(a, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(x, torch.tensor(t))
    sched = full_schedule([loss.node])
    assert any(isinstance(k, RowKernel) for k in sched.kernels)
    e = np.exp(a - a.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    check(loss, -np.log(p[np.arange(40), t]).mean(), rtol=1e-5)
    loss.backward()
    onehot = np.eye(13, dtype=np.float32)[t]
    check(x.grad, (p - onehot) / 40, rtol=1e-4, atol=1e-6)


def test_nan_and_inf_rows(backend):
    a = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 0.0], [-np.inf, 0.0, 1.0],
                  [3.0, 3.0, 3.0]], np.float32)
    y = torch.softmax(torch.tensor(a), -1)
    with np.errstate(invalid="ignore"):
        e = np.exp(a - a.max(-1, keepdims=True))
        ref = e / e.sum(-1, keepdims=True)
    check(y, ref, rtol=1e-6, atol=1e-7)


def test_row_kernel_in_check_mode(rng):
    from lazytorch import debug
    a = rng.standard_normal((16, 24)).astype(np.float32)
    with debug.check():
        y = torch.softmax(torch.tensor(a) * 2, -1).numpy()
    e = np.exp(2 * a - (2 * a).max(-1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_softmax_computes_exp_once_per_element():
    x = torch.randn(6, 50)
    (k,) = full_schedule([torch.softmax(x, -1).node]).kernels
    assert len(k.saved) == 1 and k.source.count("expf(") == 1
    e = np.exp(x.numpy() - x.numpy().max(-1, keepdims=True))
    np.testing.assert_allclose(torch.softmax(x, -1).numpy(), e / e.sum(-1, keepdims=True),
                               rtol=1e-5, atol=1e-7)


def test_wide_rows_do_not_save_on_the_stack(rng):
    from lazytorch.compiler import rowfuse
    a = rng.standard_normal((2, rowfuse.MAX_SAVED_COLS + 3)).astype(np.float32)
    y = torch.softmax(torch.tensor(a), -1)
    (k,) = full_schedule([y.node]).kernels
    assert k.saved == []
    e = np.exp(a - a.max(-1, keepdims=True))
    np.testing.assert_allclose(y.numpy(), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-9)


def test_rows_read_whole_are_prefetched_ahead():
    x, w = torch.randn(6, 40), torch.randn(40)
    (k,) = full_schedule([torch.nn.functional.layer_norm(x, (40,), w).node]).kernels
    lines = [ln for ln in k.source.splitlines() if "__builtin_prefetch" in ln]
    assert len(lines) == 1 and "in0[(o0 + 2) * 40 + q]" in lines[0]   # x, not the weight
