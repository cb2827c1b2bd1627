"""sort, argsort, msort, topk, kthvalue, median, nanmedian, mode, unique, unique_consecutive,
searchsorted, bucketize: against numpy/Python references, on both backends, with gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
from tests.conftest import check
from tests.helpers import grad_check

NAN = float("nan")


# ----------------------------------------------------------------------------- references
def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def ref_argsort_row(row, descending: bool) -> list[int]:
    """Stable order of a Python list with NaN largest (Python's sorted is stable)."""
    vals = [float(v) if isinstance(v, (float, np.floating)) else int(v) for v in row]
    if descending:
        key = (lambda i: (0, 0) if _isnan(vals[i]) else (1, -vals[i]))
    else:
        key = (lambda i: (1, 0) if _isnan(vals[i]) else (0, vals[i]))
    return sorted(range(len(vals)), key=key)


def ref_argsort(a: np.ndarray, dim: int, descending: bool) -> np.ndarray:
    m = np.moveaxis(a, dim, -1)
    out = np.array([ref_argsort_row(list(r), descending) for r in m.reshape(-1, m.shape[-1])],
                   dtype=np.int64).reshape(m.shape)
    return np.moveaxis(out, -1, dim)


@pytest.fixture
def tied(rng):
    """A float32 (4, 6) array with many ties and two NaNs."""
    a = rng.integers(0, 4, (4, 6)).astype(np.float32)
    a[1, 2] = a[3, 0] = NAN
    return a


# ----------------------------------------------------------------------------- sort
@pytest.mark.parametrize("descending", [False, True])
def test_sort_stable_ties_nan_dims(backend, tied, descending):
    x = torch.tensor(tied)
    for dim in (0, 1, -1, -2):
        v, i = torch.sort(x, dim, descending, stable=True)
        ref_i = ref_argsort(tied, dim, descending)
        check(i, ref_i, dtype=torch.int64)
        check(v, np.take_along_axis(tied, ref_i, dim), dtype=torch.float32)
    check(x.argsort(dim=0, descending=descending, stable=True), ref_argsort(tied, 0, descending))


def test_sort_int_bool_and_methods(backend, rng):
    a = rng.integers(-5, 5, (3, 7))
    v, i = torch.tensor(a).sort(descending=True, stable=True)
    ref_i = ref_argsort(a, 1, True)
    check(i, ref_i)
    check(v, np.take_along_axis(a, ref_i, 1), dtype=torch.int64)
    b = np.array([True, False, True, False])
    r = torch.sort(torch.tensor(b), stable=True)
    check(r.values, np.sort(b), dtype=torch.bool)
    check(r.indices, np.array([1, 3, 0, 2]))
    check(torch.msort(torch.tensor(a)), np.sort(a, axis=0))
    check(torch.tensor(a).msort(), np.sort(a, axis=0))


def test_sort_lazy_input_and_result_type(backend, rng):
    a = rng.standard_normal((5, 3)).astype(np.float32)
    x = torch.tensor(a) * 2 + 1          # a pending graph, not a buffer
    r = x.sort(0)
    values, indices = r
    assert r.values is values and r.indices is indices
    assert repr(r).startswith("torch.return_types.sort(\nvalues=")
    check(values, np.sort(a * 2 + 1, axis=0))
    check(indices, np.argsort(a, axis=0, kind="stable"))


def test_sort_0d_and_empty(backend):
    v, i = torch.tensor(3.5).sort()
    assert v.shape == () and i.shape == ()
    assert v.item() == 3.5 and i.item() == 0
    for shape, dim in (((0,), 0), ((2, 0), 1), ((0, 3), 1)):
        v, i = torch.zeros(shape).sort(dim)
        assert tuple(v.shape) == shape and tuple(i.shape) == shape and i.dtype == torch.int64
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range "
                                         r"of \[-1, 0\], but got 2\)"):
        torch.sort(torch.tensor([1.0, 2.0]), dim=2)


