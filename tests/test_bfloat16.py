"""bfloat16: the dtype, its conversions (round to nearest even), promotion, arithmetic computed
in float and rounded once, reductions and matmul accumulated in float, autograd, printing,
storage in 16-bit words in the compiled kernels, and save/load.

References are written here: `bf16_round` rounds float32 on the bits, and float32 numpy
computes what each op should round. PyTorch, when installed, is an oracle for bit-exactness.
"""
from __future__ import annotations

import json
import math
import pickle
import zipfile

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.compiler import schedule
from lazytorch.frontend.tensor import realize_tensors
from tests.helpers import bf16_round

BF = torch.bfloat16
F32 = np.float32
NAN, INF = float("nan"), float("inf")


def values(t: torch.Tensor) -> np.ndarray:
    """A bfloat16 tensor's values as float32 (exact)."""
    assert t.dtype == BF, t.dtype
    return t.detach().float().numpy()


def bits(a) -> np.ndarray:
    """The bfloat16 bit pattern of float32 values that are bfloat16 values."""
    return (np.asarray(a, F32).view(np.uint32) >> 16).astype(np.int64)


def assert_same(got: np.ndarray, want: np.ndarray, ulps: int = 0) -> None:
    """NaN where want is NaN; elsewhere equal including the sign of zero, or within `ulps`
    bfloat16 units in the last place."""
    got, want = np.asarray(got, F32), np.asarray(want, F32)
    assert got.shape == want.shape, (got.shape, want.shape)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    g, w = got[~nan], want[~nan]
    if ulps == 0:
        bad = (g != w) | (np.signbit(g) != np.signbit(w))
    else:
        # distance on the ordered line of bfloat16 values (negative values mirrored)
        def line(x):
            b = bits(x)
            return np.where(b >= 1 << 15, (1 << 15) - b, b)
        bad = np.abs(line(g) - line(w)) > ulps
    assert not bad.any(), f"{int(bad.sum())} differ, e.g. got {g[bad][:5]} want {w[bad][:5]}"


def random_bf16(rng, shape, scale=3.0) -> np.ndarray:
    return bf16_round(rng.standard_normal(shape) * scale)


# --------------------------------------------------------------------------- the dtype
def test_dtype_object():
    assert repr(BF) == "torch.bfloat16" and str(BF) == "torch.bfloat16"
    assert BF.is_floating_point and BF.is_signed and BF.itemsize == 2
    assert torch.dtype is type(torch.float32) and isinstance(BF, torch.dtype)
    assert pickle.loads(pickle.dumps(BF)) is BF
    x = torch.tensor([1.0, 2.0]).bfloat16()
    assert x.dtype is BF and x.element_size() == 2 and x.is_floating_point()
    assert torch.is_floating_point(x) and x.type() == "torch.BFloat16Tensor"
    assert x.to(torch.float32).bfloat16().dtype is BF and x.to(dtype=BF) is x
    assert torch.zeros(2).type(BF).dtype is BF and torch.zeros(2).type("torch.bfloat16").dtype is BF


def test_finfo():
    f = torch.finfo(BF)
    assert (f.bits, f.eps, f.resolution, f.dtype) == (16, 0.0078125, 0.01, "bfloat16")
    assert f.max == 3.3895313892515355e38 and f.min == -f.max
    assert f.tiny == f.smallest_normal == 1.1754943508222875e-38
    assert repr(f) == ("finfo(resolution=0.01, min=-3.38953e+38, max=3.38953e+38, "
                       "eps=0.0078125, smallest_normal=1.17549e-38, tiny=1.17549e-38, "
                       "dtype=bfloat16)")
    for d, npd in ((torch.float16, np.float16), (torch.float32, F32), (torch.float64, np.float64)):
        f, n = torch.finfo(d), np.finfo(npd)
        assert (f.bits, f.eps, f.max, f.min, f.tiny, f.resolution) == \
            (n.bits, float(n.eps), float(n.max), float(n.min), float(n.tiny),
             10.0 ** -n.precision)
    assert torch.finfo() == torch.finfo(torch.float32)
    for d in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        i, n = torch.iinfo(d), np.iinfo(d.name)
        assert (i.bits, i.min, i.max, i.dtype) == (n.bits, int(n.min), int(n.max), d.name)
    with pytest.raises(TypeError, match="requires a floating point input type"):
        torch.finfo(torch.int32)
    with pytest.raises(TypeError, match="requires an integer input type"):
        torch.iinfo(BF)
    with pytest.raises(TypeError, match="torch.bool is not supported by torch.iinfo"):
        torch.iinfo(torch.bool)


