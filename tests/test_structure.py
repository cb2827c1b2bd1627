"""Structure functions, placement and constructors (lazytorch/frontend/structure.py,
placement.py, constructors.py): values against numpy, gradients against finite differences,
views written through, and PyTorch's messages; PyTorch itself where it is installed."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import lazytorch as torch
from tests.helpers import check_all, grad_check


def test_diagonals_match_numpy(backend, rng):
    m = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((2, 4, 3)).astype(np.float32)
    v = np.array([1.0, 2.0, 3.0], np.float32)
    tm, tb, tv = torch.tensor(m), torch.tensor(b), torch.tensor(v)
    check_all([
        ("diag of matrix", torch.diag(tm), np.diag(m)),
        ("diag k=2", torch.diag(tm, 2), np.diag(m, 2)),
        ("diag k=-1", tm.diag(-1), np.diag(m, -1)),
        ("diag of vector", torch.diag(tv), np.diag(v)),
        ("diag of vector k=1", torch.diag(tv, 1), np.diag(v, 1)),
        ("diag of vector k=-2", torch.diag(tv, -2), np.diag(v, -2)),
        ("diagonal", torch.diagonal(tb, 1, 0, 2), np.diagonal(b, 1, 0, 2)),
        ("diagonal far offset", torch.diagonal(tm, 9), np.diagonal(m, 9)),
        ("diagonal -1,-2", tb.diagonal(0, -1, -2), np.diagonal(b, 0, -1, -2)),
        ("linalg.diagonal", torch.linalg.diagonal(tb), np.diagonal(b, 0, -2, -1)),
        ("diagflat", torch.diagflat(tm[:2, :2], -1), np.diagflat(m[:2, :2], -1)),
        ("diag_embed", torch.diag_embed(tb, 1), np.stack([np.stack([np.diag(r, 1) for r in s])
                                                          for s in b])),
        ("diag_embed dims", torch.diag_embed(tv.reshape(1, 3), 0, 0, 2),
         np.diag(v)[:, None, :]),
        ("trace", torch.trace(tm), np.trace(m)),
        ("trace int", torch.trace(torch.tensor([[1, 2], [3, 4]], dtype=torch.int32)),
         np.int64(5), torch.int64),
    ])


def test_diagonal_is_a_view_written_through():
    x = torch.zeros(3, 4)
    x.diagonal(1).fill_(7.0)
    ref = np.zeros((3, 4), np.float32)
    ref[[0, 1, 2], [1, 2, 3]] = 7
    np.testing.assert_array_equal(x.numpy(), ref)
    d = torch.diag(x)  # diag of a matrix is a copy
    d.fill_(1.0)
    np.testing.assert_array_equal(x.numpy(), ref)


def test_diagonal_gradients(rng):
    a = rng.standard_normal((3, 4))
    grad_check(lambda t: torch.diagonal(t, 1), lambda v: np.diagonal(v, 1).copy(), [a])
    grad_check(lambda t: torch.diag(t[0]), lambda v: np.diag(v[0]), [a])
    grad_check(lambda t: torch.diag_embed(t, -1), lambda v: np.stack([np.diag(r, -1) for r in v]),
               [a])
    grad_check(lambda t: torch.trace(t), lambda v: np.trace(v), [a])


def test_grids_and_indices():
    a, b, c = np.arange(3), np.array([5, 6]), np.array([7, 8])
    ta, tb, tc = (torch.tensor(x) for x in (a, b, c))
    g_ij = torch.meshgrid(ta, tb, indexing="ij")
    g_xy = torch.meshgrid(ta, tb, tc, indexing="xy")
    r_ij, r_xy = np.meshgrid(a, b, indexing="ij"), np.meshgrid(a, b, c, indexing="xy")
    check_all([(f"meshgrid ij {i}", t, r) for i, (t, r) in enumerate(zip(g_ij, r_ij))] +
              [(f"meshgrid xy {i}", t, r) for i, (t, r) in enumerate(zip(g_xy, r_xy))] + [
        ("tril_indices", torch.tril_indices(4, 3, -1), np.stack(np.tril_indices(4, -1, 3))),
        ("triu_indices", torch.triu_indices(3, 5, 1), np.stack(np.triu_indices(3, 1, 5))),
        ("cartesian_prod", torch.cartesian_prod(ta, tb, tc),
         np.array(list(itertools.product(a, b, c)))),
        ("combinations", torch.combinations(ta, 2), np.array(list(itertools.combinations(a, 2)))),
        ("combinations with replacement", torch.combinations(tb, 2, with_replacement=True),
         np.array(list(itertools.combinations_with_replacement(b, 2)))),
        ("unravel_index", torch.stack(torch.unravel_index(torch.tensor([0, 5, 7, -1]), (2, 4))),
         np.stack(np.unravel_index([0, 5, 7, 7], (2, 4)))),
    ])
    with pytest.warns(UserWarning, match="it will be required to pass the indexing argument"):
        torch.frontend.structure._MESHGRID_WARNED[0] = False
        torch.meshgrid(ta, tb)


def test_products_and_rearrangements(backend, rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((3, 2)).astype(np.float32)
    u, v = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(
        np.float32)
    ta, tb, tu, tv = (torch.tensor(x) for x in (a, b, u, v))
    bd = np.zeros((6, 6), np.float32)
    bd[:2, :3], bd[2:5, 3:5], bd[5, 5] = a, b, 5
    check_all([
        ("kron", torch.kron(ta, tb), np.kron(a, b)),
        ("kron mixed ndim", torch.kron(ta, tv), np.kron(a, v)),
        ("block_diag", torch.block_diag(ta, tb, torch.tensor(5.0)), bd),
        ("cross", torch.cross(tu, tv.expand(4, 3), dim=1), np.cross(u, v)),
        ("linalg.cross broadcast", torch.linalg.cross(tu, tv.reshape(1, 3)), np.cross(u, v)),
        ("rot90", torch.rot90(ta), np.rot90(a)), ("rot90 k=3", ta.rot90(3, [0, 1]),
                                                  np.rot90(a, 3)),
        ("rot90 k=-2", torch.rot90(ta, -2, (1, 0)), np.rot90(a, -2, (1, 0))),
        ("fliplr", torch.fliplr(ta), np.fliplr(a)), ("flipud", ta.flipud(), np.flipud(a)),
        ("tile", torch.tile(ta, (2,)), np.tile(a, (2,))),
        ("tile more dims", ta.tile((2, 1, 2)), np.tile(a, (2, 1, 2))),
        ("ravel", torch.ravel(ta.t()), np.ravel(a.T)),
        ("repeat_interleave int", torch.repeat_interleave(ta, 2, dim=1), np.repeat(a, 2, 1)),
        ("repeat_interleave flat", ta.repeat_interleave(2), np.repeat(a, 2)),
        ("repeat_interleave counts", torch.repeat_interleave(ta, torch.tensor([1, 0]), dim=0),
         np.repeat(a, [1, 0], 0)),
        ("repeat_interleave alone", torch.repeat_interleave(torch.tensor([2, 0, 1])),
         np.array([0, 0, 2])),
        ("vander", torch.vander(torch.tensor([1, 2, 3]), 4), np.vander([1, 2, 3], 4)),
        ("vander increasing", torch.vander(tv, increasing=True), np.vander(v, increasing=True)),
        ("linalg.vander", torch.linalg.vander(tv), np.vander(v, increasing=True)),
    ])


def test_product_gradients(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    grad_check(torch.kron, np.kron, [a, b])
    grad_check(lambda x, y: torch.block_diag(x, y), lambda x, y: np.block(
        [[x, np.zeros((2, 2))], [np.zeros((3, 3)), y]]), [a, b])
    u, v = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    grad_check(lambda x, y: torch.linalg.cross(x, y), lambda x, y: np.cross(x, y), [u, v])
    grad_check(lambda x: torch.repeat_interleave(x, 3, 0), lambda x: np.repeat(x, 3, 0), [a])


def test_splits_and_broadcasts():
    x = torch.arange(14).reshape(2, 7)
    parts = torch.tensor_split(x, 3, dim=1)
    assert [tuple(p.shape) for p in parts] == [(2, 3), (2, 2), (2, 2)]
    ref = np.array_split(np.arange(14).reshape(2, 7), [1, 5, 10, -1], axis=1)
    for p, r in zip(torch.tensor_split(x, [1, 5, 10, -1], dim=1), ref):
        np.testing.assert_array_equal(p.numpy(), r)
    for p, r in zip(x.tensor_split(torch.tensor([2, 4]), 1), np.split(x.numpy(), [2, 4], 1)):
        np.testing.assert_array_equal(p.numpy(), r)
    np.testing.assert_array_equal(torch.hsplit(torch.zeros(2, 6), 3)[0].numpy(), np.zeros((2, 2)))
    assert len(torch.vsplit(torch.zeros(4, 2), [1])) == 2
    assert torch.dsplit(torch.zeros(1, 1, 4), 2)[1].shape == (1, 1, 2)
    with pytest.raises(RuntimeError, match="torch.hsplit attempted to split along dimension 1, "
                                           "but the size of the dimension 5 is not divisible "
                                           "by the split_size 2!"):
        torch.hsplit(torch.zeros(2, 5), 2)
    parts[0].fill_(-1)  # the parts are views
    assert (x[:, :3] == -1).all()
    a, b = torch.broadcast_tensors(torch.ones(3, 1), torch.zeros(2))
    assert a.shape == b.shape == (3, 2)
    assert [t.shape for t in torch.broadcast_tensors(torch.ones(()), torch.zeros(2, 1),
                                                     torch.ones(3))] == [(2, 3)] * 3
    # PyTorch's message: the first mismatching dim of the shape so far and the next input
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(2\) must match the size of "
                                           r"tensor b \(3\) at non-singleton dimension 0"):
        torch.broadcast_tensors(torch.zeros(2, 1), torch.ones(3, 4), torch.ones(5))
    assert torch.swapdims(torch.zeros(2, 3), 0, 1).shape == torch.moveaxis(torch.zeros(2, 3), 0,
                                                                             1).shape == (3, 2)
    c = torch.clone(x)
    c.fill_(0)
    assert x.sum().item() != 0


def test_placement_functions(backend):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    tx = torch.tensor(x)
    mask = np.array([[True, False, True, False], [False, False, True, True],
                     [True, False, False, False]])
    src = np.arange(100, 112, dtype=np.float32).reshape(3, 4)
    ms = x.copy()
    ms[mask] = src.ravel()[:mask.sum()]
    ss = x.copy()
    ss[1:3, :] = -np.ones((2, 4))
    sel = x.copy()
    sel[:, 2] = [7, 8, 9]
    dg = x.copy()
    dg[[0, 1, 2], [1, 2, 3]] = [-1, -2, -3]
    put = x.copy().ravel()
    put[[0, 11, 5]] = [-5, -6, -7]
    acc = x.copy().ravel()
    np.add.at(acc, [1, 1, 2], [1.0, 1.0, 1.0])
    check_all([
        ("masked_scatter", torch.masked_scatter(tx, torch.tensor(mask), torch.tensor(src)), ms),
        ("slice_scatter", torch.slice_scatter(tx, -torch.ones(2, 4), 0, 1, 3), ss),
        ("select_scatter", tx.select_scatter(torch.tensor([7.0, 8, 9]), 1, 2), sel),
        ("diagonal_scatter", torch.diagonal_scatter(tx, torch.tensor([-1.0, -2, -3]), 1), dg),
        ("put", torch.put(tx, torch.tensor([0, -1, 5]), torch.tensor([-5.0, -6, -7])),
         put.reshape(3, 4)),
        ("put accumulate", tx.put(torch.tensor([1, 1, 2]), torch.ones(3), accumulate=True),
         acc.reshape(3, 4)),
        ("input unchanged", tx, x),
    ])
    y = torch.zeros(2, 2)
    y.masked_scatter_(torch.tensor([[False, True], [True, False]]), torch.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(y.numpy(), [[0, 1], [2, 0]])


def test_placement_gradients(rng):
    a, s = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))

    def ref(x, y):
        out = x.copy()
        out[1:3] = y
        return out
    grad_check(lambda x, y: torch.slice_scatter(x, y, 0, 1), ref, [a, s])
    mask = np.array([[True, False, True, False]] * 3)

    def ms(x, y):
        out = x.copy()
        out[mask] = y.ravel()[:mask.sum()]
        return out
    grad_check(lambda x, y: torch.masked_scatter(x, torch.tensor(mask), y), ms,
               [a, rng.standard_normal((2, 4))])


def test_constructors_and_new_methods():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert x.new_zeros(2, 3).dtype == torch.float64 and x.new_zeros((2, 3)).shape == (2, 3)
    assert x.new_ones(2, dtype=torch.int32).dtype == torch.int32
    np.testing.assert_array_equal(x.new_full((2,), 7).numpy(), [7.0, 7.0])
    assert x.new_empty(0).shape == (0,) and x.new().shape == (0,)
    assert x.new(2, 3).shape == (2, 3) and x.new([1, 2]).dtype == torch.float64
    with pytest.warns(UserWarning, match="To copy construct from a tensor"):
        c = x.new_tensor(x)
    c.fill_(0)
    assert x.new_tensor([3]).dtype == torch.float64 and x[0].item() == 1.0
    np.testing.assert_allclose(torch.logspace(0, 2, 3).numpy(), [1, 10, 100])
    np.testing.assert_array_equal(torch.logspace(0, 3, 4, base=2, dtype=torch.int64).numpy(),
                                  [1, 2, 4, 8])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(torch.range(0, 2, 0.5).numpy(), [0, 0.5, 1, 1.5, 2])
    assert torch.scalar_tensor(True).dtype == torch.float32
    assert torch.asarray([1, 2]).dtype == torch.int64 and torch.asarray(x) is x
    arr = np.ones(3, np.float32)
    assert torch.asarray(arr).dtype == torch.float32
    assert torch.empty_strided((2, 3), (3, 1)).shape == (2, 3)
    z = torch.ones(2)
    assert torch.zero_(z) is z and z.sum().item() == 0
    np.testing.assert_array_equal(torch.fill(torch.zeros(2), 3.0).numpy(), [3, 3])
    w = torch.zeros(7, 3)
    w.fill_diagonal_(5, wrap=True)
    ref = np.zeros((7, 3))
    ref[[0, 1, 2, 4, 5, 6], [0, 1, 2, 0, 1, 2]] = 5
    np.testing.assert_array_equal(w.numpy(), ref)
    np.testing.assert_array_equal(torch.ones(2, 3).sum_to_size(1, 3).numpy(), [[2, 2, 2]])
    with pytest.raises(RuntimeError, match=r"size \{\[2\]\} is not expandable to size "
                                           r"\{\[2, 3\]\}."):
        torch.ones(2, 3).sum_to_size(2)


def test_errors():
    with pytest.raises(RuntimeError, match="diag\\(\\): Supports 1D or 2D tensors. Got 3D"):
        torch.diag(torch.zeros(1, 1, 1))
    with pytest.raises(NotImplementedError, match="\"trace\" not implemented for 'Bool'"):
        torch.trace(torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="diagonal dimensions cannot be identical 1, 1"):
        torch.diagonal(torch.zeros(2, 2), 0, 1, 1)
    with pytest.raises(RuntimeError, match="linalg.cross: inputs dimension 1 must have length 3. "
                                           "Got 2 and 2"):
        torch.linalg.cross(torch.zeros(2, 2), torch.zeros(2, 2), dim=1)
    with pytest.raises(RuntimeError, match="expected total rotation dims == 2"):
        torch.rot90(torch.zeros(2, 2), 1, [0])
    with pytest.raises(RuntimeError, match="torch.block_diag: Input tensors must have 2 or fewer "
                                           "dimensions. Input 0 has 3 dimensions"):
        torch.block_diag(torch.zeros(1, 1, 1))


def test_structure_matches_pytorch():
    pt = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    v = np.array([1, 2, 3])
    cases = [
        lambda m, x, i: m.diag(x, -1), lambda m, x, i: m.diag_embed(x, 2, 0, 2),
        lambda m, x, i: m.diagonal(x, -2), lambda m, x, i: m.trace(i.reshape(1, 3)),
        lambda m, x, i: m.kron(i, x[:2, :2]), lambda m, x, i: m.cartesian_prod(i, i),
        lambda m, x, i: m.vander(i), lambda m, x, i: m.rot90(x, 5),
        lambda m, x, i: m.tril_indices(3, 4, 1), lambda m, x, i: m.combinations(i, 3),
        lambda m, x, i: m.block_diag(i, x[0]), lambda m, x, i: m.unravel_index(i * 5, (3, 4))[1],
        lambda m, x, i: m.repeat_interleave(x, 2, dim=0),
        lambda m, x, i: m.slice_scatter(x, x[:, :1] * 0, 1, 3, None),
        lambda m, x, i: x.new_full((2,), 3).to(m.float64) + m.logspace(1, 2, 2, base=3),
    ]
    for k, fn in enumerate(cases):
        ours = fn(torch, torch.tensor(a), torch.tensor(v))
        ref = fn(pt, pt.tensor(a), pt.tensor(v))
        assert str(ours.dtype) == str(ref.dtype), (k, ours.dtype, ref.dtype)
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6, err_msg=str(k))
