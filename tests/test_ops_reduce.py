"""Reductions and scans against numpy references, on both backends.

Every reduction is checked over the whole tensor, each dim (negative dims too), a tuple of dims,
with and without keepdim, on a contiguous and a permuted input; results of one test are
realized together so the C backend compiles them in one call.
"""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from tests.helpers import check_all

F32 = np.float32


def np_arg(fn, a, axis):
    """First index of the extreme, NaN counting as the extreme (PyTorch's rule)."""
    return fn(a, axis=axis)


DIMS = [None, 0, 1, -1, -3, (0, 2), (-1, 1)]


def _inputs(rng):
    a = rng.standard_normal((2, 3, 4)).astype(F32)
    a[0, 1, 2] = a[0, 1, 0]                   # a tie along the last dim
    a[1, 0, :] = a[1, 0, 3]                   # a whole row of ties
    # the same values seen through a permuted view: (3, 4, 2) -> permute back
    perm = torch.tensor(np.ascontiguousarray(a.transpose(1, 2, 0))).permute(2, 0, 1)
    return a, {"contiguous": torch.tensor(a), "permuted": perm}


@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean_prod_amax_amin(backend, rng, keepdim):
    a, xs = _inputs(rng)
    cases = []
    for lay, x in xs.items():
        for dim in DIMS:
            kw = {} if dim is None else {"dim": dim}
            ax = dim
            tag = f"{lay} dim={dim} keepdim={keepdim}"
            if dim is None and not keepdim:
                cases += [(f"sum {tag}", x.sum(), a.sum()), (f"mean {tag}", x.mean(), a.mean()),
                          (f"prod {tag}", x.prod(), a.prod()),
                          (f"amax {tag}", x.amax(), a.max()), (f"amin {tag}", x.amin(), a.min())]
                continue
            if dim is None:
                ax = (0, 1, 2)
                kw = {"dim": ax}
            cases += [
                (f"sum {tag}", x.sum(**kw, keepdim=keepdim), a.sum(ax, keepdims=keepdim)),
                (f"mean {tag}", x.mean(**kw, keepdim=keepdim), a.mean(ax, keepdims=keepdim)),
                (f"amax {tag}", x.amax(**kw, keepdim=keepdim), a.max(ax, keepdims=keepdim)),
                (f"amin {tag}", torch.amin(x, **kw, keepdim=keepdim),
                 a.min(ax, keepdims=keepdim)),
                (f"torch.sum {tag}", torch.sum(x, **kw, keepdim=keepdim),
                 a.sum(ax, keepdims=keepdim))]
            if isinstance(dim, int):
                cases.append((f"prod {tag}", x.prod(dim, keepdim=keepdim),
                              a.prod(dim, keepdims=keepdim)))
    check_all(cases, atol=1e-5)


def test_max_min_with_indices(backend, rng):
    a, xs = _inputs(rng)
    cases = []
    for lay, x in xs.items():
        cases += [(f"{lay} max()", x.max(), a.max()), (f"{lay} min()", torch.min(x), a.min())]
        for dim in (0, 1, -1, -2):
            for keepdim in (False, True):
                tag = f"{lay} dim={dim} keepdim={keepdim}"
                mx = x.max(dim, keepdim)
                mn = torch.min(x, dim=dim, keepdim=keepdim)
                assert type(mx).__name__ in ("ValuesIndices", "max", "return_types.max") or \
                    hasattr(mx, "indices")
                values, indices = mx
                assert values is mx.values and indices is mx.indices
                cases += [
                    (f"max values {tag}", mx.values, a.max(dim, keepdims=keepdim)),
                    (f"max indices {tag}", mx.indices,
                     np.expand_dims(a.argmax(dim), dim) if keepdim else a.argmax(dim),
                     torch.int64),
                    (f"min values {tag}", mn[0], a.min(dim, keepdims=keepdim)),
                    (f"min indices {tag}", mn[1],
                     np.expand_dims(a.argmin(dim), dim) if keepdim else a.argmin(dim))]
    check_all(cases, atol=1e-5)


