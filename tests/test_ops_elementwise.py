"""Elementwise ops against numpy references, on both backends.

Each test builds many results and realizes them together (one compiler call per test), then
compares each with a numpy reference written here. Shapes are shared across tests so the C
backend compiles few distinct kernels.
"""
from __future__ import annotations

import math
import operator

import numpy as np
import pytest

import lazytorch as torch
from tests.helpers import check_all

F32 = np.float32


@pytest.fixture
def data(rng):
    """A (3, 4) float32 matrix with specials, a (4,) row and a (3, 1) column."""
    a = rng.standard_normal((3, 4)).astype(F32)
    a[0, :] = [np.nan, np.inf, -np.inf, 0.5]
    a[1, :2] = [2.5, -0.5]
    b = rng.standard_normal(4).astype(F32)
    c = rng.standard_normal((3, 1)).astype(F32)
    return a, b, c


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


UNARY = {
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "exp2": np.exp2, "log": np.log,
    "log2": np.log2, "log1p": np.log1p, "expm1": np.expm1, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x), "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "relu": lambda x: np.maximum(x, 0),
    "erf": _erf, "floor": np.floor, "ceil": np.ceil, "round": np.round, "trunc": np.trunc,
    "reciprocal": lambda x: 1 / x, "square": np.square,
    "sign": lambda x: np.where(np.isnan(x), 0, np.sign(x)).astype(x.dtype),
}


