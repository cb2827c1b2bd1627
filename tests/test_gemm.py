"""The packed GEMM kernel (compiler/codegen/c/gemm.py): operand orientation, packing order,
edges and fused epilogues, each against numpy in float64."""
import numpy as np
import pytest

import lazytorch as torch
from lazytorch.compiler.codegen.c.gemm import match_gemm
from lazytorch.engine.realize import schedule


def _gemm_kernel(t):
    ks = [k for k in schedule([t.node]).kernels if match_gemm(k) is not None]
    assert len(ks) == 1
    return ks[0]


@pytest.mark.parametrize("m,k,n", [(37, 53, 29), (6, 16, 16), (130, 300, 7), (1, 64, 70)])
def test_columns_follow_the_output_inner_loop(rng, m, k, n):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    ta, tb = torch.tensor(a), torch.tensor(b)
    ref = a.astype(np.float64) @ b
    for out, r in [(ta @ tb, ref), ((ta @ tb).t().contiguous(), ref.T),
                   ((tb.t() @ ta.t()), ref.T)]:
        np.testing.assert_allclose(out.numpy(), r, rtol=1e-4, atol=1e-4)
    spec = match_gemm(_gemm_kernel(ta @ tb)) if m * n * k >= 1 << 15 else None
    if spec is not None and n >= 8:
        assert spec.n[1] == n  # vectorized along the output's contiguous dim


def test_linear_layout_with_bias_and_relu_epilogue(rng):
    x = rng.standard_normal((128, 784)).astype(np.float32)
    w = rng.standard_normal((256, 784)).astype(np.float32) * 0.05
    b = rng.standard_normal(256).astype(np.float32)
    y = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)).relu()
    k = _gemm_kernel(y)
    assert "ws[o0 * 256 + o1]" in k.source   # accumulator read back row by row
    np.testing.assert_allclose(y.numpy(), np.maximum(x.astype(np.float64) @ w.T + b, 0),
                               rtol=1e-4, atol=1e-4)


def test_weight_gradient_shape_and_update(rng):
    # dW = dY^T X: both operands transposed views, K the batch; fused with an SGD update
    x = rng.standard_normal((96, 300)).astype(np.float32)
    dy = rng.standard_normal((96, 200)).astype(np.float32)
    w = rng.standard_normal((200, 300)).astype(np.float32)
    tw = torch.tensor(w)
    new = tw - 0.1 * (torch.tensor(dy).t() @ torch.tensor(x))
    np.testing.assert_allclose(new.numpy(), w - 0.1 * (dy.T.astype(np.float64) @ x),
                               rtol=1e-4, atol=1e-4)


# panels of KC = 256 (AVX-512) or 512 (AVX2) sums, evened out: 784 as 4 x 196 or 2 x 392,
# 1025 as 5 x 205 or 3 x 342 (the last one shorter), 1537 one over three AVX2 panels
@pytest.mark.parametrize("k", [1, 3, 257, 513, 784, 1025, 1537])
def test_reduction_lengths_across_panels(rng, k):
    a = rng.standard_normal((20, k)).astype(np.float64)
    b = rng.standard_normal((k, 40)).astype(np.float64)
    out = torch.tensor(a) @ torch.tensor(b)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("m,n", [(400, 200), (145, 300), (50, 600)])
def test_threads_split_rows_or_columns(rng, m, n):
    # as many row blocks as threads: threads take whole blocks, evened out (145 rows: 4
    # blocks of 42 and a short one); fewer: they share each block's column strips. The
    # epilogue runs on each finished block, so every split also checks it.
    a = rng.standard_normal((m, 300)).astype(np.float32)
    b = rng.standard_normal((300, n)).astype(np.float32)
    ref = a.astype(np.float64) @ b + 1
    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            out = torch.tensor(a) @ torch.tensor(b) + 1.0
            np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-3)
    finally:
        torch.set_num_threads(before)


def test_epilogue_over_several_column_blocks(rng):
    # N past one column block (2048): each block's epilogue sees its own column range
    a = rng.standard_normal((30, 64)).astype(np.float32)
    b = rng.standard_normal((64, 2100)).astype(np.float32)
    bias = rng.standard_normal(2100).astype(np.float32)
    y = (torch.tensor(a) @ torch.tensor(b) + torch.tensor(bias)).relu()
    assert "_epi, &c" in _gemm_kernel(y).source
    np.testing.assert_allclose(y.numpy(), np.maximum(a.astype(np.float64) @ b + bias, 0),
                               rtol=1e-4, atol=1e-3)


def test_batched_epilogue_reads_the_batch_index(rng):
    a = rng.standard_normal((4, 40, 50)).astype(np.float32)
    b = rng.standard_normal((4, 50, 60)).astype(np.float32)
    bias = rng.standard_normal((4, 1, 60)).astype(np.float32)
    y = torch.bmm(torch.tensor(a), torch.tensor(b)) * torch.tensor(bias)
    assert "_epi, &c" in _gemm_kernel(y).source
    np.testing.assert_allclose(y.numpy(), (a.astype(np.float64) @ b) * bias, rtol=1e-4,
                               atol=1e-3)


def test_narrow_output_keeps_the_epilogue_after_the_gemm(rng):
    # output loops that are not (rows, columns) (here 4 columns, too few to vectorize, so
    # the GEMM runs transposed): the epilogue runs after the GEMM, in the output's loop order
    a = rng.standard_normal((300, 90)).astype(np.float32)
    b = rng.standard_normal((90, 4)).astype(np.float32)
    y = (torch.tensor(a) @ torch.tensor(b)) * 2.0 + 1.0
    assert "_epi, &c" not in _gemm_kernel(y).source
    np.testing.assert_allclose(y.numpy(), (a.astype(np.float64) @ b) * 2 + 1, rtol=1e-4,
                               atol=1e-3)


