"""Pointwise functions beyond the primitives (lazytorch/frontend/pointwise.py and the atan/sinh/...
ops): values against numpy on both backends, gradients against finite differences in float64,
special values, dtypes and errors against PyTorch where it is installed."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.compiler import schedule
from tests.helpers import check_all, grad_check

F32 = np.float32


def _arr(rng, shape=(3, 4), lo=-2.0, hi=2.0, dtype=F32):
    return rng.uniform(lo, hi, shape).astype(dtype)


def test_inverse_and_hyperbolic_trig_match_numpy(backend, rng):
    x = _arr(rng, lo=-0.95, hi=0.95)
    big = _arr(rng, lo=1.05, hi=5.0)
    w = _arr(rng, lo=-9.0, hi=9.0)
    t, tb, tw = torch.tensor(x), torch.tensor(big), torch.tensor(w)
    check_all([
        ("asin", torch.asin(t), np.arcsin(x)), ("arcsin", t.arcsin(), np.arcsin(x)),
        ("acos", torch.acos(t), np.arccos(x)), ("atan", torch.atan(tw), np.arctan(w)),
        ("arctan", tw.arctan(), np.arctan(w)), ("sinh", torch.sinh(tw), np.sinh(w)),
        ("cosh", torch.cosh(tw), np.cosh(w)), ("asinh", torch.asinh(tw), np.arcsinh(w)),
        ("acosh", torch.acosh(tb), np.arccosh(big)), ("atanh", torch.atanh(t), np.arctanh(x)),
        ("asin out of range", torch.asin(tb), np.full(big.shape, np.nan, F32)),
        ("int input", torch.atan(torch.tensor([0, 1, -3])), np.arctan([0, 1, -3]).astype(F32),
         torch.float32),
    ], rtol=2e-6, atol=1e-6)


def test_binary_functions_match_numpy(backend, rng):
    a, b = _arr(rng), _arr(rng)
    b[0, 0] = 0.0
    ta, tb = torch.tensor(a), torch.tensor(b)
    e = rng.integers(-3, 4, (3, 4))
    with np.errstate(divide="ignore"):
        xlogy = a * np.log(np.abs(b))
    check_all([
        ("atan2", torch.atan2(ta, tb), np.arctan2(a, b)),
        ("arctan2", ta.arctan2(tb), np.arctan2(a, b)),
        ("hypot", torch.hypot(ta, tb), np.hypot(a, b)),
        ("logaddexp", torch.logaddexp(ta, tb), np.logaddexp(a, b)),
        ("logaddexp2", torch.logaddexp2(ta, tb), np.logaddexp2(a, b)),
        ("xlogy", torch.xlogy(ta, tb.abs()), xlogy),
        ("copysign", torch.copysign(ta, tb), np.copysign(a, b)),
        ("fmax", torch.fmax(ta, tb), np.fmax(a, b)), ("fmin", torch.fmin(ta, tb), np.fmin(a, b)),
        ("float_power", torch.float_power(ta.abs(), tb), np.abs(a).astype(np.float64) ** b,
         torch.float64),
        ("heaviside", torch.heaviside(tb, ta), np.heaviside(b, a)),
        ("ldexp", torch.ldexp(ta, torch.tensor(e)), np.ldexp(a, e)),
        ("rsub", torch.rsub(ta, tb, alpha=2), b - 2 * a),
        ("rsub scalar", torch.rsub(ta, 3), 3 - a),
    ], rtol=2e-6, atol=1e-6)


def test_other_pointwise_functions_match_numpy(backend, rng):
    a = _arr(rng)
    a[0, :3] = [0.0, -0.0, 2.5]
    p = rng.uniform(0.01, 0.99, (3, 4)).astype(F32)
    ta, tp = torch.tensor(a), torch.tensor(p)
    t1, t2 = _arr(rng), _arr(rng, lo=0.5, hi=2.0)
    check_all([
        ("deg2rad", torch.deg2rad(ta), np.deg2rad(a)), ("rad2deg", ta.rad2deg(), np.rad2deg(a)),
        ("frac", torch.frac(ta), a - np.trunc(a)), ("fix", torch.fix(ta), np.fix(a)),
        ("sgn", torch.sgn(ta), np.sign(a)), ("signbit", torch.signbit(ta), np.signbit(a)),
        ("logit", torch.logit(tp), np.log(p / (1 - p))),
        ("logit eps", torch.logit(ta, eps=0.1), np.log(np.clip(a, 0.1, 0.9) /
                                                      (1 - np.clip(a, 0.1, 0.9)))),
        ("sinc", torch.sinc(ta), np.sinc(a)),
        ("clamp_min", torch.clamp_min(ta, 0.5), np.maximum(a, 0.5)),
        ("clamp_max", ta.clamp_max(0.5), np.minimum(a, 0.5)),
        ("positive", torch.positive(ta), a),
        ("addcmul", torch.addcmul(ta, torch.tensor(t1), torch.tensor(t2), value=0.5),
         a + 0.5 * t1 * t2),
        ("addcdiv", ta.addcdiv(torch.tensor(t1), torch.tensor(t2), value=-2),
         a - 2 * t1 / t2),
        ("addcmul int value truncates", torch.addcmul(torch.tensor([1, 2]), torch.tensor([3, 4]),
                                                      torch.tensor([5, 6]), value=1.7),
         np.array([16, 26])),
    ], rtol=2e-6, atol=1e-6)
    inf = torch.tensor([-math.inf, 0.0, math.inf, math.nan])
    check_all([
        ("isneginf", torch.isneginf(inf), [True, False, False, False]),
        ("isposinf", torch.isposinf(inf), [False, False, True, False]),
        ("isreal", torch.isreal(torch.tensor([1, 2])), [True, True]),
        ("isposinf int", torch.isposinf(torch.tensor([1])), [False]),
    ])


def test_special_values():
    inf, nan = math.inf, math.nan
    check_all([
        ("hypot without overflow", torch.hypot(torch.tensor([3e30, 0.0, 1e-30]),
                                               torch.tensor([4e30, 0.0, 1e-30])),
         np.hypot(np.float32([3e30, 0, 1e-30]), np.float32([4e30, 0, 1e-30]))),
        ("hypot inf beats nan", torch.hypot(torch.tensor([inf, nan]), torch.tensor([nan, -inf])),
         [inf, inf]),
        ("logaddexp infinities", torch.logaddexp(torch.tensor([-inf, inf, -inf, 1.0]),
                                                 torch.tensor([-inf, inf, 2.0, nan])),
         [-inf, inf, 2.0, nan]),
        ("logaddexp large", torch.logaddexp(torch.tensor([1000.0]), torch.tensor([1000.0])),
         [1000.0 + math.log(2)]),
        ("xlogy zeros", torch.xlogy(torch.tensor([0.0, 0.0, 0.0, 1.0]),
                                    torch.tensor([0.0, inf, nan, 0.0])), [0.0, 0.0, nan, -inf]),
        ("xlogy scalar x", torch.xlogy(2, torch.tensor([3.0])), [2 * math.log(3)]),
        ("copysign -0", torch.copysign(torch.tensor([1.0, 1.0]), torch.tensor([-0.0, 0.0])),
         [-1.0, 1.0]),
        ("fmax nan", torch.fmax(torch.tensor([nan, 1.0, nan]), torch.tensor([2.0, nan, nan])),
         [2.0, 1.0, nan]),
        ("sinc 0", torch.sinc(torch.tensor([0.0])), [1.0]),
        ("heaviside nan", torch.heaviside(torch.tensor([nan, 0.0]), torch.tensor([7.0, 7.0])),
         [nan, 7.0]),
    ], rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
                                  "atanh", "logit", "sinc", "deg2rad", "frac"])
def test_unary_gradients(name, rng):
    lo, hi = (1.1, 3.0) if name == "acosh" else (-0.9, 0.9)
    x = rng.uniform(lo, hi, (2, 3))
    ref = {"asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh,
           "cosh": np.cosh, "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
           "logit": lambda v: np.log(np.abs(v) / (1 - np.abs(v))), "sinc": np.sinc,
           "deg2rad": np.deg2rad, "frac": lambda v: v - np.trunc(v)}[name]
    fn = getattr(torch, name)
    lt = (lambda t: torch.logit(t.abs())) if name == "logit" else fn
    grad_check(lt, ref, [x])


@pytest.mark.parametrize("name", ["atan2", "hypot", "logaddexp", "logaddexp2", "xlogy",
                                  "copysign", "addcmul", "addcdiv", "ldexp"])
def test_binary_gradients(name, rng):
    a, b = rng.uniform(0.2, 2.0, (2, 3)), rng.uniform(-2.0, 2.0, (2, 3))
    c = rng.uniform(0.5, 2.0, (2, 3))
    cases = {
        "atan2": (torch.atan2, np.arctan2, [a, b], None),
        "hypot": (torch.hypot, np.hypot, [a, b], None),
        "logaddexp": (torch.logaddexp, np.logaddexp, [a, b], None),
        "logaddexp2": (torch.logaddexp2, np.logaddexp2, [a, b], None),
        "xlogy": (torch.xlogy, lambda x, y: x * np.log(y), [b, a], None),
        "copysign": (torch.copysign, np.copysign, [b, a], [0]),
        "addcmul": (lambda x, y, z: torch.addcmul(x, y, z, value=0.3),
                    lambda x, y, z: x + 0.3 * y * z, [a, b, c], None),
        "addcdiv": (lambda x, y, z: torch.addcdiv(x, y, z, value=0.3),
                    lambda x, y, z: x + 0.3 * y / z, [a, b, c], None),
        "ldexp": (torch.ldexp, lambda x, e: x * 2.0 ** e, [b, a], None),
    }
    lt, ref, arrays, wrt = cases[name]
    grad_check(lt, ref, arrays, wrt)


def test_gradients_at_the_points_where_branches_meet():
    """sinc at 0, hypot at (0, 0): 0 (PyTorch's value), not the NaN of a discarded branch."""
    x = torch.tensor([0.0, 0.5], dtype=torch.float64, requires_grad=True)
    torch.sinc(x).sum().backward()
    assert x.grad.numpy()[0] == 0.0 and np.isfinite(x.grad.numpy()).all()
    a = torch.tensor([0.0, 3.0], requires_grad=True)
    b = torch.tensor([0.0, 4.0], requires_grad=True)
    torch.hypot(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 0.6], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 0.8], rtol=1e-6)
    y = torch.tensor([0.0, 2.0], requires_grad=True)
    torch.xlogy(torch.tensor([0.0, 1.0]), y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [0.0, 0.5])