def test_unary_float32(backend, data):
    a = data[0]
    x = torch.tensor(a)
    cases = []
    with np.errstate(all="ignore"):
        for name, ref in UNARY.items():
            cases.append((name, getattr(x, name)(), ref(a), torch.float32))
            cases.append((f"torch.{name}", getattr(torch, name)(x), ref(a), torch.float32))
    cases += [("isnan", x.isnan(), np.isnan(a), torch.bool),
              ("isinf", torch.isinf(x), np.isinf(a), torch.bool),
              ("isfinite", x.isfinite(), np.isfinite(a), torch.bool),
              ("logical_not", x.logical_not(), np.logical_not(a), torch.bool),
              ("-x", -x, -a), ("abs()", abs(x), np.abs(a))]
    check_all(cases, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value", [0.0, 1.0, -0.75, 2.5])
def test_unary_of_constants_and_zero_dim_tensors(backend, value):
    """Constant folding and the interpreter's 0-d path run every unary rule too (erf of a
    constant failed there: gelu(zeros(4)))."""
    ref_in = np.full(3, value, F32)
    cases = []
    with np.errstate(all="ignore"):
        for name, ref in UNARY.items():
            cases.append((f"{name}(full)", getattr(torch.full((3,), value), name)(), ref(ref_in)))
            cases.append((f"{name}(0-d)", getattr(torch.tensor(value), name)(),
                          ref(np.array(value, F32))))
        cases.append(("gelu(zeros)", torch.nn.functional.gelu(torch.zeros(4) + value),
                      np.full(4, value, F32) * (1 + _erf(np.full(4, value / math.sqrt(2), F32)))
                      / 2))
    check_all(cases, rtol=1e-5, atol=1e-6)


def test_no_bool_kernels_where_pytorch_has_none():
    b = torch.tensor([True, False])
    for name, kernel in (("abs", "abs_cpu"), ("floor", "floor_vml_cpu"),
                         ("ceil", "ceil_vml_cpu"), ("round", "round_vml_cpu"),
                         ("trunc", "trunc_vml_cpu")):
        with pytest.raises(NotImplementedError, match=f'"{kernel}" not implemented for \'Bool\''):
            getattr(b, name)()
    for name in ("argmax", "argmin"):
        with pytest.raises(RuntimeError, match=f"{name}\\(\\): does not support bool input"):
            getattr(b, name)()
    for fn, kernel in ((torch.softmax, "softmax"), (torch.log_softmax, "log_softmax")):
        with pytest.raises(NotImplementedError,
                           match=f'"{kernel}_lastdim_kernel_impl" not implemented for \'Long\''):
            fn(torch.tensor([1, 2]), 0)
        with pytest.raises(NotImplementedError,
                           match=f'"{kernel}_kernel_impl" not implemented for \'Bool\''):
            fn(torch.tensor([[True, False]]), 0)
        # with a dtype, integers are computed in it
        np.testing.assert_allclose(fn(torch.tensor([1, 2]), 0, dtype=torch.float64).numpy(),
                                   fn(torch.tensor([1.0, 2.0], dtype=torch.float64), 0).numpy())


def test_round_half_to_even_and_decimals(backend):
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1.25, -2.675, 0.0], F32)
    x = torch.tensor(v)
    check_all([("round", x.round(), np.round(v)),
               ("round(decimals=1)", x.round(decimals=1), np.round(v, 1)),
               ("floor", x.floor(), np.floor(v)), ("trunc", x.trunc(), np.trunc(v))])


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "int8", "int16", "bool"])
def test_unary_integer_and_bool_inputs(backend, dtype, rng):
    a = (rng.random((3, 4)) > 0.5) if dtype == "bool" else \
        rng.integers(0 if dtype == "uint8" else -9, 10, (3, 4)).astype(dtype)
    x = torch.tensor(a)
    d = getattr(torch, dtype)
    f = a.astype(F32)
    with np.errstate(all="ignore"):
        cases = [("exp", x.exp(), np.exp(f), torch.float32),
                 ("sqrt", x.sqrt(), np.sqrt(f), torch.float32),
                 ("sigmoid", x.sigmoid(), 1 / (1 + np.exp(-f)), torch.float32),
                 ("reciprocal", x.reciprocal(), 1 / f, torch.float32),
                 ("isnan", x.isnan(), np.zeros(a.shape, bool), torch.bool),
                 ("isfinite", x.isfinite(), np.ones(a.shape, bool), torch.bool),
                 ("logical_not", x.logical_not(), ~a.astype(bool), torch.bool)]
    if dtype != "bool":
        cases += [("abs", x.abs(), np.abs(a), d), ("sign", x.sign(), np.sign(a), d),
                  ("floor", x.floor(), a, d), ("square", x.square(), np.square(a), d),
                  ("relu", x.relu(), np.maximum(a, 0), d)]
        if dtype != "uint8":
            cases.append(("neg", -x, -a, d))
    check_all(cases, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype,tol", [("float16", 2e-3), ("bfloat16", 1e-2), ("float64", 1e-12)])
def test_unary_other_floats(backend, dtype, tol, rng):
    a = rng.uniform(0.1, 3, (3, 4)).astype(getattr(torch, dtype).np)
    x = torch.tensor(a)
    cases = [(n, getattr(x, n)(), UNARY[n](a), getattr(torch, dtype))
             for n in ("neg", "exp", "log", "sqrt", "rsqrt", "sin", "tanh", "sigmoid", "erf",
                       "floor", "reciprocal", "square", "expm1", "log1p")]
    check_all(cases, rtol=tol, atol=tol)


BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow}


