"""Hardshrink, Softshrink, RReLU, Softmax2d, CosineSimilarity, PairwiseDistance, pdist,
InstanceNorm1d/2d/3d and LocalResponseNorm against numpy written here, gradients against
finite differences in float64, and PyTorch parity when torch is importable."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
from tests.helpers import check_all, grad_check


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def test_shrinks_softmax2d_and_rrelu_eval(backend):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    t = torch.tensor(x)
    check_all([
        ("hardshrink", nn.Hardshrink(0.4)(t), np.where(np.abs(x) > 0.4, x, 0)),
        ("softshrink", nn.Softshrink(0.3)(t),
         np.where(x > 0.3, x - 0.3, np.where(x < -0.3, x + 0.3, 0))),
        ("softmax2d", nn.Softmax2d()(t), _softmax(x, 1)),
        ("softmax2d 3d", nn.Softmax2d()(torch.tensor(x[0])), _softmax(x[0], 0)),
        ("rrelu eval", nn.RReLU(0.1, 0.3).eval()(t), np.where(x >= 0, x, 0.2 * x))])
    assert repr(nn.Hardshrink(0.3)) == "Hardshrink(0.3)"
    assert repr(nn.RReLU()) == "RReLU(lower=0.125, upper=0.3333333333333333)"
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 1D"):
        nn.Softmax2d()(torch.randn(3))
    with pytest.raises(RuntimeError, match="Lower bound should be less than or equal to the "
                                           "upper bound"):
        F.rrelu(torch.randn(3), 0.5, 0.2, training=True)


def test_rrelu_training_draws_slopes_in_range_and_uses_them_in_the_gradient():
    torch.manual_seed(1)
    x = torch.tensor(np.linspace(-2, 2, 401), requires_grad=True)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    y.sum().backward()
    xv, yv, g = x.detach().numpy(), y.detach().numpy(), x.grad.numpy()
    neg = xv < 0
    slopes = yv[neg] / xv[neg]
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03
    np.testing.assert_allclose(g[neg], slopes, rtol=1e-12)     # d(a x)/dx = a
    np.testing.assert_array_equal(yv[~neg], xv[~neg])
    np.testing.assert_array_equal(g[~neg], 1.0)


def test_shrink_gradients():
    x = np.random.default_rng(2).standard_normal((3, 4)) * 2
    x = np.where(np.abs(np.abs(x) - 0.5) < 1e-3, 0.7, x)       # keep away from the kinks
    grad_check(lambda t: F.softshrink(t, 0.5), lambda a: np.where(
        a > 0.5, a - 0.5, np.where(a < -0.5, a + 0.5, 0)), [x])
    grad_check(lambda t: F.hardshrink(t, 0.5), lambda a: np.where(np.abs(a) > 0.5, a, 0), [x])


def _cos(a, b, axis, eps=1e-8):
    na = np.maximum(np.sqrt((a * a).sum(axis, keepdims=True)), eps)
    nb = np.maximum(np.sqrt((b * b).sum(axis, keepdims=True)), eps)
    return ((a / na) * (b / nb)).sum(axis)


def test_distances():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((1, 5))
    c = rng.standard_normal((6, 3))
    pairs = [(i, j) for i in range(6) for j in range(i + 1, 6)]
    check_all([
        ("cos", nn.CosineSimilarity()(torch.tensor(a), torch.tensor(b)), _cos(a, b, 1)),
        ("cos dim0", F.cosine_similarity(torch.tensor(a), torch.tensor(a[::-1].copy()), 0),
         _cos(a, a[::-1], 0)),
        ("pairwise", nn.PairwiseDistance()(torch.tensor(a), torch.tensor(b)),
         np.sqrt(((a - b + 1e-6) ** 2).sum(-1))),
        ("pairwise p1 keepdim", F.pairwise_distance(torch.tensor(a), torch.tensor(b), 1.0,
                                                    keepdim=True),
         np.abs(a - b + 1e-6).sum(-1, keepdims=True)),
        ("pdist", F.pdist(torch.tensor(c)),
         np.array([np.sqrt(((c[i] - c[j]) ** 2).sum()) for i, j in pairs])),
        ("pdist inf", F.pdist(torch.tensor(c), float("inf")),
         np.array([np.abs(c[i] - c[j]).max() for i, j in pairs]))], rtol=1e-12, atol=1e-12)
    grad_check(lambda u, v: F.cosine_similarity(u, v), lambda u, v: _cos(u, v, 1), [a, a + 1])
    grad_check(lambda u: F.pdist(u), lambda u: np.array(
        [np.sqrt(((u[i] - u[j]) ** 2).sum()) for i, j in pairs]), [c])
    # a zero vector: the norm is clamped at eps, no division by zero
    z = F.cosine_similarity(torch.zeros(1, 3), torch.ones(1, 3))
    np.testing.assert_array_equal(z.numpy(), [0.0])


def _instance_norm(x, w=None, b=None, eps=1e-5):
    axes = tuple(range(2, x.ndim))
    mu = x.mean(axes, keepdims=True)
    var = x.var(axes, keepdims=True)
    out = (x - mu) / np.sqrt(var + eps)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if w is not None:
        out = out * w.reshape(shape) + b.reshape(shape)
    return out


def test_instance_norm_layers(backend):
    rng = np.random.default_rng(4)
    x1 = rng.standard_normal((2, 3, 7)).astype(np.float32)
    x2 = rng.standard_normal((2, 3, 4, 5)).astype(np.float32) * 2 + 1
    x3 = rng.standard_normal((2, 3, 2, 3, 4)).astype(np.float32)
    m2 = nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    with torch.no_grad():
        m2.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        m2.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
    w, b = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    out2 = m2(torch.tensor(x2))
    # running stats: momentum 0.1 towards the batch's mean over samples of the instance stats
    mean = x2.mean((2, 3)).mean(0)
    var = x2.var((2, 3), ddof=1).mean(0)
    check_all([("1d", nn.InstanceNorm1d(3)(torch.tensor(x1)), _instance_norm(x1)),
               ("1d unbatched", nn.InstanceNorm1d(3)(torch.tensor(x1[0])),
                _instance_norm(x1[:1])[0]),
               ("2d affine", out2, _instance_norm(x2, w, b)),
               ("running_mean", m2.running_mean, 0.9 * 0 + 0.1 * mean),
               ("running_var", m2.running_var, 0.9 * 1 + 0.1 * var),
               ("3d", nn.InstanceNorm3d(3)(torch.tensor(x3)), _instance_norm(x3))],
              rtol=1e-4, atol=1e-5)
    m2.eval()      # eval with tracked stats: the running statistics normalize
    rm, rv = m2.running_mean.numpy(), m2.running_var.numpy()
    want = (x2 - rm.reshape(1, 3, 1, 1)) / np.sqrt(rv.reshape(1, 3, 1, 1) + 1e-5)
    check_all([("eval", m2(torch.tensor(x2)), want * w.reshape(1, 3, 1, 1) +
                b.reshape(1, 3, 1, 1))], rtol=1e-4, atol=1e-5)
    assert repr(m2) == ("InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                        "track_running_stats=True)")
    assert not isinstance(m2, nn.BatchNorm2d.__mro__[1])     # not a _BatchNorm
    with pytest.raises(ValueError, match="expected 3D or 4D input \\(got 2D input\\)"):
        nn.InstanceNorm2d(3)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="expected input's size at dim=1 to match "
                                         "num_features \\(4\\), but got: 3."):
        nn.InstanceNorm1d(4, affine=True)(torch.randn(2, 3, 5))
    with pytest.warns(UserWarning, match="input's size at dim=1 does not match num_features"):
        nn.InstanceNorm1d(4)(torch.randn(2, 3, 5))


def _lrn(x, size, alpha=1e-4, beta=0.75, k=1.0):
    c = x.shape[1]
    sq = x * x
    div = np.zeros_like(x)
    for i in range(c):
        lo, hi = max(0, i - size // 2), min(c, i + (size - 1) // 2 + 1)
        div[:, i] = sq[:, lo:hi].sum(1)
    return x / (k + alpha / size * div) ** beta


def test_local_response_norm():
    rng = np.random.default_rng(5)
    x3 = rng.standard_normal((2, 6, 5)) * 3
    x4 = rng.standard_normal((2, 7, 3, 4)) * 3
    check_all([("3d", nn.LocalResponseNorm(3)(torch.tensor(x3)), _lrn(x3, 3)),
               ("4d", F.local_response_norm(torch.tensor(x4), 4, 0.1, 0.5, 2.0),
                _lrn(x4, 4, 0.1, 0.5, 2.0))], rtol=1e-12, atol=1e-12)
    grad_check(lambda t: F.local_response_norm(t, 3, 0.2, 0.6, 1.5),
               lambda a: _lrn(a, 3, 0.2, 0.6, 1.5), [x3[:1, :, :2]])
    assert repr(nn.LocalResponseNorm(3)) == "LocalResponseNorm(3, alpha=0.0001, beta=0.75, k=1.0)"


def test_torch_parity():
    tt = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x4 = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    x3 = rng.standard_normal((2, 4, 9)).astype(np.float32)
    mods = [("Hardshrink", (0.3,), [x4]), ("Softshrink", (0.4,), [x4]), ("Softmax2d", (), [x4]),
            ("CosineSimilarity", (2,), [x4, x4[::-1].copy()]),
            ("PairwiseDistance", (3.0,), [x3, x3[:, ::-1].copy()]),
            ("InstanceNorm1d", (4, 1e-5, 0.1, True, True), [x3]),
            ("InstanceNorm2d", (4,), [x4]), ("LocalResponseNorm", (3, 0.01, 0.6, 1.2), [x4])]
    for name, args, arrays in mods:
        lm, tm = getattr(nn, name)(*args), getattr(tt.nn, name)(*args)
        assert repr(lm) == repr(tm)
        lts = [torch.tensor(a, requires_grad=True) for a in arrays]
        tts = [tt.tensor(a, requires_grad=True) for a in arrays]
        yl, yt = lm(*lts), tm(*tts)
        np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=1e-5,
                                   atol=1e-5, err_msg=name)
        cot = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        (yl * torch.tensor(cot)).sum().backward()
        (yt * tt.tensor(cot)).sum().backward()
        for a, b in zip(lts, tts):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=name)
        for (n, pl), pt in zip(lm.named_parameters(), tm.parameters()):
            np.testing.assert_allclose(pl.grad.numpy(), pt.grad.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name}.{n}")
        for (n, bl), bt in zip(lm.named_buffers(), tm.buffers()):
            np.testing.assert_allclose(bl.numpy(), bt.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name}.{n}")


def test_alpha_dropout_formula_and_statistics():
    torch.manual_seed(7)
    p, alpha = 0.2, 1.7580993408473766
    a = 1 / np.sqrt((alpha * alpha * p + 1) * (1 - p))
    x = np.random.default_rng(7).standard_normal(200000).astype(np.float32)
    y = F.alpha_dropout(torch.tensor(x), p, training=True).numpy()
    kept = np.isclose(y, a * x + alpha * a * p, rtol=1e-5, atol=1e-6)
    dropped = np.isclose(y, -alpha * a + alpha * a * p, rtol=1e-5, atol=1e-6)
    assert np.all(kept | dropped)
    assert abs(dropped.mean() - p) < 0.01
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02     # self-normalizing
    m = nn.AlphaDropout(p)
    np.testing.assert_array_equal(m.eval()(torch.tensor(x)).numpy(), x)
    z = np.random.default_rng(8).standard_normal((50, 40, 3)).astype(np.float32)
    f = nn.FeatureAlphaDropout(0.5)(torch.tensor(z)).numpy()
    # whole channels share the mask: per (n, c), every element follows the same branch
    a5 = 1 / np.sqrt((alpha ** 2 * 0.5 + 1) * 0.5)
    kept = np.isclose(f, a5 * z + alpha * a5 * 0.5, rtol=1e-5, atol=1e-6)
    assert np.all(kept.all(-1) | (~kept).all(-1)) and 0.3 < kept.all(-1).mean() < 0.7
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        F.alpha_dropout(torch.randn(2), 1.5, True)


def test_buffer_and_init_aliases():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.stat = nn.Buffer(torch.ones(2))
            self.scratch = nn.Buffer(torch.zeros(3), persistent=False)

    m = M()
    assert list(m.state_dict()) == ["stat"]
    assert [n for n, _ in m.named_buffers()] == ["stat", "scratch"]
    assert list(m.parameters()) == []
    w = torch.empty(3, 4)
    with pytest.warns(FutureWarning, match="`nn.init.constant` is now deprecated in favor of "
                                           "`nn.init.constant_`"):
        nn.init.constant(w, 2.5)
    np.testing.assert_array_equal(w.numpy(), np.full((3, 4), 2.5, np.float32))
    with pytest.warns(FutureWarning):
        nn.init.eye(w)
    np.testing.assert_array_equal(w.numpy(), np.eye(3, 4, dtype=np.float32))
