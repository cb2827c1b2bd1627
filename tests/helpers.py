"""Helpers shared by the test files: many checks realized in one go, gradients against central
finite differences of a numpy reference, and a block that realizes on a chosen backend."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import lazytorch as torch
from lazytorch import debug
from lazytorch.frontend.tensor import realize_tensors
from tests.conftest import check


def check_all(cases, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """cases: (name, tensor, numpy reference[, expected dtype]); realized in one go, and every
    mismatch reported, each under its name."""
    realize_tensors([c[1] for c in cases])
    errors = []
    for name, t, ref, *d in cases:
        try:
            check(t, ref, rtol, atol, d[0] if d else None)
        except AssertionError as e:
            errors.append(f"{name}: {e}")
    assert not errors, "\n".join(errors)


def grad_check(lt_fn: Callable, np_fn: Callable, arrays: Sequence, wrt: Sequence[int] | None = None,
               rtol: float = 1e-6, atol: float = 1e-9, eps: float = 1e-6,
               seed: int = 0) -> torch.Tensor:
    """lt_fn(*float64 tensors) equals np_fn(*arrays), and its gradients (for a random
    cotangent) with respect to the inputs in wrt (all by default) equal central finite
    differences of np_fn. Returns lt_fn's output."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = lt_fn(*ts)
    ref = np.asarray(np_fn(*arrays), dtype=np.float64)
    cot = rng.standard_normal(ref.shape)
    (out * torch.tensor(cot)).sum().backward()
    wrt = list(range(len(arrays)) if wrt is None else wrt)
    realize_tensors([out] + [ts[i].grad for i in wrt if ts[i].grad is not None])   # one realize
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=rtol, atol=atol)
    for i in wrt:
        num = np.zeros_like(arrays[i])
        for idx in np.ndindex(arrays[i].shape):
            hi = [a.copy() for a in arrays]
            lo = [a.copy() for a in arrays]
            hi[i][idx] += eps
            lo[i][idx] -= eps
            num[idx] = (np.sum(np_fn(*hi) * cot) - np.sum(np_fn(*lo) * cot)) / (2 * eps)
        assert ts[i].grad is not None, f"no gradient for input {i}"
        np.testing.assert_allclose(ts[i].grad.numpy(), num, rtol=1e-5, atol=1e-7,
                                   err_msg=f"gradient of input {i}")
    return out


def bf16_round(x) -> np.ndarray:
    """float32 values rounded to bfloat16 precision (to nearest, ties to even; overflow to
    inf; NaN stays NaN), as float32: written out on the bits, apart from the code under test."""
    x = np.asarray(x, np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    r = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32)
    return np.where(np.isnan(x), np.float32(np.nan), r.view(np.float32))


def backend_env(name: str):
    """Realize with backend `name` ("c" or "interp") inside the block."""
    return debug.use_backend(name)