def test_argmax_argmin_ties_and_nan(backend, rng):
    a, xs = _inputs(rng)
    b = np.array([[1.0, 3.0, 3.0, 2.0], [np.nan, 1.0, np.nan, 5.0], [0, 0, 0, 0]], F32)
    y = torch.tensor(b)
    cases = []
    for lay, x in xs.items():
        cases += [(f"{lay} argmax()", x.argmax(), np.int64(a.argmax()), torch.int64),
                  (f"{lay} argmin()", torch.argmin(x), np.int64(a.argmin())),
                  (f"{lay} argmax keepdim", x.argmax(keepdim=True),
                   np.full((1, 1, 1), a.argmax()))]
        for dim in (0, 1, 2, -1):
            cases += [(f"{lay} argmax {dim}", x.argmax(dim), a.argmax(dim)),
                      (f"{lay} argmin {dim} keepdim", x.argmin(dim, keepdim=True),
                       np.expand_dims(a.argmin(dim), dim))]
    # ties resolve to the first index; NaN is the maximum and the minimum
    cases += [("ties argmax", y.argmax(1), np.array([1, 0, 0])),
              ("ties argmin", y.argmin(1), np.array([0, 0, 0])),
              ("nan max values", y.max(1).values, np.array([3, np.nan, 0], F32)),
              ("nan max indices", y.max(1).indices, np.array([1, 0, 0])),
              ("nan amin", y.amin(1), np.array([1, np.nan, 0], F32)),
              ("int argmax", torch.tensor([[3, 7, 7], [2, 2, 1]]).argmax(1), np.array([1, 0]))]
    check_all(cases, atol=1e-5)


@pytest.mark.parametrize("dim", [None, 1, -1, (0, 2)])
def test_var_std(backend, rng, dim):
    a, xs = _inputs(rng)
    x = xs["permuted"]
    ax = dim
    cases = []
    for keepdim in (False, True):
        tag = f"dim={dim} keepdim={keepdim}"
        kd = {"keepdim": keepdim} if dim is not None else {}
        kdn = keepdim if dim is not None else False
        cases += [
            (f"var {tag}", x.var(dim, **kd), a.var(ax, ddof=1, keepdims=kdn)),
            (f"std {tag}", x.std(dim, **kd), a.std(ax, ddof=1, keepdims=kdn)),
            (f"var unbiased=False {tag}", x.var(dim, unbiased=False, **kd),
             a.var(ax, ddof=0, keepdims=kdn)),
            (f"std correction=0 {tag}", torch.std(x, dim, correction=0, **kd),
             a.std(ax, ddof=0, keepdims=kdn)),
            (f"var correction=2 {tag}", x.var(dim, correction=2, **kd),
             a.var(ax, ddof=2, keepdims=kdn))]
    check_all(cases, atol=1e-5)


