"""repr/str of tensors: PyTorch's printing rules, spelled out, and (when PyTorch is installed)
character-for-character agreement with torch's own str() of the same values."""
import math

import numpy as np
import pytest

import lazytorch as torch

nan, inf = float("nan"), float("inf")


@pytest.fixture(autouse=True)
def _default_printoptions():
    torch.set_printoptions(profile="default")
    yield
    torch.set_printoptions(profile="default")


# ------------------------------------------------------------------ the rules, spelled out
def test_scalars_and_default_dtypes():
    assert str(torch.tensor(4.0)) == "tensor(4.)"           # integer-valued float: "4."
    assert str(torch.tensor(2.5)) == "tensor(2.5000)"       # 4 decimals by default
    assert str(torch.tensor(3)) == "tensor(3)"              # int64: no dtype shown
    assert str(torch.tensor(True)) == "tensor(True)"
    assert repr(torch.tensor(nan)) == "tensor(nan)"


def test_vectors():
    assert str(torch.tensor([1.0, 2.0, 3.0])) == "tensor([1., 2., 3.])"
    # one width for all elements, right-aligned
    assert str(torch.tensor([1.5, -2.25, 10.0])) == "tensor([ 1.5000, -2.2500, 10.0000])"
    assert str(torch.tensor([1, -20, 300])) == "tensor([  1, -20, 300])"
    assert str(torch.tensor([True, False])) == "tensor([ True, False])"


def test_non_default_dtypes_are_shown():
    assert str(torch.tensor([1, 2], dtype=torch.int32)) == "tensor([1, 2], dtype=torch.int32)"
    assert str(torch.tensor([1.5], dtype=torch.float64)) == \
        "tensor([1.5000], dtype=torch.float64)"
    assert str(torch.tensor([0.1, 0.2], dtype=torch.float16)) == \
        "tensor([0.1000, 0.2000], dtype=torch.float16)"
    assert str(torch.tensor([3], dtype=torch.uint8)) == "tensor([3], dtype=torch.uint8)"


def test_default_dtype_follows_set_default_dtype():
    torch.set_default_dtype(torch.float64)
    try:
        assert str(torch.tensor([1.5])) == "tensor([1.5000])"
        assert str(torch.tensor([1.5], dtype=torch.float32)) == \
            "tensor([1.5000], dtype=torch.float32)"
    finally:
        torch.set_default_dtype(torch.float32)


