"""optim.swa_utils: AveragedModel (SWA running mean, EMA through avg_fn and multi_avg_fn,
use_buffers), update_bn and SWALR against numpy written here and PyTorch 2.13 when torch is
importable; averaged values never carry a graph from one update to the next."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.optim as optim
from lazytorch.ir.graph import Graph
from lazytorch.optim import swa_utils


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


def _snapshots(model, n, seed=0):
    """Set model's weights to n random states in turn, yielding each state's numpy copy."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
        yield [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("kind", ["swa", "ema_fn", "ema_multi"])
def test_averaged_model(kind):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    kw = {"swa": {}, "ema_fn": dict(avg_fn=swa_utils.get_ema_avg_fn(0.9)),
          "ema_multi": dict(multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.9))}[kind]
    avg = swa_utils.AveragedModel(model, **kw)
    states = []
    for state in _snapshots(model, 6):
        states.append(state)
        avg.update_parameters(model)
    for i, p in enumerate(avg.module.parameters()):
        seq = [s[i] for s in states]
        if kind == "swa":
            want = np.mean(seq, 0)
        else:
            want = seq[0]
            for s in seq[1:]:
                want = 0.9 * want + 0.1 * s
        np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    assert avg.n_averaged.item() == 6
    assert list(avg.state_dict())[:2] == ["n_averaged", "module.0.weight"]
    x = torch.randn(5, 3)
    np.testing.assert_allclose(avg(x).detach().numpy(), avg.module(x).detach().numpy())


def test_averaged_values_do_not_accumulate_graphs():
    model = nn.Linear(3, 2)
    avg = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.99))
    opt = optim.SGD(model.parameters(), lr=0.1)
    for _ in range(10):
        opt.zero_grad()
        model(torch.randn(4, 3)).square().sum().backward()
        opt.step()
        avg.update_parameters(model)
    avg.n_averaged.item()           # any realize computes the pending averages
    for p in avg.parameters():
        assert len(Graph([p.node]).nodes) == 1


def test_use_buffers_and_update_bn():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    avg = swa_utils.AveragedModel(model, use_buffers=True)
    rng = np.random.default_rng(1)
    batches = [rng.standard_normal((8, 3)).astype(np.float32) for _ in range(4)]
    seen = []
    for b in batches[:2]:
        model(torch.tensor(b))
        seen.append(model[1].running_mean.numpy().copy())
        avg.update_parameters(model)
    # with use_buffers the buffers are averaged like the parameters
    np.testing.assert_allclose(avg.module[1].running_mean.numpy(), np.mean(seen, 0),
                               rtol=1e-6, atol=1e-7)
    # update_bn: the running statistics become the cumulative mean over the loader's batches
    lin = avg.module[0]
    w, bias = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    swa_utils.update_bn([(torch.tensor(b), 0) for b in batches], avg)
    feats = [b @ w.T + bias for b in batches]
    np.testing.assert_allclose(avg.module[1].running_mean.numpy(),
                               np.mean([f.mean(0) for f in feats], 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(avg.module[1].running_var.numpy(),
                               np.mean([f.var(0, ddof=1) for f in feats], 0), rtol=1e-5,
                               atol=1e-6)
    assert avg.module[1].momentum == 0.1 and avg.training


def test_swalr():
    p = torch.zeros(2, requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    s = swa_utils.SWALR(opt, swa_lr=0.1, anneal_epochs=5, anneal_strategy="linear")
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(10):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
    # linear annealing from the starting lr to swa_lr over anneal_epochs, then constant
    want = [1.0 + (0.1 - 1.0) * min(1, e / 5) for e in range(10)]
    assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(lrs, want)), (lrs, want)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear'"):
        swa_utils.SWALR(opt, 0.1, anneal_strategy="step")


def test_torch_parity():
    tt = pytest.importorskip("torch")
    from torch.optim import swa_utils as tsw
    tt.manual_seed(0)
    tm = tt.nn.Sequential(tt.nn.Linear(3, 4), tt.nn.BatchNorm1d(4), tt.nn.Linear(4, 2))
    lm = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    lm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    for kw_l, kw_t in [({}, {}),
                       (dict(multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.8)),
                        dict(multi_avg_fn=tsw.get_ema_multi_avg_fn(0.8))),
                       (dict(use_buffers=True), dict(use_buffers=True))]:
        la, ta = swa_utils.AveragedModel(lm, **kw_l), tsw.AveragedModel(tm, **kw_t)
        assert list(la.state_dict()) == list(ta.state_dict())
        lo, to = optim.SGD(lm.parameters(), lr=0.1), tt.optim.SGD(tm.parameters(), lr=0.1)
        ls, ts = swa_utils.SWALR(lo, 0.05, anneal_epochs=3), tsw.SWALR(to, 0.05,
                                                                        anneal_epochs=3)
        rng = np.random.default_rng(2)
        for _ in range(5):
            x = rng.standard_normal((6, 3)).astype(np.float32)
            lo.zero_grad()
            to.zero_grad()
            lm(torch.tensor(x)).square().sum().backward()
            tm(tt.tensor(x)).square().sum().backward()
            lo.step()
            to.step()
            la.update_parameters(lm)
            ta.update_parameters(tm)
            ls.step()
            ts.step()
            assert math.isclose(lo.param_groups[0]["lr"], to.param_groups[0]["lr"],
                                rel_tol=1e-12)
        for (k, a), b in zip(la.state_dict().items(), ta.state_dict().values()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
        loader = [(tt.tensor(rng.standard_normal((6, 3)).astype(np.float32)),)
                  for _ in range(3)]
        swa_utils.update_bn([(torch.tensor(b[0].numpy()),) for b in loader], la)
        tsw.update_bn(loader, ta)
        for (k, a), b in zip(la.state_dict().items(), ta.state_dict().values()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
