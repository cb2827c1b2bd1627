"""Tensor creation: values, dtypes and shapes against numpy, seeding, devices and errors."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from tests.conftest import check

F32 = np.float32


def test_tensor_from_python_data(backend):
    check(torch.tensor([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]]), dtype=torch.int64)
    check(torch.tensor([1.0, 2]), F32([1, 2]), dtype=torch.float32)
    check(torch.tensor([1, 2.5]), F32([1, 2.5]), dtype=torch.float32)
    check(torch.tensor([True, False]), np.array([True, False]), dtype=torch.bool)
    check(torch.tensor(3), np.int64(3), dtype=torch.int64)
    check(torch.tensor(3.5), np.float32(3.5), dtype=torch.float32)
    check(torch.tensor(True), np.bool_(True), dtype=torch.bool)
    check(torch.tensor(-5), np.int64(-5))
    check(torch.tensor(2 ** 40), np.int64(2 ** 40))
    check(torch.tensor(((1, 2), (3, 4))), np.array([[1, 2], [3, 4]]))
    check(torch.tensor([]), np.zeros(0, F32), dtype=torch.float32)
    check(torch.tensor([[], []]), np.zeros((2, 0), F32))
    check(torch.tensor([torch.tensor(1.0), torch.tensor(2.0)]), F32([1, 2]))
    check(torch.tensor([1, 2], dtype=torch.float16), np.float16([1, 2]), dtype=torch.float16)
    check(torch.tensor([1.7, -2.7], dtype=torch.int32), np.int32([1, -2]), dtype=torch.int32)
    check(torch.tensor([0, 2], dtype=torch.bool), np.array([False, True]))


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64", "int32", "int16",
                                   "int8", "uint8", "bool"])
def test_tensor_from_numpy_keeps_dtype(dtype):
    arr = (np.arange(6).reshape(2, 3) % 3).astype(dtype)
    for t in (torch.tensor(arr), torch.as_tensor(arr), torch.from_numpy(arr)):
        assert t.dtype == getattr(torch, dtype)
        check(t, arr)
    check(torch.tensor(arr.T), arr.T)          # non-contiguous source
    check(torch.tensor(np.float64(2.5)), np.float64(2.5), dtype=torch.float64)


def test_tensor_copies_its_data():
    arr = np.arange(4, dtype=F32)
    t = torch.tensor(arr)
    arr[0] = 100
    check(t, F32([0, 1, 2, 3]))


def test_as_tensor():
    t = torch.tensor([1, 2])
    assert torch.as_tensor(t) is t
    check(torch.as_tensor(t, dtype=torch.float32), F32([1, 2]), dtype=torch.float32)
    check(torch.as_tensor([1, 2]), np.array([1, 2]), dtype=torch.int64)
    check(torch.as_tensor(np.arange(3), dtype=torch.float32), F32([0, 1, 2]))
    check(torch.as_tensor(2.5), np.float32(2.5))


def test_constant_fills(backend):
    check(torch.zeros(2, 3), np.zeros((2, 3), F32), dtype=torch.float32)
    check(torch.zeros((2, 3)), np.zeros((2, 3), F32))
    check(torch.zeros([2, 3], dtype=torch.int64), np.zeros((2, 3), np.int64), dtype=torch.int64)
    check(torch.zeros(()), np.float32(0))
    check(torch.zeros(0, 3), np.zeros((0, 3), F32))
    check(torch.ones(3, dtype=torch.bool), np.ones(3, bool), dtype=torch.bool)
    check(torch.ones(2, 2, dtype=torch.float64), np.ones((2, 2)), dtype=torch.float64)
    check(torch.full((2, 2), 7), np.full((2, 2), 7), dtype=torch.int64)
    check(torch.full((2, 2), 7.5), np.full((2, 2), 7.5, F32), dtype=torch.float32)
    check(torch.full((2,), True), np.ones(2, bool), dtype=torch.bool)
    check(torch.full((2,), 3, dtype=torch.float64), np.full(2, 3.0), dtype=torch.float64)
    check(torch.full([], -1.5), np.float32(-1.5))
    e = torch.empty(2, 3)
    assert e.shape == (2, 3) and e.dtype == torch.float32
    assert torch.empty((4,), dtype=torch.int32).dtype == torch.int32


def test_like_forms(backend):
    i = torch.tensor([[1, 2]])
    f = torch.tensor([1.5])
    check(torch.zeros_like(i), np.zeros((1, 2), np.int64), dtype=torch.int64)
    check(torch.ones_like(f, dtype=torch.float64), np.ones(1), dtype=torch.float64)
    check(torch.full_like(i, 2.7), np.full((1, 2), 2), dtype=torch.int64)
    check(torch.full_like(f, 4), np.float32([4]), dtype=torch.float32)
    assert torch.empty_like(i).shape == (1, 2) and torch.empty_like(i).dtype == torch.int64
    r = torch.rand_like(torch.zeros(2, 3, dtype=torch.float64))
    assert r.shape == (2, 3) and r.dtype == torch.float64
    assert torch.randn_like(torch.zeros(4)).shape == (4,)
    ri = torch.randint_like(i, 5, 9)
    assert ri.dtype == torch.int64 and ((ri >= 5) & (ri < 9)).all().item()


def test_ranges(backend):
    check(torch.arange(5), np.arange(5), dtype=torch.int64)
    check(torch.arange(1, 10, 3), np.arange(1, 10, 3), dtype=torch.int64)
    check(torch.arange(5, 0, -2), np.arange(5, 0, -2))
    check(torch.arange(0, 1, 0.25), F32([0, 0.25, 0.5, 0.75]), dtype=torch.float32)
    check(torch.arange(2.5), F32([0, 1, 2]), dtype=torch.float32)
    check(torch.arange(5, dtype=torch.float32), np.arange(5, dtype=F32), dtype=torch.float32)
    check(torch.arange(-1, 1, 0.1), np.arange(-1, 1, 0.1).astype(F32), atol=1e-6)
    check(torch.arange(0), np.zeros(0, np.int64))
    check(torch.linspace(0, 1, 5), np.linspace(0, 1, 5).astype(F32), dtype=torch.float32)
    check(torch.linspace(2, 3, 1), F32([2]))
    check(torch.linspace(0, 1, 0), np.zeros(0, F32))
    check(torch.linspace(-1, 10, 4, dtype=torch.float64), np.linspace(-1, 10, 4),
          dtype=torch.float64)
    check(torch.eye(3), np.eye(3, dtype=F32), dtype=torch.float32)
    check(torch.eye(2, 4), np.eye(2, 4, dtype=F32))
    check(torch.eye(2, dtype=torch.int32), np.eye(2, dtype=np.int32), dtype=torch.int32)


def test_random_shapes_dtypes_and_ranges():
    r = torch.rand(200, 3)
    v = r.numpy()
    assert r.shape == (200, 3) and r.dtype == torch.float32
    assert v.min() >= 0 and v.max() < 1 and 0.4 < v.mean() < 0.6
    n = torch.randn((1000,), dtype=torch.float64).numpy()
    assert n.dtype == np.float64 and abs(n.mean()) < 0.15 and 0.85 < n.std() < 1.15
    ri = torch.randint(3, 7, (500,))
    assert ri.dtype == torch.int64 and set(ri.numpy().tolist()) == {3, 4, 5, 6}
    assert torch.randint(5, (3,)).shape == (3,)
    assert torch.randint(0, 5, (2, 2), dtype=torch.int32).dtype == torch.int32
    p = torch.randperm(10)
    assert p.dtype == torch.int64 and sorted(p.tolist()) == list(range(10))
    assert torch.rand(()).shape == () and torch.randn(0, 2).shape == (0, 2)


def test_manual_seed_reproducible():
    def draw():
        return [torch.rand(5).tolist(), torch.randn(2, 3).tolist(),
                torch.randint(0, 100, (4,)).tolist(), torch.randperm(6).tolist()]

    torch.manual_seed(1234)
    first = draw()
    second = draw()
    torch.manual_seed(1234)
    assert draw() == first
    assert draw() == second
    assert first != second
    torch.manual_seed(4321)
    assert draw() != first
    g = torch.Generator().manual_seed(7)
    a = torch.rand(3, generator=g).tolist()
    g.manual_seed(7)
    assert torch.rand(3, generator=g).tolist() == a


def test_dtype_and_device_arguments():
    for d in (torch.float16, torch.float64, torch.int8, torch.uint8, torch.bool):
        assert torch.zeros(2, dtype=d).dtype == d
        assert torch.ones(2, dtype=d).dtype == d
    assert torch.zeros(2, dtype=torch.float).dtype == torch.float32
    assert torch.zeros(2, dtype=torch.long).dtype == torch.int64
    assert str(torch.zeros(2, device="cpu").device) == "cpu"
    assert torch.ones(2, device=torch.device("cpu")).device == torch.device("cpu")
    assert torch.tensor([1.0], device="cpu").device.type == "cpu"


def test_creation_errors():
    cases = [
        (RuntimeError, "Trying to create tensor with negative dimension -1",
         lambda: torch.zeros(2, -1)),
        (RuntimeError, "step must be nonzero", lambda: torch.arange(0, 5, 0)),
        (RuntimeError, "upper bound and larger bound inconsistent with step sign",
         lambda: torch.arange(5, 0, 1)),
        (RuntimeError, "number of steps must be non-negative", lambda: torch.linspace(0, 1, -1)),
        (RuntimeError, "random_ expects 'from' to be less than 'to'",
         lambda: torch.randint(5, 2, (3,))),
        (NotImplementedError, "not implemented for 'Long'",
         lambda: torch.rand(2, dtype=torch.int64)),
        (NotImplementedError, "not implemented for 'Long'",
         lambda: torch.randn_like(torch.zeros(2, dtype=torch.int64))),
        (RuntimeError, "Expected one of cpu, cuda", lambda: torch.zeros(2, device="tpu")),
        (TypeError, "can't convert np.ndarray of type numpy.complex64",
         lambda: torch.from_numpy(np.zeros(2, np.complex64))),
        (TypeError, "expected np.ndarray", lambda: torch.from_numpy([1, 2])),
        (ValueError, "", lambda: torch.tensor([[1, 2], [3]])),
        (TypeError, "", lambda: torch.tensor("abc")),
        (RuntimeError, "Only Tensors of floating point",
         lambda: torch.tensor([1, 2], requires_grad=True)),
    ]
    for exc, msg, fn in cases:
        with pytest.raises(exc, match=msg):
            fn()


# value -> (dtype, what PyTorch does): a list of the values, or the exception it raises
_OVERFLOW_CASES = [
    ("[2**63]", None, ValueError), ("[[1, 2**63]]", None, ValueError),
    ("2**63", None, ValueError), ("[-2**63 - 1]", None, ValueError),
    ("[2**64]", None, ValueError), ("[2**63]", "int64", ValueError),
    ("[2**70]", "uint8", ValueError),
    ("[1.0, 2**63]", None, [1.0, 2.0 ** 63]), ("[2**63]", "float32", [2.0 ** 63]),
    ("[2**63]", "bool", [True]),
    ("[300]", "uint8", RuntimeError), ("[-256]", "uint8", RuntimeError),
    ("[-1]", "uint8", [255]), ("[-255]", "uint8", [1]), ("[255, 0]", "uint8", [255, 0]),
    ("[128]", "int8", RuntimeError), ("[-128, 127]", "int8", [-128, 127]),
    ("[2**31 - 1, -2**31]", "int32", [2 ** 31 - 1, -2 ** 31]),
    ("[-2**31 - 1]", "int32", RuntimeError), ("[300.5]", "uint8", RuntimeError),
    ("[True, 300]", "uint8", RuntimeError), ("[1e20]", "int64", RuntimeError),
    ("[float('nan')]", "int64", RuntimeError), ("[float('inf')]", "int32", RuntimeError),
    ("[2.9, -2.9]", "int8", [2, -2]),
    ("[1e40]", "float16", [float("inf")]),
]


@pytest.mark.parametrize("data,dtype,want", _OVERFLOW_CASES)
def test_tensor_refuses_values_its_dtype_cannot_hold(data, dtype, want):
    """torch.tensor raises where a cast would wrap (PyTorch's checked conversion); numpy
    arrays are cast as numpy casts them, as in PyTorch."""
    d = getattr(torch, dtype) if dtype else None
    value = eval(data)
    if isinstance(want, type):
        with pytest.raises(want, match="overflow|Overflow"):
            torch.tensor(value, dtype=d)
        if d is not None:
            with pytest.raises(want):
                torch.as_tensor(value, dtype=d)
    else:
        assert torch.tensor(value, dtype=d).tolist() == want


def test_tensor_of_a_numpy_array_casts_like_numpy():
    a = np.array([300, -1])
    assert torch.tensor(a, dtype=torch.uint8).tolist() == a.astype(np.uint8).tolist()


@pytest.mark.parametrize("fn,msg", [
    (lambda: torch.full((2,), 300, dtype=torch.uint8), "uint8_t"),
    (lambda: torch.full((2,), 2 ** 31, dtype=torch.int32), "type int "),
    (lambda: torch.full((1,), 2 ** 63), "int64_t"),
    (lambda: torch.full((2,), 1e300, dtype=torch.float32), "type float "),
    (lambda: torch.full((2,), 1e5, dtype=torch.float16), "Half"),
    (lambda: torch.zeros(2, dtype=torch.uint8).fill_(256), "uint8_t"),
    (lambda: torch.ones(2, dtype=torch.int8)[0].fill_(1000), "int8_t"),
    (lambda: torch.full_like(torch.zeros(2, dtype=torch.int8), 200), "int8_t"),
    (lambda: torch.zeros(3, dtype=torch.uint8).index_fill_(0, torch.tensor([0]), 300),
     "uint8_t"),
    (lambda: torch.zeros(3, dtype=torch.uint8).masked_fill(torch.tensor([True, False, False]),
                                                            300), "uint8_t"),
    (lambda: torch.tensor([5]).clamp(max=2 ** 63), "int64_t"),
])
def test_scalar_fills_refuse_values_their_dtype_cannot_hold(fn, msg):
    with pytest.raises(RuntimeError, match="value cannot be converted to type .*without overflow"
                       ) as info:
        fn()
    assert msg in str(info.value), str(info.value)


def test_scalar_fills_and_arithmetic_that_pytorch_allows():
    with pytest.raises(OverflowError, match="int too big to convert"):
        torch.full((1,), 2 ** 64)
    assert torch.zeros(2, dtype=torch.uint8).fill_(-1).tolist() == [255, 255]
    assert torch.full((2,), float("inf"), dtype=torch.float16).tolist() == [np.inf] * 2
    assert torch.full((1,), -128, dtype=torch.int8).tolist() == [-128]
    # arithmetic with a scalar wraps, as in PyTorch
    assert (torch.zeros(2, dtype=torch.uint8) + 256).tolist() == [0, 0]
    assert (torch.arange(5, dtype=torch.uint8) * 100).tolist() == [0, 100, 200, 44, 144]
    # a 0-d tensor value is cast, not checked (PyTorch wraps it too)
    assert torch.ones(2, dtype=torch.int8).fill_(torch.tensor(300)).tolist() == [44, 44]


def test_overflow_cases_agree_with_pytorch():
    pt = pytest.importorskip("torch")
    for data, dtype, _ in _OVERFLOW_CASES:
        got = want = None
        for mod in (torch, pt):
            try:
                out = mod.tensor(eval(data), dtype=getattr(mod, dtype) if dtype else None).tolist()
            except Exception as e:   # noqa: BLE001 - comparing which errors
                out = type(e)
            if mod is torch:
                got = out
            else:
                want = out
        assert got == want, (data, dtype, got, want)