# ----------------------------------------------------------------------------- topk
def test_topk(backend, rng):
    a = rng.permutation(24).reshape(4, 6).astype(np.float32)      # distinct values
    x = torch.tensor(a)
    for k, dim, largest in ((3, -1, True), (2, 0, False), (6, 1, True), (0, 1, True)):
        v, i = x.topk(k, dim, largest)
        order = np.argsort(-a if largest else a, axis=dim)
        ref_i = np.take(order, np.arange(k), axis=dim)
        check(i, ref_i, dtype=torch.int64)
        check(v, np.take_along_axis(a, ref_i, dim))
    v, i = torch.topk(torch.tensor([1.0, NAN, 3.0, 2.0]), 2)
    check(v, np.array([NAN, 3.0]))
    check(i, np.array([1, 2]))
    v, i = torch.topk(torch.tensor([1.0, NAN, 3.0, 2.0]), 2, largest=False)
    check(v, np.array([1.0, 2.0]))


def test_topk_ties_values_are_at_indices(backend, tied):
    clean = np.nan_to_num(tied, nan=9.0)
    v, i = torch.tensor(clean).topk(3, dim=1, sorted=True)
    check(v, -np.sort(-clean, axis=1)[:, :3])
    np.testing.assert_array_equal(np.take_along_axis(clean, i.numpy(), 1), v.numpy())


def test_topk_errors():
    x = torch.tensor([3.0, 1.0, 2.0])
    for k in (4, -1):
        with pytest.raises(RuntimeError, match="selected index k out of range"):
            x.topk(k)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        torch.tensor(5.0).topk(2)
    assert torch.tensor(5.0).topk(1).values.item() == 5.0
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.topk(1, dim=1)


# ----------------------------------------------------------------------------- kthvalue, median
def test_kthvalue(backend, rng):
    a = rng.standard_normal((3, 5))
    x = torch.tensor(a)
    for k, dim, keepdim in ((1, -1, False), (3, 0, True), (5, 1, False)):
        v, i = x.kthvalue(k, dim, keepdim)
        ref = np.take(np.sort(a, axis=dim), [k - 1], axis=dim)
        ref_i = np.take(np.argsort(a, axis=dim), [k - 1], axis=dim)
        check(v, ref if keepdim else ref.squeeze(dim))
        check(i, ref_i if keepdim else ref_i.squeeze(dim))
    with pytest.raises(RuntimeError, match=r"kthvalue\(\): selected number k out of range for "
                                           r"dimension 0"):
        torch.tensor([3.0, 1.0]).kthvalue(3)
    with pytest.raises(RuntimeError, match="selected number k out of range"):
        torch.tensor([3.0, 1.0]).kthvalue(0)
    with pytest.raises(IndexError, match=r"kthvalue\(\): Expected reduction dim 0 to have "
                                         r"non-zero size."):
        torch.zeros(0).kthvalue(1)