def test_empty_tensors():
    assert str(torch.tensor([])) == "tensor([])"
    assert str(torch.zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert str(torch.zeros(0, dtype=torch.int32)) == "tensor([], dtype=torch.int32)"
    # an empty tensor shows every dtype but the default float one, int64 and bool included
    assert str(torch.zeros(0, dtype=torch.int64)) == "tensor([], dtype=torch.int64)"
    assert str(torch.zeros(2, 0, dtype=torch.bool)) == \
        "tensor([], size=(2, 0), dtype=torch.bool)"


def test_scientific_notation():
    # chosen when max/min > 1000, max > 1e8 or min < 1e-4 (nonzero finite values only)
    assert str(torch.tensor([1e-5, 1.0])) == "tensor([1.0000e-05, 1.0000e+00])"
    assert str(torch.tensor([1e9, 1.0])) == "tensor([1.0000e+09, 1.0000e+00])"
    assert str(torch.tensor([1000.0, 1.0])) == "tensor([1000.,    1.])"      # ratio 1000: no
    assert str(torch.tensor([1001.5, 1.0])) == "tensor([1.0015e+03, 1.0000e+00])"
    assert str(torch.tensor([0.0, 1e-6])) == "tensor([0.0000e+00, 1.0000e-06])"
    assert str(torch.tensor([0.0, 1.5])) == "tensor([0.0000, 1.5000])"         # zero ignored


def test_nan_inf_and_negative_zero():
    assert str(torch.tensor([nan, inf, -inf, 1.0])) == "tensor([nan, inf, -inf, 1.])"
    assert str(torch.tensor([nan, 1.5])) == "tensor([   nan, 1.5000])"
    assert str(torch.tensor([-0.0, 1.0])) == "tensor([-0., 1.])"
    assert str(torch.tensor([1e-5, nan])) == "tensor([1.0000e-05,        nan])"


def test_nested_brackets():
    m = torch.tensor([[1, 2], [3, 4]])
    assert str(m) == "tensor([[1, 2],\n        [3, 4]])"
    t = torch.tensor(np.arange(8).reshape(2, 2, 2))
    assert str(t) == ("tensor([[[0, 1],\n"
                      "         [2, 3]],\n"
                      "\n"
                      "        [[4, 5],\n"
                      "         [6, 7]]])")
    f = torch.tensor([[1.5, 2.0]], dtype=torch.float64)
    assert str(f) == "tensor([[1.5000, 2.0000]], dtype=torch.float64)"


def test_line_wrapping():
    # elements per line: (linewidth - indent) // (width + 2), continuation indented under "["
    x = torch.tensor(np.arange(40))
    cells = [f"{i:>2}" for i in range(40)]
    per_line = (80 - 7) // (2 + 2)
    lines = [", ".join(cells[i:i + per_line]) for i in range(0, 40, per_line)]
    assert str(x) == "tensor([" + (",\n" + " " * 8).join(lines) + "])"


def test_summarization():
    x = torch.tensor(np.arange(2000))
    assert str(x) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
    m = torch.tensor(np.arange(1100).reshape(1100, 1))
    assert str(m) == ("tensor([[   0],\n        [   1],\n        [   2],\n        ...,\n"
                      "        [1097],\n        [1098],\n        [1099]])")


def test_set_printoptions():
    torch.set_printoptions(precision=2)
    assert str(torch.tensor([1.12345])) == "tensor([1.12])"
    torch.set_printoptions(threshold=5)
    assert str(torch.tensor(np.arange(10))) == "tensor([0, 1, 2,  ..., 7, 8, 9])"
    torch.set_printoptions(profile="default")
    assert str(torch.tensor([1.12345])) == "tensor([1.1235])"
    torch.set_printoptions(sci_mode=True)
    assert str(torch.tensor([1.5])) == "tensor([1.5000e+00])"
    torch.set_printoptions(precision=3)              # sci_mode goes back to automatic
    assert str(torch.tensor([1.5])) == "tensor([1.500])"
    torch.set_printoptions(edgeitems=1, threshold=3)
    assert str(torch.tensor(np.arange(5))) == "tensor([0,  ..., 4])"
    torch.set_printoptions(linewidth=20, profile="default")
    assert torch.tensor(np.arange(10)).__repr__().count("\n") == 2


def test_autograd_suffixes():
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    assert repr(t) == "tensor([1., 2.], requires_grad=True)"


# ------------------------------------------------------------------ against PyTorch itself
def _cases():
    rng = np.random.default_rng(0)
    return [
        np.array(4.0, np.float32), np.array(-0.0, np.float32), np.array(1.5e-7),
        np.array(3, np.int32), np.array(False),
        np.array([1.0, 2.0, 3.0], np.float32), np.array([1.5, -2.25, 3.0], np.float32),
        np.array([1, 2], np.int8), np.array([200, 2], np.uint8), np.array([1, -2], np.int16),
        np.array([1e-5, 1.0], np.float32), np.array([1e8, 1.0], np.float32),
        np.array([1e9, 2e9], np.float32), np.array([1001.0, 1.0], np.float32),
        np.array([nan, inf, -inf, 1.5], np.float32), np.array([nan, inf], np.float32),
        np.array([-0.0, 1.5], np.float32), np.array([1e-6, nan, 1e3]),
        np.array([65504, 1], np.float16), np.array([1e-4, 1], np.float16),
        np.array([123456.789, 1.0]), np.array([1 / 3, 2 / 3]), np.array([1e20, -1e20, 3.0]),
        np.array([2.5e-5, 1.0, 1.0e3]), np.array([12345678.0, 1.0]), np.array([9.99999e-5, 1.0]),
        rng.standard_normal((3, 4)).astype(np.float32),
        rng.standard_normal((2, 3, 4)).astype(np.float32),
        rng.standard_normal((2, 2, 2, 3)).astype(np.float32),
        rng.standard_normal(100) * 1e5, np.arange(30, dtype=np.int32) * 1000,
        rng.standard_normal((5, 30)).astype(np.float32),
        rng.standard_normal(2000).astype(np.float32), np.arange(1001),
        np.arange(10000).reshape(10, 10, 100), rng.standard_normal((3, 500)).astype(np.float32),
        rng.standard_normal((2, 3, 200)).astype(np.float32) * 1e-6, np.zeros((1001,), bool),
        np.zeros((0,), np.float32), np.zeros((0, 3), np.float32), np.zeros((0,), np.int64),
        np.zeros((2, 0), np.int32), np.zeros((0,), np.float64), np.ones((1, 1, 1), np.float32),
        (rng.standard_normal((3, 9)) * 1e3).astype(np.float32), np.full((3, 3), nan, np.float32),
        rng.integers(-10**12, 10**12, 40), np.arange(24).reshape(2, 3, 4) * 0.5,
    ]


def test_str_matches_torch():
    pt = pytest.importorskip("torch")
    for a in _cases():
        assert str(torch.tensor(a)) == str(pt.tensor(a)), (a.dtype, a.shape)


@pytest.mark.parametrize("opts", [dict(precision=2), dict(sci_mode=True), dict(sci_mode=False),
                                  dict(linewidth=40), dict(threshold=5),
                                  dict(edgeitems=1, threshold=10), dict(profile="short"),
                                  dict(profile="full"), dict(edgeitems=0, threshold=5),
                                  dict(precision=8)])
def test_printoptions_match_torch(opts):
    pt = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((4, 30)).astype(np.float32), np.arange(20),
              np.array([1e-5, 1.0]), np.arange(2000.0).reshape(20, 100)]
    pt.set_printoptions(**opts)
    torch.set_printoptions(**opts)
    try:
        for a in arrays:
            assert str(torch.tensor(a)) == str(pt.tensor(a)), (opts, a.shape)
    finally:
        pt.set_printoptions(profile="default")


def test_computed_tensors_print(backend):
    x = torch.tensor([1.0, 4.0, 9.0])
    assert str(x.sqrt() * 0.5) == "tensor([0.5000, 1.0000, 1.5000])"
    assert math.isclose(float(x.sum()), 14.0)
