"""Margin, embedding and likelihood losses against numpy formulas written here from PyTorch's
documentation (every reduction), gradients against finite differences in float64, and PyTorch
parity (values and gradients) when torch is importable."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
from tests.helpers import check_all, grad_check


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


def _red(loss, reduction):
    return {"none": loss, "mean": np.mean(loss), "sum": np.sum(loss)}[reduction]


def _logsig(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


rng = np.random.default_rng(0)
X1, X2 = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
X3 = rng.standard_normal((4, 5))
S1, S2 = rng.standard_normal(6), rng.standard_normal(6)
Y = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])
Y4 = np.array([1.0, -1.0, 1.0, -1.0])
LABELS = (rng.uniform(size=(4, 5)) > 0.5).astype(np.float64)
CLS = np.array([2, 0, 4, 1])
MULTI = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [0, -1, 4, 4, 4], [-1, 1, 2, 3, 4]])


def margin_ranking(a, b, y, margin=0.1):
    return np.maximum(0, -y * (a - b) + margin)


def hinge(x, y, margin=1.0):
    return np.where(y == 1, x, np.maximum(0, margin - x))


def soft_margin(x, y):
    return np.log1p(np.exp(-y * x))


def ml_soft_margin(x, t, w=None):
    loss = -(t * _logsig(x) + (1 - t) * _logsig(-x))
    if w is not None:
        loss = loss * w
    return loss.mean(-1)


def multi_margin(x, y, p=1, margin=1.0, w=None):
    n, c = x.shape
    out = np.zeros(n)
    for i in range(n):
        for j in range(c):
            if j != y[i]:
                z = max(0.0, margin - x[i, y[i]] + x[i, j]) ** p
                out[i] += z * (1.0 if w is None else w[y[i]])
    return out / c


def ml_margin(x, y):
    n, c = x.shape
    out = np.zeros(n)
    for i in range(n):
        targets = []
        for v in y[i]:
            if v < 0:
                break
            targets.append(v)
        for j in targets:
            for k in range(c):
                if k not in targets:
                    out[i] += max(0.0, 1 - (x[i, j] - x[i, k]))
    return out / c


def cos_emb(a, b, y, margin=0.2):
    cos = (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))
    return np.where(y == 1, 1 - cos, np.maximum(0, cos - margin))


def triplet(a, p, n, margin=1.0, swap=False):
    def d(u, v):
        return np.sqrt(((u - v + 1e-6) ** 2).sum(-1))
    dn = np.minimum(d(a, n), d(p, n)) if swap else d(a, n)
    return np.maximum(0, margin + d(a, p) - dn)


def poisson(x, t, log_input=True, full=False, eps=1e-8):
    loss = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    if full:
        st = np.where(t > 1, t * np.log(np.maximum(t, 1)) - t +
                      0.5 * np.log(2 * math.pi * np.maximum(t, 1)), 0)
        loss = loss + st
    return loss


def gaussian(x, t, var, full=False, eps=1e-6):
    v = np.maximum(var, eps)
    loss = 0.5 * (np.log(v) + (x - t) ** 2 / v)
    return loss + 0.5 * math.log(2 * math.pi) if full else loss


T = torch.tensor
POS = np.abs(X3) + 0.1
CASES = [
    ("margin_ranking", lambda r: F.margin_ranking_loss(T(S1), T(S2), T(Y), 0.1, reduction=r),
     lambda r: _red(margin_ranking(S1, S2, Y), r)),
    ("hinge", lambda r: nn.HingeEmbeddingLoss(0.5, reduction=r)(T(S1), T(Y)),
     lambda r: _red(hinge(S1, Y, 0.5), r)),
    ("soft_margin", lambda r: nn.SoftMarginLoss(reduction=r)(T(S1), T(Y)),
     lambda r: _red(soft_margin(S1, Y), r)),
    ("ml_soft_margin", lambda r: nn.MultiLabelSoftMarginLoss(T(np.arange(1.0, 6.0)),
                                                             reduction=r)(T(X1), T(LABELS)),
     lambda r: _red(ml_soft_margin(X1, LABELS, np.arange(1.0, 6.0)), r)),
    ("multi_margin", lambda r: F.multi_margin_loss(T(X1), T(CLS), reduction=r),
     lambda r: _red(multi_margin(X1, CLS), r)),
    ("multi_margin_p2_w", lambda r: nn.MultiMarginLoss(2, 0.7, T(np.arange(1.0, 6.0)),
                                                       reduction=r)(T(X1), T(CLS)),
     lambda r: _red(multi_margin(X1, CLS, 2, 0.7, np.arange(1.0, 6.0)), r)),
    ("ml_margin", lambda r: nn.MultiLabelMarginLoss(reduction=r)(T(X1), T(MULTI)),
     lambda r: _red(ml_margin(X1, MULTI), r)),
    ("cos_emb", lambda r: nn.CosineEmbeddingLoss(0.2, reduction=r)(T(X1), T(X2), T(Y4)),
     lambda r: _red(cos_emb(X1, X2, Y4), r)),
    ("triplet", lambda r: nn.TripletMarginLoss(reduction=r)(T(X1), T(X2), T(X3)),
     lambda r: _red(triplet(X1, X2, X3), r)),
    ("triplet_swap", lambda r: F.triplet_margin_loss(T(X1), T(X2), T(X3), 2.0, swap=True,
                                                     reduction=r),
     lambda r: _red(triplet(X1, X2, X3, 2.0, True), r)),
    ("triplet_dist", lambda r: nn.TripletMarginWithDistanceLoss(
        distance_function=lambda a, b: 1 - F.cosine_similarity(a, b), reduction=r)(
        T(X1), T(X2), T(X3)),
     lambda r: _red(np.maximum(0, 1 + cos_emb(X1, X2, np.ones(4), 0) -
                               cos_emb(X1, X3, np.ones(4), 0)), r)),
    ("poisson", lambda r: nn.PoissonNLLLoss(reduction=r)(T(X1), T(np.round(POS * 3))),
     lambda r: _red(poisson(X1, np.round(POS * 3)), r)),
    ("poisson_full", lambda r: F.poisson_nll_loss(T(POS), T(np.round(POS * 3)), False, True,
                                                  reduction=r),
     lambda r: _red(poisson(POS, np.round(POS * 3), False, True), r)),
    ("gaussian", lambda r: nn.GaussianNLLLoss(reduction=r)(T(X1), T(X2), T(POS)),
     lambda r: _red(gaussian(X1, X2, POS), r)),
    ("gaussian_full_per_sample", lambda r: F.gaussian_nll_loss(
        T(X1), T(X2), T(POS[:, 0]), full=True, reduction=r),
     lambda r: _red(gaussian(X1, X2, POS[:, :1], True), r)),
]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_losses_against_numpy(backend, reduction):
    check_all([(name, lt(reduction), ref(reduction)) for name, lt, ref in CASES],
              rtol=1e-10, atol=1e-12)


GRAD_CASES = [
    ("margin_ranking", lambda a, b: F.margin_ranking_loss(a, b, T(Y), 0.1, reduction="sum"),
     lambda a, b: margin_ranking(a, b, Y).sum(), [S1, S2]),
    ("soft_margin", lambda a: F.soft_margin_loss(a, T(Y), reduction="none"),
     lambda a: soft_margin(a, Y), [S1]),
    ("ml_soft_margin", lambda a: F.multilabel_soft_margin_loss(a, T(LABELS), reduction="none"),
     lambda a: ml_soft_margin(a, LABELS), [X1]),
    ("multi_margin", lambda a: F.multi_margin_loss(a, T(CLS), p=2, reduction="none"),
     lambda a: multi_margin(a, CLS, 2), [X1]),
    ("ml_margin", lambda a: F.multilabel_margin_loss(a, T(MULTI), reduction="none"),
     lambda a: ml_margin(a, MULTI), [X1]),
    ("cos_emb", lambda a, b: F.cosine_embedding_loss(a, b, T(Y4), 0.2, reduction="none"),
     lambda a, b: cos_emb(a, b, Y4), [X1, X2]),
    ("triplet", lambda a, p, n: F.triplet_margin_loss(a, p, n, 2.0, swap=True,
                                                      reduction="none"),
     lambda a, p, n: triplet(a, p, n, 2.0, True), [X1, X2, X3]),
    ("poisson", lambda a: F.poisson_nll_loss(a, T(np.round(POS * 3)), reduction="none"),
     lambda a: poisson(a, np.round(POS * 3)), [X1]),
    ("gaussian", lambda a, v: F.gaussian_nll_loss(a, T(X2), v, reduction="none"),
     lambda a, v: gaussian(a, X2, v), [X1, POS]),
]


@pytest.mark.parametrize("lt,ref,arrays", [c[1:] for c in GRAD_CASES],
                         ids=[c[0] for c in GRAD_CASES])
def test_gradients_by_finite_differences(lt, ref, arrays):
    grad_check(lt, ref, arrays)


def test_errors():
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        F.multi_margin_loss(torch.randn(2, 3), torch.tensor([0, 1]), p=3)
    with pytest.raises(RuntimeError, match="target out of range"):
        F.multi_margin_loss(torch.randn(2, 3), torch.tensor([0, 5]))
    with pytest.raises(RuntimeError, match="1D target tensor expects 2D input tensors, but "
                                           "found inputs with sizes \\[2, 3, 4\\]"):
        F.cosine_embedding_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.ones(2))
    with pytest.raises(RuntimeError, match="inconsistent target size: \\[1, 3\\] for input of "
                                           "size: \\[2, 3\\]"):
        F.multilabel_margin_loss(torch.randn(2, 3), torch.tensor([[0, 1, -1]]))
    with pytest.raises(ValueError, match="var has negative entry/entries"):
        F.gaussian_nll_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor(-np.ones((2, 3))))
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(torch.randn(2, 3), torch.randn(2, 3), torch.ones(3, 3))
    with pytest.raises(ValueError, match="x is not valid"):
        F.gaussian_nll_loss(torch.randn(2), torch.randn(2), torch.ones(2), reduction="x")
    with pytest.raises(ValueError, match="x is not a valid value for reduction"):
        F.poisson_nll_loss(torch.randn(2), torch.randn(2), reduction="x")
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater "
                                         "than 0, got -1"):
        nn.TripletMarginLoss(margin=-1)


@pytest.mark.filterwarnings("ignore:`NLLLoss2d` has been deprecated")
def test_torch_parity():
    tt = pytest.importorskip("torch")
    mods = [("MarginRankingLoss", dict(margin=0.3), [S1, S2, Y]),
            ("HingeEmbeddingLoss", dict(margin=0.7), [S1, Y]),
            ("SoftMarginLoss", {}, [S1, Y]),
            ("MultiLabelSoftMarginLoss", {}, [X1, LABELS]),
            ("MultiMarginLoss", dict(p=2, margin=0.5), [X1, CLS]),
            ("MultiLabelMarginLoss", {}, [X1, MULTI]),
            ("CosineEmbeddingLoss", dict(margin=0.1), [X1, X2, Y4]),
            ("TripletMarginLoss", dict(p=1.5, swap=True), [X1, X2, X3]),
            ("TripletMarginWithDistanceLoss", dict(margin=0.5), [X1, X2, X3]),
            ("PoissonNLLLoss", dict(full=True), [X1, np.round(POS * 3)]),
            ("GaussianNLLLoss", dict(full=True), [X1, X2, POS]),
            ("NLLLoss2d", {}, [np.log(POS[None, :, :, None] / POS.sum(0)[None, None, :, None]),
                               np.zeros((1, 5, 1), np.int64)])]
    for name, kw, arrays in mods:
        for reduction in ("none", "mean"):
            lm = getattr(nn, name)(reduction=reduction, **kw)
            tm = getattr(tt.nn, name)(reduction=reduction, **kw)
            assert repr(lm) == repr(tm), name
            floats = [a.dtype == np.float64 and i == 0 for i, a in enumerate(arrays)]
            lts = [torch.tensor(a, requires_grad=f) for a, f in zip(arrays, floats)]
            tts = [tt.tensor(a, requires_grad=f) for a, f in zip(arrays, floats)]
            yl, yt = lm(*lts), tm(*tts)
            np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=1e-10,
                                       atol=1e-12, err_msg=f"{name} {reduction}")
            yl.sum().backward()
            yt.sum().backward()
            np.testing.assert_allclose(lts[0].grad.numpy(), tts[0].grad.numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=f"{name} grad")