def test_median(backend, rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    x = torch.tensor(a)
    low = np.sort(a.reshape(-1))[(a.size - 1) // 2]        # the lower of the two middles
    check(x.median(), np.float32(low), dtype=torch.float32)
    for dim, keepdim in ((1, False), (0, True), (-1, True)):
        v, i = torch.median(x, dim, keepdim)
        n = a.shape[dim]
        ref_i = np.take(np.argsort(a, axis=dim), [(n - 1) // 2], axis=dim)
        check(i, ref_i if keepdim else ref_i.squeeze(dim))
        check(v, np.take_along_axis(a, ref_i, dim) if keepdim
              else np.take_along_axis(a, ref_i, dim).squeeze(dim))
    check(torch.tensor([1, 2, 3, 4]).median(), np.int64(2))


def test_median_nan_empty_nanmedian(backend):
    x = torch.tensor([[1.0, NAN, 3.0, NAN], [4.0, 2.0, 3.0, 1.0]])
    v, i = x.median(1)
    check(v, np.array([NAN, 2.0]))
    assert i.tolist()[0] == 1                                   # the first NaN
    assert math.isnan(x.median().item())
    v, i = x.nanmedian(1)
    check(v, np.array([1.0, 2.0]))
    assert x.nanmedian().item() == 2.0
    assert math.isnan(torch.tensor([NAN, NAN]).nanmedian().item())
    assert math.isnan(torch.zeros(0).median().item())
    v, i = torch.zeros(3, 0).median(0)
    assert tuple(v.shape) == (0,) and tuple(i.shape) == (0,)
    with pytest.raises(IndexError, match=r"median\(\): Expected reduction dim 0 to have "
                                         r"non-zero size."):
        torch.zeros(0, 3).median(0)


def test_mode(backend):
    v, i = torch.tensor([1, 1, 2, 2, 3]).mode()
    assert (v.item(), i.item()) == (1, 1)
    v, i = torch.tensor([2, 1, 2, 1, 3]).mode()                 # smallest, last index
    assert (v.item(), i.item()) == (1, 3)
    a = np.array([[1.0, 5.0, 5.0], [2.0, 2.0, 7.0], [1.0, 5.0, 7.0]])
    v, i = torch.tensor(a).mode(0, keepdim=True)
    check(v, np.array([[1.0, 5.0, 7.0]]))
    check(i, np.array([[2, 2, 2]]))


# ----------------------------------------------------------------------------- gradients
def _np_sort(x, dim=-1, descending=False):
    s = np.sort(x, axis=dim)
    return np.flip(s, axis=dim) if descending else s


def test_sort_topk_gradients(backend, rng):
    a = rng.standard_normal((3, 4))
    grad_check(lambda x: x.sort(0, descending=True).values,
               lambda x: _np_sort(x, 0, True), [a])
    grad_check(lambda x: x.topk(2).values, lambda x: _np_sort(x, -1, True)[:, :2], [a])
    grad_check(lambda x: torch.sort(x * x).values[:, 1:], lambda x: np.sort(x * x)[:, 1:], [a])


def test_selection_gradients(backend, rng):
    a = rng.standard_normal((3, 5))
    grad_check(lambda x: x.kthvalue(2, 1).values, lambda x: np.sort(x, 1)[:, 1], [a])
    grad_check(lambda x: x.median(0).values, lambda x: np.sort(x, 0)[1], [a])
    grad_check(lambda x: x.median(), lambda x: np.sort(x.reshape(-1))[7], [a])


# ----------------------------------------------------------------------------- unique
def test_unique(backend, rng):
    a = rng.integers(0, 5, (3, 4))
    x = torch.tensor(a) + 0                                      # lazy input
    vals, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    check(torch.unique(x), vals, dtype=torch.int64)
    u, i, c = x.unique(return_inverse=True, return_counts=True)
    check(u, vals)
    check(i, inv.reshape(a.shape), dtype=torch.int64)
    check(c, counts, dtype=torch.int64)
    u, c = torch.unique(x, return_counts=True)
    check(c, counts)
    rows = np.array([[1, 2], [1, 2], [0, 1]])
    u, i = torch.unique(torch.tensor(rows), dim=0, return_inverse=True)
    check(u, np.array([[0, 1], [1, 2]]))
    check(i, np.array([1, 1, 0]))
    f = torch.tensor([3.0, 1.0, NAN, 1.0, NAN])
    u, c = f.unique(return_counts=True)                          # NaNs stay distinct
    check(u, np.array([1.0, 3.0, NAN, NAN]))
    check(c, np.array([2, 1, 1, 1]))
    check(torch.unique(torch.tensor(5)), np.array([5]))
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.unique(torch.tensor(rows), dim=2)


def test_unique_consecutive(backend):
    x = torch.tensor([1, 1, 2, 2, 3, 1, 1])
    u, i, c = torch.unique_consecutive(x, return_inverse=True, return_counts=True)
    check(u, np.array([1, 2, 3, 1]))
    check(i, np.array([0, 0, 1, 1, 2, 3, 3]))
    check(c, np.array([2, 2, 1, 2]))
    m = torch.tensor([[1, 2], [1, 2], [0, 1], [1, 2]])
    u, c = m.unique_consecutive(dim=0, return_counts=True)
    check(u, np.array([[1, 2], [0, 1], [1, 2]]))
    check(c, np.array([2, 1, 1]))


# ----------------------------------------------------------------------------- searchsorted
def test_searchsorted_and_bucketize(backend):
    seq = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    v = np.array([[3.0, 6.0, 9.0], [0.0, 10.0, 5.0]])
    s, x = torch.tensor(seq), torch.tensor(v)
    check(torch.searchsorted(s, x), np.searchsorted(seq, v), dtype=torch.int64)
    check(torch.searchsorted(s, x, right=True), np.searchsorted(seq, v, side="right"))
    check(torch.searchsorted(s, x, side="right"), np.searchsorted(seq, v, side="right"))
    check(torch.searchsorted(s, x, out_int32=True), np.searchsorted(seq, v), dtype=torch.int32)
    r = torch.searchsorted(s, 6)
    assert r.shape == () and r.item() == 3
    seq2 = np.array([[1, 3, 5], [2, 4, 6]])
    v2 = np.array([[3, 6], [1, 4]])
    ref = np.stack([np.searchsorted(b, q) for b, q in zip(seq2, v2)])
    check(torch.searchsorted(torch.tensor(seq2), torch.tensor(v2)), ref)
    unsorted = np.array([5.0, 1.0, 3.0])
    sorter = np.argsort(unsorted)
    check(torch.searchsorted(torch.tensor(unsorted), torch.tensor([2.0, 4.0]),
                             sorter=torch.tensor(sorter)),
          np.searchsorted(unsorted, [2.0, 4.0], sorter=sorter))
    # bucketize(right=False): boundaries[i-1] < x <= boundaries[i]
    check(torch.bucketize(x, s), np.searchsorted(seq, v, side="left"))
    check(torch.bucketize(x, s, right=True), np.searchsorted(seq, v, side="right"))


def test_searchsorted_errors():
    s = torch.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="side and right can't be set to opposites, got side "
                                           "of left while right was True"):
        torch.searchsorted(s, torch.tensor([2]), side="left", right=True)
    with pytest.raises(RuntimeError, match="side can only be 'left' or 'right' but got lft"):
        torch.searchsorted(s, torch.tensor([2]), side="lft")
    with pytest.raises(RuntimeError, match=r"boundaries tensor \[1, 3\] and input value tensor "
                                           r"\[2\]"):
        torch.searchsorted(torch.tensor([[1, 2, 3]]), torch.tensor([2, 3]))
    with pytest.raises(RuntimeError, match=r"boundaries tensor must be 1 dimension, but got "
                                           r"dim\(2\)"):
        torch.bucketize(s, torch.tensor([[2]]))


# ----------------------------------------------------------------------------- torch parity
def test_torch_parity(rng):
    pt = pytest.importorskip("torch")
    a = rng.integers(0, 5, (6, 7)).astype(np.float32)
    a[2, 3] = a[4, 4] = NAN
    for dim in (0, 1):
        for desc in (False, True):
            ours = torch.sort(torch.tensor(a), dim, desc, stable=True)
            theirs = pt.sort(pt.tensor(a), dim=dim, descending=desc, stable=True)
            np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
            np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    d = rng.permutation(42).reshape(6, 7).astype(np.float32)
    for k, dim, largest in ((3, 1, True), (4, 0, False)):
        ours = torch.tensor(d).topk(k, dim, largest)
        theirs = pt.tensor(d).topk(k, dim, largest)
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    np.testing.assert_array_equal(torch.tensor(d).median(1).indices.numpy(),
                                  pt.tensor(d).median(1).indices.numpy())
    np.testing.assert_array_equal(torch.tensor(d).kthvalue(3, 0).indices.numpy(),
                                  pt.tensor(d).kthvalue(3, 0).indices.numpy())
    ints = rng.integers(0, 3, (4, 9))
    for ours, theirs in zip(torch.tensor(ints).mode(1), pt.tensor(ints).mode(1)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for ours, theirs in zip(torch.unique(torch.tensor(a), return_inverse=True,
                                         return_counts=True),
                            pt.unique(pt.tensor(a), return_inverse=True, return_counts=True)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    seq, q = np.sort(rng.standard_normal(10)), rng.standard_normal((3, 4))
    np.testing.assert_array_equal(torch.searchsorted(torch.tensor(seq), torch.tensor(q)).numpy(),
                                  pt.searchsorted(pt.tensor(seq), pt.tensor(q)).numpy())
    np.testing.assert_array_equal(torch.bucketize(torch.tensor(q), torch.tensor(seq),
                                                  right=True).numpy(),
                                  pt.bucketize(pt.tensor(q), pt.tensor(seq), right=True).numpy())
