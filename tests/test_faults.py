"""Integer division by zero raises PyTorch's ZeroDivisionError: at the call for a Python zero,
and when the kernels run for a zero inside a tensor, naming the user's line, on the compiled
backend and the interpreter alike."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug


@pytest.mark.parametrize("fn", [lambda a: a // 0, lambda a: a % 0, lambda a: a.fmod(0),
                                lambda a: torch.floor_divide(a, 0), lambda a: a.remainder(0),
                                lambda a: a.div(0, rounding_mode="trunc"),
                                lambda a: a.div(0, rounding_mode="floor")])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_python_zero_divisor_raises_at_the_call(fn, dtype):
    a = torch.tensor([5, 7], dtype=dtype)
    with pytest.raises(RuntimeError, match="^ZeroDivisionError$"):
        fn(a)


def test_float_division_by_zero_is_infinite():
    a = torch.tensor([5, -7])
    np.testing.assert_array_equal((a / 0).numpy(), [np.inf, -np.inf])
    np.testing.assert_array_equal((a // 0.0).numpy(), [np.inf, -np.inf])
    np.testing.assert_array_equal((torch.tensor([5.0, -7.0]) // 0).numpy(), [np.inf, -np.inf])


@pytest.mark.parametrize("op", ["//", "%", "fmod", "trunc"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int16, torch.uint8])
def test_zero_in_a_tensor_raises_when_computed_naming_the_line(backend, op, dtype):
    a = torch.tensor([5, 7, 9], dtype=dtype)
    b = torch.tensor([1, 0, 2], dtype=dtype)
    fn = {"//": lambda: a // b, "%": lambda: a % b, "fmod": lambda: a.fmod(b),
          "trunc": lambda: a.div(b, rounding_mode="trunc")}[op]
    out = fn() + 1                       # fused with what follows: still found
    with pytest.raises(RuntimeError, match="ZeroDivisionError") as info:
        out.numpy()
    assert "test_faults.py" in str(info.value), str(info.value)


def test_a_replayed_plan_faults_only_for_the_step_with_a_zero():
    """The fault flag is read and cleared per run: the same compiled plan runs clean, faults,
    then runs clean again."""
    with debug.use_backend("c"):
        results = []
        for divisor in ([3, 2, 5], [3, 0, 5], [1, 2, -4]):
            a = torch.tensor([7, -9, 11])
            q = a // torch.tensor(divisor)
            try:
                results.append(q.tolist())
            except RuntimeError as e:
                results.append(str(e).splitlines()[0])
    assert results == [[2, -5, 2], "ZeroDivisionError", [7, -5, -3]]


def test_most_negative_integer_over_minus_one_does_not_trap(backend):
    lo = -2 ** 63
    a = torch.tensor([lo, 7])
    b = torch.tensor([-1, -1])
    # the quotient wraps as in two's complement (PyTorch's CPU result); the remainder is 0
    assert (a // b).tolist() == [lo, -7]
    assert (a % b).tolist() == [0, 0]


def test_divisions_match_numpy_without_zeros(backend):
    rng = np.random.default_rng(0)
    a = rng.integers(-50, 50, 200)
    b = rng.integers(1, 9, 200) * rng.choice([-1, 1], 200)
    np.testing.assert_array_equal((torch.tensor(a) // torch.tensor(b)).numpy(), a // b)
    np.testing.assert_array_equal((torch.tensor(a) % torch.tensor(b)).numpy(), a % b)
    np.testing.assert_array_equal(torch.tensor(a).fmod(torch.tensor(b)).numpy(), np.fmod(a, b))
