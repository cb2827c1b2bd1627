"""Composite functions recorded as one op (log_softmax and cross_entropy in nn/loss_nodes.py,
linear in nn/functional.py): the same nodes as the composition of tensor ops they stand for,
the same values and gradients as numpy's."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.frontend.tensor import Tensor
from lazytorch.ir import sites
from lazytorch.nn import functional as F


def _log_softmax_ops(x, dim):
    """log_softmax written as tensor ops (what the one-op version must build)."""
    z = x - x.amax(dim, keepdim=True).detach()
    return z - z.exp().sum(dim, keepdim=True).log()


def _np_log_softmax(x, axis):
    z = x - x.max(axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis, keepdims=True))


@pytest.mark.parametrize("shape,dim", [((5, 7), 1), ((5, 7), -1), ((5, 7), 0), ((2, 3, 4), 1),
                                       ((6,), 0)])
def test_log_softmax_builds_the_ops_nodes(shape, dim):
    x = torch.randn(*shape)
    y = F.log_softmax(x, dim)
    assert y.node is _log_softmax_ops(x, dim).node
    np.testing.assert_allclose(y.numpy(), _np_log_softmax(x.numpy().astype(np.float64), dim),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 6)])
def test_cross_entropy_builds_the_general_paths_nodes(reduction, shape):
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal(shape).astype(np.float32))
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t.flat[1] = -100                                 # an ignored sample
    t = torch.tensor(t)
    loss = F.cross_entropy(x, t, reduction=reduction)
    general = F.nll_loss(_log_softmax_ops(x, 1), t, reduction=reduction)
    assert loss.node is general.node


def _np_cross_entropy(x, t, ignore):
    logp = _np_log_softmax(x, 1)
    valid = t != ignore
    picked = np.take_along_axis(logp, np.where(valid, t, 0)[:, None], 1)[:, 0]
    return -(picked * valid).sum() / valid.sum(), valid


def test_cross_entropy_values_and_gradients_against_numpy():
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((16, 10))
    ts = rng.integers(0, 10, 16)
    ts[[2, 9]] = -100
    x = torch.tensor(xs.astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor(ts))
    loss.backward()
    want, valid = _np_cross_entropy(xs, ts, -100)
    np.testing.assert_allclose(loss.item(), want, rtol=1e-5)
    # d/dx: (softmax - onehot) / (number of counted samples), zero on ignored rows
    p = np.exp(_np_log_softmax(xs, 1))
    onehot = np.zeros_like(p)
    onehot[np.arange(16)[valid], ts[valid]] = 1
    grad = (p - onehot) * valid[:, None] / valid.sum()
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-4, atol=1e-6)


def test_cross_entropy_is_one_recorded_op(monkeypatch):
    x, t = torch.randn(8, 5, requires_grad=True), torch.randint(0, 5, (8,))
    made = []
    real = Tensor._make.__func__
    monkeypatch.setattr(Tensor, "_make", classmethod(lambda cls, n: (made.append(n),
                                                                      real(cls, n))[1]))
    loss = F.cross_entropy(x, t)                       # the line the loss's nodes name
    assert made == [loss.node]
    assert "test_one_op_recording.py" in sites.site_of(loss.node)
    assert loss.requires_grad and loss.grad_fn is not None


def test_other_cases_take_the_general_path():
    x, t = torch.randn(8, 5), torch.randint(0, 5, (8,))
    w = torch.rand(5)
    # class weights, label smoothing, uint8 targets and a 1-d input are composed of tensor ops
    for loss in (F.cross_entropy(x, t, weight=w), F.cross_entropy(x, t, label_smoothing=0.1),
                 F.cross_entropy(x, t.to(torch.uint8)), F.cross_entropy(x[0], t[0])):
        assert np.isfinite(loss.item())
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.cross_entropy(x, torch.tensor(np.full(8, 7)))


@pytest.mark.parametrize("bias_shape", [None, (6,), (1,), ()])
def test_linear_builds_the_ops_nodes(bias_shape):
    rng = np.random.default_rng(2)
    xs, ws = rng.standard_normal((5, 4)), rng.standard_normal((6, 4))
    x = torch.tensor(xs.astype(np.float32))
    w = torch.tensor(ws.astype(np.float32), requires_grad=True)
    b = None if bias_shape is None else torch.tensor(
        rng.standard_normal(bias_shape).astype(np.float32), requires_grad=True)
    y = F.linear(x, w, b)
    want = x @ w.t() if b is None else x @ w.t() + b
    assert y.node is want.node
    ref = xs @ ws.T + (0 if b is None else b.detach().numpy().astype(np.float64))
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    y.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.ones((5, 6)).T @ xs, rtol=1e-5)
    if b is not None:
        np.testing.assert_allclose(b.grad.numpy(), np.full(bias_shape, 5 * 6 / max(
            1, int(np.prod(bias_shape or (1,))))), rtol=1e-6)


def test_linear_other_cases_take_the_general_path():
    x3, w = torch.randn(2, 5, 4), torch.randn(6, 4)
    assert tuple(F.linear(x3, w).shape) == (2, 5, 6)               # batched input
    with pytest.raises(RuntimeError, match="same dtype"):
        F.linear(torch.randn(5, 4, dtype=torch.float64), w)         # mixed dtypes: mm's error
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        F.linear(torch.randn(5, 3), w)


@pytest.mark.parametrize("case", [
    dict(shape=(2, 3, 9, 8), w=(4, 3, 3, 2), stride=1, padding=0, groups=1, bias=True),
    dict(shape=(2, 4, 7, 7), w=(6, 2, 3, 3), stride=2, padding=1, groups=2, bias=False),
    dict(shape=(3, 2, 10), w=(5, 2, 4), stride=3, padding=2, groups=1, bias=True),
    dict(shape=(1, 2, 5, 6), w=(3, 2, 2, 3), stride=(1, 2), padding=(1, 0), groups=1,
         bias=True),
])
def test_conv_builds_the_ops_nodes(case, monkeypatch):
    from lazytorch.nn import functional_conv
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.standard_normal(case["shape"]).astype(np.float32))
    w = torch.tensor(rng.standard_normal(case["w"]).astype(np.float32), requires_grad=True)
    b = torch.randn(case["w"][0], requires_grad=True) if case["bias"] else None
    conv = {3: F.conv1d, 4: F.conv2d}[len(case["shape"])]
    args = dict(stride=case["stride"], padding=case["padding"], groups=case["groups"])
    y = conv(x, w, b, **args)
    monkeypatch.setattr(functional_conv, "ONE_OP", False)
    want = conv(x, w, b, **args)
    assert y.node is want.node


def test_conv_values_and_gradients_against_numpy():
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((2, 3, 6, 5))
    ws = rng.standard_normal((4, 3, 3, 2))
    bs = rng.standard_normal(4)
    x = torch.tensor(xs.astype(np.float32), requires_grad=True)
    w = torch.tensor(ws.astype(np.float32), requires_grad=True)
    b = torch.tensor(bs.astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    xp = np.pad(xs, ((0, 0), (0, 0), (1, 1), (1, 1)))
    oh, ow = xp.shape[2] - 2, xp.shape[3] - 1
    ref = np.zeros((2, 4, oh, ow))
    for i in range(oh):
        for j in range(ow):
            ref[:, :, i, j] = np.einsum("nckl,ockl->no", xp[:, :, i:i + 3, j:j + 2], ws) + bs
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-4, atol=1e-5)
    gy = rng.standard_normal(ref.shape)
    (y * torch.tensor(gy.astype(np.float32))).sum().backward()
    gw = np.zeros_like(ws)
    gx = np.zeros_like(xp)
    for i in range(oh):
        for j in range(ow):
            gw += np.einsum("no,nckl->ockl", gy[:, :, i, j], xp[:, :, i:i + 3, j:j + 2])
            gx[:, :, i:i + 3, j:j + 2] += np.einsum("no,ockl->nckl", gy[:, :, i, j], ws)
    np.testing.assert_allclose(w.grad.numpy(), gw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b.grad.numpy(), gy.sum((0, 2, 3)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x.grad.numpy(), gx[:, :, 1:-1, 1:-1], rtol=1e-4, atol=1e-4)


def test_conv_errors_are_the_same():
    x, w = torch.randn(1, 2, 2, 2), torch.randn(3, 2, 3, 3)
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input"):
        F.conv2d(x, w)


@pytest.mark.parametrize("shape,k", [((2, 3, 8, 8), 2), ((2, 3, 11, 11), 2), ((1, 2, 9, 7), 3),
                                     ((3, 2, 10), 4)])
def test_max_pool_builds_the_ops_nodes(shape, k, monkeypatch):
    from lazytorch.nn import functional_pool
    x = torch.randn(*shape, requires_grad=True)
    pool = F.max_pool2d if len(shape) == 4 else F.max_pool1d
    y = pool(x, k)
    monkeypatch.setattr(functional_pool, "ONE_OP", False)
    assert y.node is pool(x, k).node
    # against numpy: the max of each k-tile (the remainder rows/columns dropped)
    xs = x.detach().numpy()
    sp = [s // k for s in shape[2:]]
    cut = xs[(slice(None), slice(None), *(slice(0, o * k) for o in sp))]
    tiles = cut.reshape(*shape[:2], *(v for o in sp for v in (o, k)))
    ref = tiles.max(axis=tuple(3 + 2 * i for i in range(len(sp))))
    np.testing.assert_array_equal(y.detach().numpy(), ref)
    y.sum().backward()
    assert x.grad.numpy().sum() == pytest.approx(ref.size)    # one 1 per window, at its max
