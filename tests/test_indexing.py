"""Indexing and data movement vs numpy: getitem/setitem (views, advanced, masks), gather/scatter,
index_select/take, masks, nonzero, cat/stack, tril/triu, repeat, roll; errors; kernel counts."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.compiler import schedule
from lazytorch.compiler.passes import verify
from lazytorch.frontend.tensor import realize_tensors
from lazytorch.ir import dtypes as dt
from lazytorch.ir.graph import Graph, Node
from lazytorch.ir.ops import Op
from lazytorch.runtime import memory
from tests.conftest import check


class Batch:
    """Collect (tensor, numpy reference) pairs and realize them together: one compile for
    all of a test's kernels. A tensor is recorded as it is now (later in-place ops don't
    change what is checked)."""

    def __init__(self):
        self.items = []

    def __call__(self, t, ref, **kw):
        self.items.append((torch.Tensor._make(t.node), np.array(ref, copy=True), kw))

    def run(self):
        realize_tensors([t for t, _, _ in self.items])
        for t, ref, kw in self.items:
            msg = kw.pop("msg", None)
            try:
                check(t, ref, **kw)
            except AssertionError as e:
                raise AssertionError(f"{msg}: {e}" if msg else str(e)) from None


A = np.arange(60, dtype=np.float32).reshape(3, 4, 5) - 30.5
I = np.array([2, 0, -1])                       # noqa: E741
J = np.array([[0], [3]])
M = A > 0


def _lt(name):
    return {"i": torch.tensor(I), "j": torch.tensor(J), "m": torch.tensor(M)}[name]


def _idx(expr: str, lazy: bool):
    env = {"i": I, "j": J, "m": M}
    if lazy:
        env = {k: _lt(k) for k in env}
    return eval(f"(lambda a: a[{expr}])", env)


# ------------------------------------------------------------------------------ getitem
BASIC = ["0", "-1, 2", "1:, ::2", ":, 1:3, 4:1", "..., 1", "None, ..., None",
         "0, None, :, None, -1", "-3:, :-1, ::3", "..., 2:", "1, 2, 3", "()"]
ADVANCED = ["i", "i, j", ":, j", ":, j, i", "i, :, i", "[0, 1]", "[[0, 1]], [2, 0]",
            "[True, False, True]", "m", "0, m[0]", "m[:, :, 0]", "1:, m[0, :, 0]",
            "..., [4, 0, 4]", "[], :", "i, 1:3", "i, 1:, j"]


def test_getitem_matches_numpy(backend):
    c = Batch()
    for expr in BASIC + ADVANCED:
        c(_idx(expr, True)(torch.tensor(A)), _idx(expr, False)(A), msg=expr)
    c.run()


def test_getitem_torch_specific_forms(backend):
    c = Batch()
    x = torch.tensor(A)
    # an int is applied first (a select), so [0, :, [0, 1]] keeps the slice dim in front
    c(x[0, :, [0, 1]], A[0][:, [0, 1]])
    c(x[1, 2:, None, [0, 1]], A[1][2:, None][:, :, [0, 1]])
    # a list holding sequences is a tuple of indices (as torch reads it)
    c(x[[[0, 1], [1, 2]]], A[[0, 1], [1, 2]])
    # index tensors separated by None move to the front
    c(x[[0, 1], None, [0, 1]], A[[0, 1]][:, None][np.arange(2), :, [0, 1]])
    c(x[True], A[None])
    c(x[False], A[None][:0])
    c(x[torch.tensor(True)], A[None])
    c(x[torch.tensor(1)], A[1])
    c(x[torch.tensor([0, 2], dtype=torch.int32)], A[[0, 2]])
    c(x[torch.tensor(M, dtype=torch.uint8)], A[M])
    c(x[np.array([0, 2])], A[[0, 2]])
    c(x[np.int64(1), ...], A[1])
    c.run()


def test_getitem_non_contiguous_inputs(backend):
    c = Batch()
    x = torch.tensor(A)
    p = x.permute(2, 0, 1)
    c(p[1:, 0], A.transpose(2, 0, 1)[1:, 0])
    c(p[I, 1:], A.transpose(2, 0, 1)[I, 1:])
    c(p[:, [0, 2]][M[:2, 0].T], A.transpose(2, 0, 1)[:, [0, 2]][M[:2, 0].T])
    e = x[:, :2].expand(2, 3, 2, 5)
    ref = np.broadcast_to(A[:, :2], (2, 3, 2, 5))
    c(e[1, I, :, [4, 0, 4]], ref[1][I, :, [4, 0, 4]])
    s = x[::2, 1:, ::3]
    c(s[[1, 0]], A[::2, 1:, ::3][[1, 0]])
    c(s[s > 0], A[::2, 1:, ::3][A[::2, 1:, ::3] > 0])
    c.run()


def test_getitem_zero_dim_and_empty(backend):
    c = Batch()
    z = torch.tensor(3.5)
    c(z[None], np.array([3.5], np.float32))
    c(z[...], np.array(3.5, np.float32))
    c(z[()], np.array(3.5, np.float32))
    c(z[True], np.array([3.5], np.float32))
    e = torch.zeros(0, 3)
    c(e[[]], np.zeros((0, 3), np.float32))
    c(e[:, [0]], np.zeros((0, 1), np.float32))
    c(e[e > 0], np.zeros((0,), np.float32))
    c(torch.tensor(A)[torch.tensor([], dtype=torch.long)], A[[]])
    c(torch.tensor(A)[2:1], A[2:1])
    c.run()


def test_basic_getitem_returns_views(backend):
    c = Batch()
    x = torch.tensor(A)
    y = x[1]
    x[1, 2] = 5
    ref = A.copy()
    ref[1, 2] = 5
    c(y, ref[1])
    v = x[:, 1:3]
    v.mul_(2)
    ref[:, 1:3] *= 2
    c(x, ref)
    w = x[..., ::2][0]
    w[1] = -1
    ref[..., ::2][0][1] = -1
    c(x, ref)
    c(v, ref[:, 1:3])
    c(y, ref[1])
    c.run()


def test_advanced_getitem_returns_copies(backend):
    x = torch.tensor(A)
    y = x[[0, 1]]
    x[0] = 0
    check(y, A[[0, 1]])


GETITEM_ERRORS = [
    ("5", IndexError, "index 5 is out of bounds for dimension 0 with size 3"),
    ("-4", IndexError, "index -4 is out of bounds for dimension 0 with size 3"),
    ("0, 5", IndexError, "index 5 is out of bounds for dimension 1 with size 4"),
    ("::-1", ValueError, "step must be greater than zero"),
    ("::0", ValueError, "slice step cannot be zero"),
    ("0, 0, 0, 0", IndexError, "too many indices for tensor of dimension 3"),
    ("1.5", IndexError, "only integers, slices"),
    ("[5]", IndexError, "index 5 is out of bounds for dimension 0 with size 3"),
    ("[-4]", IndexError, "index -4 is out of bounds for dimension 0 with size 3"),
    (":, [7]", IndexError, "index 7 is out of bounds for dimension 0 with size 4"),
    ("[0], [9]", IndexError, "index 9 is out of bounds for dimension 1 with size 4"),
    ("[0, 1], [0, 1, 2]", IndexError, "shape mismatch: indexing tensors could not be "
                                      "broadcast together with shapes [2], [3]"),
    ("m[:, :3, 0]", IndexError, "The shape of the mask [3, 3] at index 1 does not match the "
                                "shape of the indexed tensor [3, 4, 5] at index 1"),
    (":, m[:, 0, 0]", IndexError, "The shape of the mask [3] at index 0 does not match the "
                                  "shape of the indexed tensor [3, 4, 5] at index 1"),
]


@pytest.mark.parametrize("expr,exc,msg", GETITEM_ERRORS)
def test_getitem_errors(expr, exc, msg):
    with pytest.raises(exc, match=msg.replace("[", r"\[").replace("]", r"\]")):
        _idx(expr, True)(torch.tensor(A))


def test_getitem_error_on_float_index_tensor_and_0d():
    with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or "
                                         "bool tensors"):
        torch.tensor(A)[torch.tensor([1.0])]
    with pytest.raises(IndexError, match="invalid index of a 0-dim tensor"):
        torch.tensor(1.0)[0]


def test_getitem_is_lazy_for_basic_and_eager_only_for_index_values():
    x = torch.tensor(A) * 2
    y = x[1:, 2]
    assert y.node.op is not Op.BUFFER  # nothing ran
    assert x.node.op is not Op.BUFFER


# ------------------------------------------------------------------------------ setitem
def _set(a, expr, value):
    a[expr] = value
    return a


SETS = [
    ("0", 1.0), ("1, 2", np.arange(5.0)), ("..., ::2", 0.0), ("0", np.ones((1, 4, 5))),
    ("0, 0", np.ones((1, 1, 5))), ("[0, 1]", np.arange(5.0)), ("i, j", -2.0),
    (":, j, i", np.arange(6.0).reshape(2, 3)), ("i, :, i", np.arange(12.0).reshape(3, 4)),
    ("m", 0.0), ("0, m[0]", 2.0), ("m[:, :, 0]", np.arange(5.0)),
    ("m", np.array([7.0])), ("1:, [3, 1]", 9.0), ("[True, False, True]", 4.0),
    ("[]", 5.0), (":, m[0, :, 0]", 7.0),
]


def test_setitem_matches_numpy(backend):
    env = {"i": I, "j": J, "m": M}
    lenv = {k: _lt(k) for k in env}
    c = Batch()
    for expr, value in SETS:
        x = torch.tensor(A)
        ref = A.copy()
        exec(f"ref[{expr}] = value", {**env, "ref": ref, "value": value})
        lv = torch.tensor(value.astype(np.float32)) if isinstance(value, np.ndarray) else value
        exec(f"x[{expr}] = value", {**lenv, "x": x, "value": lv})
        c(x, ref, msg=expr)
    c.run()


def test_setitem_torch_specific_forms(backend):
    c = Batch()
    x = torch.tensor(A)
    ref = A.copy()
    x[0, :, [0, 1]] = torch.arange(8.0).reshape(4, 2)
    ref[0][:, [0, 1]] = np.arange(8.0).reshape(4, 2)
    x[[0, 1], None, [0, 1]] = 3
    ref[[0, 1], [0, 1]] = 3
    x[True] = x * 2
    ref *= 2
    c(x, ref)
    x[False] = 1.0
    c(x, ref)
    c.run()


def test_setitem_duplicates_last_write_wins(backend):
    x = torch.zeros(5)
    x[torch.tensor([1, 3, 1, 1])] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    check(x, np.array([0, 4, 0, 2, 0], np.float32))


def test_setitem_casts_and_mask_fast_path_is_lazy(backend):
    c = Batch()
    xi = torch.tensor(np.arange(12).reshape(3, 4))
    xi[0] = 2.7
    xi[xi % 2 == 1] = torch.tensor(-1.5)
    ref = np.arange(12).reshape(3, 4)
    ref[0] = 2
    ref[ref % 2 == 1] = -1
    c(xi, ref)
    y = torch.tensor(A) + 1
    y[y > 0] = 0.0
    assert y.node.op is not Op.BUFFER  # x[mask] = scalar is a lazy where, not a realize
    c(y, np.where(A + 1 > 0, 0, A + 1))
    c.run()


def test_setitem_through_views_both_ways(backend):
    c = Batch()
    x = torch.tensor(A)
    ref = A.copy()
    p = x.permute(2, 0, 1)
    p[0, :, 1] = 7
    ref.transpose(2, 0, 1)[0, :, 1] = 7
    v = x[1:, ::2]
    v[0] = 3
    ref[1:, ::2][0] = 3
    r = x.view(12, 5)
    r[[0, 11]] = 1.0
    ref.reshape(12, 5)[[0, 11]] = 1.0
    s = x[0]
    s[s > 0] = 4.0
    ref[0][ref[0] > 0] = 4.0
    s[[0, 2]] = -4.0
    ref[0][[0, 2]] = -4.0
    x[0, [1, 3], 2] = -8.0
    ref[0, [1, 3], 2] = -8.0
    c(x, ref)
    c(p, ref.transpose(2, 0, 1))
    c(v, ref[1:, ::2])
    c(s, ref[0])
    c(r, ref.reshape(12, 5))
    c.run()


def test_setitem_augmented(backend):
    x = torch.tensor(A)
    x[1] += 1
    x[:, 2][0] -= 10
    x[torch.tensor([0, 0, 2])] *= 2     # duplicates: applied once, as in torch
    ref = A.copy()
    ref[1] += 1
    ref[0, 2] -= 10
    ref[[0, 2]] *= 2
    check(x, ref)


SET_ERRORS = [
    ("0", lambda: torch.ones(3), RuntimeError, "The expanded size of the tensor (5) must match "
                                               "the existing size (3) at non-singleton "
                                               "dimension 1"),
    ("[0, 1]", lambda: torch.ones(3, 4, 5), RuntimeError,
     "shape mismatch: value tensor of shape [3, 4, 5] cannot be broadcast to indexing result "
     "of shape [2, 4, 5]"),
    ("[0, 1]", lambda: torch.ones(4, 5, dtype=torch.int64), RuntimeError,
     "Index put requires the source and destination dtypes match, got Float for the "
     "destination and Long for the source."),
    ("m", lambda: torch.ones(2), RuntimeError,
     "shape mismatch: value tensor of shape [2] cannot be broadcast to indexing result of "
     "shape [29]"),
    ("::-1", lambda: 1.0, ValueError, "step must be greater than zero"),
    ("[0, 5]", lambda: 1.0, IndexError, "index 5 is out of bounds for dimension 0 with size 3"),
    ("0", lambda: "a", TypeError, "can't assign a str to a torch.FloatTensor"),
]


@pytest.mark.parametrize("expr,value,exc,msg", SET_ERRORS)
def test_setitem_errors(expr, value, exc, msg):
    x = torch.tensor(A)
    with pytest.raises(exc, match=msg.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        exec(f"x[{expr}] = value", {"x": x, "value": value(), "m": _lt("m")})
    check(x, A)  # a failed write changes nothing


def test_index_put(backend):
    c = Batch()
    xi = np.arange(12).reshape(3, 4)
    x = torch.tensor(xi)
    i0, i1 = torch.tensor([0, 0, 2]), torch.tensor([1, 1, 3])
    out = x.index_put((i0, i1), torch.tensor([5, 6, 7]), accumulate=True)
    ref = xi.copy()
    np.add.at(ref, ([0, 0, 2], [1, 1, 3]), [5, 6, 7])
    c(out, ref)
    c(x, xi)
    x.index_put_((torch.tensor([True, False, True]),), torch.tensor(1))
    ref = xi.copy()
    ref[[0, 2]] = 1
    c(x, ref)
    x.index_put_((torch.tensor(1),), torch.tensor(9), accumulate=True)
    ref[1] += 9
    c(x, ref)
    with pytest.raises(IndexError, match=r"too many indices for tensor of dimension 2 \(got 3\)"):
        x.index_put_((i0, i0, i0), torch.tensor(1))
    with pytest.raises(TypeError, match="expected Tensor as element 1 in argument 0"):
        x.index_put_((i0, None), torch.tensor(1))
    c.run()


# ------------------------------------------------------------------------------ gather/scatter
def test_gather(backend, rng):
    c = Batch()
    x = torch.tensor(A)
    idx = rng.integers(0, 4, (3, 2, 5))
    c(x.gather(1, torch.tensor(idx)), np.take_along_axis(A, idx, 1))
    idx2 = rng.integers(0, 5, (2, 3, 1))      # smaller than x along the other dims
    c(torch.gather(x, 2, torch.tensor(idx2)), np.take_along_axis(A[:2, :3], idx2, 2))
    p = x.permute(2, 1, 0)
    idx3 = rng.integers(0, 5, (1, 4, 3)).astype(np.int32)
    c(p.gather(0, torch.tensor(idx3)), np.take_along_axis(A.transpose(2, 1, 0), idx3, 0))
    c(torch.tensor(5.0).gather(0, torch.tensor(0)), np.array(5.0, np.float32))
    c(x.gather(0, torch.zeros(0, 4, 5, dtype=torch.long)), np.zeros((0, 4, 5), np.float32))
    c.run()


def test_gather_errors():
    x = torch.tensor(A)
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x.gather(0, torch.tensor([[[5]]]))
    with pytest.raises(RuntimeError, match="index -1 is out of bounds for dimension 0"):
        x.gather(0, torch.tensor([[[-1]]]))
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of "
                                           "dimensions as input tensor"):
        x.gather(0, torch.tensor([[1]]))
    with pytest.raises(RuntimeError, match="Size does not match at dimension 1"):
        x.gather(0, torch.zeros(4, 5, 5, dtype=torch.long))
    with pytest.raises(RuntimeError, match=r"gather\(\): Expected dtype int32/int64 for index"):
        x.gather(0, torch.zeros(1, 1, 1, dtype=torch.int16))


def _np_scatter(base, dim, index, src, mode=None):
    out = base.copy()
    for pos in np.ndindex(*index.shape):
        dst = list(pos)
        dst[dim] = index[pos]
        v = src[pos] if isinstance(src, np.ndarray) else src
        if mode == "add":
            out[tuple(dst)] += v
        elif mode == "multiply":
            out[tuple(dst)] *= v
        else:
            out[tuple(dst)] = v
    return out


@pytest.mark.parametrize("mode", [None, "add", "multiply"])
def test_scatter_modes(backend, rng, mode):
    c = Batch()
    x = torch.tensor(A)
    idx = rng.integers(0, 4, (2, 3, 5))       # duplicates along dim 1 on purpose
    src = rng.standard_normal((3, 3, 5)).astype(np.float32)
    got = x.scatter(1, torch.tensor(idx), torch.tensor(src), reduce=mode)
    c(got, _np_scatter(A, 1, idx, src, mode))
    c(x.scatter(1, torch.tensor(idx), 2.5, reduce=mode), _np_scatter(A, 1, idx, 2.5, mode))
    c.run()


def test_scatter_add_and_inplace(backend, rng):
    c = Batch()
    idx = rng.integers(0, 3, (4, 5))
    src = rng.standard_normal((4, 5)).astype(np.float32)
    base = np.zeros((3, 5), np.float32)
    c(torch.zeros(3, 5).scatter_add(0, torch.tensor(idx), torch.tensor(src)),
      _np_scatter(base, 0, idx, src, "add"))
    x = torch.tensor(A)
    v = x[0]                                  # a view: scatter_ on it writes through to x
    v.scatter_(0, torch.tensor([[1, 1]]), -1.0)
    ref = A.copy()
    ref[0, 1, :2] = -1
    c(x, ref)
    x.scatter_add_(2, torch.tensor([[[0, 0]]]), torch.ones(1, 1, 2))
    ref[0, 0, 0] += 2
    c(x, ref)
    ints = torch.tensor([1, 2, 3]).scatter(0, torch.tensor([0, 0]), 2.5, reduce="add")
    c(ints, np.array([5, 2, 3]))
    c(torch.tensor(5.0).scatter(0, torch.tensor(0), torch.tensor(3.0)),
      np.array(3.0, np.float32))
    b = torch.tensor([True, False, False])
    c(b.scatter(0, torch.tensor([1, 1]), torch.tensor([False, True]), reduce="add"),
      np.array([True, True, False]))
    c(torch.tensor(A).scatter_add(0, torch.zeros(0, 4, 5, dtype=torch.long),
                                  torch.ones(0, 4, 5)), A)
    c.run()


def test_scatter_errors():
    x = torch.tensor(A)
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x.scatter(0, torch.tensor([[[5]]]), 1.0)
    with pytest.raises(RuntimeError, match=r"scatter\(\): Expected self.dtype to be equal to "
                                           r"src.dtype"):
        x.scatter(0, torch.tensor([[[1]]]), torch.ones(1, 1, 1, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"Expected index \[2, 2, 2\] to be no larger than "
                                           r"self \[3, 4, 5\] apart from dimension 0 and to be "
                                           r"no larger size than src \[1, 1, 1\]"):
        x.scatter(0, torch.zeros(2, 2, 2, dtype=torch.long), torch.ones(1, 1, 1))
    with pytest.raises(RuntimeError, match="reduce argument must be either add or multiply."):
        x.scatter(0, torch.tensor([[[1]]]), 1.0, reduce="mean")
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of "
                                           "dimensions as self tensor"):
        x.scatter(0, torch.tensor([1]), torch.ones(1))


def test_index_select_take_take_along_dim(backend):
    c = Batch()
    x = torch.tensor(A)
    c(x.index_select(1, torch.tensor([3, 0, 0])), A[:, [3, 0, 0]])
    c(torch.index_select(x.permute(2, 0, 1), -1, torch.tensor([1], dtype=torch.int32)),
      A.transpose(2, 0, 1)[..., [1]])
    c(x.index_select(0, torch.tensor(2)), A[[2]])
    c(x.take(torch.tensor([[0, -1], [59, 7]])), A.ravel()[[[0, -1], [59, 7]]])
    idx = np.array([[[0, 4]]])
    c(x.take_along_dim(torch.tensor(idx), 2),
      np.take_along_axis(A, np.broadcast_to(idx, (3, 4, 2)), 2))
    c(torch.take_along_dim(x, torch.tensor([3, 59])), A.ravel()[[3, 59]])
    with pytest.raises(IndexError, match="index out of range in self"):
        x.index_select(0, torch.tensor([-1]))
    with pytest.raises(IndexError, match=r"index_select\(\): Index is supposed to be a vector"):
        x.index_select(0, torch.tensor([[1]]))
    with pytest.raises(IndexError, match="out of range: tried to access index 60 on a tensor "
                                         "of 60 elements."):
        x.take(torch.tensor([60]))
    with pytest.raises(RuntimeError, match="index 7 is out of bounds for dimension 0"):
        x.take_along_dim(torch.tensor([[[7]]]), 0)
    c.run()


def test_index_fill_add_copy(backend):
    c = Batch()
    x = torch.tensor(A)
    ref = A.copy()
    ref[:, [0, 2]] = -1
    c(x.index_fill(1, torch.tensor([0, 2]), -1.0), ref)
    c(x.index_fill(1, torch.tensor([0, 2]), torch.tensor(-1)), ref)
    ref = A.copy()
    np.add.at(ref, [0, 0, 2], 2 * np.ones((3, 4, 5), np.float32))
    c(torch.index_add(x, 0, torch.tensor([0, 0, 2]), torch.ones(3, 4, 5), alpha=2), ref)
    ref = A.copy()
    ref[..., [1, 3]] = 0
    c(x.index_copy(2, torch.tensor([1, 3]), torch.zeros(3, 4, 2)), ref)
    c(x, A)
    c.run()


# ------------------------------------------------------------------------------ masks
def test_masked_fill_and_select(backend):
    c = Batch()
    x = torch.tensor(A)
    m = torch.tensor(M)
    c(x.masked_fill(m, 0.5), np.where(M, 0.5, A))
    c(x.masked_fill(m[0, 0], torch.tensor(2.0)), np.where(M[0, 0], 2.0, A))
    big = np.zeros((2, 3, 4, 5), bool)
    big[1, :, 0] = True
    c(x.masked_fill(torch.tensor(big), 1.0), np.where(big, 1.0, A))
    c(torch.arange(6).masked_fill(torch.tensor([True] + [False] * 5), 1.5),
      np.array([1, 1, 2, 3, 4, 5]))
    y = x[1:]
    y.masked_fill_(y < 0, 0.0)
    ref = A.copy()
    ref[1:][ref[1:] < 0] = 0
    c(x, ref)
    c(x.masked_select(m), ref[M])
    c(torch.masked_select(x.permute(1, 0, 2), m[0, :, None, :]),
      ref.transpose(1, 0, 2)[np.broadcast_to(M[0, :, None, :], (4, 3, 5))])
    c(torch.tensor(2.0).masked_select(torch.tensor([True, False, True])),
      np.array([2.0, 2.0], np.float32))
    c.run()


def test_mask_errors():
    x = torch.tensor(A)
    with pytest.raises(RuntimeError, match="masked_fill_ only supports boolean masks, but got "
                                           "mask with dtype long int"):
        x.masked_fill(torch.ones(5, dtype=torch.long), 1.0)
    with pytest.raises(RuntimeError, match=r"only supports a 0-dimensional value tensor, but "
                                           r"got tensor with 1 dimension\(s\)."):
        x.masked_fill(torch.ones(5, dtype=torch.bool), torch.ones(2))
    with pytest.raises(RuntimeError, match=r"output with shape \[3, 4, 5\] doesn't match the "
                                           r"broadcast shape \[2, 3, 4, 5\]"):
        x.masked_fill_(torch.ones(2, 3, 4, 5, dtype=torch.bool), 1.0)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(4\) must match the size of "
                                           r"tensor b \(5\) at non-singleton dimension 2"):
        x.masked_select(torch.ones(4, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="masked_select: expected BoolTensor for mask"):
        x.masked_select(torch.ones(5))


def test_nonzero(backend):
    c = Batch()
    x = torch.tensor(A) * torch.tensor(M)
    c(x.nonzero(), np.argwhere(A * M))
    got = torch.nonzero(x[0], as_tuple=True)
    for g, r in zip(got, np.nonzero((A * M)[0])):
        c(g, r)
    c(torch.argwhere(x[:, 0]), np.argwhere((A * M)[:, 0]))
    c(torch.tensor(3.0).nonzero(), np.zeros((1, 0), np.int64))
    c(torch.nonzero(torch.tensor(0.0), as_tuple=True)[0], np.zeros(0, np.int64))
    c(torch.zeros(2, 0).nonzero(), np.zeros((0, 2), np.int64))
    assert x.nonzero().dtype == torch.int64
    c.run()


# ------------------------------------------------------------------------------ cat, stack
def test_cat(backend):
    c = Batch()
    x = torch.tensor(A)
    c(torch.cat([x, x[:, :3]], 1), np.concatenate([A, A[:, :3]], 1))
    c(torch.cat((x[:, :1] * 2, x[:, 1:2].exp(), x[:, 2:].permute(0, 1, 2)), dim=-2),
      np.concatenate([A[:, :1] * 2, np.exp(A[:, 1:2]), A[:, 2:]], 1), rtol=1e-5)
    c(torch.concat([x.permute(1, 0, 2), x[0:1].permute(1, 0, 2)], dim=1),
      np.concatenate([A.transpose(1, 0, 2), A[0:1].transpose(1, 0, 2)], 1))
    c(torch.concatenate([x, x[:, :, :0], x], axis=2), np.concatenate([A, A], 2))
    c(torch.cat([x, torch.tensor([])]), A)                 # 1-D empties are skipped
    c(torch.cat([torch.tensor([]), torch.tensor([])]), np.zeros(0, np.float32))
    c(torch.cat([x[:, :0], x[:, :0]], 1), np.zeros((3, 0, 5), np.float32))
    c(torch.cat([x[:1], x.expand(2, 3, 4, 5)[1]], 0), np.concatenate([A[:1], A]))
    neg = torch.cat([torch.tensor([-0.0, 1.0]), torch.tensor([-0.0])])
    assert np.signbit(neg.numpy()).tolist() == [True, False, True]   # -0.0 survives
    c.run()


def test_cat_promotes(backend):
    c = Batch()
    b = torch.ones(2, dtype=torch.bool)
    c(torch.cat([b, torch.ones(1, dtype=torch.uint8)]), np.ones(3, np.uint8),
      dtype=torch.uint8)
    c(torch.cat([torch.tensor([1, 2], dtype=torch.int32),
                 torch.tensor([0.5], dtype=torch.float16)]),
      np.array([1, 2, 0.5], np.float16), dtype=torch.float16)
    c(torch.cat([torch.tensor(A), torch.zeros(0, 4, 5, dtype=torch.int64)]), A,
      dtype=torch.float32)
    c.run()


CAT_ERRORS = [
    (lambda x: torch.cat([x, x[:, :, :2]], 1), RuntimeError,
     "Sizes of tensors must match except in dimension 1. Expected size 5 but got size 2 for "
     "tensor number 1 in the list."),
    (lambda x: torch.cat([]), ValueError, r"torch.cat\(\): expected a non-empty list of Tensors"),
    (lambda x: torch.cat([x, x[0]]), RuntimeError,
     "Tensors must have same number of dimensions: got 3 and 2"),
    (lambda x: torch.cat([torch.tensor(1.0)]), RuntimeError,
     r"zero-dimensional tensor \(at position 0\) cannot be concatenated"),
    (lambda x: torch.cat([x, x], 3), IndexError,
     r"Dimension out of range \(expected to be in range of \[-3, 2\], but got 3\)"),
    (lambda x: torch.stack([x, x[:, :3]]), RuntimeError,
     r"stack expects each tensor to be equal size, but got \[3, 4, 5\] at entry 0 and "
     r"\[3, 3, 5\] at entry 1"),
    (lambda x: torch.stack([]), RuntimeError, "stack expects a non-empty TensorList"),
]


@pytest.mark.parametrize("fn,exc,msg", CAT_ERRORS)
def test_cat_stack_errors(fn, exc, msg):
    with pytest.raises(exc, match=msg):
        fn(torch.tensor(A))


def test_stack_family(backend):
    c = Batch()
    x = torch.tensor(A)
    c(torch.stack([x, x * 2], 3), np.stack([A, A * 2], 3))
    c(torch.stack([x[0], x[1], x[2]], -1), np.stack([A[0], A[1], A[2]], -1))
    c(torch.stack((torch.ones(2), torch.ones(2, dtype=torch.int64))),
      np.ones((2, 2), np.float32), dtype=torch.float32)
    a, b = np.array([1, 2]), np.array([[3, 4]])
    c(torch.hstack([torch.tensor(1), torch.tensor([2, 3])]), np.hstack([1, [2, 3]]))
    c(torch.hstack([x, x]), np.hstack([A, A]))
    c(torch.vstack([torch.tensor(a), torch.tensor(b)]), np.vstack([a, b]))
    c(torch.dstack([torch.tensor(a), torch.tensor(a)]), np.dstack([a, a]))
    c(torch.column_stack([torch.tensor(a), torch.tensor(b.T.repeat(2, 1))]),
      np.column_stack([a, b.T.repeat(2, 1)]))
    c(torch.atleast_3d(torch.tensor([1.0, 2.0])), np.atleast_3d(np.array([1.0, 2.0])))
    c.run()


# ------------------------------------------------------------------------------ tril/triu etc.
def test_tril_triu(backend):
    c = Batch()
    x = torch.tensor(A)
    c(x.tril(), np.tril(A))
    c(x.triu(1), np.triu(A, 1))
    c(torch.tril(x, -2), np.tril(A, -2))
    c(torch.triu(x.permute(2, 1, 0), -1), np.triu(A.transpose(2, 1, 0), -1))
    ai = np.arange(12).reshape(3, 4)
    c(torch.tril(torch.tensor(ai), 10), np.tril(ai, 10))
    y = torch.tensor(A)
    y[1:].triu_(1)
    ref = A.copy()
    ref[1:] = np.triu(ref[1:], 1)
    c(y, ref)
    with pytest.raises(RuntimeError, match="tril: input tensor must have at least 2 dimensions"):
        torch.ones(3).tril()
    c.run()


def test_repeat(backend):
    c = Batch()
    x = torch.tensor(A)
    c(x.repeat(2, 1, 1, 2), np.tile(A, (2, 1, 1, 2)))
    c(x[:, 1].repeat(1, 3), np.tile(A[:, 1], (1, 3)))
    c(x.permute(2, 0, 1).repeat(1, 2, 1), np.tile(A.transpose(2, 0, 1), (1, 2, 1)))
    c(torch.tensor(1.0).repeat(2, 3), np.ones((2, 3), np.float32))
    c(torch.ones(2, 3).repeat(0, 2), np.ones((0, 6), np.float32))
    with pytest.raises(RuntimeError, match="Number of dimensions of repeat dims can not be "
                                           "smaller than number of dimensions of tensor"):
        x.repeat(2)
    c.run()


def test_roll(backend):
    c = Batch()
    x = torch.tensor(A)
    c(x.roll(1), np.roll(A, 1))
    c(x.roll((1, 2), (0, 1)), np.roll(A, (1, 2), (0, 1)))
    c(x.roll(-7, 2), np.roll(A, -7, 2))
    c(torch.roll(x.permute(2, 0, 1), (-1, 4), (-1, 0)),
      np.roll(A.transpose(2, 0, 1), (-1, 4), (-1, 0)))
    c(torch.roll(torch.ones(0, 3), 1, 0), np.ones((0, 3), np.float32))
    with pytest.raises(RuntimeError, match="shifts and dimensions must align. shifts: 1, dims:2"):
        x.roll(1, (0, 1))
    with pytest.raises(RuntimeError, match="shifts and dimensions must align. shifts: 2, dims:0"):
        torch.roll(x, (1, 2))
    c.run()


# ------------------------------------------------------------------------------ kernel counts
def test_kernel_counts():
    x = torch.tensor(A)
    idx = torch.tensor([2, 0, 1])
    assert len(schedule(x[idx] * 2 + 1)) == 1
    assert len(schedule(x[:, [0, 2]].exp())) == 1
    assert len(schedule(x.gather(1, torch.zeros(3, 2, 5, dtype=torch.long)).exp() + 1)) == 1
    assert len(schedule(torch.cat([x * 2, x.exp(), x[:, :1]], 1))) == 1
    assert len(schedule(torch.stack([x[0], x[1] * 2]))) == 1
    assert len(schedule(x.roll((1, 2), (0, 2)) + 1)) == 1
    assert len(schedule(x.tril() * 3)) == 1
    assert len(schedule(x.repeat(2, 1, 2).sin())) == 1
    assert len(schedule(x.masked_fill(x > 0, 0))) == 1
    # a scatter has a kernel of its own; its elementwise sources fuse into it
    idx2 = torch.zeros(3, 2, 5, dtype=torch.long)
    ks = schedule(x.scatter(1, idx2, x[:, :2] * 2))
    assert len(ks) == 1 and ks[0].ops.count("scatter") == 1
    assert len(schedule((x + 1).scatter_add(1, idx2, x[:, :2]).exp())) == 2
    z = x * 1
    z[:, [0, 2]] = 1.0
    assert len(schedule(z)) == 1
    z = x + 1
    z[z > 0] = 0.0
    assert len(schedule(z)) == 1


def test_realize_same_structure_compiles_nothing_new(rng):
    from lazytorch import debug
    x = torch.tensor(A)
    (x[torch.tensor([0, 2])] * 2).numpy()
    x.scatter(0, torch.tensor([[[1]]]), 5.0).numpy()
    debug.reset_stats()
    got = (x[torch.tensor([1, 1])] * 2).numpy()
    x.scatter(0, torch.tensor([[[2]]]), 5.0).numpy()
    assert debug.stats()["kernels_compiled"] == 0
    np.testing.assert_array_equal(got, A[[1, 1]] * 2)


# ------------------------------------------------------------------------------ the SCATTER op
def _buf(a):
    return memory.buffer_node(np.ascontiguousarray(a))


@pytest.mark.parametrize("mode", [None, "add", "multiply"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float16, torch.bfloat16.np])
def test_scatter_node_c_matches_interpreter(mode, dtype, rng):
    from lazytorch.engine.realize import realize
    base = rng.integers(-5, 5, (4, 6)).astype(dtype)
    index = rng.integers(0, 6, (3, 6))
    src = rng.integers(-3, 4, (3, 6)).astype(dtype)
    d = dt.from_numpy(dtype)
    n = Node(Op.SCATTER, (_buf(base), _buf(index), _buf(src)), (1, mode), (4, 6), d)
    verify(Graph([n]))
    want = _np_scatter(base, 1, index, src, mode)
    import os
    for b in ("c", "interp"):
        os.environ["LAZYTORCH_BACKEND"] = b
        try:
            n2 = Node(Op.SCATTER, (_buf(base), _buf(index), _buf(src)), (1, mode), (4, 6), d)
            got = memory.data(realize([n2])[0])
        finally:
            del os.environ["LAZYTORCH_BACKEND"]
        np.testing.assert_array_equal(got, want)


def test_verify_rejects_bad_scatter_and_gather():
    base, index = _buf(np.zeros((3, 4), np.float32)), _buf(np.zeros((2, 4), np.int64))
    src = _buf(np.zeros((2, 4), np.float32))
    bad = [
        Node(Op.SCATTER, (base, index, src), (2, None), (3, 4), dt.float32),
        Node(Op.SCATTER, (base, index, src), (0, "mean"), (3, 4), dt.float32),
        Node(Op.SCATTER, (base, src, src), (0, None), (3, 4), dt.float32),
        Node(Op.SCATTER, (base, _buf(np.zeros((2, 5), np.int64)),
                          _buf(np.zeros((2, 5), np.float32))), (0, None), (3, 4), dt.float32),
        Node(Op.GATHER, (base, _buf(np.zeros((2, 5), np.int64))), 0, (2, 5), dt.float32),
        Node(Op.GATHER, (base, index), 0, (2, 4), dt.int64),
    ]
    for n in bad:
        with pytest.raises(ValueError, match="invalid IR"):
            verify(Graph([n]))
    verify(Graph([Node(Op.SCATTER, (base, index, src), (0, "add"), (3, 4), dt.float32)]))
    verify(Graph([Node(Op.GATHER, (base, index), 0, (2, 4), dt.float32)]))


def test_scatter_kernel_source_is_two_loop_nests():
    x = torch.tensor(A)
    ks = schedule(x.scatter_add(0, torch.tensor([[[2, 1]]]), torch.ones(1, 1, 2)))
    src = ks[0].source
    assert "+=" in src and ks[0].scatter is not None and ks[0].scatter.store_mode == "add"


# ------------------------------------------------------------------------------ torch oracle
ORACLE = [
    "x[i, j]", "x[:, j, i]", "x[i, :, i]", "x[0, :, [0, 1]]", "x[[0, 1], None, [0, 1]]",
    "x[m[:, :, 0]]", "x[1:, m[0, :, 0]]", "x[..., [4, 0]]", "x[[0], :, [9]]",
    "x[None, :, [9]]", "x[torch.tensor([[0, 1]]), torch.tensor([0, 1, 2])]",
    "x.gather(0, torch.tensor([[[-1]]]))", "torch.cat([x, x[:, :, :2]], 1)",
    "x.scatter(0, torch.zeros(2, 2, 2, dtype=torch.long), torch.ones(1, 1, 1))",
    "x.take_along_dim(torch.tensor([[1]]), 0)", "torch.roll(x, 3, 5)",
]


@pytest.mark.parametrize("expr", ORACLE)
def test_against_torch(expr):
    """Same values, or the same exception type and message, as PyTorch."""
    T = pytest.importorskip("torch")
    results = []
    for mod in (T, torch):
        env = {"torch": mod, "x": mod.tensor(A), "i": mod.tensor(I), "j": mod.tensor(J),
               "m": mod.tensor(M)}
        try:
            results.append(("ok", np.asarray(eval(expr, env))))
        except Exception as e:  # noqa: BLE001
            results.append((type(e).__name__, str(e).splitlines()[0]))
    (ka, a), (kb, b) = results
    assert ka == kb, results
    if ka == "ok":
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b
