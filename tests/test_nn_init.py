"""nn.init (formulas, in-place semantics, messages) and nn.utils (gradient clipping,
parameters <-> vector), against numpy references written here."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
from lazytorch.nn import init
from lazytorch.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)


def _param(*shape):
    return nn.Parameter(torch.empty(*shape))


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="Unsupported nonlinearity foo"):
        init.calculate_gain("foo")
    with pytest.raises(ValueError, match="negative_slope x not a valid number"):
        init.calculate_gain("leaky_relu", "x")


def test_fans():
    assert init._calculate_fan_in_and_fan_out(torch.empty(5, 3)) == (3, 5)
    assert init._calculate_fan_in_and_fan_out(torch.empty(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="Fan in and fan out can not be computed for tensor "
                                         "with fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(torch.empty(3))
    with pytest.raises(ValueError, match=r"Mode foo not supported, please use one of "
                                         r"\['fan_in', 'fan_out'\]"):
        init.kaiming_uniform_(torch.empty(3, 3), mode="foo")


def test_in_place_keeps_the_leaf():
    p = _param(20, 30)
    for fn in (init.uniform_, init.normal_, init.zeros_, init.ones_, init.xavier_uniform_,
               init.kaiming_normal_, init.orthogonal_, init.trunc_normal_):
        assert fn(p) is p
        assert p.is_leaf and p.requires_grad and p.grad_fn is None
    (p * 2).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full((20, 30), 2.0))


def test_constant_ones_zeros_eye_dirac():
    t = torch.empty(3, 4)
    np.testing.assert_array_equal(init.constant_(t, 2.5).numpy(), np.full((3, 4), 2.5))
    np.testing.assert_array_equal(init.ones_(t).numpy(), np.ones((3, 4)))
    np.testing.assert_array_equal(init.zeros_(t).numpy(), np.zeros((3, 4)))
    np.testing.assert_array_equal(init.eye_(t).numpy(), np.eye(3, 4))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(torch.empty(2, 2, 2))
    w = init.dirac_(torch.empty(4, 2, 3, 3), groups=2).numpy()
    ref = np.zeros((4, 2, 3, 3))
    for g in range(2):
        for d in range(2):
            ref[g * 2 + d, d, 1, 1] = 1
    np.testing.assert_array_equal(w, ref)


def test_uniform_normal_statistics_and_reproducibility():
    torch.manual_seed(0)
    u = init.uniform_(torch.empty(200, 200), -2.0, 3.0).numpy()
    assert u.min() >= -2 and u.max() <= 3 and abs(u.mean() - 0.5) < 0.05
    assert abs(u.std() - 5 / math.sqrt(12)) < 0.02
    n = init.normal_(torch.empty(200, 200), 1.0, 0.5).numpy()
    assert abs(n.mean() - 1.0) < 0.01 and abs(n.std() - 0.5) < 0.01
    torch.manual_seed(0)
    np.testing.assert_array_equal(init.uniform_(torch.empty(200, 200), -2.0, 3.0).numpy(), u)
    g = torch.Generator().manual_seed(5)
    a = init.normal_(torch.empty(10), generator=g).numpy()
    b = init.normal_(torch.empty(10), generator=torch.Generator().manual_seed(5)).numpy()
    np.testing.assert_array_equal(a, b)


def test_trunc_normal():
    torch.manual_seed(0)
    t = init.trunc_normal_(torch.empty(100, 100), mean=0.5, std=1.0, a=-0.5, b=1.0).numpy()
    assert t.min() >= -0.5 and t.max() <= 1.0
    assert abs(t.mean() - 0.3) < 0.05    # truncated normal's mean, pulled towards the middle
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        far = init.trunc_normal_(torch.empty(1000), mean=10.0, a=-1.0, b=1.0).numpy()
    assert far.min() >= -1 and far.max() <= 1 and far.mean() > 0.8   # piled up near b


@pytest.mark.parametrize("shape", [(64, 32), (16, 8, 3, 3)])
def test_xavier_and_kaiming(shape):
    torch.manual_seed(1)
    fan_in = shape[1] * math.prod(shape[2:])
    fan_out = shape[0] * math.prod(shape[2:])
    a = math.sqrt(3) * 1.5 * math.sqrt(2 / (fan_in + fan_out))
    x = init.xavier_uniform_(torch.empty(*shape), gain=1.5).numpy()
    assert np.abs(x).max() <= a and np.abs(x).max() > 0.9 * a
    x = init.xavier_normal_(torch.empty(*shape)).numpy()
    assert abs(x.std() / math.sqrt(2 / (fan_in + fan_out)) - 1) < 0.1
    bound = math.sqrt(3) * math.sqrt(2) / math.sqrt(fan_out)
    k = init.kaiming_uniform_(torch.empty(*shape), mode="fan_out", nonlinearity="relu").numpy()
    assert np.abs(k).max() <= bound and np.abs(k).max() > 0.9 * bound
    k = init.kaiming_normal_(torch.empty(*shape), a=0.2).numpy()
    std = math.sqrt(2 / 1.04) / math.sqrt(fan_in)
    assert abs(k.std() / std - 1) < 0.1
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        init.kaiming_uniform_(torch.empty(0, 3))


@pytest.mark.parametrize("shape", [(6, 4), (3, 8), (4, 2, 3)])
def test_orthogonal(shape):
    w = init.orthogonal_(torch.empty(*shape), gain=2.0).numpy().reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, 4 * np.eye(min(rows, cols)), atol=1e-5)
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are "
                                         "supported"):
        init.orthogonal_(torch.empty(3))


def test_sparse():
    torch.manual_seed(0)
    w = init.sparse_(torch.empty(10, 6), sparsity=0.3).numpy()
    assert ((w == 0).sum(0) >= 3).all()


def test_default_layer_inits_are_pytorchs():
    torch.manual_seed(0)
    emb = nn.Embedding(300, 40)
    assert abs(emb.weight.detach().numpy().std() - 1) < 0.02      # N(0, 1)
    bn = nn.BatchNorm1d(3)
    np.testing.assert_array_equal(bn.weight.detach().numpy(), [1, 1, 1])
    np.testing.assert_array_equal(bn.bias.detach().numpy(), [0, 0, 0])
    np.testing.assert_array_equal(bn.running_var.numpy(), [1, 1, 1])
    ln = nn.LayerNorm((2, 3))
    np.testing.assert_array_equal(ln.weight.detach().numpy(), np.ones((2, 3)))


# --------------------------------------------------------------------------- nn.utils
def _with_grads(grads):
    ps = []
    for g in grads:
        p = nn.Parameter(torch.zeros(*np.shape(g)))
        p.grad = torch.tensor(np.asarray(g, np.float32))
        ps.append(p)
    return ps


def test_clip_grad_norm():
    g1, g2 = np.array([3.0, 4.0]), np.array([[12.0]])
    ps = _with_grads([g1, g2])
    total = clip_grad_norm_(ps, max_norm=6.5)
    assert total.item() == pytest.approx(13.0)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(ps[0].grad.numpy(), g1 * scale, rtol=1e-6)
    np.testing.assert_allclose(ps[1].grad.numpy(), g2 * scale, rtol=1e-6)
    ps = _with_grads([g1])
    assert clip_grad_norm_(ps, 100.0).item() == pytest.approx(5.0)
    np.testing.assert_array_equal(ps[0].grad.numpy(), g1)          # below max: unchanged
    ps = _with_grads([g1, -g2])
    total = clip_grad_norm_(ps, 6.0, norm_type=math.inf)
    assert total.item() == pytest.approx(12.0)
    np.testing.assert_allclose(ps[1].grad.numpy(), -g2 * 6 / (12 + 1e-6), rtol=1e-6)
    ps = _with_grads([g1])
    assert clip_grad_norm_(ps, 1.0, norm_type=1).item() == pytest.approx(7.0)
    assert clip_grad_norm_([], 1.0).item() == 0.0
    bad = _with_grads([[np.inf, 1.0]])
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from "
                                           "`parameters` is non-finite"):
        clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_in_a_model():
    lin = nn.Linear(4, 3)
    lin(torch.randn(5, 4)).square().sum().backward()
    raw = [p.grad.numpy().copy() for p in lin.parameters()]
    total = clip_grad_norm_(lin.parameters(), 0.1)
    ref = math.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in raw))
    assert total.item() == pytest.approx(ref, rel=1e-5)
    for p, g in zip(lin.parameters(), raw):
        np.testing.assert_allclose(p.grad.numpy(), g * 0.1 / (ref + 1e-6), rtol=1e-5)


def test_clip_grad_value():
    ps = _with_grads([[-3.0, 0.5, 2.0]])
    clip_grad_value_(ps, 1.0)
    np.testing.assert_array_equal(ps[0].grad.numpy(), [-1.0, 0.5, 1.0])


def test_parameters_to_vector_and_back():
    lin = nn.Linear(3, 2)
    vec = parameters_to_vector(lin.parameters())
    ref = np.concatenate([lin.weight.detach().numpy().ravel(), lin.bias.detach().numpy()])
    np.testing.assert_array_equal(vec.detach().numpy(), ref)
    vec.sum().backward()                                 # differentiable, as in PyTorch
    np.testing.assert_array_equal(lin.weight.grad.numpy(), np.ones((2, 3)))
    w = lin.weight
    vector_to_parameters(torch.arange(8.0), lin.parameters())
    assert lin.weight is w and w.requires_grad and w.is_leaf
    np.testing.assert_array_equal(w.detach().numpy(), [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(lin.bias.detach().numpy(), [6, 7])
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        vector_to_parameters([1.0], lin.parameters())