def test_finfo_and_iinfo_match_torch():
    pt = pytest.importorskip("torch")
    for name in ("float16", "bfloat16", "float32", "float64"):
        assert repr(torch.finfo(getattr(torch, name))) == repr(pt.finfo(getattr(pt, name)))
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        assert repr(torch.iinfo(getattr(torch, name))) == repr(pt.iinfo(getattr(pt, name)))


def test_numpy_refuses_bfloat16_but_python_values_work():
    x = torch.tensor([1.5, -2.25, 3.0], dtype=BF)
    with pytest.raises(TypeError, match="Got unsupported ScalarType BFloat16"):
        x.numpy()
    with pytest.raises(TypeError, match="Got unsupported ScalarType BFloat16"):
        np.asarray(x)
    assert x.tolist() == [1.5, -2.25, 3.0] and all(type(v) is float for v in x.tolist())
    assert x[1].item() == -2.25 and type(x[1].item()) is float
    assert float(x[0]) == 1.5 and int(x[2]) == 3
    # 0.1 is not a bfloat16: item() gives the stored value, as PyTorch does
    assert torch.tensor(0.1, dtype=BF).item() == 0.10009765625


# --------------------------------------------------------------------------- conversion
SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8),
                    1 + 2 ** -8 + 2 ** -23, 3.3895e38, 3.3961e38, 3.4e38, -3.4e38,
                    3.4028235e38, INF, -INF, NAN, 1e-40, -1e-40, 2 ** -133, 2 ** -134,
                    1.17549435e-38, 0.1, 65504.0, 1e30], F32)


def _random_floats(rng, n=20000) -> np.ndarray:
    """float32 values with random bit patterns (every exponent, NaNs included) and values
    near the rounding ties."""
    raw = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(F32)
    ties = (rng.integers(0, 1 << 16, n, dtype=np.uint64).astype(np.uint32) << 16 |
            rng.choice([0x7FFF, 0x8000, 0x8001], n).astype(np.uint32)).view(F32)
    return np.concatenate([SPECIAL, raw, ties])


def test_float32_to_bfloat16_rounds_to_nearest_even(backend, rng):
    a = _random_floats(rng)
    want = bf16_round(a)
    assert np.isinf(want[list(SPECIAL).index(3.4e38)])           # overflow rounds to inf
    assert want[4] == 1.0 and want[5] == 1 + 2 ** -6 and want[7] == 1 + 2 ** -7
    cast = torch.tensor(a).bfloat16()                  # a CAST in the kernel / interpreter
    made = torch.tensor(a, dtype=BF)                   # converted when the tensor is made
    realize_tensors([cast, made])
    assert_same(values(cast), want)
    assert_same(values(made), want)


def test_bfloat16_to_float_is_exact_and_back_is_identity(backend, rng):
    a = bf16_round(_random_floats(rng))
    x = torch.tensor(a, dtype=BF)
    f, d, back = x.float(), x.double(), x.float().bfloat16()
    realize_tensors([f, d, back])
    assert_same(f.numpy(), a)
    assert_same(d.numpy().astype(F32), a)
    np.testing.assert_array_equal(d.numpy(), a.astype(np.float64))
    assert_same(values(back), a)


