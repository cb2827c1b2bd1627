"""Matrix products (matmul, mm, bmm, mv, dot, outer, addmm, baddbmm, tensordot, einsum) against
numpy, PyTorch's error messages and dtype rules, and the kernel counts the scheduler gives."""
import re

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.compiler import schedule
from tests.conftest import check


def _data(rng, shape, dtype=np.float32):
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-9, 10, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _raises(exc, msg):
    return pytest.raises(exc, match="^" + re.escape(msg) + "$")


# ------------------------------------------------------------------------------ matmul
MATMUL_SHAPES = [
    ((4,), (4,)),              # dot
    ((3, 4), (4,)),            # mv
    ((4,), (4, 5)),            # vector @ matrix
    ((3, 4), (4, 5)),          # mm
    ((2, 3, 4), (4, 5)),       # batched @ matrix (folded)
    ((2, 3, 4), (4,)),         # batched @ vector
    ((4,), (2, 4, 5)),         # vector @ batched
    ((3, 4), (2, 4, 5)),       # matrix @ batched
    ((2, 1, 3, 4), (5, 4, 2)),  # batch dims broadcast
    ((1, 3, 4), (2, 4, 1)),    # size-1 batch and size-1 output dims
    ((0, 3, 4), (4, 2)),       # empty batch
    ((3, 0), (0, 2)),          # empty contraction: zeros
    ((3, 4), (4, 0)),          # empty output
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_shapes(backend, rng, sa, sb):
    a, b = _data(rng, sa), _data(rng, sb)
    ta, tb = torch.tensor(a), torch.tensor(b)
    ref = np.matmul(a, b)
    check(ta @ tb, ref, rtol=1e-5, atol=1e-5, dtype=torch.float32)
    check(torch.matmul(ta, tb), ref, rtol=1e-5, atol=1e-5)
    check(ta.matmul(tb), ref, rtol=1e-5, atol=1e-5)
    check(tb.__rmatmul__(ta), ref, rtol=1e-5, atol=1e-5)


def test_matmul_non_contiguous_operands(backend, rng):
    a, b = _data(rng, (5, 4)), _data(rng, (3, 5))
    ta, tb = torch.tensor(a), torch.tensor(b)
    check(ta.t() @ tb.t(), a.T @ b.T, atol=1e-5)                 # both transposed
    x, y = _data(rng, (4, 2, 3)), _data(rng, (2, 4, 3))
    tx, ty = torch.tensor(x), torch.tensor(y)
    ref = np.transpose(x, (1, 0, 2)) @ np.transpose(y, (0, 2, 1))
    check(tx.permute(1, 0, 2) @ ty.transpose(1, 2), ref, atol=1e-5)  # permuted batches
    z = _data(rng, (6, 8))
    tz = torch.tensor(z)
    check(tz.narrow(0, 1, 4) @ tz.t().narrow(1, 1, 5), z[1:5] @ z.T[:, 1:6],
          atol=1e-5)                                                 # sliced views
    e = _data(rng, (3,))
    te = torch.tensor(e)
    check(te.expand(4, 3) @ tb, np.broadcast_to(e, (4, 3)) @ b, atol=1e-5)  # expanded
    check(ta.t().matmul(ta), a.T @ a, atol=1e-5)                     # same buffer twice


@pytest.mark.parametrize("dtype,ltype", [(np.int64, torch.int64), (np.int32, torch.int32),
                                         (np.float64, torch.float64)])
def test_matmul_dtypes_stay(backend, rng, dtype, ltype):
    a, b, v = _data(rng, (3, 4), dtype), _data(rng, (2, 4, 5), dtype), _data(rng, (4,), dtype)
    ta, tb, tv = torch.tensor(a), torch.tensor(b), torch.tensor(v)
    check(ta @ tb, a @ b, dtype=ltype)
    check(ta @ tv, a @ v, dtype=ltype)
    check(tv @ tv, np.array(v @ v), dtype=ltype)


def test_matmul_float16(backend, rng):
    a, b = _data(rng, (4, 8), np.float16), _data(rng, (8, 3), np.float16)
    out = torch.tensor(a) @ torch.tensor(b)
    assert out.dtype == torch.float16
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(out.numpy().astype(np.float64), ref, rtol=1e-2, atol=2e-2)
    # products are summed in float and rounded once, as in PyTorch: (1 + 2^-10)^2 - (1 + 2^-9)
    # is 2^-20 exactly, where products rounded to half would cancel to 0
    x = torch.tensor([[1 + 2 ** -10, -1.0]], dtype=torch.float16)
    y = torch.tensor([[1 + 2 ** -10], [1 + 2 ** -9]], dtype=torch.float16)
    got = [x @ y, torch.mv(x, y[:, 0]), x[0] @ y[:, 0], torch.einsum("ik,kj->ij", x, y)]
    assert [t.item() for t in got] == [2 ** -20] * 4


def test_matmul_of_computed_operands(backend, rng):
    a, b = _data(rng, (3, 4)), _data(rng, (4, 2))
    ta, tb = torch.tensor(a), torch.tensor(b)
    check((ta * 2).exp() @ (tb + 1), np.exp(a * 2) @ (b + 1), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------ the others
def test_mm_bmm_mv_dot(backend, rng):
    a, b = _data(rng, (3, 4)), _data(rng, (4, 5))
    check(torch.mm(torch.tensor(a), torch.tensor(b)), a @ b, atol=1e-5)
    check(torch.tensor(a).mm(torch.tensor(b)), a @ b, atol=1e-5)
    x, y = _data(rng, (2, 3, 4)), _data(rng, (2, 4, 5))
    check(torch.bmm(torch.tensor(x), torch.tensor(y)), x @ y, atol=1e-5)
    v = _data(rng, (4,))
    check(torch.mv(torch.tensor(a), torch.tensor(v)), a @ v, atol=1e-5)
    w = _data(rng, (4,))
    check(torch.dot(torch.tensor(v), torch.tensor(w)), np.array(v @ w), atol=1e-5)
    check(torch.vdot(torch.tensor(v), torch.tensor(w)), np.array(v @ w), atol=1e-5)
    check(torch.tensor(v).dot(torch.tensor(w)), np.array(v @ w), atol=1e-5)


def test_outer_promotes(backend, rng):
    v, w = _data(rng, (3,), np.int32), _data(rng, (4,))
    check(torch.outer(torch.tensor(v), torch.tensor(w)), np.outer(v, w), dtype=torch.float32)
    check(torch.ger(torch.tensor(v), torch.tensor(v)), np.outer(v, v), dtype=torch.int32)
    check(torch.tensor(w).outer(torch.tensor(w)), np.outer(w, w))


def test_addmm(backend, rng):
    bias, a, b = _data(rng, (5,)), _data(rng, (3, 4)), _data(rng, (4, 5))
    tbias, ta, tb = torch.tensor(bias), torch.tensor(a), torch.tensor(b)
    check(torch.addmm(tbias, ta, tb), bias + a @ b, atol=1e-5)
    check(torch.addmm(tbias, ta, tb, beta=0.5, alpha=-2.0), 0.5 * bias - 2 * (a @ b),
          atol=1e-5)
    check(tbias.addmm(ta, tb, alpha=3), bias + 3 * (a @ b), atol=1e-5)
    # beta=0 ignores the input (nan and inf there do not propagate), alpha=0 the product
    nan_bias = torch.tensor(np.full((3, 5), np.nan, np.float32))
    check(torch.addmm(nan_bias, ta, tb, beta=0), a @ b, atol=1e-5)
    inf_b = torch.tensor(np.full((4, 5), np.inf, np.float32))
    check(torch.addmm(tbias, ta, inf_b, alpha=0), np.broadcast_to(bias, (3, 5)))
    # integer results truncate beta and alpha to integers
    i_bias, ia, ib = (torch.tensor([1, 2, 3]), torch.tensor([[1, 2], [3, 4]]),
                      torch.tensor([[1, 1, 1], [2, 2, 2]]))
    prod = np.array([[5, 5, 5], [11, 11, 11]])
    check(torch.addmm(i_bias, ia, ib, beta=0.5), prod, dtype=torch.int64)
    check(torch.addmm(i_bias, ia, ib, beta=1.5, alpha=-1.5), np.array([1, 2, 3]) - prod)
    m = torch.tensor(np.zeros((3, 5), np.float32))
    m.addmm_(ta, tb)
    check(m, a @ b, atol=1e-5)


def test_baddbmm(backend, rng):
    bias, x, y = _data(rng, (3, 5)), _data(rng, (2, 3, 4)), _data(rng, (2, 4, 5))
    out = torch.baddbmm(torch.tensor(bias), torch.tensor(x), torch.tensor(y), beta=2, alpha=0.5)
    check(out, 2 * bias + 0.5 * (x @ y), atol=1e-5)


def test_tensordot(backend, rng):
    a, b = _data(rng, (3, 4, 5)), _data(rng, (4, 5, 6))
    ta, tb = torch.tensor(a), torch.tensor(b)
    check(torch.tensordot(ta, tb), np.tensordot(a, b), atol=1e-4)
    check(torch.tensordot(ta, tb, dims=0), np.tensordot(a, b, 0), atol=1e-5)
    c = _data(rng, (5, 3, 6))
    check(torch.tensordot(ta, torch.tensor(c), dims=([0, 2], [1, 0])),
          np.tensordot(a, c, ([0, 2], [1, 0])), atol=1e-4)
    check(torch.tensordot(ta, tb, dims=torch.tensor(2)), np.tensordot(a, b), atol=1e-4)
    # a size-1 contracted dim broadcasts against the other side
    d = _data(rng, (3, 1))
    check(torch.tensordot(torch.tensor(d), tb, dims=([1], [0])),
          np.tensordot(np.broadcast_to(d, (3, 4)), b, ([1], [0])), atol=1e-4)


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("i,i->", [(5,), (5,)]),
    ("ij->ji", [(2, 3)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("ij,jk", [(2, 3), (3, 4)]),          # implicit output: labels seen once, sorted
    ("ba", [(3, 4)]),                     # implicit output transposes
    ("iij->j", [(3, 3, 4)]),
    ("iji->j", [(3, 2, 3)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ijk->kj", [(2, 3, 4)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("i j , j k -> i k", [(2, 3), (3, 4)]),
    ("...i,...i->...", [(3, 4), (4,)]),
    ("ij,jk->ik", [(2, 0), (0, 3)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM)
def test_einsum(backend, rng, eq, shapes):
    ops = [_data(rng, s) for s in shapes]
    out = torch.einsum(eq, *[torch.tensor(o) for o in ops])
    check(out, np.einsum(eq.replace(" ", ""), *ops), rtol=1e-4, atol=1e-5,
          dtype=torch.float32)


def test_einsum_forms_and_broadcast(backend, rng):
    a, b = _data(rng, (2, 3)), _data(rng, (3, 4))
    ref = a @ b
    check(torch.einsum("ij,jk->ik", [torch.tensor(a), torch.tensor(b)]), ref, atol=1e-5)
    check(torch.einsum(torch.tensor(a), [0, 1], torch.tensor(b), [1, 2], [0, 2]), ref,
          atol=1e-5)
    # a size-1 dim broadcasts against the same label elsewhere
    c = _data(rng, (1, 4))
    check(torch.einsum("ij,jk->ik", torch.tensor(a), torch.tensor(c)),
          a.sum(1, keepdims=True) * c, atol=1e-5)
    # mixed-case labels: uppercase sorts first in the implicit output
    check(torch.einsum("iI", torch.tensor(a)), a.T)


def test_einsum_dtypes(backend):
    x = torch.tensor(np.arange(6, dtype=np.int32).reshape(2, 3))
    v = torch.tensor(np.arange(3, dtype=np.int32))
    xs = np.arange(6).reshape(2, 3)
    check(torch.einsum("ij,j->i", x, v), xs @ np.arange(3), dtype=torch.int32)  # product
    check(torch.einsum("ij->j", x), xs.sum(0), dtype=torch.int64)    # a sum promotes
    check(torch.einsum("ij->ji", x), xs.T, dtype=torch.int32)        # a view does not
    check(torch.einsum("i,j->ij", v, torch.tensor([1.5, 2.0])), np.outer(np.arange(3),
                                                                       [1.5, 2.0]),
          dtype=torch.float32)                                       # a plain product promotes
    b = torch.tensor(np.array([[True, False], [True, True]]))
    check(torch.einsum("ij->", b), np.array(3), dtype=torch.int64)


# ------------------------------------------------------------------------------ errors
ERRORS = [
    (lambda: torch.mm(torch.ones(5, 10), torch.ones(3, 1)), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (5x10 and 3x1)"),
    (lambda: torch.mm(torch.ones(5), torch.ones(5, 3)), RuntimeError, "self must be a matrix"),
    (lambda: torch.mm(torch.ones(5, 3), torch.ones(3)), RuntimeError, "mat2 must be a matrix"),
    (lambda: torch.mm(torch.ones(5, 3), torch.ones(3, 2, dtype=torch.float64)), RuntimeError,
     "expected m1 and m2 to have the same dtype, but got: float != double"),
    (lambda: torch.ones(2, 3) @ torch.ones(3, 2, dtype=torch.int64), RuntimeError,
     "expected m1 and m2 to have the same dtype, but got: float != long int"),
    (lambda: torch.matmul(torch.ones(3), torch.ones(3, dtype=torch.float64)), RuntimeError,
     "dot : expected both vectors to have same dtype, but found Float and Double"),
    (lambda: torch.matmul(torch.ones(3), torch.ones(4)), RuntimeError,
     "inconsistent tensor size, expected tensor [3] and src [4] to have the same number of "
     "elements, but got 3 and 4 elements respectively"),
    (lambda: torch.ones(3) @ torch.ones(4, 2), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x2)"),
    (lambda: torch.ones(2, 3) @ torch.ones(4), RuntimeError,
     "size mismatch, got input (2), mat (2x3), vec (4)"),
    (lambda: torch.ones(2, 2, 3) @ torch.ones(4, 2), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (4x3 and 4x2)"),
    (lambda: torch.ones(3, 2, 3) @ torch.ones(2, 3, 4), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (2) at non-singleton "
     "dimension 0"),
    (lambda: torch.ones(2, 2, 3) @ torch.ones(2, 4, 4), RuntimeError,
     "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4]."),
    (lambda: torch.matmul(torch.ones(()), torch.ones(3)), RuntimeError,
     "both arguments to matmul need to be at least 1D, but they are 0D and 1D"),
    (lambda: torch.ones(2, 3) @ 3, TypeError,
     "unsupported operand type(s) for @: 'Tensor' and 'int'"),
    (lambda: torch.matmul(torch.ones(2, 3), [1, 2, 3]), TypeError,
     "matmul(): argument 'other' (position 2) must be Tensor, not list"),
    (lambda: torch.bmm(torch.ones(3, 4), torch.ones(2, 4, 5)), RuntimeError,
     "batch1 must be a 3D tensor"),
    (lambda: torch.bmm(torch.ones(2, 3, 4), torch.ones(2, 4, 5, dtype=torch.float64)),
     RuntimeError, "expected scalar type Float but found Double"),
    (lambda: torch.dot(torch.ones(3, 1), torch.ones(3)), RuntimeError,
     "1D tensors expected, but got 2D and 1D tensors"),
    (lambda: torch.dot(torch.ones(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool)),
     NotImplementedError, "\"dot\" not implemented for 'Bool'"),
    (lambda: torch.outer(torch.ones(3, 1), torch.ones(4)), RuntimeError,
     "outer: Expected 1-D argument self, but got 2-D"),
    (lambda: torch.mv(torch.ones(3, 4), torch.ones(4, 1)), RuntimeError,
     "vector + matrix @ vector expected, got 1, 2, 2"),
    (lambda: torch.addmm(torch.ones(4), torch.ones(2, 4), torch.ones(4, 3)), RuntimeError,
     "The expanded size of the tensor (3) must match the existing size (4) at non-singleton "
     "dimension 1.  Target sizes: [2, 3].  Tensor sizes: [4]"),
    (lambda: torch.addmm(torch.ones(3, dtype=torch.float64), torch.ones(2, 4),
                         torch.ones(4, 3)), RuntimeError,
     "self and mat2 must have the same dtype, but got Double and Float"),
    (lambda: torch.tensordot(torch.ones(3, 4, 5), torch.ones(5, 3, 6), dims=([0, 1], [1, 0])),
     RuntimeError, "contracted dimensions need to match, but first has size 4 in dim 1 and "
     "second has size 5 in dim 0"),
    (lambda: torch.tensordot(torch.ones(3, 4), torch.ones(4, 5), dims=-1), RuntimeError,
     "tensordot expects dims >= 0, but got dims=-1"),
    (lambda: torch.einsum("ij,jk->ik", torch.ones(2, 3), torch.ones(4, 5)), RuntimeError,
     "einsum(): subscript j has size 4 for operand 1 which does not broadcast with previously "
     "seen size 3"),
    (lambda: torch.einsum("ij,jk->ik", torch.ones(2, 3)), RuntimeError,
     "einsum(): fewer operands were provided than specified in the equation"),
    (lambda: torch.einsum("ijk,jk->ik", torch.ones(2, 3), torch.ones(3, 5)), RuntimeError,
     "einsum(): the number of subscripts in the equation (3) does not match the number of "
     "dimensions (2) for operand 0 and no ellipsis was given"),
    (lambda: torch.einsum("ii->i", torch.ones(2, 3)), RuntimeError,
     "einsum(): subscript i is repeated for operand 0 but the sizes don't match, 3 != 2"),
    (lambda: torch.einsum("ij->jj", torch.ones(2, 3)), RuntimeError,
     "einsum(): output subscript j appears more than once in the output"),
    (lambda: torch.einsum("ij->k", torch.ones(2, 3)), RuntimeError,
     "einsum(): output subscript k does not appear in the equation for any input operand"),
    (lambda: torch.einsum("ij,jk->i-k", torch.ones(2, 3), torch.ones(3, 4)), RuntimeError,
     "einsum(): invalid subscript given at index 8 in the equation string, subscripts must be "
     "in [a-zA-Z]"),
    (lambda: torch.einsum("ij,jk->ik", torch.ones(2, 3), torch.ones(3, 5, dtype=torch.float64)),
     RuntimeError, "expected scalar type Float but found Double"),
]


@pytest.mark.parametrize("fn,exc,msg", ERRORS)
def test_errors_are_eager_with_torch_messages(fn, exc, msg):
    with _raises(exc, msg):
        fn()


def test_bool_products_are_not_implemented():
    b = torch.ones(2, 2, dtype=torch.bool)
    with _raises(NotImplementedError, "\"addmm_impl_cpu_\" not implemented for 'Bool'"):
        b @ b
    with _raises(NotImplementedError, "\"bmm\" not implemented for 'Bool'"):
        torch.bmm(b.reshape(1, 2, 2), b.reshape(1, 2, 2))


# ------------------------------------------------------------------------------ kernels
def test_kernel_counts():
    a, b = torch.randn(8, 6).realize(), torch.randn(6, 5).realize()
    bias = torch.randn(5).realize()
    assert len(schedule(a @ b)) == 1
    assert len(schedule(a.t().t() @ b)) == 1
    assert len(schedule((a @ b + bias).relu())) <= 2
    assert len(schedule(torch.addmm(bias, a, b))) == 1
    x, y = torch.randn(2, 1, 8, 6).realize(), torch.randn(3, 6, 5).realize()
    assert len(schedule(x @ y)) == 1
    assert len(schedule(torch.einsum("bij,bjk->bik", x.squeeze(1), y.narrow(0, 0, 2)))) == 1
    assert len(schedule(torch.einsum("ij,jk,kl->il", a, b, b.t()))) == 1


def test_matmul_vs_torch():
    """The dtype and value of odd cases, against PyTorch itself when it is installed."""
    pt = pytest.importorskip("torch")
    cases = [((2, 0, 3), (3, 0)), ((1, 2, 3), (5, 3, 1)), ((3,), (0, 3, 2)), ((2, 3), (2, 3, 4))]
    rng = np.random.default_rng(3)
    for sa, sb in cases:
        for dtype in (np.float32, np.int16):
            a, b = _data(rng, sa, dtype), _data(rng, sb, dtype)
            want = pt.tensor(a) @ pt.tensor(b)
            got = torch.tensor(a) @ torch.tensor(b)
            assert str(got.dtype) == str(want.dtype)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    for eq, shapes, dtype in [("ij,k->i", [(2, 3), (4,)], np.int32),
                              ("ii", [(3, 3)], np.int32), ("ij->", [(1, 1)], np.int32),
                              ("ij,jk->ik", [(2, 0), (0, 3)], np.int32)]:
        ops = [_data(rng, s, dtype) for s in shapes]
        want = pt.einsum(eq, *[pt.tensor(o) for o in ops])
        got = torch.einsum(eq, *[torch.tensor(o) for o in ops])
        assert str(got.dtype) == str(want.dtype), eq
        np.testing.assert_array_equal(got.numpy(), want.numpy())
