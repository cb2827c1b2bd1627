"""Losses: values against numpy references written here for every reduction, gradients
against central finite differences of the references (float64), PyTorch's edge-case rules
(BCE's log clamp, ignore_index, label smoothing), messages, and parity with PyTorch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
from lazytorch.frontend.tensor import realize_tensors
from tests.helpers import grad_check

REDUCTIONS = ["none", "mean", "sum"]


def _red(loss, reduction):
    return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    t = rng.standard_normal((3, 4))
    return x, t


# --------------------------------------------------------------------------- regression
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_l1_smooth_l1_huber(reduction, data):
    x, t = data
    grad_check(lambda a, b: F.mse_loss(a, b, reduction=reduction),
               lambda a, b: _red((a - b) ** 2, reduction), [x, t])
    grad_check(lambda a, b: F.l1_loss(a, b, reduction=reduction),
               lambda a, b: _red(np.abs(a - b), reduction), [x, t])

    def smooth(a, b, beta=0.5):
        d = np.abs(a - b)
        return _red(np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)

    grad_check(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=0.5), smooth,
               [x, t])

    def huber(a, b, delta=0.7):
        d = np.abs(a - b)
        return _red(np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)

    grad_check(lambda a, b: F.huber_loss(a, b, reduction=reduction, delta=0.7), huber, [x, t])


def test_regression_extras(data):
    x, t = data
    w = np.abs(data[1]) + 0.1
    grad_check(lambda a, b, c: F.mse_loss(a, b, weight=c),
               lambda a, b, c: ((a - b) ** 2 * c).sum() / c.sum(), [x, t, w])
    grad_check(lambda a, b: F.smooth_l1_loss(a, b, beta=0.0),
               lambda a, b: np.abs(a - b).mean(), [x, t])
    with pytest.warns(UserWarning, match=r"Using a target size \(torch.Size\(\[4\]\)\) that is "
                                         r"different to the input size"):
        out = F.mse_loss(torch.tensor(x), torch.tensor(t[0]))
    np.testing.assert_allclose(out.item(), ((x - t[0]) ** 2).mean(), rtol=1e-12)
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        F.l1_loss(torch.tensor(x), torch.tensor(t), reduction="foo")
    with pytest.raises(RuntimeError, match="smooth_l1_loss does not support negative values"):
        F.smooth_l1_loss(torch.tensor(x), torch.tensor(t), beta=-1.0)
    with pytest.raises(RuntimeError, match="huber_loss does not support non-positive values"):
        F.huber_loss(torch.tensor(x), torch.tensor(t), delta=0.0)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated, "
                                         "please use reduction='sum' instead."):
        out = F.mse_loss(torch.tensor(x), torch.tensor(t), size_average=False)
    np.testing.assert_allclose(out.item(), ((x - t) ** 2).sum(), rtol=1e-12)


# --------------------------------------------------------------------------- binary
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, (3, 4))
    t = rng.uniform(0, 1, (3, 4))
    w = rng.uniform(0.5, 2, (4,))

    def ref(p, t, w=None):
        loss = -(t * np.log(p) + (1 - t) * np.log(1 - p))
        return _red(loss if w is None else loss * w, reduction)

    grad_check(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), ref, [p, t])
    grad_check(lambda a, b, c: F.binary_cross_entropy(a, b, c, reduction=reduction), ref,
               [p, t, w])


def test_binary_cross_entropy_clamps_like_pytorch():
    x = torch.tensor([0.0, 1.0, 0.5, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    loss = F.binary_cross_entropy(x, t, reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.detach().numpy(), [0, 0, np.log(2), 100, 100], rtol=1e-12)
    # PyTorch's gradient: (x - t) / max(x (1 - x), 1e-12), finite everywhere
    np.testing.assert_allclose(x.grad.numpy(), [0, 0, -2, -1e12, 1e12], rtol=1e-12)
    with pytest.raises(ValueError, match=r"Using a target size \(torch.Size\(\[3, 1\]\)\) that "
                                         r"is different to the input size"):
        F.binary_cross_entropy(torch.rand(3), torch.rand(3, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4)) * 3
    t = rng.uniform(0, 1, (3, 4))
    w = rng.uniform(0.5, 2, (3, 1))
    pw = rng.uniform(0.5, 3, (4,))

    def ref(x, t, w=None, pw=None):
        ls = -np.log1p(np.exp(-x))            # log sigmoid(x)
        ls_neg = -np.log1p(np.exp(x))         # log sigmoid(-x)
        loss = -((1.0 if pw is None else pw) * t * ls + (1 - t) * ls_neg)
        return _red(loss if w is None else loss * w, reduction)

    grad_check(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
               ref, [x, t])
    grad_check(lambda a, b, c, d: F.binary_cross_entropy_with_logits(
        a, b, c, reduction=reduction, pos_weight=d), ref, [x, t, w, pw])


def test_bce_with_logits_stable_and_exact_at_zero():
    x = torch.tensor([-200.0, 0.0, 200.0, 0.0], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([1.0, 1.0, 0.0, 0.25], dtype=torch.float64)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.detach().numpy(), [200, np.log(2), 200, np.log(2)],
                               rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), [-1, -0.5, 1, 0.25], rtol=1e-12)  # sig(x) - t
    with pytest.raises(ValueError, match=r"Target size \(torch.Size\(\[3, 1\]\)\) must be the "
                                         r"same as input size \(torch.Size\(\[3\]\)\)"):
        F.binary_cross_entropy_with_logits(torch.rand(3), torch.rand(3, 1))


# --------------------------------------------------------------------------- kl_div
@pytest.mark.parametrize("reduction", ["none", "sum", "batchmean"])
def test_kl_div(reduction):
    rng = np.random.default_rng(3)
    logq = np.log(rng.dirichlet(np.ones(4), 3))
    p = rng.dirichlet(np.ones(4), 3)
    p[0, 1] = 0.0                               # 0 * log 0 counts as 0

    def red(loss):
        return loss.sum() / 3 if reduction == "batchmean" else _red(loss, reduction)

    def ref(q, t):
        safe = np.where(t > 0, t, 1.0)
        return red(t * np.log(safe) - t * q)

    grad_check(lambda a, b: F.kl_div(a, b, reduction=reduction), ref, [logq, p], wrt=[0])
    grad_check(lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=True),
               lambda q, lt: red(np.exp(lt) * (lt - q)), [logq, np.log(p + 0.1)])


def test_kl_div_mean_warns():
    with pytest.warns(UserWarning, match="reduction: 'mean' divides the total loss by both the "
                                         "batch size and the support size."):
        out = F.kl_div(torch.zeros(2, 2), torch.full((2, 2), 0.5))
    np.testing.assert_allclose(out.item(), 0.5 * np.log(0.5), rtol=1e-6)


# --------------------------------------------------------------------------- classification
def _log_softmax(x):
    m = x.max(1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(1, keepdims=True))


def ce_ref(x, t, w=None, ignore=-100, ls=0.0, reduction="mean", log_probs=False):
    """Cross entropy (or nll_loss when log_probs) with PyTorch's weighting and smoothing."""
    logp = x if log_probs else _log_softmax(x)
    c = x.shape[1]
    w = np.ones(c) if w is None else w
    valid = t != ignore
    tc = np.where(valid, t, 0)
    picked = np.take_along_axis(logp, tc[:, None], 1)[:, 0]
    wt = w[tc] * valid
    nll = -picked * wt
    smooth = -(logp * w.reshape((1, c) + (1,) * (x.ndim - 2))).sum(1) * valid
    if reduction == "none":
        return (1 - ls) * nll + ls / c * smooth
    if reduction == "sum":
        return (1 - ls) * nll.sum() + ls / c * smooth.sum()
    return ((1 - ls) * nll.sum() + ls / c * smooth.sum()) / wt.sum()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_class_indices(reduction):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 4))
    t = np.array([0, 3, 1, 3, 2])
    w = rng.uniform(0.5, 2, 4)
    tt = torch.tensor(t)
    grad_check(lambda a: F.cross_entropy(a, tt, reduction=reduction),
               lambda a: ce_ref(a, t, reduction=reduction), [x])
    ti = torch.tensor([0, -100, 1, 3, -100])
    grad_check(lambda a, b: F.cross_entropy(a, ti, b, reduction=reduction),
               lambda a, b: ce_ref(a, ti.numpy(), b, reduction=reduction), [x, w])
    grad_check(lambda a, b: F.cross_entropy(a, tt, b, ignore_index=3, reduction=reduction,
                                            label_smoothing=0.2),
               lambda a, b: ce_ref(a, t, b, ignore=3, ls=0.2, reduction=reduction), [x, w])
    grad_check(lambda a: F.cross_entropy(a, tt, reduction=reduction, label_smoothing=0.1),
               lambda a: ce_ref(a, t, ls=0.1, reduction=reduction), [x])