def test_logsumexp_all_any(backend, rng):
    a, xs = _inputs(rng)
    big = a * 100                               # would overflow a naive exp
    m = a > 0
    cases = []
    for lay, x in xs.items():
        for dim in (0, -1, (1, 2)):
            for keepdim in (False, True):
                tag = f"{lay} dim={dim} keepdim={keepdim}"
                ref = np.log(np.exp(a.astype(np.float64)).sum(dim, keepdims=keepdim))
                mx = big.astype(np.float64).max(dim, keepdims=True)
                refbig = np.log(np.exp(big - mx).sum(dim, keepdims=True)) + mx
                if not keepdim:
                    refbig = np.squeeze(refbig, dim)
                cases += [(f"logsumexp {tag}", x.logsumexp(dim, keepdim), ref),
                          (f"logsumexp big {tag}", torch.logsumexp(x * 100, dim, keepdim),
                           refbig),
                          (f"all {tag}", (x > 0).all(dim, keepdim), m.all(dim, keepdims=keepdim),
                           torch.bool),
                          (f"any {tag}", torch.any(x > 0, dim, keepdim),
                           m.any(dim, keepdims=keepdim), torch.bool)]
        cases += [(f"{lay} all()", (x > -10).all(), np.bool_(True)),
                  (f"{lay} any()", (x > 10).any(), np.bool_(False)),
                  (f"{lay} float all", x.all(), np.bool_(a.all()))]
    cases += [("-inf logsumexp", torch.tensor([[-np.inf, -np.inf], [0.0, -np.inf]]).logsumexp(1),
               np.array([-np.inf, 0.0], F32)),
              ("int all", torch.tensor([1, 2, 0]).all(), np.bool_(False)),
              ("uint8 any keeps uint8", torch.tensor(np.uint8([0, 3])).any(), np.uint8(1),
               torch.uint8)]
    check_all(cases, rtol=1e-5, atol=1e-5)


