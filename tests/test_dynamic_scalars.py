"""Scalars that change between realizes are plan inputs, not constants (engine/dynamic.py): a
loop over new Python scalars builds two plans (the first value's, then one taking the scalar
as an input) and compiles nothing after its second value; scalars that keep their value stay
constants."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.engine import dynamic, plan

F32 = np.float32


def _fresh_size() -> int:
    """A length no earlier test used: a structure neither the plans nor the disk cache hold."""
    return int(np.random.default_rng().integers(10_000, 20_000))


def _builds(stats: dict) -> int:
    return stats["plans_built"]


def _scalar_plans() -> list:
    return [p for k, p in plan.PLANS.items() if k[1] and k[1][0] == "scalars"]


def test_a_new_scalar_each_step_compiles_twice_in_all():
    n = _fresh_size()
    xn = np.random.default_rng(0).standard_normal(n).astype(F32)
    x = torch.tensor(xn)
    debug.reset_stats()
    got = []
    for i in range(50):
        got.append((x * (1 + i * 1e-3)).sum().item())
        if i == 1:
            after_two = debug.stats()
    stats = debug.stats()
    assert _builds(after_two) == 2 and after_two["kernels_compiled"] <= 2
    assert _builds(stats) == 2                       # no plan built after the second value
    assert stats["kernels_compiled"] == after_two["kernels_compiled"]
    ref = [float((xn.astype(np.float64) * np.float64(F32(1 + i * 1e-3))).sum())
           for i in range(50)]
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_scalars_that_keep_their_value_stay_constants():
    n = _fresh_size()
    xn = np.random.default_rng(1).standard_normal(n).astype(F32)
    x = torch.tensor(xn)
    before = set(map(id, _scalar_plans()))
    for i in range(4):
        y = ((x * 2.5 + i) ** 2).sum()     # 2.5 and the exponent never change; i does
        np.testing.assert_allclose(y.item(), float(((xn * F32(2.5) + F32(i)) ** 2).sum()),
                                   rtol=1e-5)
    mine = [p for p in _scalar_plans() if id(p) not in before]
    assert len(mine) == 1
    # the plan's inputs: x and the one scalar that changed
    assert mine[0].n_inputs == 2
    src = "\n".join(k.source for k in mine[0].schedule.kernels)
    assert "2.5" in src                 # still a constant in the code


def test_each_scalar_that_changes_adds_at_most_one_plan():
    n = _fresh_size()
    x = torch.randn(n)
    debug.reset_stats()
    for i in range(6):
        a = 1.5 + (i >= 1) * i          # changes from the second step on
        b = 2.0 + (i >= 3) * i          # changes from the fourth
        (x * a + b).sum().item()
    assert _builds(debug.stats()) == 3  # the constants' plan, a varying, a and b varying


@pytest.mark.parametrize("dtype,values", [
    (torch.int32, [3, -7, 11, 0]),
    (torch.int64, [2**40, -5, 9, 1]),
    (torch.float64, [0.1, -2.5, float("inf"), float("nan")]),
    (torch.bool, [True, False, True, False]),
])
def test_scalar_inputs_keep_the_dtype_rules(dtype, values):
    base = np.arange(1, 7).reshape(2, 3)
    t = torch.tensor(base, dtype=dtype)
    for v in values:
        if dtype is torch.bool:
            got = (t | v).numpy()
            ref = base.astype(bool) | v
            np.testing.assert_array_equal(got, ref)
        else:   # (one op each: exactly rounded, whatever the compiler contracts)
            npd = {torch.int32: np.int32, torch.int64: np.int64, torch.float64: np.float64}[dtype]
            with np.errstate(invalid="ignore"):
                np.testing.assert_array_equal((t * v).numpy(), base.astype(npd) * npd(v))
                np.testing.assert_array_equal((t - v).numpy(), base.astype(npd) - npd(v))


def test_a_learning_rate_written_as_a_python_float_compiles_once():
    rng = np.random.default_rng(2)
    wn = rng.standard_normal((5, 3)).astype(F32)
    xn = rng.standard_normal((8, 5)).astype(F32)
    w = torch.tensor(wn, requires_grad=True)
    x = torch.tensor(xn)
    debug.reset_stats()
    for step in range(30):
        lr = 0.1 * 0.95 ** step
        loss = (x @ w).square().mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
        w.grad = None
        # numpy's step
        g = 2 * xn.T @ (xn @ wn) / (8 * 3)
        wn = wn - F32(lr) * g.astype(F32)
        if step == 2:
            early = _builds(debug.stats())
    np.testing.assert_allclose(w.detach().numpy(), wn, rtol=1e-4, atol=1e-6)
    assert _builds(debug.stats()) <= early + 1   # the realize above


def test_off_compiles_a_plan_per_value(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_DYNAMIC_SCALARS", "0")
    x = torch.randn(_fresh_size())
    debug.reset_stats()
    for i in range(4):
        (x * (3 + i)).sum().item()
    assert _builds(debug.stats()) == 4


def test_the_table_of_graph_shapes_does_not_grow_with_steps():
    x = torch.randn(_fresh_size())
    for i in range(3):
        (x - i).abs().sum().item()
    size = len(dynamic.SHAPES)
    for i in range(200):
        (x - i).abs().sum().item()
    assert len(dynamic.SHAPES) == size


def test_split_leaves_out_only_0d_constant_values():
    k = (("B", 0, (5,), "float32", "cpu"),
         (dynamic._CONST, ("1.5", None), (), "float32", ()),
         (dynamic._CONST, ("2.0", None), (3,), "float32", ()),
         (dynamic._CONST, ("7", "cpu"), (), "int64", ()))
    shape, pos, values = dynamic.split(k)
    assert pos == [1, 3] and values == ("1.5", "7")
    assert shape[0] == k[0] and shape[2] == k[2]          # a shaped constant keeps its value
    assert shape[1] == (dynamic._CONST, None, (), "float32", ())
    assert shape[3] == (dynamic._CONST, "cpu", (), "int64", ())
    assert dynamic.value("1.5", torch.float32).dtype == np.float32
    assert dynamic.value("nan", torch.float64) != dynamic.value("nan", torch.float64)
    assert int(dynamic.value("-3", torch.int64)) == -3
    assert bool(dynamic.value("True", torch.bool)) is True