def test_cross_entropy_spatial_and_unbatched():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 2, 2))
    t = rng.integers(0, 3, (2, 2, 2))
    tt = torch.tensor(t)

    def ref(a):
        flat = a.transpose(0, 2, 3, 1).reshape(-1, 3)
        return ce_ref(flat, t.reshape(-1))

    grad_check(lambda a: F.cross_entropy(a, tt), ref, [x])
    out = F.cross_entropy(torch.tensor(x), tt, reduction="none")
    assert out.shape == (2, 2, 2)
    x1 = rng.standard_normal(4)
    grad_check(lambda a: F.cross_entropy(a, torch.tensor(2)),
               lambda a: ce_ref(a[None], np.array([2])), [x1])
    assert F.cross_entropy(torch.tensor(x1), torch.tensor(2), reduction="none").shape == ()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_class_probabilities(reduction):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4))
    p = rng.dirichlet(np.ones(4), 3)
    w = rng.uniform(0.5, 2, 4)

    def ref(a, q, w=None, ls=0.0):
        q = q * (1 - ls) + ls / 4
        terms = -(_log_softmax(a) * q * (1.0 if w is None else w)).sum(1)
        return terms if reduction == "none" else terms.sum() if reduction == "sum" else \
            terms.mean()

    grad_check(lambda a, b: F.cross_entropy(a, b, reduction=reduction), ref, [x, p])
    grad_check(lambda a, b, c: F.cross_entropy(a, b, c, reduction=reduction,
                                               label_smoothing=0.3),
               lambda a, b, c: ref(a, b, c, 0.3), [x, p, w])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    rng = np.random.default_rng(7)
    logp = _log_softmax(rng.standard_normal((4, 3)))
    t = np.array([2, 0, 1, 1])
    w = rng.uniform(0.5, 2, 3)
    grad_check(lambda a: F.nll_loss(a, torch.tensor(t), reduction=reduction),
               lambda a: ce_ref(a, t, reduction=reduction, log_probs=True), [logp])
    grad_check(lambda a, b: F.nll_loss(a, torch.tensor(t), b, ignore_index=0,
                                       reduction=reduction),
               lambda a, b: ce_ref(a, t, b, ignore=0, reduction=reduction, log_probs=True),
               [logp, w])


