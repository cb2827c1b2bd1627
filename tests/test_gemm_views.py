"""Matrix products over views that merge moved dims (attention's heads) and sums of several
products of one tensor: each runs as a GEMM over strides, checked against numpy in float64.

A head merge, (N, h, L, d) -> (L, N, h*d), reads its source at (i / d) and (i % d) of the
merged index; the kernel splits that loop in two so both reads are strides (kernel.py,
_split_loops). A tensor that several matmuls read is one node, so its gradient is a sum of
products under one reduction; the sum is taken one product at a time (simplify.py)."""
import numpy as np
import pytest

import lazytorch as torch
from lazytorch.compiler.codegen.c.gemm import match_gemm
from lazytorch.engine.realize import schedule

N, H, L, D = 4, 2, 35, 50   # batch, heads, length, head size (the merged dim is 100)


def _kernels(t):
    return schedule([t.node]).kernels


def _heads(rng, dtype=np.float64):
    return rng.standard_normal((N, H, L, D)).astype(dtype)


def _merge_heads(a):
    """(N, h, L, d) -> (L, N, h*d), as attention's output projection reads it."""
    return a.permute(2, 0, 1, 3).reshape(L, N, H * D)


def test_merged_heads_times_a_weight_is_a_gemm(rng):
    a, w = _heads(rng), rng.standard_normal((H * D, 64))
    y = _merge_heads(torch.tensor(a)) @ torch.tensor(w)
    (k,) = _kernels(y)
    assert match_gemm(k) is not None
    ref = a.transpose(2, 0, 1, 3).reshape(L, N, H * D) @ w
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_weight_gradient_over_merged_heads_is_a_gemm(rng):
    # the merged dim is an output loop of the product (dW = X^T dY over the L*N rows)
    a, g = _heads(rng), rng.standard_normal((L, N, 64))
    x = _merge_heads(torch.tensor(a)).reshape(L * N, H * D)
    y = x.t() @ torch.tensor(g).reshape(L * N, 64)
    (k,) = _kernels(y)
    assert match_gemm(k) is not None
    xr = a.transpose(2, 0, 1, 3).reshape(L * N, H * D)
    np.testing.assert_allclose(y.numpy(), xr.T @ g.reshape(L * N, 64), rtol=1e-10,
                               atol=1e-10)


def test_a_copy_of_merged_heads_reads_strides(rng):
    a = _heads(rng)
    y = _merge_heads(torch.tensor(a)).contiguous() * 2.0
    (k,) = _kernels(y)
    assert "%" not in k.source and "/" not in k.source
    np.testing.assert_allclose(y.numpy(), a.transpose(2, 0, 1, 3).reshape(L, N, H * D) * 2)


@pytest.mark.parametrize("op", ["sum", "amax", "amin", "prod", "argmax", "argmin"])
def test_reductions_over_merged_heads(rng, op):
    # the reduce loop itself is split for sum/max/min/prod; argmax/argmin store the flat
    # position of the best element, so theirs stays whole
    a = _heads(rng) * 0.1 + 1.0
    y = getattr(_merge_heads(torch.tensor(a)), op)(-1)
    if not op.startswith("arg"):
        (k,) = _kernels(y)
        assert "%" not in k.source
    ref = getattr(np, op)(a.transpose(2, 0, 1, 3).reshape(L, N, H * D), -1)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10)


def _three_projections(x, w, c):
    e = x.shape[-1]
    return sum(((x @ w[i * e:(i + 1) * e].t()) * c[i]).sum() for i in range(3))


def test_gradient_of_a_tensor_read_by_three_matmuls(rng):
    # self-attention's input times the query, key and value weights: the input's gradient is
    # three GEMMs added, never one loop summing the three products
    x = rng.standard_normal((L, N, 100))
    w = rng.standard_normal((300, 100))
    c = rng.standard_normal((3, L, N, 100))
    tx = torch.tensor(x, requires_grad=True)
    _three_projections(tx, torch.tensor(w), torch.tensor(c)).backward()
    products = [k for k in _kernels(tx.grad) if "sum" in k.ops and "mul" in k.ops]
    assert len(products) == 3 and all(match_gemm(k) is not None for k in products)
    ref = sum(c[i] @ w[i * 100:(i + 1) * 100] for i in range(3))
    np.testing.assert_allclose(tx.grad.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_gradient_of_merged_heads_read_by_three_matmuls(rng):
    # both at once, as in attention's backward: the head-major gradients of q, k and v
    # reach the input through merged views, times three slices of one weight
    q, k_, v = (_heads(rng) for _ in range(3))
    w = rng.standard_normal((300, 100))
    tw = torch.tensor(w)
    gx = sum(_merge_heads(torch.tensor(g)) @ tw[i * 100:(i + 1) * 100]
             for i, g in enumerate((q, k_, v)))
    products = [k for k in _kernels(gx) if "sum" in k.ops]
    assert products and all(match_gemm(k) is not None for k in products)
    ref = sum(g.transpose(2, 0, 1, 3).reshape(L, N, 100) @ w[i * 100:(i + 1) * 100]
              for i, g in enumerate((q, k_, v)))
    np.testing.assert_allclose(gx.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_a_sum_of_elementwise_products_stays_one_kernel(rng):
    # nothing is broadcast: not a matmul, so the sum is not taken apart
    a, b, c, d = (rng.standard_normal((30, 40)) for _ in range(4))
    ta, tb, tc, td = map(torch.tensor, (a, b, c, d))
    y = (ta * tb + tc * td).sum(-1)
    assert len(_kernels(y)) == 1
    np.testing.assert_allclose(y.numpy(), (a * b + c * d).sum(-1), rtol=1e-12)


def test_attention_gradients_match_finite_differences(rng):
    # the whole attention block, float64: every gradient against central differences
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(12, 3).double()
    x = rng.standard_normal((5, 2, 12))
    tx = torch.tensor(x, requires_grad=True)

    def loss(xv):
        out, _ = mha(xv, xv, xv, need_weights=False)
        return (out * torch.tensor(np.linspace(-1, 1, out.numel()).reshape(out.shape))).sum()

    loss(tx).backward()
    eps, num = 1e-6, np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (loss(torch.tensor(xp)).item() - loss(torch.tensor(xm)).item()) / (2 * eps)
    np.testing.assert_allclose(tx.grad.numpy(), num, rtol=1e-6, atol=1e-7)
