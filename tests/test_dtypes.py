"""dtypes: PyTorch's promotion rules, conversions, and results of each dtype vs numpy."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.frontend.tensor import realize_tensors
from tests.conftest import check
from tests.helpers import bf16_round

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
         "float64"]
F32 = np.float32


def T(name: str, shape=(3,)):
    """A tensor of dtype `name` (only its dtype and shape matter for promotion)."""
    return torch.zeros(shape, dtype=getattr(torch, name))


# torch.promote_types, written out from PyTorch's documented rules
PROMOTE = {
    ("uint8", "int8"): "int16", ("uint8", "int16"): "int16", ("uint8", "bool"): "uint8",
    ("int8", "int32"): "int32", ("int32", "int64"): "int64", ("bool", "int8"): "int8",
    ("int64", "float16"): "float16", ("uint8", "float32"): "float32",
    ("float16", "float32"): "float32", ("float32", "float64"): "float64",
    ("bool", "float16"): "float16", ("int64", "float32"): "float32",
}


@pytest.mark.parametrize("pair", list(PROMOTE))
def test_promote_types(pair):
    a, b = pair
    want = getattr(torch, PROMOTE[pair])
    assert torch.promote_types(getattr(torch, a), getattr(torch, b)) == want
    assert torch.promote_types(getattr(torch, b), getattr(torch, a)) == want
    assert (T(a) + T(b)).dtype == want
    assert (T(b) * T(a)).dtype == want


def test_promotion_with_scalars_and_zero_dim():
    i, f, h, u, b = T("int64"), T("float32"), T("float16"), T("uint8"), T("bool")
    assert (i + 2.5).dtype == torch.float32            # int tensor + float -> default float
    assert (2.5 * i).dtype == torch.float32
    assert (i + 2).dtype == torch.int64
    assert (u + 1000).dtype == torch.uint8             # a Python int never widens an int tensor
    assert (b + 1).dtype == torch.int64 and (b + 1.0).dtype == torch.float32
    assert (b & True).dtype == torch.bool
    assert (h + 2.0).dtype == torch.float16            # float16 tensor + Python float stays half
    assert (h * 3).dtype == torch.float16
    assert (i / 2).dtype == torch.float32 and (i / i).dtype == torch.float32   # true division
    assert (i // 2).dtype == torch.int64 and (i % 2).dtype == torch.int64
    assert (i ** 2).dtype == torch.int64 and (i ** 0.5).dtype == torch.float32
    assert (T("int32") / T("int8")).dtype == torch.float32
    assert (T("float64") / 2).dtype == torch.float64
    # 0-d tensors: outrank scalars, but not dimensioned tensors of the same category
    assert (T("float32") + torch.tensor(1.0, dtype=torch.float64)).dtype == torch.float32
    assert (T("int32") + torch.tensor(1, dtype=torch.int64)).dtype == torch.int32
    assert (T("int32") + torch.tensor(1.0, dtype=torch.float64)).dtype == torch.float64
    assert (T("uint8") + torch.tensor(1, dtype=torch.int8)).dtype == torch.uint8
    assert (torch.tensor(1, dtype=torch.int8) + torch.tensor(1, dtype=torch.int16)).dtype == \
        torch.int16
    assert (torch.tensor(1.0, dtype=torch.float16) + 1.0).dtype == torch.float16
    assert (torch.tensor(1) + 1.0).dtype == torch.float32
    # comparisons and logical ops give bool
    for x in (i, f, h, u, b):
        assert (x < 1).dtype == torch.bool and (x == x).dtype == torch.bool
        assert x.isnan().dtype == torch.bool and x.logical_not().dtype == torch.bool
    assert torch.logical_and(i, f).dtype == torch.bool
    # reductions of bool and int sum to int64; float sums keep their type
    for name in ("bool", "uint8", "int8", "int16", "int32", "int64"):
        assert T(name).sum().dtype == torch.int64
        assert T(name).cumsum(0).dtype == torch.int64
        assert T(name).prod().dtype == torch.int64
    for name in ("float16", "float32", "float64"):
        assert T(name).sum().dtype == getattr(torch, name)
        assert T(name).mean().dtype == getattr(torch, name)
    assert T("int32").amax().dtype == torch.int32 and T("int8").argmax().dtype == torch.int64
    # float-only ops lift integers to the default float
    assert T("int64").exp().dtype == torch.float32 and T("bool").sigmoid().dtype == torch.float32
    assert T("float16").exp().dtype == torch.float16
    assert torch.where(T("bool"), T("int8"), T("float16")).dtype == torch.float16
    assert torch.where(T("bool"), T("int32"), 2.5).dtype == torch.float32
    assert torch.result_type(T("int32"), 1.0) == torch.float32


def test_promotion_matches_torch_everywhere():
    """Every dtype pair, dimensioned and 0-d, against PyTorch itself (if installed)."""
    real = pytest.importorskip("torch")
    for a, b in itertools.product(NAMES, NAMES):
        for sa, sb in (((2,), (2,)), ((), (2,)), ((2,), ()), ((), ())):
            got = (torch.zeros(sa, dtype=getattr(torch, a))
                   * torch.zeros(sb, dtype=getattr(torch, b))).dtype
            want = (real.zeros(sa, dtype=getattr(real, a))
                    * real.zeros(sb, dtype=getattr(real, b))).dtype
            assert str(got) == str(want), (a, sa, b, sb)
        for s in (True, 3, 2.5):
            got = (torch.zeros(2, dtype=getattr(torch, a)) * s).dtype
            want = (real.zeros(2, dtype=getattr(real, a)) * s).dtype
            assert str(got) == str(want), (a, s)


CONVERSIONS = {"float": "float32", "double": "float64", "half": "float16", "int": "int32",
               "long": "int64", "bool": "bool", "short": "int16", "char": "int8",
               "byte": "uint8", "bfloat16": "bfloat16"}


def test_conversions(backend, rng):
    src = {"float32": np.array([1.7, -1.7, 2.5, -0.0, 0.0, 100.9], F32),
           "float64": np.array([1.7, -1.7, 2.5, 0.0, 3.0, 126.2]),
           "int64": np.array([-3, 0, 1, 2, 100, 127]), "bool": np.array([1, 0, 1, 0, 0, 1], bool),
           "uint8": np.array([0, 1, 7, 200, 255, 3], np.uint8),
           "float16": np.array([0.5, -1.5, 3.25, 0, 7, 65], np.float16),
           "bfloat16": np.array([0.5, -1.5, 3.25, -0.0, -7, 65], F32)}   # bfloat16 values
    cases = []
    for name, arr in src.items():
        x = torch.tensor(arr, dtype=getattr(torch, name))
        for meth, target in CONVERSIONS.items():
            if name == "uint8" and target == "int8":
                ref = arr.astype(np.int8)                     # wraps, as in PyTorch
            elif target == "bfloat16":                        # through float32, as PyTorch
                ref = bf16_round(arr.astype(F32))
            elif arr.dtype.kind == "f" and target != "bool" and np.dtype(target).kind in "iu":
                ref = np.trunc(arr).astype(target)            # float -> int truncates toward 0
            else:
                ref = arr.astype(target)
            d = getattr(torch, target)
            cases += [(f"{name}.{meth}()", getattr(x, meth)(), ref, d),
                      (f"{name}.to({target})", x.to(d), ref, d),
                      (f"{name}.to(dtype={target})", x.to(dtype=d), ref, d),
                      (f"{name}.type_as({target})", x.type_as(torch.zeros(1, dtype=d)), ref, d)]
    realize_tensors([c[1] for c in cases])
    for name, t, ref, d in cases:
        assert t.dtype == d, name
        check(t, ref, rtol=1e-3, atol=1e-3)


def test_to_is_identity_for_same_dtype():
    x = torch.tensor([1.0, 2.0])
    assert x.to(torch.float32) is x and x.float() is x and x.to("cpu") is x
    assert x.to(torch.float32, copy=True) is not x
    assert x.to("cpu", torch.float64).dtype == torch.float64
    assert x.type(torch.int64).dtype == torch.int64 and x.type() == "torch.FloatTensor"
    assert x.to(torch.zeros(1, dtype=torch.int8)).dtype == torch.int8


@pytest.mark.parametrize("name", NAMES)
def test_results_of_each_dtype(backend, rng, name):
    if name == "bool":
        a, b = rng.random((3, 4)) > 0.5, rng.random(4) > 0.5
    elif name == "uint8":
        a, b = rng.integers(0, 16, (3, 4)).astype(name), rng.integers(1, 16, 4).astype(name)
    elif name.startswith("int"):
        a, b = rng.integers(-9, 10, (3, 4)).astype(name), rng.integers(1, 9, 4).astype(name)
    elif name == "bfloat16":
        # numpy has no bfloat16: float32 data holding bfloat16 values, references in float32
        a, b = bf16_round(rng.standard_normal((3, 4))), bf16_round(rng.uniform(0.5, 2, 4))
    else:
        a = rng.standard_normal((3, 4)).astype(name)
        b = rng.uniform(0.5, 2, 4).astype(name)
    d = getattr(torch, name)
    x, y = torch.tensor(a, dtype=d), torch.tensor(b, dtype=d)
    tol = {"float16": 2e-3, "bfloat16": 1e-2}.get(name, 1e-5)
    acc = np.int64 if a.dtype.kind in "biu" else a.dtype
    cases = [("==", x == y, a == b, torch.bool), ("<", x < y, a < b, torch.bool),
             ("maximum", torch.maximum(x, y), np.maximum(a, b), d),
             ("where", torch.where(x > y, x, y), np.where(a > b, a, b), d),
             ("sum", x.sum(), a.sum(dtype=acc), d if a.dtype.kind == "f" else torch.int64),
             ("sum(0)", x.sum(0), a.sum(0, dtype=acc)),
             ("cumsum(1)", x.cumsum(1), np.cumsum(a, 1, dtype=acc)),
             ("flip.t", x.flip(0).t(), a[::-1].T, d),
             ("expand", y.expand(3, 4), np.broadcast_to(b, (3, 4)), d)]
    if name != "bool":
        cases += [("+", x + y, a + b, d), ("*", x * y, a * b, d),
                  ("-", x - y, a - b, d), ("amax(1)", x.amax(1), a.max(1), d),
                  ("max(0).indices", x.max(0).indices, a.argmax(0), torch.int64),
                  ("abs", x.abs(), np.abs(a), d), ("clamp", x.clamp(1, 5), np.clip(a, 1, 5), d)]
    else:
        cases += [("+ (or)", x + y, a | b, d), ("* (and)", x * y, a & b, d),
                  ("amax(1)", x.amax(1), a.max(1), d), ("any(1)", x.any(1), a.any(1), d)]
    if a.dtype.kind == "f":
        cases += [("/", x / y, a / b, d), ("exp", x.exp(), np.exp(a), d),
                  ("mean(1)", x.mean(1), a.astype(np.float64).mean(1), d)]
    else:
        cases += [("/ -> float32", x / y, a.astype(F32) / b.astype(F32), torch.float32),
                  ("exp -> float32", x.exp(), np.exp(a.astype(F32)), torch.float32)]
    realize_tensors([c[1] for c in cases])
    errors = []
    for cname, t, ref, *dd in cases:
        try:
            check(t, ref, rtol=tol, atol=tol, dtype=dd[0] if dd else None)
        except AssertionError as e:
            errors.append(f"{name} {cname}: {e}")
    assert not errors, "\n".join(errors)