def test_double_and_integers_convert_through_float(backend):
    # PyTorch converts a double or an integer to float first, then to bfloat16: two roundings
    d = np.array([1 + 2 ** -8 + 2 ** -30, -(1 + 2 ** -8 + 2 ** -30), 3.39e38, 1e-300, 0.1])
    i = np.array([2 ** 24 + 2 ** 16 + 1, -(2 ** 24 + 2 ** 16 + 1), 2 ** 62 + 2 ** 54 + 1, 257,
                  -3, 0], np.int64)
    want_d, want_i = bf16_round(d.astype(F32)), bf16_round(i.astype(F32))
    assert want_d[0] == 1.0 and want_i[0] == 2 ** 24   # (one rounding would round up)
    cases = [torch.tensor(d).to(BF), torch.tensor(d, dtype=BF), torch.tensor(i).to(BF),
             torch.tensor(i, dtype=BF), torch.tensor(i.astype(np.int32) // 7).bfloat16(),
             torch.tensor(d.tolist(), dtype=BF), torch.full((2,), 1 + 2 ** -8 + 2 ** -30,
                                                            dtype=BF)]
    realize_tensors(cases)
    assert_same(values(cases[0]), want_d)
    assert_same(values(cases[1]), want_d)
    assert_same(values(cases[2]), want_i)
    assert_same(values(cases[3]), want_i)
    assert_same(values(cases[4]), bf16_round((i.astype(np.int32) // 7).astype(F32)))
    assert_same(values(cases[5]), want_d)
    assert_same(values(cases[6]), [1.0, 1.0])


def test_bfloat16_to_other_types(backend):
    a = np.array([1.5, -1.5, -7.0, 300.0, 0.0, -0.0, 2.5, 65280.0], F32)   # bfloat16 values
    x = torch.tensor(a, dtype=BF)
    out = [x.long(), x.int(), x.to(torch.int8), x.byte(), x.bool(), x.half()]
    realize_tensors(out)
    np.testing.assert_array_equal(out[0].numpy(), np.trunc(a).astype(np.int64))
    np.testing.assert_array_equal(out[1].numpy(), np.trunc(a).astype(np.int32))
    # out-of-range integers wrap as a float's conversion does
    np.testing.assert_array_equal(out[2].numpy(), np.trunc(a).astype(np.int64).astype(np.int8))
    np.testing.assert_array_equal(out[3].numpy(), np.trunc(a).astype(np.int64).astype(np.uint8))
    np.testing.assert_array_equal(out[4].numpy(), a != 0)
    np.testing.assert_array_equal(out[5].numpy(), a.astype(np.float16))


def test_conversions_match_torch(rng):
    pt = pytest.importorskip("torch")
    a = _random_floats(rng, 5000)
    d = rng.standard_normal(3000) * 10.0 ** rng.integers(-40, 38, 3000)
    i = rng.integers(-(1 << 62), 1 << 62, 3000)
    ours = [torch.tensor(a).bfloat16(), torch.tensor(d).bfloat16(), torch.tensor(i).bfloat16(),
            torch.tensor(d, dtype=BF)]
    theirs = [pt.tensor(a).bfloat16(), pt.tensor(d).bfloat16(), pt.tensor(i).bfloat16(),
              pt.tensor(d, dtype=pt.bfloat16)]
    realize_tensors(ours)
    for o, t in zip(ours, theirs):
        assert_same(values(o), t.float().numpy())
    b = bf16_round(a[np.isfinite(a) & (np.abs(a) < 1e9)])
    assert_same(torch.tensor(b, dtype=BF).int().numpy().astype(F32),
                pt.tensor(b).bfloat16().int().numpy().astype(F32))


# --------------------------------------------------------------------------- promotion
def test_promotion():
    def T(d, shape=(2,)):
        return torch.zeros(shape, dtype=d)
    b, h, f, i, u, z = T(BF), T(torch.float16), T(torch.float32), T(torch.int64), \
        T(torch.uint8), T(torch.bool)
    assert (b + b).dtype is BF and (b * h).dtype is torch.float32
    assert (h - b).dtype is torch.float32 and (b + f).dtype is torch.float32
    assert (b + T(torch.float64)).dtype is torch.float64
    assert (i + b).dtype is BF and (u * b).dtype is BF and (z + b).dtype is BF
    assert (b + 2.5).dtype is BF and (2 * b).dtype is BF and (b + True).dtype is BF
    assert (b / 3).dtype is BF and (i / b).dtype is BF
    assert (i + T(BF, ())).dtype is BF                 # a 0-d bfloat16 outranks an int tensor
    assert (b + T(torch.float32, ())).dtype is BF      # a 0-d float32 does not outrank it
    assert (T(BF, ()) + T(torch.float16, ())).dtype is torch.float32
    assert torch.promote_types(BF, torch.float16) is torch.float32
    assert torch.promote_types(torch.int32, BF) is BF
    assert torch.promote_types(BF, torch.bool) is BF
    assert torch.result_type(b, 1.0) is BF and torch.result_type(i, T(BF, ())) is BF
    assert torch.where(T(torch.bool), b, i).dtype is BF
    assert torch.can_cast(BF, torch.float16) and not torch.can_cast(BF, torch.int64)
    assert b.exp().dtype is BF and b.sum().dtype is BF and b.mean().dtype is BF
    assert b.argmax().dtype is torch.int64 and (b < 1).dtype is torch.bool


# --------------------------------------------------------------------------- arithmetic
def test_elementwise_computes_in_float_and_rounds_each_op(backend, rng):
    a, b = random_bf16(rng, (50, 40)), random_bf16(rng, (40,))
    x, y = torch.tensor(a, dtype=BF), torch.tensor(b, dtype=BF)
    r = bf16_round
    cases = [(x + y, r(a + b)), (x - y, r(a - b)), (x * y, r(a * b)), (x / y, r(a / b)),
             (-x, -a), (x.abs(), np.abs(a)), (x.abs().sqrt(), r(np.sqrt(np.abs(a)))),
             (torch.maximum(x, y), np.maximum(a, b)), (x.relu(), np.maximum(a, 0)),
             (torch.where(x > y, x, y), np.where(a > b, a, b)), (x.clamp(-1, 1), np.clip(a, -1, 1)),
             (x + 0.5, r(a + F32(0.5))), (x * 2, r(a * 2)),
             # a fused chain rounds after every op, as PyTorch's op-by-op kernels do
             (((x * 3 + y) * y - x) / (y.abs() + 1),
              r(r(r(r(r(a * 3) + b) * b) - a) / r(np.abs(b) + 1)))]
    realize_tensors([c[0] for c in cases])
    for i, (t, want) in enumerate(cases):
        assert t.dtype is BF, i
        assert_same(values(t), want)


def test_transcendentals_within_one_ulp(backend, rng):
    a = random_bf16(rng, (2000,))
    p = bf16_round(np.abs(a) + 0.125)
    x, q = torch.tensor(a, dtype=BF), torch.tensor(p, dtype=BF)
    f64, p64 = a.astype(np.float64), p.astype(np.float64)
    erf = np.vectorize(math.erf)
    cases = [(x.exp(), np.exp(f64)), (q.log(), np.log(p64)), (x.tanh(), np.tanh(f64)),
             (x.sigmoid(), 1 / (1 + np.exp(-f64))), (x.sin(), np.sin(f64)),
             (q.rsqrt(), 1 / np.sqrt(p64)), (x.erf(), erf(f64)), (q ** x, np.power(p64, f64))]
    realize_tensors([c[0] for c in cases])
    for t, want in cases:
        assert_same(values(t), bf16_round(want.astype(F32)), ulps=1)


def test_reductions_accumulate_in_float(backend, rng):
    ones = torch.ones(1000, dtype=BF)
    a = random_bf16(rng, (30, 500))
    x = torch.tensor(a, dtype=BF)
    cases = [ones.sum(), ones.mean(), ones.cumsum(0), x.sum(1), x.mean(1), x.sum(0),
             x.cumsum(1), (x / 4).prod(1), x.amax(1), x.amin(0), x.argmax(1), x.argmin(0)]
    realize_tensors(cases)
    # accumulated in bfloat16, a sum of ones would stop at 256
    assert values(cases[0]) == 1000 and values(cases[1]) == 1
    assert_same(values(cases[2]), bf16_round(np.arange(1, 1001, dtype=F32)))
    acc = a.astype(np.float64)
    assert_same(values(cases[3]), bf16_round(acc.sum(1).astype(F32)), ulps=1)
    assert_same(values(cases[4]), bf16_round((acc.sum(1) / 500).astype(F32)), ulps=1)
    assert_same(values(cases[5]), bf16_round(acc.sum(0).astype(F32)), ulps=1)
    assert_same(values(cases[6]), bf16_round(np.cumsum(acc, 1).astype(F32)), ulps=1)
    assert_same(values(cases[7]), bf16_round(np.prod(acc / 4, 1).astype(F32)), ulps=1)
    assert_same(values(cases[8]), a.max(1))
    assert_same(values(cases[9]), a.min(0))
    np.testing.assert_array_equal(cases[10].numpy(), a.argmax(1))
    np.testing.assert_array_equal(cases[11].numpy(), a.argmin(0))


def test_nan_through_max_and_argmax(backend):
    x = torch.tensor([[1.0, NAN, 3.0], [2.0, 5.0, -1.0]], dtype=BF)
    out = [x.amax(1), x.argmax(1), torch.maximum(x, x * 0 + 2.5), x.isnan()]
    realize_tensors(out)
    assert_same(values(out[0]), [NAN, 5.0])
    assert out[1].tolist() == [1, 1]
    assert_same(values(out[2]), [[2.5, NAN, 3.0], [2.5, 5.0, 2.5]])
    assert out[3].tolist() == [[False, True, False], [False, False, False]]


def test_matmul_sums_products_in_float_and_rounds_once(backend, rng):
    # (1 + 2^-7)^2 - (1 + 2^-6) = 2^-14 exactly; products rounded to bfloat16 would give 0
    a = torch.tensor([[1 + 2 ** -7, -1.0]], dtype=BF)
    b = torch.tensor([[1 + 2 ** -7], [1 + 2 ** -6]], dtype=BF)
    m, n, k = 33, 20, 64
    p, q = random_bf16(rng, (3, m, k)), random_bf16(rng, (3, k, n))
    x, y = torch.tensor(p, dtype=BF), torch.tensor(q, dtype=BF)
    cases = [a @ b, torch.mm(a, b), x @ y, x[0] @ y[0], torch.einsum("bik,bkj->bij", x, y),
             x[0, 0] @ y[0, :, 0]]
    realize_tensors(cases)
    assert values(cases[0]).tolist() == [[2 ** -14]] and values(cases[1]).tolist() == [[2 ** -14]]
    want = bf16_round(np.matmul(p.astype(np.float64), q.astype(np.float64)).astype(F32))
    for t, w in zip(cases[2:], [want, want[0], want, want[0, 0, 0]]):
        assert t.dtype is BF
        assert_same(values(t), w, ulps=1)


def test_matmul_runs_on_the_float_gemm():
    # the operands are widened to float in kernels of their own, then multiplied by the GEMM
    a, b = torch.randn(64, 64).bfloat16(), torch.randn(64, 64).bfloat16()
    kernels = schedule(a @ b)
    assert len(kernels) == 3 and sum("lt_gemm_f32(" in k.source for k in kernels) == 1


def test_matmul_gradients_sum_in_float(backend, rng):
    a, b = random_bf16(rng, (5, 16), 1.0), random_bf16(rng, (16, 7), 1.0)
    x = torch.tensor(a, dtype=BF, requires_grad=True)
    w = torch.tensor(b, dtype=BF, requires_grad=True)
    (x @ w).exp().sum().backward()
    realize_tensors([x.grad, w.grad])
    e = bf16_round(np.exp(bf16_round((a.astype(np.float64) @ b).astype(F32))))
    # each gradient is a product summed in float and rounded once (rounding each product
    # made gradients differ by up to 8 ulp)
    assert_same(values(x.grad), bf16_round((e.astype(np.float64) @ b.T).astype(F32)), ulps=1)
    assert_same(values(w.grad), bf16_round((a.T.astype(np.float64) @ e).astype(F32)), ulps=1)


def test_scatter_add_rounds_each_addition(backend):
    base = np.array([256.0, 0.0, 1.0], F32)
    src = np.ones(6, F32)
    idx = np.array([0, 0, 0, 0, 1, 2])
    out = torch.tensor(base, dtype=BF).scatter_add(0, torch.tensor(idx),
                                                   torch.tensor(src, dtype=BF))
    want = base.copy()
    for i, s in zip(idx, src):                 # PyTorch adds in bfloat16, one element at a time
        want[i] = bf16_round(want[i] + s)
    assert_same(values(out), want)
    assert values(out)[0] == 256.0


def test_sort_topk_unique(backend, rng):
    a = np.concatenate([random_bf16(rng, (40,)), [NAN, 0.0, -0.0, INF]]).astype(F32)
    x = torch.tensor(a, dtype=BF)
    s, i = x.sort()
    assert s.dtype is BF and i.dtype is torch.int64
    assert_same(values(s), np.sort(a))
    np.testing.assert_array_equal(values(x)[i.numpy()], values(s))
    v, j = x[:40].topk(5)
    assert_same(values(v), np.sort(a[:40])[::-1][:5])
    u = torch.tensor([1.0, 2.0, 1.0, 3.0], dtype=BF).unique()
    assert u.dtype is BF and u.tolist() == [1.0, 2.0, 3.0]


def test_ops_match_torch(rng):
    pt = pytest.importorskip("torch")
    a, b = random_bf16(rng, (40, 100)), random_bf16(rng, (40, 100))
    p = bf16_round(np.abs(a) + 0.1)

    def prog(lib, x, y, z):
        exact = [x + y, x - y, x * y, x / y, -x, x.abs(), z.sqrt(), lib.maximum(x, y),
                 x.relu(), x + 0.5, x - 2, (x * 3).floor(), x.remainder(y), x > y,
                 lib.where(x > 0, x, y), x.amax(1), x.argmax(1), x.cumsum(1)]
        one_ulp = [x.exp(), z.log(), x.tanh(), x.sigmoid(), x.sin(), z.rsqrt(), x.erf(),
                   x * 0.1, x / 3.3, x.sum(1), x.mean(1), x.sum(0), x @ y.t(),
                   x.reshape(4, 10, 100) @ y.reshape(4, 100, 10), x.t().mm(y)]
        return exact, one_ulp

    ours = prog(torch, *(torch.tensor(v, dtype=BF) for v in (a, b, p)))
    theirs = prog(pt, *(pt.tensor(v).bfloat16() for v in (a, b, p)))
    realize_tensors(ours[0] + ours[1])
    for ulps, group in ((0, 0), (1, 1)):
        for k, (o, t) in enumerate(zip(ours[group], theirs[group])):
            assert str(o.dtype) == str(t.dtype), (group, k)
            want = t.float().numpy() if t.dtype == pt.bfloat16 else t.numpy()
            got = values(o) if o.dtype is BF else o.numpy()
            if got.dtype.kind == "f":
                assert_same(got, want, ulps=ulps)
            else:
                np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- autograd
def test_gradients_are_bfloat16(backend, rng):
    a, w = random_bf16(rng, (6, 8)), random_bf16(rng, (8,))
    x = torch.tensor(a, dtype=BF, requires_grad=True)
    v = torch.tensor(w, dtype=BF, requires_grad=True)
    y = (x.exp() * v).sum()
    y.backward()
    realize_tensors([y, x.grad, v.grad])
    assert x.grad.dtype is BF and v.grad.dtype is BF and y.dtype is BF
    e = bf16_round(np.exp(a))
    # d/dx = exp(x) * v (each op rounded), d/dv = sum over rows of exp(x) (float accumulation)
    assert_same(values(x.grad), bf16_round(e * w), ulps=1)
    assert_same(values(v.grad), bf16_round(e.astype(np.float64).sum(0).astype(F32)), ulps=1)


def test_linear_layer_trains_in_bfloat16(backend, rng):
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 4).bfloat16()
    assert lin.weight.dtype is BF and lin.bias.dtype is BF
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    xs, ys = torch.tensor(random_bf16(rng, (16, 8), 1.0), dtype=BF), \
        torch.tensor(random_bf16(rng, (16, 4), 1.0), dtype=BF)
    w0 = values(lin.weight).astype(np.float64)
    b0 = values(lin.bias).astype(np.float64)
    loss = ((lin(xs) - ys) ** 2).mean()
    loss.backward()
    assert lin.weight.grad.dtype is BF
    # the float64 gradient of the same loss at the same (bfloat16) point
    xv, yv = values(xs).astype(np.float64), values(ys).astype(np.float64)
    r = xv @ w0.T + b0 - yv
    gw, gb = 2 * r.T @ xv / r.size, 2 * r.sum(0) / r.size
    np.testing.assert_allclose(values(lin.weight.grad), gw, rtol=0.03, atol=2e-3)
    np.testing.assert_allclose(values(lin.bias.grad), gb, rtol=0.03, atol=2e-3)
    first = loss.item()
    for _ in range(20):
        opt.step()
        opt.zero_grad()
        loss = ((lin(xs) - ys) ** 2).mean()
        loss.backward()
    assert lin.weight.dtype is BF and loss.item() < first


def test_gradients_match_torch(rng):
    pt = pytest.importorskip("torch")
    a, b = random_bf16(rng, (5, 16), 1.0), random_bf16(rng, (16, 7), 1.0)

    def run(lib, dtype):
        x = lib.tensor(a, dtype=dtype, requires_grad=True)
        w = lib.tensor(b, dtype=dtype, requires_grad=True)
        out = ((x @ w).exp() * 2 + x.sum(1, keepdim=True)).sum()
        out.backward()
        return x.grad, w.grad

    ours, theirs = run(torch, BF), run(pt, pt.bfloat16)
    realize_tensors(list(ours))
    for o, t in zip(ours, theirs):
        assert o.dtype is BF
        assert_same(values(o), t.float().numpy(), ulps=2)


def test_tensor_api(backend, tmp_path):
    x = torch.tensor([[1.5, 2.5], [3.5, -4.0]], dtype=BF)
    assert torch.cat([x, x]).dtype is BF and torch.stack([x, x]).dtype is BF
    y = x.clone()
    y[0, 1] = 7.1
    y[1] = torch.tensor([0.1, 0.2])
    assert_same(values(y), bf16_round([[1.5, 7.1], [0.1, 0.2]]))
    assert_same(values(pickle.loads(pickle.dumps(x))), values(x))
    assert torch.tensor(x).dtype is BF and torch.tensor([x[0, 0], x[1, 1]]).tolist() == [1.5, -4]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=2)
    (batch,) = next(iter(loader))
    assert batch.dtype is BF and batch.tolist() == x.tolist()
    torch.manual_seed(0)
    emb, conv = torch.nn.Embedding(10, 4).bfloat16(), torch.nn.Conv2d(2, 3, 3).bfloat16()
    assert emb(torch.tensor([1, 2])).dtype is BF
    assert conv(torch.randn(1, 2, 8, 8, dtype=BF)).dtype is BF
    lin = torch.nn.Linear(4, 2).bfloat16()
    opt = torch.optim.Adam(lin.parameters())
    lin(torch.ones(3, 4, dtype=BF)).sum().backward()
    opt.step()
    assert lin.weight.dtype is BF and lin.bias.dtype is BF
    assert torch.isfinite(lin.weight).all().item()


# --------------------------------------------------------------------------- printing
def test_printing():
    # PyTorch 2.13's output for each tensor
    assert str(torch.tensor([1.0, 2.5, 3.14159, 1e10, 1e-5], dtype=BF)) == (
        "tensor([1.0000e+00, 2.5000e+00, 3.1406e+00, 9.9992e+09, 1.0014e-05],\n"
        "       dtype=torch.bfloat16)")
    assert str(torch.tensor([[1.0, 2.5], [3.0, 100.0]], dtype=BF)) == (
        "tensor([[  1.0000,   2.5000],\n        [  3.0000, 100.0000]], dtype=torch.bfloat16)")
    assert str(torch.tensor(3.14159, dtype=BF)) == "tensor(3.1406, dtype=torch.bfloat16)"
    assert repr(torch.tensor([1.0, 2.0], dtype=BF, requires_grad=True)) == \
        "tensor([1., 2.], dtype=torch.bfloat16, requires_grad=True)"
    assert str(torch.tensor([1, 2]).bfloat16()) == "tensor([1., 2.], dtype=torch.bfloat16)"


def test_printing_matches_torch(rng):
    pt = pytest.importorskip("torch")
    arrays = [rng.standard_normal(7) * 100, rng.standard_normal((3, 4)),
              np.array([NAN, INF, -INF, 0.1, -0.0]), rng.standard_normal(2000),
              np.array([1e-8, 1e8, 1.0]), np.arange(12.0).reshape(3, 4), np.array(2.71828)]
    for a in arrays:
        assert str(torch.tensor(a, dtype=BF)) == str(pt.tensor(a, dtype=pt.bfloat16))


# --------------------------------------------------------------------------- creation
def test_creation_functions(backend):
    cases = {"zeros": torch.zeros(2, 3, dtype=BF), "ones": torch.ones(4, dtype=BF),
             "full": torch.full((2,), 0.1, dtype=BF), "empty": torch.empty(3, dtype=BF),
             "arange": torch.arange(0, 5, 0.5, dtype=BF), "eye": torch.eye(3, dtype=BF),
             "linspace": torch.linspace(-1, 1, 9, dtype=BF), "rand": torch.rand(5, dtype=BF),
             "randn": torch.randn(5, dtype=BF), "zeros_like": torch.zeros_like(torch.ones(2),
                                                                               dtype=BF),
             "ones_like": torch.ones_like(torch.ones(2, dtype=BF)),
             "full_like": torch.full_like(torch.ones(2, dtype=BF), 3.0),
             "tensor": torch.tensor([[1, 2], [3, 4]], dtype=BF),
             "as_tensor": torch.as_tensor([0.5, 1.5], dtype=BF)}
    realize_tensors(list(cases.values()))
    for name, t in cases.items():
        assert t.dtype is BF, name
    assert_same(values(cases["full"]), bf16_round([0.1, 0.1]))
    assert_same(values(cases["arange"]), np.arange(0, 5, 0.5, dtype=F32))
    assert_same(values(cases["eye"]), np.eye(3, dtype=F32))
    assert_same(values(cases["linspace"]), np.linspace(-1, 1, 9, dtype=F32))
    r = values(cases["rand"])
    assert ((r >= 0) & (r <= 1)).all() and (bf16_round(r) == r).all()
    assert values(cases["full_like"]).tolist() == [3.0, 3.0]


def test_fills_check_the_bfloat16_range():
    x = torch.zeros(2, dtype=BF)
    with pytest.raises(RuntimeError, match="converted to type c10::BFloat16 without overflow"):
        x.fill_(1e39)
    assert_same(values(x.fill_(3e38)), bf16_round([3e38, 3e38]))
    assert_same(values(torch.zeros(2, dtype=BF).masked_fill(torch.tensor([True, False]), -INF)),
                [-INF, 0.0])


def test_default_dtype_bfloat16():
    old = torch.get_default_dtype()
    torch.set_default_dtype(BF)
    try:
        assert torch.get_default_dtype() is BF and torch.finfo().dtype == "bfloat16"
        t = torch.tensor([1.5, 1 + 2 ** -8 + 2 ** -30])
        assert t.dtype is BF and t.tolist() == [1.5, 1.0]
        assert torch.zeros(2).dtype is BF and torch.randn(2).dtype is BF
        assert (torch.tensor([1, 2]) + 1.5).dtype is BF and torch.arange(3.0).dtype is BF
        assert torch.tensor([1, 2]).float().dtype is torch.float32
        assert str(t) == "tensor([1.5000, 1.0000])"    # the default dtype is not printed
        assert str(torch.tensor([1.0, 2.0], dtype=torch.float32)) == \
            "tensor([1., 2.], dtype=torch.float32)"
    finally:
        torch.set_default_dtype(old)
    assert (torch.tensor([1, 2]) + 1.5).dtype is old


# --------------------------------------------------------------------------- storage
def test_kernels_store_16_bit_words():
    x = torch.tensor([1.0, 2.0, 3.0], dtype=BF)
    src = schedule(x * 2 + 1)[0].source
    assert "const uint16_t* restrict" in src and "uint16_t* restrict out0" in src
    assert "lt_bf2f(" in src and "lt_f2bf(" in src
    debug.reset_stats()
    assert values((x * 2 + 1).realize()).tolist() == [3.0, 5.0, 7.0]
    assert debug.stats()["kernels_launched"] >= 1


def test_check_mode_over_bfloat16_kernels(rng):
    """Every compiled kernel of a mixed bfloat16 program agrees with the interpreter."""
    a, b = random_bf16(rng, (64, 48)), random_bf16(rng, (48, 32))
    with debug.use_backend("c"), debug.check():
        x, y = torch.tensor(a, dtype=BF), torch.tensor(b, dtype=BF)
        idx = torch.tensor(rng.integers(0, 64, 100))
        out = [(x @ y).relu().sum(0), x.softmax(1), x.cumsum(1), x.amax(0), x.argmax(1),
               (x * 0.5 + 1).exp().mean(), x.t().contiguous(), x[idx], x.double().bfloat16(),
               torch.zeros(64, 48, dtype=BF).index_add(0, idx, x[idx]),
               torch.nn.functional.layer_norm(x, (48,)), x.half() + 1, x.to(torch.int32) * 3]
        realize_tensors(out)


# --------------------------------------------------------------------------- save / load
def _special_bf16(rng) -> np.ndarray:
    return np.concatenate([random_bf16(rng, (100,)), [NAN, INF, -INF, -0.0, 1e-40]]).astype(F32)


def test_save_load_round_trip(tmp_path, rng):
    a = _special_bf16(rng)
    want = bf16_round(a)
    x = torch.tensor(a, dtype=BF)
    path = tmp_path / "bf16.pt"
    torch.save({"w": x, "m": torch.ones(2, 2, dtype=BF).requires_grad_()}, path)
    with zipfile.ZipFile(path) as z:             # PyTorch's layout: one storage per tensor
        names = {n.rsplit("/", 1)[-1]: n for n in z.namelist()}
        assert b"BFloat16Storage" in z.read(names["data.pkl"])
        words = [np.frombuffer(z.read(n), "<u2") for k, n in names.items() if k.isdigit()]
    (w,) = [w for w in words if w.size == a.size]          # 16-bit words, little-endian
    nan = np.isnan(a)
    np.testing.assert_array_equal(w[~nan].astype(np.int64), bits(want)[~nan])
    back = torch.load(path)
    assert back["w"].dtype is BF and back["m"].requires_grad
    assert_same(values(back["w"]), want)


def test_safetensors_layout(tmp_path, rng):
    a = _special_bf16(rng)
    path = tmp_path / "bf16.safetensors"
    torch.serialization.save_safetensors({"w": torch.tensor(a, dtype=BF)}, path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    entry = json.loads(raw[8:8 + n])["w"]
    assert entry["dtype"] == "BF16" and entry["shape"] == [a.size]
    begin, end = entry["data_offsets"]
    words = np.frombuffer(raw[8 + n + begin:8 + n + end], "<u2").astype(np.int64)
    nan = np.isnan(a)
    np.testing.assert_array_equal(words[~nan], bits(bf16_round(a))[~nan])
    assert_same(values(torch.load(path)["w"]), bf16_round(a))


def test_checkpoints_cross_with_torch(tmp_path, rng):
    pt = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    a = random_bf16(rng, (3, 5))
    # ours read by PyTorch, in both layouts
    torch.save({"w": torch.tensor(a, dtype=BF)}, tmp_path / "w.pt")
    w = pt.load(tmp_path / "w.pt", weights_only=True)["w"]
    assert w.dtype == pt.bfloat16
    assert_same(w.float().numpy(), a)
    torch.serialization.save_safetensors({"w": torch.tensor(a, dtype=BF)}, tmp_path / "w.st")
    (w,) = st.load_file(str(tmp_path / "w.st")).values()
    assert w.dtype == pt.bfloat16
    assert_same(w.float().numpy(), a)
    # PyTorch's read here
    pt.save({"v": pt.tensor(a).bfloat16()}, tmp_path / "v.pt")
    st.save_file({"v": pt.tensor(a).bfloat16()}, str(tmp_path / "v.safetensors"))
    for name in ("v.pt", "v.safetensors"):
        v = torch.load(tmp_path / name)["v"]
        assert v.dtype is BF
        assert_same(values(v), a)