def test_binary_operators_broadcast(backend, rng):
    a = rng.standard_normal((3, 4)).astype(F32)
    b = rng.uniform(0.5, 2, 4).astype(F32) * rng.choice([-1, 1], 4).astype(F32)
    c = rng.standard_normal((3, 1)).astype(F32)
    x, y, z = torch.tensor(a), torch.tensor(b), torch.tensor(c)
    cases = []
    with np.errstate(all="ignore"):
        for name, op in BINARY.items():
            base = np.abs(a) if name == "**" else a
            xb = x.abs() if name == "**" else x
            zb = z.abs() if name == "**" else z
            cases += [(f"x {name} y", op(xb, y), op(base, b), torch.float32),
                      (f"z {name} y", op(zb, y), op(np.abs(c) if name == "**" else c, b)),
                      (f"x {name} 1.5", op(xb, 1.5), op(base, F32(1.5))),
                      (f"x {name} 2", op(xb, 2), op(base, F32(2))),
                      (f"3 {name} y", op(3, y), op(F32(3), b)),
                      (f"-2.5 {name} y", op(-2.5, y) if name != "**" else op(2.5, y),
                       op(F32(-2.5), b) if name != "**" else op(F32(2.5), b))]
    cases += [("add alpha", torch.add(x, y, alpha=2), a + 2 * b),
              ("sub alpha", x.sub(y, alpha=0.5), a - 0.5 * b),
              ("div trunc", x.div(y, rounding_mode="trunc"), np.trunc(a / b)),
              ("div floor", torch.div(x, y, rounding_mode="floor"), np.floor_divide(a, b)),
              ("true_divide", torch.true_divide(x, y), a / b),
              ("remainder", torch.remainder(x, -0.7), np.remainder(a, F32(-0.7))),
              ("fmod", torch.fmod(x, y), np.fmod(a, b))]
    check_all(cases, rtol=2e-5, atol=1e-5)


