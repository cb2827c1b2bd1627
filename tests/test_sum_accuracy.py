"""Float sums that stay accurate on large inputs: the reduction kernels add up in a cascade
(compiler/codegen/c/reduce.py), so that the rounding error grows like log(n), as in PyTorch's
CPU sums, instead of n. Checked against float64 references computed apart (math.fsum, numpy
in float64, closed forms) on inputs that are never materialized (constants, broadcast tiles),
with the kernels' threads and on one thread."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.compiler.codegen.c import reduce as codegen_reduce
from lazytorch.engine.realize import schedule as full_schedule
from lazytorch.frontend.tensor import realize_tensors

TENTH = float(np.float32(0.1))     # the float32 value summed in the constant tests


@pytest.fixture(params=[2, 1], ids=["threads", "one-thread"])
def threads(request):
    """Runs the test with two threads, then one. Sizes in the tests depend on it, so that
    neither run meets a result the other realized."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def rel(got: float, want: float) -> float:
    return abs(got - want) / abs(want)


def tile(v: np.ndarray, reps: int) -> torch.Tensor:
    """v's rows (v itself when 1-d) repeated reps times, each as one flat row: a broadcast
    view, never copied."""
    t = torch.tensor(v)
    if v.ndim == 1:
        return t.expand(reps, len(v)).reshape(reps * len(v))
    rows, n = v.shape
    return t[:, None, :].expand(rows, reps, n).reshape(rows, reps * n)


def test_3e8_tenths_within_pytorchs_accuracy(threads):
    # one accumulator gave 28,734,588 (4% low); PyTorch gives 30,000,034 (1.1e-6)
    n = 3 * 10**8 + threads
    x = torch.full((n,), 0.1)
    (k,) = full_schedule([x.sum().node]).kernels
    assert k.params[1:] == []                      # nothing read: the constant is expanded
    assert rel(x.sum().item(), n * TENTH) < 1e-6
    assert rel(x.mean().item(), TENTH) < 1e-6
    assert rel((x * 2 + 0.1).sum().item(), n * 0.3) < 1e-6      # fused with a producer


def test_2e9_ones_sum_exactly(threads):
    # one accumulator stopped at 2^30, where adding 1 no longer changes a float32 (the
    # sizes are float32 values: a multiple of 128 above 2^30)
    n = 2 * 10**9 + 1024 * (threads - 1)
    s = torch.ones(n).sum()
    (k,) = full_schedule([s.node]).kernels
    assert k.params[1:] == []                      # never materialized (8 GB)
    assert s.item() == n


def test_row_sums_of_5e7(threads, rng):
    # one accumulator per row: 2.8e-5 off in the issue (PyTorch 7.9e-8), 0.33 on these rows
    v = rng.random((2, 10_000), dtype=np.float32) + np.float32(0.5)
    reps = 5_000 + threads
    x = tile(v, reps)
    want = reps * v.astype(np.float64).sum(1)
    got = x.sum(1).numpy()
    assert max(rel(g, w) for g, w in zip(got, want)) < 2e-7
    got = (x * 2 - 1).sum(-1).numpy()              # fused with its elementwise producer
    want = reps * (v.astype(np.float64) * 2 - 1).sum(1)
    assert max(rel(g, w) for g, w in zip(got, want)) < 1e-6


def test_full_sum_of_random_tiles(threads, rng):
    v = rng.random(10_007, dtype=np.float32)
    reps = 3_001 + threads                         # a length with tails after every split
    x = tile(v, reps)
    want = reps * math.fsum(v.astype(np.float64))
    assert rel(x.sum().item(), want) < 2e-7
    assert rel(x.to(torch.float64).sum().item(), want) < 1e-14


def test_mean_var_std_norm_of_large_inputs(threads, rng):
    v = (rng.standard_normal(10_000) * 3 + 2).astype(np.float32)
    reps = 1_500 + threads
    x = tile(v, reps)
    n = reps * len(v)
    w = v.astype(np.float64)
    mean = w.mean()
    var = reps * ((w - mean) ** 2).sum() / (n - 1)
    got = [x.mean(), x.var(), x.std(), x.norm(), torch.logsumexp(x, 0)]
    realize_tensors(got)                           # compiled together
    want = [mean, var, math.sqrt(var), math.sqrt(reps * (w * w).sum()),
            math.log(reps * np.exp(w - w.max()).sum()) + w.max()]
    for g, w_ in zip(got, want):
        assert rel(g.item(), w_) < 1e-6


def test_long_rows_of_row_fused_kernels(threads, rng):
    # softmax and log_softmax reduce each row in one fused kernel
    v = rng.standard_normal((3, 1000)).astype(np.float32)
    reps = 2000 + threads
    x = tile(v, reps)
    w = v.astype(np.float64)
    lse = np.log(reps * np.exp(w - w.max(1, keepdims=True)).sum(1)) + w.max(1)
    got = torch.log_softmax(x, -1)[:, :1000].numpy()
    np.testing.assert_allclose(got, w - lse[:, None], rtol=0, atol=2e-6)
    got = torch.softmax(x, -1)[:, :5].numpy()
    np.testing.assert_allclose(got, np.exp(w[:, :5] - lse[:, None]), rtol=1e-6)


def test_sums_over_several_axes(threads, rng):
    a = rng.random(1000 + threads).astype(np.float32)
    b = rng.random(7).astype(np.float32)
    c = rng.random(5000).astype(np.float32)
    ta, tb, tc = torch.tensor(a), torch.tensor(b), torch.tensor(c)
    x = ta[:, None, None] + tb[None, :, None] * tc[None, None, :]     # 1000 x 7 x 5000
    a64, b64, c64 = (t.astype(np.float64) for t in (a, b, c))
    na, nc = len(a), len(c)
    y = (ta[:, None] * tb[None, :]).expand(5000, na, 7)     # short runs, a long outer loop
    got = [x.sum((0, 2)), x.sum(), y.sum((0, 2)), y.sum((0, 1))]
    realize_tensors(got)
    want = [nc * a64.sum() + na * b64 * c64.sum(),           # per b: 5e6 elements, runs of 5000
            7 * nc * a64.sum() + na * b64.sum() * c64.sum(),
            5000 * a64 * b64.sum(), 5000 * a64.sum() * b64]
    for g, w in zip(got, want):
        assert np.max(np.abs(g.numpy() - w) / np.abs(w)) < 1e-6


@pytest.mark.parametrize("cols", [8, 16])
def test_column_sums_of_many_rows(threads, cols):
    # 8 columns: a strided reduction per output; 16: outputs in vectors, rows streaming
    rows = (1_000_000 if cols == 8 else 300_000) + threads * 17
    a = np.full((rows, cols), 0.1, dtype=np.float32)
    a[:, 1] = 1.0
    x = torch.tensor(a)
    (k,) = full_schedule([x.sum(0).node]).kernels
    assert codegen_reduce.is_vertical(k) == (cols >= 16)
    got = x.sum(0).numpy()
    assert got[1] == rows
    assert max(rel(g, rows * TENTH) for g in np.delete(got, 1)) < 1e-6
    assert rel(x.mean(0).numpy()[0], TENTH) < 1e-6
