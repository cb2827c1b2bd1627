"""Statistics (lazytorch/frontend/statistics.py), norms and distances (frontend/norms.py) and
the extra matrix products (linalg.py): values against numpy, gradients against finite
differences, PyTorch's messages, and PyTorch itself where it is installed."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
from tests.helpers import check_all, grad_check

nan, inf = math.nan, math.inf


def test_reductions_match_numpy(backend, rng):
    a = rng.standard_normal((3, 5)).astype(np.float32)
    a[a < -1] = 0
    an = a.copy()
    an[0, 1] = an[2, 3] = nan
    t, tn = torch.tensor(a), torch.tensor(an)
    lo, hi = torch.aminmax(t, dim=1)
    check_all([
        ("count_nonzero", torch.count_nonzero(t), np.count_nonzero(a), torch.int64),
        ("count_nonzero dims", t.count_nonzero((0, 1)), np.count_nonzero(a)),
        ("count_nonzero dim", torch.count_nonzero(t, 1), np.count_nonzero(a, 1)),
        ("nansum", torch.nansum(tn, 1), np.nansum(an, 1)),
        ("nansum all", tn.nansum(), np.nansum(an)),
        ("nanmean", torch.nanmean(tn, 0, keepdim=True), np.nanmean(an, 0, keepdims=True)),
        ("aminmax min", lo, a.min(1)), ("aminmax max", hi, a.max(1)),
        ("aminmax all", torch.aminmax(t).max, a.max()),
        ("diff", torch.diff(t), np.diff(a)), ("diff n=2 dim 0", t.diff(2, 0), np.diff(a, 2, 0)),
        ("diff prepend append", torch.diff(t, dim=1, prepend=t[:, :1], append=t[:, :2]),
         np.diff(a, axis=1, prepend=a[:, :1], append=a[:, :2])),
        ("diff bool", torch.diff(torch.tensor([True, False, False])), [True, False]),
        ("trapezoid", torch.trapezoid(t), np.trapezoid(a)),
        ("trapezoid x", torch.trapezoid(t, torch.tensor([0.0, 1, 3, 4, 7])),
         np.trapezoid(a, [0, 1, 3, 4, 7])),
        ("trapz dx", torch.trapz(t, dx=0.5, dim=0), np.trapezoid(a, dx=0.5, axis=0)),
        ("trapz positional x", torch.trapz(t[0], torch.arange(5.0)), np.trapezoid(a[0])),
        ("cumulative_trapezoid", torch.cumulative_trapezoid(t),
         np.cumsum((a[:, 1:] + a[:, :-1]) / 2, 1)),
    ], rtol=1e-5, atol=1e-5)


def test_running_extremes_match_pytorchs_tie_and_nan_rules():
    x = torch.tensor([1.0, 3.0, 3.0, nan, 2.0, 5.0])
    v, i = torch.cummax(x, 0)
    np.testing.assert_array_equal(v.numpy(), [1, 3, 3, nan, nan, nan])
    np.testing.assert_array_equal(i.numpy(), [0, 1, 2, 3, 3, 3])
    v, i = torch.tensor([[1, 0, 0, 2], [4, 4, 5, 1]]).cummin(1)
    np.testing.assert_array_equal(v.numpy(), [[1, 0, 0, 0], [4, 4, 4, 1]])
    np.testing.assert_array_equal(i.numpy(), [[0, 1, 2, 2], [0, 1, 1, 3]])
    a = np.random.default_rng(0).standard_normal((3, 4))
    grad_check(lambda t: torch.cummax(t, 1).values, lambda v: np.maximum.accumulate(v, 1), [a])


def test_covariance_matches_numpy(rng):
    x = rng.standard_normal((3, 6))
    fw, aw = np.array([1, 2, 1, 3, 1, 2]), rng.uniform(0.5, 2.0, 6)
    t = torch.tensor(x)
    check_all([
        ("cov", torch.cov(t), np.cov(x)),
        ("cov correction 0", torch.cov(t, correction=0), np.cov(x, ddof=0)),
        ("cov weights", torch.cov(t, fweights=torch.tensor(fw), aweights=torch.tensor(aw)),
         np.cov(x, fweights=fw, aweights=aw)),
        ("cov 1-d", torch.cov(t[0]), np.cov(x[0])),
        ("corrcoef", torch.corrcoef(t), np.corrcoef(x)),
    ], rtol=1e-10, atol=1e-12)
    grad_check(lambda v: torch.cov(v), np.cov, [x])
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        torch.cov(torch.ones(2, 1))


def test_counting_functions():
    x = np.array([0.5, 1.5, 1.5, 2.0, -1.0, 3.0, 2.99], np.float32)
    check_all([
        ("histc range", torch.histc(torch.tensor(x), bins=3, min=0, max=3),
         np.histogram(x, 3, (0, 3))[0].astype(np.float32)),
        ("histc data range", torch.histc(torch.tensor(x), bins=4),
         np.histogram(x, 4)[0].astype(np.float32)),
        ("histc all equal", torch.histc(torch.tensor([1.0, 1.0, 1.0]), bins=4), [0, 0, 3, 0]),
        ("bincount", torch.bincount(torch.tensor([0, 3, 3, 1])), np.bincount([0, 3, 3, 1])),
        ("bincount minlength", torch.tensor([1]).bincount(minlength=4), [0, 1, 0, 0]),
        ("bincount weights", torch.bincount(torch.tensor([0, 1, 1]),
                                            torch.tensor([0.5, 0.25, 1.0])),
         np.float32([0.5, 1.25]), torch.float32),
        ("bincount int weights", torch.bincount(torch.tensor([1, 1]), torch.tensor([2, 3])),
         [0.0, 5.0], torch.float64),
        ("bincount empty", torch.bincount(torch.tensor([], dtype=torch.int64)),
         np.zeros(0, np.int64)),
        ("isin", torch.isin(torch.tensor([[1, 2], [3, 4]]), torch.tensor([2, 4, 9])),
         [[False, True], [False, True]]),
        ("isin invert", torch.isin(torch.tensor([1, 2]), torch.tensor([2]), invert=True),
         [True, False]),
        ("isin scalar", torch.isin(torch.tensor([1, 2]), 2), [False, True]),
        ("isin scalar elements", torch.isin(2, torch.tensor([1, 2])), True),
        ("isin empty", torch.isin(torch.tensor([1, 2]), torch.tensor([], dtype=torch.int64)),
         [False, False]),
    ])
    with pytest.raises(RuntimeError, match="bincount only supports 1-d non-negative integral"):
        torch.bincount(torch.tensor([-1, 2]))


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantiles_match_numpy(interpolation, rng):
    a = rng.standard_normal((4, 7)).astype(np.float32)
    an = a.copy()
    an[1, 2] = nan
    q = [0.0, 0.3, 0.5, 0.95, 1.0]
    t, tn = torch.tensor(a), torch.tensor(an)
    check_all([
        ("quantile dim", torch.quantile(t, torch.tensor(q), 1, interpolation=interpolation),
         np.quantile(a, q, 1, method=interpolation)),
        ("quantile all", t.quantile(0.3, interpolation=interpolation),
         np.quantile(a, 0.3, method=interpolation)),
        ("quantile keepdim", torch.quantile(t, 0.7, 0, keepdim=True,
                                            interpolation=interpolation),
         np.quantile(a, 0.7, 0, keepdims=True, method=interpolation)),
        ("quantile nan row", torch.quantile(tn, 0.5, 1, interpolation=interpolation),
         np.quantile(an, 0.5, 1, method=interpolation)),
        ("nanquantile", torch.nanquantile(tn, 0.5, 1, interpolation=interpolation),
         np.nanquantile(an, 0.5, 1, method=interpolation)),
    ], rtol=1e-6, atol=1e-6)


def test_quantile_gradient(rng):
    a = rng.standard_normal((3, 6))
    grad_check(lambda t: torch.quantile(t, 0.4, 1), lambda v: np.quantile(v, 0.4, 1), [a])


# ------------------------------------------------------------------------------- norms
def test_norms_match_numpy(backend, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t, tb = torch.tensor(a), torch.tensor(b)
    la = np.linalg
    cases = [("vector_norm", torch.linalg.vector_norm(t), la.norm(a.ravel()))]
    for o in (1, 2, 3, 0.5, inf, -inf, 0):
        cases.append((f"vector_norm ord={o}", torch.linalg.vector_norm(tb, o, (0, 2)),
                      np.apply_along_axis(lambda v, o=o: la.norm(v, o), 1,
                                          b.transpose(1, 0, 2).reshape(3, -1))))
    for o in ("fro", 1, -1, inf, -inf):
        cases.append((f"matrix_norm ord={o}", torch.linalg.matrix_norm(tb, o),
                      la.norm(b, o, axis=(-2, -1))))
    cases += [
        ("matrix_norm keepdim", torch.linalg.matrix_norm(tb, 1, (0, 2), keepdim=True),
         la.norm(b, 1, axis=(0, 2), keepdims=True)),
        ("linalg.norm flat", torch.linalg.norm(tb), la.norm(b.ravel())),
        ("linalg.norm 2-d ord", torch.linalg.norm(t, inf), la.norm(a, inf)),
        ("linalg.norm 1-d ord", torch.linalg.norm(t[0], 3), la.norm(a[0], 3)),
        ("linalg.norm dim", torch.linalg.norm(tb, dim=-1), la.norm(b, axis=-1)),
        ("torch.norm", torch.norm(tb, dim=(1, 2)), la.norm(b.reshape(2, -1), axis=1)),
        ("Tensor.norm p", tb.norm(p=1, dim=0), np.abs(b).sum(0)),
        ("dist", torch.dist(t, t * 2, 3), la.norm((a - 2 * a).ravel(), 3)),
        ("cdist", torch.cdist(t, t[:2]), la.norm(a[:, None] - a[None, :2], axis=-1)),
        ("cdist p=1 batched", torch.cdist(tb, tb, p=1),
         np.abs(b[:, :, None] - b[:, None]).sum(-1)),
        ("renorm", torch.renorm(t, 2, 0, 1.5),
         a * np.where(la.norm(a, axis=1, keepdims=True) > 1.5,
                      1.5 / (la.norm(a, axis=1, keepdims=True) + 1e-7), 1)),
    ]
    check_all(cases, rtol=2e-5, atol=1e-6)


def test_norm_gradients_and_zero(rng):
    a = rng.standard_normal((3, 4))
    grad_check(lambda t: torch.linalg.vector_norm(t, 2, 1), lambda v: np.linalg.norm(v, axis=1),
               [a])
    grad_check(lambda t: torch.linalg.vector_norm(t, 3), lambda v: np.linalg.norm(v.ravel(), 3),
               [a])
    grad_check(lambda t: torch.linalg.matrix_norm(t, 1), lambda v: np.linalg.norm(v, 1), [a])
    grad_check(lambda x, y: torch.cdist(x, y), lambda x, y: np.linalg.norm(
        x[:, None] - y[None], axis=-1), [a, rng.standard_normal((2, 4))])
    grad_check(lambda t: torch.renorm(t, 2, 0, 1.0), lambda v: v * np.where(
        np.linalg.norm(v, axis=1, keepdims=True) > 1.0,
        1.0 / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-7), 1), [a])
    # a zero norm has a zero gradient (PyTorch's), not the NaN of 0/0
    for fn in (lambda x: x.norm(), lambda x: torch.linalg.vector_norm(x, 3),
               lambda x: torch.cdist(x.reshape(1, 3), x.reshape(1, 3)).sum()):
        x = torch.zeros(3, requires_grad=True)
        fn(x).backward()
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


def test_norm_errors():
    with pytest.raises(RuntimeError, match="linalg.vector_norm: Expected a floating point or "
                                           "complex tensor as input. Got Long"):
        torch.linalg.vector_norm(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="argument 'ord' \\(position 2\\) must be Number"):
        torch.linalg.vector_norm(torch.ones(3), "fro")
    with pytest.raises(RuntimeError, match="linalg.matrix_norm: The input tensor A must have at "
                                           "least 2 dimensions."):
        torch.linalg.matrix_norm(torch.ones(3))
    with pytest.raises(RuntimeError, match="linalg.matrix_norm: dim must be a 2-tuple. Got 1"):
        torch.linalg.norm(torch.ones(3, 3), "fro", dim=1)
    with pytest.raises(RuntimeError, match="If dim is not specified but ord is, the input must "
                                           "be 1D or 2D. Got 3D."):
        torch.linalg.norm(torch.ones(2, 2, 2), 2)
    with pytest.raises(NotImplementedError, match="needs the singular values"):
        torch.linalg.matrix_norm(torch.ones(2, 2), "nuc")
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        torch.cdist(torch.ones(2, 2, dtype=torch.float64), torch.ones(2, 2))


# ------------------------------------------------------------------------------- products
def test_extra_products_match_numpy(backend, rng):
    m, v = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(
        np.float32)
    b1, b2 = rng.standard_normal((2, 3, 5)).astype(np.float32), rng.standard_normal(
        (2, 5, 4)).astype(np.float32)
    c = rng.standard_normal((4, 4)).astype(np.float32)
    tm, tv, tc = torch.tensor(m), torch.tensor(v), torch.tensor(c)
    check_all([
        ("addmv", torch.addmv(torch.ones(3), tm, tv, beta=0.5, alpha=2),
         0.5 + 2 * m @ v),
        ("addr", torch.addr(tm, torch.ones(3), tv, alpha=3), m + 3 * np.outer(np.ones(3), v)),
        ("addbmm", torch.addbmm(torch.zeros(3, 4), torch.tensor(b1), torch.tensor(b2)),
         (b1 @ b2).sum(0)),
        ("inner", torch.inner(tm, tm), np.inner(m, m)),
        ("inner 0-d", torch.inner(tv, 2.0 * torch.ones(())), 2 * v),
        ("multi_dot", torch.linalg.multi_dot([tv, tc, tc, tv]), v @ c @ c @ v),
        ("chain_matmul", torch.chain_matmul(tm, tc, tc), m @ c @ c),
        ("vecdot", torch.linalg.vecdot(tm, tv), m @ v),
        ("matrix_power 5", torch.linalg.matrix_power(tc, 5), np.linalg.matrix_power(c, 5)),
        ("matrix_power 0", tc.matrix_power(0), np.eye(4)),
        ("Tensor.addmv_", torch.ones(3).addmv_(tm, tv), 1 + m @ v),
    ], rtol=1e-4, atol=1e-5)
    with pytest.raises(NotImplementedError, match="negative power needs the matrix inverse"):
        torch.linalg.matrix_power(tc, -1)


def test_statistics_match_pytorch():
    pt = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 6)).astype(np.float32)
    i = np.array([3, 0, 2, 2, 5])
    cases = [
        lambda m, x, k: m.count_nonzero(x > 0, 1), lambda m, x, k: m.nanmean(x, 1),
        lambda m, x, k: m.cummin(x, 0).indices, lambda m, x, k: m.cummax(k, 0).values,
        lambda m, x, k: m.diff(k, 2), lambda m, x, k: m.trapezoid(x, dx=0.3, dim=0),
        lambda m, x, k: m.cov(x), lambda m, x, k: m.corrcoef(x),
        lambda m, x, k: m.histc(x, 5), lambda m, x, k: m.bincount(k, minlength=8),
        lambda m, x, k: m.isin(k, k[:2]), lambda m, x, k: m.quantile(x, 0.37, 0),
        lambda m, x, k: m.nanquantile(x, m.tensor([0.2, 0.8]), 1, interpolation="midpoint"),
        lambda m, x, k: m.aminmax(k).min, lambda m, x, k: m.linalg.vector_norm(x, 1.5, 1),
        lambda m, x, k: m.linalg.matrix_norm(x, -1), lambda m, x, k: m.cdist(x, x, 0.5),
        lambda m, x, k: m.renorm(x, 1, 1, 2.0), lambda m, x, k: m.dist(x, x.flip(0), 1),
        lambda m, x, k: m.addr(k.float(), k.float(), k.float(), beta=2),
        lambda m, x, k: m.inner(x, x[:2]), lambda m, x, k: m.linalg.vander(k, N=3),
    ]
    for n, fn in enumerate(cases):
        ours = fn(torch, torch.tensor(a), torch.tensor(i))
        ref = fn(pt, pt.tensor(a), pt.tensor(i))
        assert str(ours.dtype) == str(ref.dtype), (n, ours.dtype, ref.dtype)
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=2e-5, atol=1e-6,
                                   err_msg=str(n))
