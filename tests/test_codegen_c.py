"""Generated C against the reference interpreter: the same program realized under
LAZYTORCH_BACKEND=c and =interp must agree (and both must match a reference written here).

Corner cases are the point: float16 rounding, floor division and modulo of negative ints,
integer powers, NaN through max/min/argmax, comparisons giving bool.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.compiler import schedule

NAN = float("nan")


def both(monkeypatch, fn, *arrays):
    """fn realized on fresh input tensors under each backend: {backend: [(array, dtype), ...]}."""
    out = {}
    for backend in ("c", "interp"):
        monkeypatch.setenv("LAZYTORCH_BACKEND", backend)
        debug.reset_stats()
        res = fn(*(torch.tensor(a) for a in arrays))
        res = res if isinstance(res, tuple) else (res,)
        out[backend] = [(np.array(r.numpy()), r.dtype) for r in res]
        if backend == "c":
            assert debug.stats()["kernels_launched"] >= 1  # really ran generated code
    return out


def agree(monkeypatch, fn, *arrays, rtol=0.0):
    """Assert c == interp (bitwise unless rtol, NaNs in the same places); return interp's."""
    got = both(monkeypatch, fn, *arrays)
    for (c, cd), (i, idt) in zip(got["c"], got["interp"]):
        assert cd == idt and c.dtype == i.dtype and c.shape == i.shape
        if rtol and c.dtype.kind == "f":
            np.testing.assert_allclose(c.astype(np.float64), i.astype(np.float64), rtol=rtol,
                                       atol=0, equal_nan=True)
        else:
            np.testing.assert_array_equal(c, i)
    res = [a for a, _ in got["interp"]]
    return res if len(res) > 1 else res[0]


# ------------------------------------------------------------------------- float kernels

def test_elementwise_float32(monkeypatch, rng):
    a = rng.standard_normal((6, 7)).astype(np.float32)
    b = rng.standard_normal((7,)).astype(np.float32)
    out = agree(monkeypatch, lambda x, y: (x * y - x / (y.abs() + 1)).clamp(-1, 1), a, b,
                rtol=1e-6)
    np.testing.assert_allclose(out, np.clip(a * b - a / (np.abs(b) + 1), -1, 1), rtol=1e-6)


def test_transcendentals(monkeypatch, rng):
    a = rng.uniform(0.1, 3, (40,)).astype(np.float32)
    fns = [(lambda x: x.exp(), np.exp), (lambda x: x.log(), np.log),
           (lambda x: x.sqrt(), np.sqrt), (lambda x: x.tanh(), np.tanh),
           (lambda x: x.sigmoid(), lambda v: 1 / (1 + np.exp(-v))),
           (lambda x: x.sin(), np.sin), (lambda x: x.rsqrt(), lambda v: 1 / np.sqrt(v)),
           (lambda x: x.erf(), np.vectorize(math.erf))]
    out = agree(monkeypatch, lambda x: tuple(f(x) for f, _ in fns), a, rtol=2e-6)
    for got, (_, ref) in zip(out, fns):
        np.testing.assert_allclose(got, ref(a.astype(np.float64)), rtol=2e-6)


def test_float64_reduction(monkeypatch, rng):
    a = rng.standard_normal((5, 33))
    out = agree(monkeypatch, lambda x: ((x * x).sum(1), x.prod(0), x.cumsum(1)), a, rtol=1e-12)
    np.testing.assert_allclose(out[0], (a * a).sum(1), rtol=1e-12)
    np.testing.assert_allclose(out[1], a.prod(0), rtol=1e-12)
    np.testing.assert_allclose(out[2], a.cumsum(1), rtol=1e-12)


# ------------------------------------------------------------------------- float16

def test_float16_elementwise_rounds_every_op(monkeypatch, rng):
    # each op rounds to half, as in PyTorch: a fused chain must not keep float intermediates
    a = rng.standard_normal(500).astype(np.float16)
    b = rng.standard_normal(500).astype(np.float16)
    out = agree(monkeypatch, lambda x, y: ((x * 3 + y) * y - x) / (y.abs() + 1), a, b)
    three, one = np.float16(3), np.float16(1)
    ref = ((a * three + b) * b - a) / (np.abs(b) + one)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, ref)