def test_classification_errors():
    x = torch.randn(3, 4)
    with pytest.raises(IndexError, match="Target 5 is out of bounds."):
        F.cross_entropy(x, torch.tensor([1, 5, 0]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target "
                                         r"batch_size \(2\)."):
        F.cross_entropy(x, torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="Expected floating point type for target with class "
                                           "probabilities, got Long"):
        F.cross_entropy(x, torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point "
                                           "target"):
        F.cross_entropy(x, torch.rand(3, 4), ignore_index=1)
    with pytest.raises(RuntimeError, match=r"weight tensor should be defined either for all 4 "
                                           r"classes or no classes but got weight tensor of "
                                           r"shape: \[3\]"):
        F.nll_loss(x, torch.tensor([1, 2, 0]), weight=torch.ones(3))
    with pytest.raises(RuntimeError, match=r"Expected target size \[3, 5\], got \[3, 6\]"):
        F.nll_loss(torch.randn(3, 4, 5), torch.zeros(3, 6, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte, but got "
                                           "Float"):
        F.nll_loss(x, torch.zeros(3))
    out = F.cross_entropy(x, torch.tensor([-100, -100, -100]))
    assert np.isnan(out.item())               # mean over no samples, as PyTorch


# --------------------------------------------------------------------------- modules
def test_loss_modules_match_functional_and_register_weights():
    rng = np.random.default_rng(8)
    x = torch.tensor(rng.standard_normal((4, 3)))
    t = torch.tensor([0, 2, 1, 2])
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    ce = nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1)
    np.testing.assert_allclose(ce(x, t).item(), F.cross_entropy(
        x, t, w, ignore_index=1, label_smoothing=0.1).item(), rtol=1e-12)
    assert list(ce.state_dict()) == ["weight"] and ce.reduction == "mean"
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    bce = nn.BCEWithLogitsLoss(pos_weight=torch.ones(3, dtype=torch.float64))
    assert list(bce.state_dict()) == ["pos_weight"]
    probs = x.sigmoid()
    y = torch.tensor(rng.uniform(0, 1, (4, 3)))
    pairs = [(nn.MSELoss(reduction="sum"), F.mse_loss(x, y, reduction="sum")),
             (nn.L1Loss(), F.l1_loss(x, y)), (nn.SmoothL1Loss(beta=0.3),
                                              F.smooth_l1_loss(x, y, beta=0.3)),
             (nn.HuberLoss(delta=0.4), F.huber_loss(x, y, delta=0.4)),
             (nn.BCELoss(), F.binary_cross_entropy(probs, y)),
             (nn.NLLLoss(), F.nll_loss(x, t)), (nn.KLDivLoss(reduction="batchmean"),
                                               F.kl_div(x, y, reduction="batchmean"))]
    for module, expected in pairs:
        inp = probs if isinstance(module, nn.BCELoss) else x
        tgt = t if isinstance(module, nn.NLLLoss) else y
        np.testing.assert_allclose(module(inp, tgt).item(), expected.item(), rtol=1e-12)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        legacy = nn.MSELoss(size_average=False)
    assert legacy.reduction == "sum" and "size_average and reduce" in str(rec[0].message)


# --------------------------------------------------------------------------- torch parity
def test_parity_with_torch_losses():
    ptorch = pytest.importorskip("torch")
    tf = ptorch.nn.functional
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 5))
    y = rng.standard_normal((6, 5))
    prob = rng.uniform(0.01, 0.99, (6, 5))
    tgt01 = rng.uniform(0, 1, (6, 5))
    cls = np.array([0, 4, 2, 2, 1, 3])
    w5 = rng.uniform(0.5, 2.0, 5)
    soft = rng.dirichlet(np.ones(5), 6)
    cases = [
        ("mse_loss", x, y, {}), ("l1_loss", x, y, {}), ("smooth_l1_loss", x, y, {"beta": 0.5}),
        ("huber_loss", x, y, {"delta": 0.5}), ("binary_cross_entropy", prob, tgt01, {}),
        ("binary_cross_entropy_with_logits", x, tgt01, {"pos_weight": w5}),
        ("kl_div", _log_softmax(x), soft, {}), ("kl_div", x, y, {"log_target": True}),
        ("cross_entropy", x, cls, {"weight": w5, "ignore_index": 2, "label_smoothing": 0.1}),
        ("cross_entropy", x, soft, {"label_smoothing": 0.2}),
        ("nll_loss", _log_softmax(x), cls, {"weight": w5}),
    ]
    for name, a, b, kw in cases:
        for reduction in REDUCTIONS:
            at = torch.tensor(a, requires_grad=True)
            ap = ptorch.tensor(a, requires_grad=True)
            ours_kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                       for k, v in kw.items()}
            theirs_kw = {k: ptorch.tensor(v) if isinstance(v, np.ndarray) else v
                         for k, v in kw.items()}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lo = getattr(F, name)(at, torch.tensor(b), reduction=reduction, **ours_kw)
                lp = getattr(tf, name)(ap, ptorch.tensor(b), reduction=reduction, **theirs_kw)
            lo.sum().backward()
            lp.sum().backward()
            realize_tensors([lo, at.grad])
            msg = f"{name} {kw} {reduction}"
            np.testing.assert_allclose(lo.detach().numpy(), lp.detach().numpy(), rtol=1e-10,
                                       atol=1e-12, err_msg=msg)
            np.testing.assert_allclose(at.grad.numpy(), ap.grad.numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=msg)