def test_small_batched_gemms_split_between_threads(rng):
    # each GEMM is too small to split; the threads take whole GEMMs of the batch
    a = rng.standard_normal((48, 20, 30)).astype(np.float32)
    b = rng.standard_normal((48, 30, 40)).astype(np.float32)
    bias = rng.standard_normal((48, 1, 40)).astype(np.float32)
    ref = a.astype(np.float64) @ b
    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            y = torch.bmm(torch.tensor(a), torch.tensor(b)) + torch.tensor(bias)
            assert "#pragma omp for" in _gemm_kernel(y).source
            np.testing.assert_allclose(y.numpy(), ref + bias, rtol=1e-4, atol=1e-4)
            z = (torch.bmm(torch.tensor(a), torch.tensor(b)) * 2.0).transpose(1, 2)
            np.testing.assert_allclose(z.contiguous().numpy(), (ref * 2).transpose(0, 2, 1),
                                       rtol=1e-4, atol=1e-4)
    finally:
        torch.set_num_threads(before)


def test_gemms_summed_into_one_result_split_deterministically(rng):
    # a conv weight gradient's shape: small GEMMs summed over the batch; each thread sums
    # its share, and the shares are added in thread order
    a = rng.standard_normal((96, 16, 64)).astype(np.float32)
    b = rng.standard_normal((96, 64, 24)).astype(np.float32)
    ref = np.einsum("bij,bjk->ik", a.astype(np.float64), b)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            y = torch.einsum("bij,bjk->ik", torch.tensor(a), torch.tensor(b)) - 1.0
            src = _gemm_kernel(y).source
            assert "parts" in src
            first = y.numpy()
            np.testing.assert_allclose(first, ref - 1, rtol=1e-4, atol=1e-3)
            again = (torch.einsum("bij,bjk->ik", torch.tensor(a), torch.tensor(b)) - 1.0).numpy()
            np.testing.assert_array_equal(again, first)
    finally:
        torch.set_num_threads(before)


def test_tiny_summed_outputs_are_dot_products(rng):
    # a first conv layer's weight gradient: 8x9 outputs summed over batch and positions;
    # fewer outputs than three micro-tiles run as one vectorized dot product each
    from lazytorch.compiler.codegen.c.gemm import MIN_SUMMED_OUTPUTS
    a = rng.standard_normal((32, 8, 300)).astype(np.float32)
    b = rng.standard_normal((32, 300, 9)).astype(np.float32)
    assert 8 * 9 < MIN_SUMMED_OUTPUTS
    y = torch.einsum("bij,bjk->ik", torch.tensor(a), torch.tensor(b)) * 0.5
    (k,) = schedule([y.node]).kernels
    assert match_gemm(k) is None and "lt_gemm" not in k.source
    np.testing.assert_allclose(y.numpy(), np.einsum("bij,bjk->ik", a.astype(np.float64), b) * 0.5,
                               rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("batch", [(), (3,)])
def test_a_plain_product_is_written_in_place(rng, batch):
    # nothing after the product: the GEMM writes the output rows itself (no accumulator to
    # copy from); with an epilogue it goes through the accumulator
    a = rng.standard_normal((*batch, 70, 33)).astype(np.float32)
    b = rng.standard_normal((*batch, 33, 50)).astype(np.float32)
    y = torch.tensor(a) @ torch.tensor(b)
    src = _gemm_kernel(y).source
    assert "out0 + " in src and "_epi" not in src and "ws[" not in src
    np.testing.assert_allclose(y.numpy(), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    z = torch.tensor(a) @ torch.tensor(b) + 1.0
    assert "ws[" in _gemm_kernel(z).source
    np.testing.assert_allclose(z.numpy(), a.astype(np.float64) @ b + 1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype,m,k,n", [(np.float32, 128, 256, 10), (np.float32, 1024, 128, 65),
                                         (np.float64, 131, 37, 11), (np.float32, 254, 29, 127)])
def test_narrow_output_rows_run_transposed(rng, dtype, m, k, n):
    # an output row narrower than the micro-kernel's vectors, with at least twice as many
    # rows: the GEMM runs with the rows across the vectors (M = n), and the epilogue (bias,
    # relu) reads the accumulator across, for the layer's forward (x W^T) and for a product
    # whose output is written back transposed
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    ref = x.astype(np.float64) @ w.T.astype(np.float64)
    y = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)).relu()
    sfx = "f32" if dtype == np.float32 else "f64"
    assert f"lt_gemm_{sfx}({n}, {m}, {k}," in _gemm_kernel(y).source
    np.testing.assert_allclose(y.numpy(), np.maximum(ref + b, 0), rtol=tol, atol=tol)
    z = torch.tensor(x) @ torch.tensor(np.ascontiguousarray(w.T))
    assert f"lt_gemm_{sfx}({n}, {m}, {k}," in _gemm_kernel(z).source
    np.testing.assert_allclose(z.numpy(), ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(z.t().contiguous().numpy(), ref.T, rtol=tol, atol=tol)


def test_narrow_batched_rows_run_transposed(rng):
    # per batch: 200 rows of 9 columns, from a strided (sliced) operand
    a = rng.standard_normal((3, 200, 60)).astype(np.float32)
    b = rng.standard_normal((3, 30, 9)).astype(np.float32)
    y = torch.tensor(a)[:, :, ::2] @ torch.tensor(b) - 1.0
    assert "lt_gemm_f32(9, 200, 30," in _gemm_kernel(y).source
    np.testing.assert_allclose(y.numpy(), a[:, :, ::2].astype(np.float64) @ b - 1, rtol=1e-4,
                               atol=1e-4)