def test_float16_storage_and_casts(monkeypatch):
    a = np.array([70000.0, 1.0001, 2049.0, -1e-8, 0.1], np.float32)
    with np.errstate(over="ignore"):
        h = a.astype(np.float16)   # 70000 overflows to inf
    out = agree(monkeypatch, lambda x: (x.half(), x.half().float() * 2), a)
    np.testing.assert_array_equal(out[0], h)
    np.testing.assert_array_equal(out[1], h.astype(np.float32) * 2)
    assert np.isinf(out[0][0])
    assert "_Float16* restrict out0" in schedule(torch.tensor(h) * 2)[0].source


def test_float16_reductions(monkeypatch, rng):
    a = rng.standard_normal((8, 300)).astype(np.float16)
    out = agree(monkeypatch, lambda x: (x.sum(1), x.sum(1) / 3, x.amax(1), x.argmax(1),
                                        x.cumsum(1)), a)
    # PyTorch accumulates half in float and rounds the result
    acc = a.astype(np.float32)
    np.testing.assert_array_equal(out[0], acc.sum(1).astype(np.float16))
    np.testing.assert_array_equal(out[1], out[0] / np.float16(3))
    np.testing.assert_array_equal(out[2], a.max(1))
    np.testing.assert_array_equal(out[3], a.argmax(1))
    np.testing.assert_allclose(out[4].astype(np.float32), np.cumsum(acc, 1), rtol=1e-3,
                               atol=0.06)


def test_float16_transcendentals(monkeypatch, rng):
    a = rng.uniform(-3, 3, 400).astype(np.float16)
    p = np.abs(a) + np.float16(0.1)
    out = agree(monkeypatch, lambda x, y: (x.exp(), x.tanh(), x.sigmoid(), y.rsqrt()), a, p,
                rtol=1e-3)
    np.testing.assert_allclose(out[0], np.exp(a.astype(np.float64)), rtol=1e-3)
    np.testing.assert_allclose(out[1], np.tanh(a.astype(np.float64)), rtol=1e-3, atol=1e-3)
    # composite ops are computed in float and rounded to half once (not after each step)
    f = a.astype(np.float32)
    once = [(1 / (1 + np.exp(-f))).astype(np.float16),
            (1 / np.sqrt(p.astype(np.float32))).astype(np.float16)]
    for got, ref in zip(out[2:], once):
        assert np.mean(got != ref) < 0.01


# ------------------------------------------------------------------------- integer semantics