def test_in_place_forms_and_their_dtype_rule():
    x = torch.tensor([0.5, -0.25])
    assert x.atan_() is x
    np.testing.assert_allclose(x.numpy(), np.arctan([0.5, -0.25]), rtol=1e-6)
    y = torch.tensor([1.0, 2.0])
    y.addcmul_(torch.tensor([2.0, 3.0]), torch.tensor([4.0, 5.0]), value=2)
    np.testing.assert_array_equal(y.numpy(), [17.0, 32.0])
    y.clamp_min_(20).hypot_(torch.tensor([0.0, 0.0]))
    np.testing.assert_array_equal(y.numpy(), [20.0, 32.0])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):
        torch.tensor([1, 2]).atan_()


def test_a_chain_of_them_is_one_kernel():
    x = torch.randn(64)
    y = torch.atan2(torch.sinh(x).asinh(), torch.cosh(x)).atan() + torch.hypot(x, x)
    assert len(schedule(y)) == 1


def test_errors():
    with pytest.raises(TypeError, match=r"atan2\(\): argument 'other' \(position 2\) must be "
                                        r"Tensor, not float"):
        torch.atan2(torch.ones(2), 2.0)
    with pytest.raises(NotImplementedError, match="\"hypot_cpu\" not implemented for 'Long'"):
        torch.hypot(torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(NotImplementedError, match="\"logaddexp_cpu\" not implemented for 'Long'"):
        torch.logaddexp(torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(NotImplementedError, match="\"frac_cpu\" not implemented for 'Long'"):
        torch.frac(torch.tensor([1]))
    with pytest.raises(RuntimeError, match="Integer division with addcdiv is no longer"):
        torch.addcdiv(torch.ones(2), torch.tensor([1, 2]), torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="heaviside is not yet implemented for tensors with "
                                           "different dtypes"):
        torch.heaviside(torch.ones(2), torch.ones(2, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="The `\\+` operator, on a bool tensor"):
        torch.positive(torch.tensor([True]))


def test_dtypes_and_values_match_pytorch():
    pt = pytest.importorskip("torch")
    ints = np.array([1, -2, 3])
    f64 = np.array([0.5, -1.5, 2.0])
    cases = [
        ("atan", lambda m, i, f: m.atan(i)), ("sinh", lambda m, i, f: m.sinh(f)),
        ("atan2 int int", lambda m, i, f: m.atan2(i, i)),
        ("atan2 int f64", lambda m, i, f: m.atan2(i, f)),
        ("hypot f32 f64", lambda m, i, f: m.hypot(f.float(), f)),
        ("xlogy int scalar", lambda m, i, f: m.xlogy(i.abs(), 3)),
        ("copysign int", lambda m, i, f: m.copysign(i, -1)),
        ("fmax int", lambda m, i, f: m.fmax(i, i * 2)),
        ("float_power", lambda m, i, f: m.float_power(2, i)),
        ("logit int", lambda m, i, f: m.logit(i.abs())),
        ("deg2rad int", lambda m, i, f: m.deg2rad(i)),
        ("sgn int", lambda m, i, f: m.sgn(i)),
        ("signbit int", lambda m, i, f: m.signbit(i)),
        ("clamp_min int float", lambda m, i, f: m.clamp_min(i, 0.5)),
        ("ldexp", lambda m, i, f: m.ldexp(f, i)),
        ("addcmul mixed", lambda m, i, f: m.addcmul(f, i, f.float(), value=2)),
        ("rsub int", lambda m, i, f: m.rsub(i, 2.5)),
    ]
    for name, fn in cases:
        ours = fn(torch, torch.tensor(ints), torch.tensor(f64))
        ref = fn(pt, pt.tensor(ints), pt.tensor(f64))
        assert str(ours.dtype) == str(ref.dtype), (name, ours.dtype, ref.dtype)
        np.testing.assert_allclose(ours.numpy().astype(np.float64),
                                   ref.numpy().astype(np.float64), rtol=1e-6, err_msg=name)