def test_floor_divide_is_pythons(backend):
    a = np.array([1.0, -1.0, 7.0, np.inf, 0.0, 5.0, -7.5], F32)
    b = np.array([0.1, 0.1, 0.7, 0.3, -2.0, 0.0, 2.0], F32)
    x, y = torch.tensor(a), torch.tensor(b)
    with np.errstate(all="ignore"):
        check_all([("//", x // y, np.floor_divide(a, b)), ("%", x % y, np.remainder(a, b))])


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8"])
def test_integer_arithmetic(backend, dtype, rng):
    lo = 0 if dtype == "uint8" else -20
    a = rng.integers(lo, 20, (3, 4)).astype(dtype)
    b = rng.integers(1, 6, 4).astype(dtype)
    if dtype != "uint8":
        b = b * rng.choice([-1, 1], 4).astype(dtype)
    x, y = torch.tensor(a), torch.tensor(b)
    d = getattr(torch, dtype)
    cases = [("+", x + y, a + b, d), ("-", x - y, a - b, d), ("*", x * y, a * b, d),
             ("/", x / y, a.astype(F32) / b.astype(F32), torch.float32),
             ("//", x // y, np.floor_divide(a, b), d), ("%", x % y, np.remainder(a, b), d),
             ("** 2", x ** 2, a ** 2, d), ("+ 3", x + 3, a + dtype_cast(3, dtype), d),
             ("* 2.5 -> float", x * 2.5, a.astype(F32) * F32(2.5), torch.float32),
             ("/ 2", x / 2, a.astype(F32) / 2, torch.float32),
             ("div trunc", x.div(y, rounding_mode="trunc"),
              np.trunc(a.astype(np.float64) / b).astype(dtype), d),
             ("fmod", x.fmod(y), np.fmod(a, b), d),
             ("maximum", torch.maximum(x, y), np.maximum(a, b), d),
             ("clamp", x.clamp(2, 9), np.clip(a, 2, 9), d)]
    check_all(cases)


def dtype_cast(v, dtype):
    return np.array(v).astype(dtype)


def test_python_int_scalars_wrap_into_small_ints(backend):
    u = np.array([0, 1, 200, 255], np.uint8)
    i = np.array([-128, -1, 0, 127], np.int8)
    x, y = torch.tensor(u), torch.tensor(i)
    check_all([("uint8 - 1", x - 1, (u.astype(np.int64) - 1).astype(np.uint8), torch.uint8),
               ("uint8 + -3", x + (-3), (u.astype(np.int64) - 3).astype(np.uint8)),
               ("uint8 * 300", x * 300, (u.astype(np.int64) * 300).astype(np.uint8)),
               ("int8 + 300", y + 300, (i.astype(np.int64) + 300).astype(np.int8), torch.int8),
               ("-3 / uint8", -3 / (x + 1), F32(-3) / (u + 1).astype(F32), torch.float32)])


def test_comparisons_and_logical(backend, data):
    a, b, c = data
    x, y, z = torch.tensor(a), torch.tensor(b), torch.tensor(c)
    m = np.array([[True, False, True, False]] * 3)
    k = torch.tensor(m)
    cases = []
    for name, op in {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
                     ">": operator.gt, ">=": operator.ge}.items():
        cases += [(f"x {name} y", op(x, y), op(a, b), torch.bool),
                  (f"x {name} 0.5", op(x, 0.5), op(a, F32(0.5)), torch.bool),
                  (f"0.5 {name} x", op(0.5, x), op(F32(0.5), a), torch.bool)]
    cases += [("eq", torch.eq(x, z), a == c), ("ne", x.ne(z), a != c), ("lt", x.lt(y), a < b),
              ("le", torch.le(x, 0), a <= 0), ("gt", x.gt(z), a > c), ("ge", x.ge(y), a >= b),
              ("logical_and", torch.logical_and(x > 0, k), (a > 0) & m, torch.bool),
              ("logical_or", x.logical_or(z), (a != 0) | (c != 0), torch.bool),
              ("logical_not", torch.logical_not(k), ~m),
              ("logical_xor", torch.logical_xor(k, y > 0), m ^ (b > 0)),
              ("&", k & (x > 0), m & (a > 0)), ("|", k | (y < 0), m | (b < 0)),
              ("~", ~k, ~m), ("^", k ^ True, ~m)]
    check_all(cases)


def test_clamp_minmax_where_lerp(backend, data):
    a, b, c = data
    x, y, z = torch.tensor(a), torch.tensor(b), torch.tensor(c)
    m = a > 0
    w = F32([0.2, 0.6, 1.0, -1.0])
    with np.errstate(all="ignore"):
        cases = [("clamp", x.clamp(-0.5, 0.5), np.clip(a, -0.5, 0.5)),
                 ("clamp min", torch.clamp(x, min=0.1), np.maximum(a, F32(0.1))),
                 ("clamp max", x.clamp(max=-0.1), np.minimum(a, F32(-0.1))),
                 ("clamp tensors", x.clamp(z, y), np.minimum(np.maximum(a, c), b)),
                 ("clamp min > max", x.clamp(1, -1), np.full(a.shape, -1, F32)
                  + np.where(np.isnan(a), np.nan, 0)),
                 ("clip", torch.clip(x, -1, 1), np.clip(a, -1, 1)),
                 ("maximum", torch.maximum(x, y), np.maximum(a, b)),
                 ("minimum", x.minimum(z), np.minimum(a, c)),
                 ("max(a, b)", x.max(y), np.maximum(a, b)),
                 ("min(a, b)", torch.min(x, y), np.minimum(a, b)),
                 ("where", torch.where(x > 0, x, y), np.where(m, a, b)),
                 ("where scalar", torch.where(x > 0, x, 0.5), np.where(m, a, F32(0.5))),
                 ("where scalar first", torch.where(x > 0, 1, x), np.where(m, F32(1), a)),
                 ("where scalars", torch.where(x > 0, 1.0, 0.0), np.where(m, 1, 0).astype(F32),
                  torch.float32),
                 ("where int scalars", torch.where(x > 0, 2, 3), np.where(m, 2, 3), torch.int64),
                 ("Tensor.where", x.where(x > 0, z), np.where(m, a, c)),
                 ("lerp", x.lerp(y, 0.3), a + F32(0.3) * (b - a)),
                 ("lerp w>=0.5", torch.lerp(x, y, 0.75), b - (b - a) * F32(0.25)),
                 ("lerp tensor w", torch.lerp(z, y, torch.tensor(w)),
                  np.where(np.abs(w) < 0.5, c + w * (b - c), b - (b - c) * (1 - w))),
                 ("nan_to_num", x.nan_to_num(),
                  np.nan_to_num(a, posinf=np.finfo(F32).max, neginf=np.finfo(F32).min)),
                 ("nan_to_num args", torch.nan_to_num(x, nan=1.0, posinf=2.0, neginf=-2.0),
                  np.nan_to_num(a, nan=1.0, posinf=2.0, neginf=-2.0))]
    check_all(cases, rtol=1e-5, atol=1e-6)


def _layouts(a):
    """Equal-valued tensors with different memory layouts: contiguous, permuted, strided slice,
    flipped, and expanded rows."""
    return {
        "contiguous": torch.tensor(a),
        "permuted": torch.tensor(np.ascontiguousarray(a.T)).permute(1, 0),
        "transposed": torch.tensor(np.ascontiguousarray(a.T)).t(),
        "narrowed": torch.tensor(np.concatenate([a, a, a], 1)).narrow(1, a.shape[1], a.shape[1]),
        "flipped": torch.tensor(a[::-1, ::-1].copy()).flip(0, 1),
        "moved": torch.tensor(np.ascontiguousarray(a.T)).movedim(0, 1),
    }


def test_noncontiguous_inputs(backend, rng):
    a = rng.standard_normal((3, 4)).astype(F32)
    b = rng.standard_normal(4).astype(F32)
    row = torch.tensor(b).unsqueeze(0).expand(3, 4)      # an expanded operand
    col = torch.tensor(b[:3].copy()).reshape(3, 1).expand_as(torch.tensor(a))
    cases = []
    for name, x in _layouts(a).items():
        assert x.shape == (3, 4)
        cases += [(f"{name}: x*2+1", x * 2 + 1, a * 2 + 1),
                  (f"{name}: fused", ((x + row) * col - 1).relu().exp().clamp(max=5),
                   np.minimum(np.exp(np.maximum((a + b) * b[:3, None] - 1, 0)), 5)),
                  (f"{name}: where", torch.where(x > 0, x, row), np.where(a > 0, a, b)),
                  (f"{name}: x + x.t().t()", x + x.t().t(), a + a)]
    check_all(cases, rtol=1e-5, atol=1e-6)


def test_zero_dim_and_empty(backend):
    s = torch.tensor(2.5)
    e = torch.zeros(0, 4)
    v = np.array([1.0, -2.0, 3.0, 4.0], F32)
    x = torch.tensor(v)
    cases = [("0-d + 0-d", s + s, np.float32(5.0)), ("0-d exp", s.exp(), np.exp(F32(2.5))),
             ("0-d * vec", s * x, F32(2.5) * v), ("vec - 0-d", x - s, v - F32(2.5)),
             ("0-d cmp", s > 1, np.bool_(True)), ("0-d where", torch.where(s > 3, s, 0.0),
                                                  np.float32(0.0)),
             ("empty + row", e + x, np.zeros((0, 4), F32)), ("empty exp", e.exp(),
                                                             np.zeros((0, 4), F32)),
             ("empty cmp", e > 0, np.zeros((0, 4), bool)),
             ("empty * 0-d", e * s, np.zeros((0, 4), F32))]
    check_all(cases)
    assert (s + s).shape == () and (e + x).shape == (0, 4)


# ------------------------------------------------------------------------------ in-place ops
def test_inplace_ops(backend, rng):
    a = rng.standard_normal((3, 4)).astype(F32)
    b = rng.standard_normal(4).astype(F32)
    ops = {
        "add_": (lambda x: x.add_(torch.tensor(b)), a + b),
        "add_ alpha": (lambda x: x.add_(torch.tensor(b), alpha=2), a + 2 * b),
        "sub_": (lambda x: x.sub_(0.5), a - F32(0.5)),
        "mul_": (lambda x: x.mul_(torch.tensor(b)), a * b),
        "div_": (lambda x: x.div_(2), a / 2),
        "zero_": (lambda x: x.zero_(), np.zeros_like(a)),
        "fill_": (lambda x: x.fill_(3), np.full_like(a, 3)),
        "fill_ 0-d tensor": (lambda x: x.fill_(torch.tensor(2.5)), np.full_like(a, 2.5)),
        "clamp_": (lambda x: x.clamp_(-0.5, 0.5), np.clip(a, -0.5, 0.5)),
        "copy_ broadcast": (lambda x: x.copy_(torch.tensor(b)), np.broadcast_to(b, a.shape)),
        "copy_ int": (lambda x: x.copy_(torch.tensor([1, 2, 3, 4])),
                      np.broadcast_to(F32([1, 2, 3, 4]), a.shape)),
        "+=": (lambda x: x.__iadd__(2), a + 2),
        "*= tensor": (lambda x: x.__imul__(torch.tensor(b)), a * b),
    }
    cases = []
    for name, (fn, ref) in ops.items():
        x = torch.tensor(a)
        out = fn(x)
        assert out is x, name
        cases.append((name, x, ref, torch.float32))
    x = torch.tensor(a)
    x += 1
    x *= 2
    x -= torch.tensor(b)
    x /= 4
    cases.append(("augmented chain", x, ((a + 1) * 2 - b) / 4))
    i = torch.tensor([1, 2, 3])
    i.add_(True)
    i.mul_(2)
    cases.append(("int add_ mul_", i, np.array([4, 6, 8]), torch.int64))
    f = torch.tensor(a)
    f.add_(torch.tensor([1, 2, 3, 4]))
    cases.append(("float add_ int", f, a + F32([1, 2, 3, 4]), torch.float32))
    check_all(cases)


def test_inplace_write_visible_through_views(backend, rng):
    a = rng.standard_normal((3, 4)).astype(F32)
    cases = []
    # the view sees writes to its base
    x = torch.tensor(a)
    v = x.transpose(0, 1)
    n = x.narrow(1, 1, 2)
    before = v * 1
    x.add_(1)
    cases += [("transpose after base add_", v, (a + 1).T),
              ("narrow after base add_", n, (a + 1)[:, 1:3]),
              ("value taken before the write", before, a.T)]
    check_all(cases)
    x.mul_(2)
    cases = [("transpose after two writes", v, ((a + 1) * 2).T)]
    # the base sees writes to the view
    x = torch.tensor(a)
    x.narrow(0, 1, 2).zero_()
    r = a.copy()
    r[1:3] = 0
    cases.append(("narrow zero_", x, r))
    x = torch.tensor(a)
    x.t().narrow(0, 1, 2).fill_(9)
    r = a.copy()
    r[:, 1:3] = 9
    cases.append(("t().narrow().fill_", x, r))
    x = torch.tensor(a)
    s = x.narrow(0, 0, 2)
    w = x.narrow(0, 1, 2)     # overlapping sibling view
    s.add_(1)
    r = a.copy()
    r[0:2] += 1
    cases += [("base after view add_", x, r), ("sibling view", w, r[1:3])]
    x = torch.tensor(a)
    parts = x.split(2, 1)
    parts[1].mul_(0)
    x.unbind(0)[2].fill_(-1)
    x.chunk(3, 0)[0].add_(100)
    r = a.copy()
    r[:, 2:4] = 0
    r[2] = -1
    r[0] += 100
    cases.append(("split/unbind/chunk writes", x, r))
    x = torch.tensor(a)
    x.reshape(12).narrow(0, 4, 4).sub_(5)
    x.unsqueeze(0).squeeze(0).permute(1, 0).narrow(1, 2, 1).mul_(10)
    r = a.copy()
    r[1] -= 5
    r[2] *= 10
    cases.append(("reshape/permute chains", x, r))
    x = torch.tensor(a)
    x.narrow(1, 1, 3).narrow(1, 1, 2).copy_(torch.tensor([7.0, 8.0]))
    r = a.copy()
    r[:, 2:4] = [7, 8]
    cases.append(("view of view copy_", x, r))
    x = torch.tensor(a)
    x.numpy()                  # realized before the views are taken
    v = x.t()
    v.numpy()
    v.add_(1)
    cases.append(("realized view write", x, a + 1))
    check_all(cases)


def test_copies_do_not_alias(backend, rng):
    a = rng.standard_normal((3, 4)).astype(F32)
    x = torch.tensor(a)
    c = x.clone()
    r = x.t().reshape(12)       # not expressible as a view: a copy, as in PyTorch
    k = x.t().contiguous()      # a copy
    f = x.flip(0)               # flip copies in PyTorch
    c.add_(1)
    r.add_(1)
    k.add_(1)
    f.add_(1)
    check_all([("x untouched", x, a), ("clone", c, a + 1), ("t().reshape", r, a.T.reshape(12) + 1),
               ("t().contiguous", k, a.T + 1), ("flip", f, a[::-1] + 1)])
    x.zero_()
    check_all([("copies keep their values", r, a.T.reshape(12) + 1), ("x", x, np.zeros_like(a))])


# ------------------------------------------------------------------------------ errors
def test_errors_at_the_call():
    x, y = torch.zeros(2, 3), torch.zeros(4)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of "
                                           r"tensor b \(4\) at non-singleton dimension 1"):
        x + y
    with pytest.raises(RuntimeError, match=r"size of tensor a \(5\) must match the size of "
                                           r"tensor b \(4\) at non-singleton dimension 0"):
        torch.zeros(5, 2, 3) * torch.zeros(4, 1, 1)
    with pytest.raises(RuntimeError, match="must match the size of tensor b"):
        torch.where(x > 0, y, 0.0)
    with pytest.raises(RuntimeError, match="shape mismatch: objects cannot be broadcast"):
        torch.broadcast_shapes((2, 3), (4,))
    with pytest.raises(RuntimeError, match="Subtraction.*two bool tensors"):
        torch.tensor([True]) - torch.tensor([False])
    with pytest.raises(RuntimeError, match="Subtraction.*bool tensor"):
        torch.tensor([True]) - 1
    with pytest.raises(RuntimeError, match="Negation.*bool"):
        -torch.tensor([True])
    with pytest.raises(RuntimeError, match="Integers to negative integer powers"):
        torch.tensor([2, 3]) ** -1
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):
        torch.tensor([1, 2]).add_(1.5)
    with pytest.raises(RuntimeError, match="output with shape"):
        torch.zeros(3).copy_(torch.zeros(2, 3))
    with pytest.raises(RuntimeError, match="where expected condition to be a boolean"):
        torch.where(torch.tensor([1, 0]), x, 0)
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max'"):
        x.clamp()
    with pytest.raises(TypeError):
        x + "a"
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        torch.zeros(1, 3).expand(2, 3).add_(1)


def test_float32_tanh_is_within_a_few_ulp_everywhere():
    # compiled float32 tanh is a rational approximation (the C dialect's lt_tanhf): compare it with
    # float64 tanh over a dense sweep, the saturation region and the special values
    x = np.concatenate([np.linspace(-12, 12, 2_000_001, dtype=np.float32),
                        np.geomspace(1e-30, 1e-2, 10_001).astype(np.float32),
                        np.float32([0.0004, 0.00039999, 7.9988, 8.5, 9.0, 9.0001, 3e38])])
    x = np.concatenate([x, -x])
    got = torch.tensor(x).tanh().numpy()
    ref = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - ref) / ulp) <= 8
    big = np.abs(x) > 9
    np.testing.assert_array_equal(got[big], np.sign(x[big]))
    special = torch.tensor(np.float32([np.nan, np.inf, -np.inf, -0.0])).tanh().numpy()
    assert np.isnan(special[0]) and special[1] == 1 and special[2] == -1
    assert special[3] == 0 and np.signbit(special[3])