INTS_A = [-7, -6, -1, 0, 1, 5, 7, 9, -9, 100]
INTS_B = [2, -2, 3, -3, 2, -4, -3, 4, 4, -7]


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.int8])
def test_int_floor_division_and_modulo(monkeypatch, dtype):
    a, b = np.array(INTS_A, dtype), np.array(INTS_B, dtype)
    q, r = agree(monkeypatch, lambda x, y: (x // y, x % y), a, b)
    # Python (and torch) semantics: floor division, remainder has the divisor's sign
    assert q.tolist() == [x // y for x, y in zip(INTS_A, INTS_B)]
    assert r.tolist() == [x % y for x, y in zip(INTS_A, INTS_B)]
    assert q.dtype == r.dtype == dtype


def test_int_division_by_scalars(monkeypatch):
    a = np.array(INTS_A, np.int64)
    q, r, q2 = agree(monkeypatch, lambda x: (x // -3, x % -3, x // 4), a)
    assert q.tolist() == [x // -3 for x in INTS_A]
    assert r.tolist() == [x % -3 for x in INTS_A]
    assert q2.tolist() == [x // 4 for x in INTS_A]


def test_float_floor_division_and_modulo(monkeypatch):
    a = np.array([-7.5, 7.5, -0.25, 3.0, -3.0, 5.5], np.float32)
    b = np.array([2.0, -2.0, 1.0, -1.5, 1.5, 2.5], np.float32)
    q, r = agree(monkeypatch, lambda x, y: (x // y, x % y), a, b)
    assert q.tolist() == [x // y for x, y in zip(a.tolist(), b.tolist())]
    assert r.tolist() == [x % y for x, y in zip(a.tolist(), b.tolist())]


def test_int_pow(monkeypatch):
    base = np.array([2, -3, 0, 1, -1, 5, 7, -2], np.int64)
    exp = np.array([10, 3, 0, 4, 7, 2, 0, 5], np.int64)
    p, cube, two = agree(monkeypatch, lambda x, y: (x ** y, x ** 3, 2 ** y), base, exp)
    assert p.tolist() == [int(x) ** int(y) for x, y in zip(base, exp)]
    assert cube.tolist() == [int(x) ** 3 for x in base]
    assert two.tolist() == [2 ** int(y) for y in exp]
    assert p.dtype == np.int64


def test_int_pow_negative_exponent_tensor(monkeypatch):
    # integer results of a negative power: 1 -> 1, -1 -> +-1, anything else -> 0 (as torch)
    base = np.array([2, 3, 1, -1, -1, -2], np.int64)
    exp = np.array([-1, -2, -5, -3, -2, -1], np.int64)
    p = agree(monkeypatch, lambda x, y: x ** y, base, exp)
    assert p.tolist() == [0, 0, 1, -1, 1, 0]


def test_int_pow_small_types(monkeypatch):
    base = np.array([3, -2, 5], np.int32)
    p = agree(monkeypatch, lambda x: x ** 4, base)
    assert p.tolist() == [81, 16, 625] and p.dtype == np.int32


# ------------------------------------------------------------------------- NaN and arg-reductions

def test_nan_propagates_through_elementwise_max_min(monkeypatch):
    a = np.array([1.0, NAN, 3.0, 2.0, NAN], np.float32)
    b = np.array([NAN, 0.0, 4.0, 2.0, NAN], np.float32)
    mx, mn = agree(monkeypatch, lambda x, y: (torch.maximum(x, y), torch.minimum(x, y)), a, b)
    np.testing.assert_array_equal(mx, np.maximum(a, b))
    np.testing.assert_array_equal(mn, np.minimum(a, b))


def test_nan_propagates_through_max_min_reductions(monkeypatch):
    a = np.array([[1.0, NAN, 3.0], [2.0, 5.0, -1.0], [NAN, NAN, 0.0]], np.float32)
    out = agree(monkeypatch, lambda x: (x.max(), x.min(), x.amax(1), x.amin(0), x.relu()), a)
    assert np.isnan(out[0]) and np.isnan(out[1])
    np.testing.assert_array_equal(out[2], np.max(a, 1))
    np.testing.assert_array_equal(out[3], np.min(a, 0))
    np.testing.assert_array_equal(out[4], np.where(np.isnan(a), a, np.maximum(a, 0)))


def _first_index(rows, pick):
    """Reference argmax/argmin: the first NaN if any, else the first extreme value."""
    out = []
    for row in rows:
        nans = [i for i, v in enumerate(row) if v != v]
        if nans:
            out.append(nans[0])
        else:
            best = pick(row)
            out.append(row.index(best))
    return out


def test_argmax_ties_and_nan(monkeypatch):
    a = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [NAN, 1.0, NAN, 5.0],
                  [0.0, -1.0, -1.0, NAN]], np.float32)
    amax, amin, flat, col = agree(
        monkeypatch, lambda x: (x.argmax(1), x.argmin(1), x.argmax(), x.argmax(0)), a)
    rows = a.tolist()
    assert amax.tolist() == _first_index(rows, max)
    assert amin.tolist() == _first_index(rows, min)
    assert flat.item() == _first_index([sum(rows, [])], max)[0]
    assert col.tolist() == _first_index(a.T.tolist(), max)
    assert amax.dtype == np.int64


def test_max_with_dim_gives_values_and_indices(monkeypatch):
    a = np.array([[1.0, 3.0, 3.0], [NAN, 1.0, NAN], [-2.0, -2.0, -5.0]], np.float32)
    vals, idx = agree(monkeypatch, lambda x: tuple(x.max(1)), a)
    np.testing.assert_array_equal(vals, np.max(a, 1))
    assert idx.tolist() == _first_index(a.tolist(), max)


def test_int_argmax_ties(monkeypatch):
    a = np.array([[5, 9, 9, 1], [-3, -3, -4, -3]], np.int32)
    amax, amin = agree(monkeypatch, lambda x: (x.argmax(1), x.argmin(1)), a)
    assert amax.tolist() == [1, 0] and amin.tolist() == [3, 2]


# ------------------------------------------------------------------------- comparisons, bool

def test_comparisons_give_bool(monkeypatch):
    a = np.array([1.0, NAN, 3.0, 2.0, -0.0], np.float32)
    b = np.array([NAN, 0.0, 4.0, 2.0, 0.0], np.float32)
    ops = [(lambda x, y: x == y, np.equal), (lambda x, y: x != y, np.not_equal),
           (lambda x, y: x < y, np.less), (lambda x, y: x <= y, np.less_equal),
           (lambda x, y: x > y, np.greater), (lambda x, y: x >= y, np.greater_equal)]
    out = agree(monkeypatch, lambda x, y: tuple(f(x, y) for f, _ in ops), a, b)
    for got, (_, ref) in zip(out, ops):
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, ref(a, b))


def test_mixed_type_comparisons_and_bool_arithmetic(monkeypatch):
    i = np.array([1, 2, 3, -4], np.int64)
    f = np.array([1.5, 2.0, -3.0, NAN], np.float32)
    lt, eq, cnt, w, both_ = agree(monkeypatch, lambda x, y: (
        x < 2.5, x == y, (x > 1).sum(), torch.where(y > 0, x, -x), (x > 0) & ~(y != y)), i, f)
    assert lt.tolist() == [True, True, False, True]
    assert eq.tolist() == [False, True, False, False]
    assert cnt.item() == 2 and cnt.dtype == np.int64
    assert w.tolist() == [1, 2, -3, 4]
    assert both_.tolist() == [True, True, True, False]


def test_bool_casts(monkeypatch):
    a = np.array([0.0, -0.0, 0.5, NAN, -2.0], np.float32)
    b, back = agree(monkeypatch, lambda x: (x.bool(), x.bool().int() * 3), a)
    assert b.tolist() == [False, False, True, True, True]
    assert back.tolist() == [0, 0, 3, 3, 3] and back.dtype == np.int32


def test_parity_with_torch(monkeypatch, rng):
    pt = pytest.importorskip("torch")
    a = rng.standard_normal(300).astype(np.float16)
    b = rng.standard_normal(300).astype(np.float16)
    i = np.array(INTS_A, np.int64)
    j = np.array(INTS_B, np.int64)
    f = np.array([[1.0, NAN, 3.0], [2.0, 2.0, -1.0]], np.float32)

    def prog(lib, x, y, m, n, z):
        return (((x * 3 + y) * y - x).sigmoid(), m // n, m % n, lib.maximum(z, z * 0 + 1.5),
                z.argmax(1), z.amax(1), z > 1.5)

    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    ours = prog(torch, *(torch.tensor(v) for v in (a, b, i, j, f)))
    theirs = prog(pt, *(pt.tensor(v) for v in (a, b, i, j, f)))
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.numpy(), t.numpy())


@pytest.mark.parametrize("shape,perm,pragma", [
    # loops (3, 40, 676): 3 rows are too few to share, 3 x 40 are enough
    ((40, 3, 26, 26), (1, 0, 2, 3), "#pragma omp parallel for collapse(2) schedule(static)"),
    ((256, 9, 11, 11), None, "#pragma omp parallel for schedule(static)"),      # (25344, 11)
    ((2, 1 << 16), None, "#pragma omp parallel for simd collapse(2) schedule(static)"),  # 2 rows
    ((1 << 14, 4, 3), None, "#pragma omp parallel for simd collapse(2) schedule(static)"),  # short
])
def test_threads_take_outer_rows_and_vectorize_the_inner_loop(shape, perm, pragma):
    """Large elementwise kernels: the threads share the fewest outer loops that split evenly
    and the innermost loop is vectorized, unless rows are too few or too short (then one flat
    loop); the result is the same either way."""
    from lazytorch.engine.realize import schedule as sched
    a = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    x = torch.tensor(a)
    if perm is None:
        y, want = x.flip(-1) * 2 + x, a[..., ::-1] * 2 + a     # a reversed read
    else:
        y, want = x.permute(*perm) * 2, a.transpose(perm) * 2
    src = "\n".join(k.source for k in sched([y.node]).kernels)
    assert pragma in src
    if "simd collapse" not in pragma:
        assert "#pragma omp simd" in src
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-6)