def test_cumsum_cumprod(backend, rng):
    a, xs = _inputs(rng)
    i = rng.integers(-3, 4, (3, 4))
    cases = []
    for lay, x in xs.items():
        for dim in (0, 1, 2, -1):
            cases += [(f"{lay} cumsum {dim}", x.cumsum(dim), np.cumsum(a, dim)),
                      (f"{lay} cumprod {dim}", torch.cumprod(x, dim), np.cumprod(a, dim))]
    cases += [("int cumsum -> int64", torch.tensor(i.astype(np.int32)).cumsum(1),
               np.cumsum(i, 1), torch.int64),
              ("bool cumsum", torch.tensor(i > 0).cumsum(0), np.cumsum(i > 0, 0), torch.int64),
              ("cumsum dtype", torch.tensor(i).cumsum(1, dtype=torch.float64),
               np.cumsum(i, 1).astype(np.float64), torch.float64),
              ("0-d cumsum", torch.tensor(2.5).cumsum(0), np.float32(2.5))]
    check_all(cases, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("p", ["fro", 1, 2, float("inf"), float("-inf"), 3, 0.5, 0])
def test_norm(backend, rng, p):
    a, xs = _inputs(rng)
    x = xs["permuted"]
    flat = a.reshape(-1).astype(np.float64)

    def ref(v, axis=None, keepdims=False):
        q = 2 if p == "fro" else p
        if q == 0:
            return (v != 0).sum(axis, keepdims=keepdims).astype(F32)
        if np.isinf(q):
            fn = np.max if q > 0 else np.min
            return fn(np.abs(v), axis, keepdims=keepdims)
        return (np.abs(v) ** q).sum(axis, keepdims=keepdims) ** (1 / q)

    cases = [(f"norm p={p}", x.norm(p), ref(flat), torch.float32)]
    if p != "fro":
        cases += [(f"norm p={p} dim=-1", x.norm(p, dim=-1), ref(a.astype(np.float64), -1)),
                  (f"norm p={p} dim=(0,1) keepdim", torch.norm(x, p, dim=(0, 1), keepdim=True),
                   ref(a.astype(np.float64), (0, 1), True))]
    check_all(cases, rtol=1e-5, atol=1e-5)


def test_reduction_dtypes(backend, rng):
    i = rng.integers(-5, 6, (3, 4))
    cases = []
    for name in ("int8", "uint8", "int16", "int32", "int64", "bool"):
        v = (i > 0) if name == "bool" else i.astype(name)
        x = torch.tensor(v)
        d = getattr(torch, name)
        cases += [(f"{name} sum -> int64", x.sum(), np.int64(v.sum(dtype=np.int64)),
                   torch.int64),
                  (f"{name} sum(1)", x.sum(1), v.sum(1, dtype=np.int64), torch.int64),
                  (f"{name} prod(0)", x.prod(0), v.prod(0, dtype=np.int64), torch.int64)]
        if name != "bool":
            cases += [(f"{name} amax", x.amax(1), v.max(1), d),
                      (f"{name} max values", x.max(0).values, v.max(0), d),
                      (f"{name} argmin", x.argmin(1), v.argmin(1), torch.int64)]
    for name in ("float16", "bfloat16", "float64"):
        v = rng.standard_normal((3, 4)).astype(getattr(torch, name).np)
        x = torch.tensor(v)
        d = getattr(torch, name)
        cases += [(f"{name} sum", x.sum(1), v.astype(np.float64).sum(1), d),
                  (f"{name} mean", x.mean(), v.astype(np.float64).mean(), d),
                  (f"{name} amax", x.amax(0), v.max(0), d),
                  (f"{name} var", x.var(1), v.astype(np.float64).var(1, ddof=1), d)]
    cases.append(("sum(dtype=float64)", torch.tensor(i).sum(dtype=torch.float64),
                  np.float64(i.sum()), torch.float64))
    check_all(cases, rtol=3e-3, atol=3e-3)


def test_zero_dim_and_empty(backend):
    s = torch.tensor(3.5)
    e = torch.zeros(0, 3)
    cases = [("0-d sum", s.sum(), np.float32(3.5)), ("0-d sum(0)", s.sum(0), np.float32(3.5)),
             ("0-d max", s.max(), np.float32(3.5)), ("0-d amax(-1)", s.amax(-1), np.float32(3.5)),
             ("0-d argmax", s.argmax(), np.int64(0)), ("0-d mean", s.mean(), np.float32(3.5)),
             ("0-d max(0) values", s.max(0).values, np.float32(3.5)),
             ("0-d max(0) indices", s.max(0).indices, np.int64(0)),
             ("0-d logsumexp", s.logsumexp(0), np.float32(3.5)),
             ("empty sum", e.sum(), np.float32(0)), ("empty sum(0)", e.sum(0), np.zeros(3, F32)),
             ("empty sum(1)", e.sum(1), np.zeros(0, F32)),
             ("empty prod(0)", e.prod(0), np.ones(3, F32)),
             ("empty mean", e.mean(), np.float32(np.nan)),
             ("empty amax(1)", e.amax(1), np.zeros(0, F32)),
             ("empty max(1)", e.max(1).values, np.zeros(0, F32)),
             ("empty argmax(1)", e.argmax(1), np.zeros(0, np.int64)),
             ("empty all", e.all(), np.bool_(True)), ("empty any(0)", e.any(0), np.zeros(3, bool)),
             ("empty logsumexp(0)", e.logsumexp(0), np.full(3, -np.inf, F32)),
             ("empty cumsum", e.cumsum(0), np.zeros((0, 3), F32)),
             ("empty norm", e.norm(), np.float32(0))]
    check_all(cases, atol=1e-5)


def test_reduction_errors():
    x = torch.zeros(2, 3)
    e = torch.zeros(0, 3)
    with pytest.raises(RuntimeError, match=r"max\(\): Expected reduction dim to be specified "
                                           r"for input.numel\(\) == 0"):
        e.max()
    with pytest.raises(IndexError, match=r"max\(\): Expected reduction dim 0 to have non-zero"):
        e.max(0)
    with pytest.raises(IndexError, match=r"amin\(\): Expected reduction dim 0 to have non-zero"):
        e.amin(0)
    with pytest.raises(IndexError, match="argmax"):
        e.argmax()
    with pytest.raises(RuntimeError, match="amax"):
        torch.zeros(0).amax()
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of "
                                         r"\[-2, 1\], but got 2\)"):
        x.sum(2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.max(-3)
    with pytest.raises(RuntimeError, match="dim 1 appears multiple times"):
        x.sum((1, -1))
    with pytest.raises(RuntimeError, match="mean.*could not infer output dtype"):
        torch.tensor([1, 2]).mean()
    with pytest.raises(RuntimeError, match="std and var only support floating point"):
        torch.tensor([1, 2]).var()


def test_long_full_reductions_split_between_threads(rng):
    from lazytorch.engine.realize import schedule as full_schedule
    a = rng.standard_normal(1 << 20).astype(np.float32)
    x = torch.tensor(a)
    (k,) = full_schedule([x.sum().node]).kernels
    # split between the threads, read as four contiguous quarters with an accumulator each,
    # chunk by chunk, each thread adding up its chunks' sums in a cascade
    assert "#pragma omp for schedule(static)" in k.source
    assert "reduction(+:a0,a1,a2,a3)" in k.source and "lv1 = lv1 + lv0" in k.source
    (k,) = full_schedule([x.amax().node]).kernels
    assert "parallel for simd" in k.source and "reduction(max:a0,a1,a2,a3)" in k.source
    np.testing.assert_allclose(x.sum().item(), a.astype(np.float64).sum(), rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose((x * x).amax().item(), (a * a).max(), rtol=1e-6)
    np.testing.assert_allclose(x.amin().item(), a.min(), rtol=1e-6)
    b = a.copy()
    b[777_777] = np.nan                    # NaN anywhere wins, whichever thread sees it
    assert np.isnan(torch.tensor(b).amax().item()) and np.isnan(torch.tensor(b).sum().item())
    two = torch.tensor(a.reshape(2, -1)).sum(1).numpy()
    np.testing.assert_allclose(two, a.reshape(2, -1).astype(np.float64).sum(1), rtol=1e-5,
                               atol=1e-2)
    # a length that leaves a tail after the quarters; the extremes and a NaN sit in the tail
    c = rng.standard_normal((1 << 20) + 3)
    c[-1], c[-2] = 50.0, -50.0
    t = torch.tensor(c)
    np.testing.assert_allclose(t.sum().item(), c.sum(), rtol=1e-10)
    assert t.amax().item() == 50.0 and t.amin().item() == -50.0
    np.testing.assert_allclose((t * 1e-6 + 1).prod().item(), np.prod(c * 1e-6 + 1), rtol=1e-9)
    c[-3] = np.nan
    assert np.isnan(torch.tensor(c).amax().item()) and np.isnan(torch.tensor(c).amin().item())


@pytest.mark.parametrize("shape", [(300, 5000), (64, 1024), (3, 40, 700)])
def test_column_sums_in_blocks(rng, shape):
    from lazytorch.compiler.codegen.c import reduce as codegen_reduce
    from lazytorch.engine.realize import schedule as full_schedule
    a = rng.standard_normal(shape).astype(np.float32)
    x = torch.tensor(a)
    (k,) = full_schedule([x.sum(-2).node]).kernels
    assert codegen_reduce.is_vertical(k)
    np.testing.assert_allclose(x.sum(-2).numpy(), a.astype(np.float64).sum(-2), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_sums_add_up_in_a_cascade(rng, dtype):
    # each shape takes one of the kernels' summing loops, with levels, and with the tails a
    # cut into chunks leaves (sizes not multiples of the chunks or the levels). The compiled
    # kernels only: numpy, the interpreter's sum, adds a strided axis (and half) linearly
    from lazytorch.compiler.codegen.c import reduce as codegen_reduce
    from lazytorch.engine.realize import schedule as full_schedule
    scale = 1e-3 if dtype == np.float16 else 1.0           # half sums stay below 65504
    tol = {np.float32: 1e-6, np.float64: 1e-13, np.float16: 2e-3}[dtype]

    def data(*shape):
        return (rng.random(shape) * scale + scale / 2).astype(dtype)
    long, rows, axes, cols = data(1_000_003), data(5, 3000), data(40, 6, 300), data(1000, 40)
    xl, xr, xa, xc = (torch.tensor(a) for a in (long, rows, axes, cols))
    cases = [(xl.sum(), long.sum(dtype=np.float64), "#pragma omp for schedule(static)"),
             ((xl * 2 - scale).sum(), (long * 2.0 - scale).sum(dtype=np.float64), "a3 = a3 +"),
             (xr.sum(1), rows.sum(1, dtype=np.float64), "cb += 512"),
             (xa.sum((0, 2)), axes.sum((0, 2), dtype=np.float64), "lv1 = lv1 + lv0"),
             (xc.sum(0), cols.sum(0, dtype=np.float64), "lv2" if dtype != np.float16 else ""),
             (xc.mean(0), cols.mean(0, dtype=np.float64), "")]
    if dtype != np.float16:
        # a body heavy enough for the threads to split a sum too short for four streams
        short = data(10_000)
        y = torch.tensor(short)
        for _ in range(150):
            y = y * 2 - y                                   # exact: y again
        cases.append((y.sum(), short.sum(dtype=np.float64), "#pragma omp for schedule(static)"))
    for got, want, marker in cases:
        (k,) = full_schedule([got.node]).kernels
        assert marker in k.source, k.source
        if marker == "lv2":
            assert codegen_reduce.is_vertical(k)
        np.testing.assert_allclose(got.numpy().astype(np.float64), want, rtol=tol, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_small_windows_written_out_and_vectorized_over_outputs(rng, dtype):
    # reductions of at most 16 elements per output (pooling windows) are written element by
    # element so the loop over the outputs vectorizes; max/min still propagate NaN
    from lazytorch.engine.realize import schedule as full_schedule
    a = (rng.standard_normal((6, 40, 2, 3)) * 10).astype(dtype)
    x = torch.tensor(a)
    if dtype != np.int32:
        a[1, 3, 1, 2] = np.nan
        a[4, 7, 0, 0] = np.nan
        x = torch.tensor(a)
    cases = [(x.amax((2, 3)), a.max((2, 3))), (x.amin((2, 3)), a.min((2, 3))),
             (x.sum((2, 3)), a.sum((2, 3))), (x.sum(-1), a.sum(-1))]
    if dtype != np.int32:
        cases.append(((x * 0.5).prod(-1), (a * 0.5).prod(-1)))
    for got, want in cases:
        (k,) = full_schedule([got.node]).kernels
        assert "const long r0" in k.source
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    if dtype != np.int32:
        assert np.isnan(x.amax((2, 3)).numpy()[1, 3]) and np.isnan(x.amin(-1).numpy()[4, 7, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_small_window_argmax_argmin_first_best_and_first_nan(rng, dtype):
    from lazytorch.engine.realize import schedule as full_schedule
    a = rng.integers(-2, 3, (5, 24, 6)).astype(dtype)      # many ties
    if dtype in (np.float32, np.float64):
        a[0, 0] = -np.inf
        a[1, 2, 3] = a[1, 2, 5] = np.nan                  # the first NaN wins
        a[2, 5, 0] = np.nan
    x = torch.tensor(a)
    b = a[:, :20].reshape(5, 4, 5, 6)
    y = torch.tensor(np.ascontiguousarray(b)).permute(1, 0, 2, 3)
    b = b.transpose(1, 0, 2, 3)
    np.testing.assert_array_equal(y.amax(-1).numpy(), b.max(-1))
    if dtype is np.bool_:      # PyTorch's argmax refuses bool (test_ops_elementwise)
        return
    for got, fn in [(x.argmax(-1), np.argmax), (x.argmin(-1), np.argmin)]:
        (k,) = full_schedule([got.node]).kernels
        assert "const long r0" in k.source
        np.testing.assert_array_equal(got.numpy(), fn(a, axis=-1))
    # rows of outputs shorter than a vector (a 5x5 pooled map): vectorized across all of them
    got = y.argmax(-1)
    (k,) = full_schedule([got.node]).kernels
    assert "simd collapse(3)" in k.source
    np.testing.assert_array_equal(got.numpy(), np.argmax(b, axis=-1))
