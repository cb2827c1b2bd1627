"""torch.distributions: Categorical, Normal and kl_divergence against numpy written out here,
gradients against central finite differences, draws against their probabilities, PyTorch's
messages, and PyTorch itself as an optional oracle."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.distributions import Categorical, Distribution, Normal, kl_divergence
from tests.conftest import check
from tests.helpers import grad_check


def np_log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


# ---------------------------------------------------------------------------------- Categorical
def test_categorical_parameters(backend, rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    c = Categorical(logits=torch.tensor(x))
    check(c.logits, np_log_softmax(x), rtol=1e-5, atol=1e-6)
    check(c.probs, np.exp(np_log_softmax(x)), rtol=1e-5, atol=1e-7)
    assert c.batch_shape == (3,) and c.event_shape == () and c.param_shape == (3, 5)
    w = np.array([1.0, 3.0, 0.0, 4.0], np.float32)
    p = Categorical(probs=torch.tensor(w))
    check(p.probs, w / w.sum())
    # a zero probability's logit is the log of float32's eps, not -inf, as PyTorch clamps it
    check(p.logits, np.log(np.clip(w / w.sum(), np.finfo(np.float32).eps, None)), rtol=1e-6)
    assert p.batch_shape == () and p._num_events == 4
    check(p.mode, np.array(3))
    assert math.isnan(p.mean.item()) and math.isnan(p.variance.item())


def test_categorical_log_prob_and_entropy(backend, rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    c = Categorical(logits=torch.tensor(x))
    a = np.array([0, 2, 1, 2])
    lp = np_log_softmax(x.astype(np.float64))
    check(c.log_prob(torch.tensor(a)), lp[np.arange(4), a], rtol=1e-5, atol=1e-6)
    # values broadcast against the batch: (2, 1) values over a batch of 4 give (2, 4)
    v = np.array([[1], [0]])
    check(c.log_prob(torch.tensor(v)), lp[np.arange(4)[None, :], v], rtol=1e-5, atol=1e-6)
    check(c.entropy(), -(np.exp(lp) * lp).sum(-1), rtol=1e-5, atol=1e-6)
    # a zero probability adds nothing to the entropy (not nan)
    z = Categorical(probs=torch.tensor([0.5, 0.0, 0.5]))
    check(z.entropy(), np.array(math.log(2)), rtol=1e-6)
    # float actions (as a buffer of actions often is) are read as category indices
    check(c.log_prob(torch.tensor(a.astype(np.float32))), lp[np.arange(4), a], rtol=1e-5)


def test_categorical_gradients():
    x = np.random.default_rng(1).standard_normal((3, 4))
    a = torch.tensor([3, 0, 1])
    grad_check(lambda t: Categorical(logits=t).log_prob(a),
               lambda n: np_log_softmax(n)[np.arange(3), [3, 0, 1]], [x])
    grad_check(lambda t: Categorical(logits=t).entropy(),
               lambda n: -(np.exp(np_log_softmax(n)) * np_log_softmax(n)).sum(-1), [x])
    w = np.abs(x) + 0.1
    grad_check(lambda t: Categorical(probs=t).log_prob(a),
               lambda n: np.log(n / n.sum(-1, keepdims=True))[np.arange(3), [3, 0, 1]], [w])


def test_categorical_sample_frequencies_and_shapes():
    p = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]])
    c = Categorical(probs=torch.tensor(p))
    torch.manual_seed(0)
    s = c.sample((20000,))
    assert tuple(s.shape) == (20000, 2) and s.dtype == torch.int64
    draws = s.numpy()
    for row in range(2):
        freq = np.bincount(draws[:, row], minlength=3) / 20000
        sigma = np.sqrt(p[row] * (1 - p[row]) / 20000)
        assert np.all(np.abs(freq - p[row]) <= 5 * sigma + 1e-12), (row, freq)
    assert not (draws[:, 1] == 1).any()                # never a zero-probability category
    assert tuple(c.sample().shape) == (2,)
    assert tuple(c.sample((2, 3)).shape) == (2, 3, 2)
    one = Categorical(logits=torch.zeros(4)).sample()
    assert one.shape == () and 0 <= one.item() < 4
    # manual_seed makes the draws repeatable
    torch.manual_seed(7)
    first = c.sample((50,)).numpy()
    torch.manual_seed(7)
    np.testing.assert_array_equal(c.sample((50,)).numpy(), first)


def test_categorical_sample_item_is_one_realize():
    """An agent's step (logits, a draw, .item()) costs one realize: the probabilities'."""
    torch.debug.reset_stats()
    logits = torch.tensor([0.2, -0.4]) * 3
    action = Categorical(logits=logits).sample().item()
    assert action in (0, 1)
    assert torch.debug.stats()["realizes"] == 1


def test_categorical_enumerate_support_and_expand():
    c = Categorical(logits=torch.zeros(2, 3))
    np.testing.assert_array_equal(c.enumerate_support().numpy(), [[0, 0], [1, 1], [2, 2]])
    assert tuple(c.enumerate_support(expand=False).shape) == (3, 1)
    e = Categorical(probs=torch.tensor([0.2, 0.8])).expand((4,))
    assert e.batch_shape == (4,)
    check(e.probs, np.tile([0.2, 0.8], (4, 1)), rtol=1e-6)


def test_categorical_errors():
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified, but "
                                         "not both"):
        Categorical()
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        Categorical(probs=torch.ones(2), logits=torch.ones(2))
    with pytest.raises(ValueError, match="`probs` parameter must be at least one-dimensional"):
        Categorical(probs=torch.tensor(0.5))
    with pytest.raises(ValueError, match="`logits` parameter must be at least one-dimensional"):
        Categorical(logits=torch.tensor(0.5))


def test_validation_is_off_by_default_and_checks_with_pytorchs_messages():
    assert Distribution._validate_args is False
    Categorical(logits=torch.tensor([0.0, float("nan")]))          # not checked: no realize
    with pytest.raises(ValueError, match=r"Expected parameter logits \(Tensor of shape \(2,\)\) "
                       r"of distribution Categorical\(logits: torch.Size\(\[2\]\)\) to satisfy "
                       r"the constraint IndependentConstraint\(Real\(\), 1\)"):
        Categorical(logits=torch.tensor([0.0, float("nan")]), validate_args=True)
    with pytest.raises(ValueError, match="to satisfy the constraint Simplex()"):
        Categorical(probs=torch.tensor([0.5, -0.1]), validate_args=True)
    c = Categorical(probs=torch.tensor([0.5, 0.5]), validate_args=True)
    with pytest.raises(ValueError, match=r"Expected value argument \(Tensor of shape \(\)\) to "
                       r"be within the support \(IntegerInterval\(lower_bound=0, "
                       r"upper_bound=1\)\)"):
        c.log_prob(torch.tensor(2))
    with pytest.raises(ValueError, match="within the support"):
        c.log_prob(torch.tensor(0.5))
    with pytest.raises(ValueError, match="The value argument to log_prob must be a Tensor"):
        c.log_prob(1)
    Distribution.set_default_validate_args(True)
    try:
        with pytest.raises(ValueError, match="GreaterThan"):
            Normal(0.0, -1.0)
    finally:
        Distribution.set_default_validate_args(False)
    Normal(0.0, -1.0)


# ---------------------------------------------------------------------------------- Normal
def test_normal_densities(backend, rng):
    loc = rng.standard_normal(5)
    scale = rng.uniform(0.5, 2.0, 5)
    x = rng.standard_normal((2, 5)) * 2
    n = Normal(torch.tensor(loc), torch.tensor(scale))
    assert n.batch_shape == (5,) and n.event_shape == ()
    check(n.log_prob(torch.tensor(x)),
          -0.5 * ((x - loc) / scale) ** 2 - np.log(scale * np.sqrt(2 * np.pi)), rtol=1e-12)
    erf = np.vectorize(math.erf)
    check(n.cdf(torch.tensor(x)), 0.5 * (1 + erf((x - loc) / (scale * np.sqrt(2)))), rtol=1e-6,
          atol=1e-7)
    check(n.entropy(), 0.5 * np.log(2 * np.pi * np.e * scale ** 2), rtol=1e-12)
    check(n.mean, loc)
    check(n.stddev, scale)
    check(n.variance, scale ** 2, rtol=1e-12)
    # numbers become 0-d tensors of the default dtype; a tensor broadcasts a number
    s = Normal(0.0, 2.0)
    assert s.batch_shape == () and s.loc.dtype == torch.float32
    b = Normal(torch.zeros(3), 1.0)
    assert b.batch_shape == (3,) and tuple(b.scale.shape) == (3,)


def test_normal_rsample_is_differentiable_and_sample_is_not():
    torch.manual_seed(0)
    loc = torch.tensor([1.0, -2.0], requires_grad=True)
    scale = torch.tensor([0.5, 3.0], requires_grad=True)
    n = Normal(loc, scale)
    z = n.rsample((4000,))
    assert tuple(z.shape) == (4000, 2) and z.requires_grad
    z.sum().backward()
    eps = (z.detach().numpy() - np.array([1.0, -2.0])) / np.array([0.5, 3.0])
    np.testing.assert_allclose(loc.grad.numpy(), [4000, 4000])
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0), rtol=1e-4, atol=1e-3)
    # the draws are N(loc, scale): mean and std within 5 standard errors
    assert np.all(np.abs(eps.mean(0)) < 5 / np.sqrt(4000))
    assert np.all(np.abs(eps.std(0) - 1) < 5 / np.sqrt(2 * 4000))
    s = n.sample((3,))
    assert tuple(s.shape) == (3, 2) and not s.requires_grad


def test_normal_log_prob_gradients():
    rng = np.random.default_rng(3)
    loc, scale, x = rng.standard_normal(4), rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    grad_check(lambda m, s, v: Normal(m, s).log_prob(v),
               lambda m, s, v: -0.5 * ((v - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi),
               [loc, scale, x])


def test_normal_shape_mismatch():
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(2\) must match the size of "
                                           r"tensor b \(3\) at non-singleton dimension 0"):
        Normal(torch.zeros(2), torch.ones(3))


# ---------------------------------------------------------------------------------- KL
def test_kl_divergence(backend, rng):
    a, b = rng.standard_normal((2, 3, 4))
    pa, pb = np.exp(np_log_softmax(a)), np.exp(np_log_softmax(b))
    kl = kl_divergence(Categorical(logits=torch.tensor(a)), Categorical(logits=torch.tensor(b)))
    check(kl, (pa * np.log(pa / pb)).sum(-1), rtol=1e-10)
    # a zero in q where p has mass is an infinite divergence; a zero in p contributes nothing
    p0, q0 = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.25, 0.0, 0.75])
    assert kl_divergence(Categorical(probs=p0), Categorical(probs=q0)).item() == math.inf
    check(kl_divergence(Categorical(probs=p0), Categorical(probs=torch.tensor([0.5, 0.25,
                                                                             0.25]))),
          np.array(0.5 * math.log(0.5 / 0.25)), rtol=1e-6)
    m1, s1, m2, s2 = rng.standard_normal(3), rng.uniform(.5, 2, 3), rng.standard_normal(3), \
        rng.uniform(.5, 2, 3)
    kn = kl_divergence(Normal(torch.tensor(m1), torch.tensor(s1)),
                       Normal(torch.tensor(m2), torch.tensor(s2)))
    check(kn, np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5, rtol=1e-10)
    with pytest.raises(NotImplementedError, match="No KL"):
        kl_divergence(Categorical(logits=torch.zeros(2)), Normal(0.0, 1.0))


def test_against_pytorch():
    pt = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    a = rng.integers(0, 4, 6)
    ours, theirs = Categorical(logits=torch.tensor(x)), pt.distributions.Categorical(
        logits=pt.tensor(x))
    np.testing.assert_allclose(ours.log_prob(torch.tensor(a)).numpy(),
                               theirs.log_prob(pt.tensor(a)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.entropy().numpy(), theirs.entropy().numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.probs.numpy(), theirs.probs.numpy(), rtol=1e-5, atol=1e-7)
    assert repr(ours) == repr(theirs).replace("torch.Size", "torch.Size") or \
        repr(ours).startswith("Categorical(")
    loc, scale = rng.standard_normal(3).astype(np.float32), rng.uniform(.5, 2, 3).astype(
        np.float32)
    n, tn = Normal(torch.tensor(loc), torch.tensor(scale)), pt.distributions.Normal(
        pt.tensor(loc), pt.tensor(scale))
    v = rng.standard_normal(3).astype(np.float32)
    np.testing.assert_allclose(n.log_prob(torch.tensor(v)).numpy(),
                               tn.log_prob(pt.tensor(v)).numpy(), rtol=1e-5)
    np.testing.assert_allclose(n.cdf(torch.tensor(v)).numpy(), tn.cdf(pt.tensor(v)).numpy(),
                               rtol=1e-5, atol=1e-7)
    assert repr(Normal(0.0, 1.0)) == repr(pt.distributions.Normal(0.0, 1.0))


def test_namespace():
    import lazytorch.distributions as D
    assert torch.distributions is D
    assert D.Categorical is Categorical and D.utils.logits_to_probs
