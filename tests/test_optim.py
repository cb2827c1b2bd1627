"""Optimizers against numpy implementations of PyTorch's documented update rules, the one-plan
step (kernels compile on the first two steps only), state dicts, param groups, and PyTorch
parity when torch is importable."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.optim as optim
from lazytorch import debug

SHAPES = [(3, 4), (5,)]


# ----------------------------------------------------------------------------- the problem
def make_problem(dtype=np.float64, seed=0):
    """Parameters, targets and weights of a quadratic loss sum(C * (p - T)^2)."""
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    targets = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    weights = [rng.uniform(0.5, 2.0, s).astype(dtype) for s in SHAPES]
    return p0, targets, weights


def np_grad(p, t, c):
    return 2 * c * (p - t)


def lt_loss(params, targets, weights):
    total = None
    for p, t, c in zip(params, targets, weights):
        term = (torch.tensor(c) * (p - torch.tensor(t)).square()).sum()
        total = term if total is None else total + term
    return total


def run_lt(make_opt, n_steps, dtype=np.float64, lrs=None):
    """n_steps of the optimizer on the quadratic problem; lrs: the lr to set before each step."""
    p0, targets, weights = make_problem(dtype)
    params = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = make_opt(params)
    for i in range(n_steps):
        if lrs is not None:
            for g in opt.param_groups:
                g["lr"] = lrs[i]
        opt.zero_grad()
        lt_loss(params, targets, weights).backward()
        opt.step()
    return [p.detach().numpy().astype(np.float64) for p in params], opt


def run_np(update, n_steps, dtype=np.float64, lrs=None, **hyper):
    """The same problem with a numpy update(p, g, state, t, lr, **hyper) -> new p."""
    p0, targets, weights = make_problem(dtype)
    params = [p.astype(np.float64) for p in p0]
    states = [{} for _ in params]
    for i in range(n_steps):
        lr = hyper["lr"] if lrs is None else lrs[i]
        for j, (p, t, c) in enumerate(zip(params, targets, weights)):
            g = np_grad(p, t, c)
            params[j] = update(p, g, states[j], i + 1, {**hyper, "lr": lr})
    return params


# ----------------------------------------------------------------------------- references
def sgd_ref(p, g, s, t, h):
    """torch.optim.SGD's documented algorithm."""
    if h.get("maximize"):
        g = -g
    if h.get("weight_decay", 0):
        g = g + h["weight_decay"] * p
    mom = h.get("momentum", 0)
    if mom:
        if t == 1:
            s["b"] = g.copy()
        else:
            s["b"] = mom * s["b"] + (1 - h.get("dampening", 0)) * g
        g = g + mom * s["b"] if h.get("nesterov") else s["b"]
    return p - h["lr"] * g


def adam_ref(p, g, s, t, h, decoupled=False):
    """torch.optim.Adam's (and AdamW's) documented algorithm."""
    b1, b2 = h.get("betas", (0.9, 0.999))
    eps, wd = h.get("eps", 1e-8), h.get("weight_decay", 0)
    if h.get("maximize"):
        g = -g
    if wd:
        if decoupled:
            p = p - h["lr"] * wd * p
        else:
            g = g + wd * p
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    mhat = s["m"] / (1 - b1 ** t)
    if h.get("amsgrad"):
        s["vmax"] = np.maximum(s.get("vmax", 0), s["v"])
        vhat = s["vmax"] / (1 - b2 ** t)
    else:
        vhat = s["v"] / (1 - b2 ** t)
    return p - h["lr"] * mhat / (np.sqrt(vhat) + eps)


def adamw_ref(p, g, s, t, h):
    return adam_ref(p, g, s, t, {"weight_decay": 1e-2, **h}, decoupled=True)


def rmsprop_ref(p, g, s, t, h):
    """torch.optim.RMSprop's documented algorithm."""
    alpha, eps = h.get("alpha", 0.99), h.get("eps", 1e-8)
    if h.get("maximize"):
        g = -g
    if h.get("weight_decay", 0):
        g = g + h["weight_decay"] * p
    s["v"] = alpha * s.get("v", 0) + (1 - alpha) * g * g
    vt = s["v"]
    if h.get("centered"):
        s["ga"] = alpha * s.get("ga", 0) + (1 - alpha) * g
        vt = vt - s["ga"] ** 2
    mom = h.get("momentum", 0)
    if mom > 0:
        s["b"] = mom * s.get("b", 0) + g / (np.sqrt(vt) + eps)
        return p - h["lr"] * s["b"]
    return p - h["lr"] * g / (np.sqrt(vt) + eps)


def adagrad_ref(p, g, s, t, h):
    """torch.optim.Adagrad's documented algorithm."""
    eps = h.get("eps", 1e-10)
    if h.get("maximize"):
        g = -g
    if h.get("weight_decay", 0):
        g = g + h["weight_decay"] * p
    clr = h["lr"] / (1 + (t - 1) * h.get("lr_decay", 0))
    s["sum"] = s.get("sum", h.get("initial_accumulator_value", 0)) + g * g
    return p - clr * g / (np.sqrt(s["sum"]) + eps)


CASES = [
    (optim.SGD, sgd_ref, dict(lr=0.05)),
    (optim.SGD, sgd_ref, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, sgd_ref, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    (optim.SGD, sgd_ref, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    (optim.SGD, sgd_ref, dict(lr=0.01, momentum=0.5, maximize=True)),
    (optim.Adam, adam_ref, dict(lr=0.1)),
    (optim.Adam, adam_ref, dict(lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    (optim.Adam, adam_ref, dict(lr=0.1, amsgrad=True)),
    (optim.Adam, adam_ref, dict(lr=0.1, maximize=True, amsgrad=True)),
    (optim.AdamW, adamw_ref, dict(lr=0.1)),
    (optim.AdamW, adamw_ref, dict(lr=0.1, weight_decay=0.3, amsgrad=True)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.01)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.01, alpha=0.9, momentum=0.9, weight_decay=0.1)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.01, centered=True, momentum=0.5)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.01, centered=True, maximize=True)),
    (optim.Adagrad, adagrad_ref, dict(lr=0.1)),
    (optim.Adagrad, adagrad_ref, dict(lr=0.1, lr_decay=0.1, weight_decay=0.1,
                                      initial_accumulator_value=0.5)),
    (optim.Adagrad, adagrad_ref, dict(lr=0.1, eps=1e-3, maximize=True)),
]


def _id(case):
    cls, _, h = case
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in h.items())


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_update_matches_documented_formula(case, monkeypatch):
    # the graph is the same on both backends; the reference interpreter compiles nothing
    # (test_update_float32_both_backends and the torch parity run the C kernels)
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")
    cls, ref, hyper = case
    lrs = [hyper["lr"] * f for f in (1.0, 1.0, 0.5, 0.25, 2.0, 1.0)]
    got, _ = run_lt(lambda ps: cls(ps, **hyper), len(lrs), lrs=lrs)
    want = run_np(ref, len(lrs), lrs=lrs, **hyper)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", [CASES[3], CASES[8], CASES[13], CASES[16]],
                         ids=[_id(c) for c in (CASES[3], CASES[8], CASES[13], CASES[16])])
def test_update_float32_both_backends(case, backend):
    cls, ref, hyper = case
    got, opt = run_lt(lambda ps: cls(ps, **hyper), 4, dtype=np.float32)
    want = run_np(ref, 4, dtype=np.float32, **hyper)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)
    for st in opt.state.values():
        for k, v in st.items():
            if k != "step":
                assert v.dtype == torch.float32


# ----------------------------------------------------------------------------- one plan
def _train(opt, params, targets, weights, sched=None, n=5):
    history = []
    for _ in range(n):
        opt.zero_grad()
        lt_loss(params, targets, weights).backward()
        debug.reset_stats()
        opt.step()
        history.append(debug.stats())
        if sched is not None:
            sched.step()
    return history


MAKERS = [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
    lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
]


@pytest.mark.parametrize("make", MAKERS, ids=["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_step_is_one_realize_and_the_plan_is_reused(make, monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    p0, targets, weights = make_problem(np.float32, seed=1)
    params = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = make(params)
    # the lr changes every step: it is data, so the plan is the same
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    hist = _train(opt, params, targets, weights, sched)
    assert all(h["realizes"] == 1 for h in hist), hist   # forward + backward + update
    for h in hist[2:]:
        assert h["kernels_compiled"] == 0, hist
        assert h["plan_cache_hits"] == 1, hist
        assert h["kernels_launched"] == hist[1]["kernels_launched"]


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: optim.Adam(ps, lr=0.1)], ids=["SGD", "Adam"])
def test_one_cycle_momentum_is_data_too(make, monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    p0, targets, weights = make_problem(np.float32, seed=2)
    params = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = make(params)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=10)
    hist = _train(opt, params, targets, weights, sched, n=6)
    assert [h["kernels_compiled"] for h in hist[2:]] == [0] * 4
    assert [h["plan_cache_hits"] for h in hist[2:]] == [1] * 4


def test_update_fuses_into_few_kernels(monkeypatch):
    """Many parameters: kernels grow with the parameter count, never with hidden extras
    (one per parameter and state tensor, plus the shared per-step scalars)."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    params = [torch.randn(7, requires_grad=True) for _ in range(6)]
    opt = optim.Adam(params, lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        loss = None
        for p in params:
            term = p.square().sum()
            loss = term if loss is None else loss + term
        loss.backward()
        debug.reset_stats()
        opt.step()
    st = debug.stats()
    assert st["realizes"] == 1
    # 3 per parameter (exp_avg, exp_avg_sq, param), then one shared step counter and a few
    # one-element kernels for the per-step scalars (bias corrections, 1 - beta, ...), shared
    # by all parameters; plus the loss, which rides along with the step's realize (one
    # reduction per term here) so that loss.item() afterwards costs nothing; plus what live
    # tensors hold (lazytorch/engine/live.py): each p.grad, and the last `term`
    assert st["kernels_launched"] <= 3 * len(params) + 10 + len(params) + 1 + len(params) + 1, st


def test_step_counters_shared_and_values():
    params = [torch.randn(3, requires_grad=True) for _ in range(3)]
    opt = optim.Adam(params)
    for _ in range(3):
        opt.zero_grad()
        (params[0].sum() + params[1].sum() + params[2].sum()).backward()
        opt.step()
    steps = [opt.state[p]["step"] for p in params]
    assert all(s.item() == 3.0 and s.dtype == torch.float32 and s.ndim == 0 for s in steps)
    assert steps[0] is not steps[1]


def test_param_without_grad_is_skipped():
    a = torch.randn(3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    b0 = b.detach().numpy().copy()
    opt = optim.Adam([a, b], lr=0.1)
    a.sum().backward()
    opt.step()
    np.testing.assert_array_equal(b.detach().numpy(), b0)
    assert len(opt.state[b]) == 0 and opt.state[a]["step"].item() == 1


# ----------------------------------------------------------------------------- API
def test_param_groups_and_defaults():
    a = torch.randn(2, requires_grad=True)
    b = torch.randn(2, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["params"][0] is b
    assert opt.param_groups[0]["momentum"] == 0.9
    assert opt.defaults["lr"] == 0.1
    a0, b0 = a.detach().numpy().copy(), b.detach().numpy().copy()
    (a.sum() + b.sum()).backward()
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), a0 - 0.1, rtol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), b0 - 0.5, rtol=1e-6)
    c = torch.randn(2, requires_grad=True)
    opt.add_param_group({"params": [c], "lr": 0.01})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["momentum"] == 0.9


def test_named_parameters_are_accepted():
    a = torch.randn(2, requires_grad=True)
    opt = optim.Adam([("w", a)])
    assert opt.param_groups[0]["param_names"] == ["w"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w"]


def test_errors():
    a = torch.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the "
                                        "params is int"):
        optim.SGD([a, 3], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([a * 2], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.Adam([a], lr=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        optim.Adam([a], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid momentum value: -0.5"):
        optim.SGD([a], momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero "
                                         "dampening"):
        optim.SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid epsilon value"):
        optim.RMSprop([a], eps=-1.0)
    with pytest.raises(ValueError, match="Invalid lr_decay value"):
        optim.Adagrad([a], lr_decay=-1.0)
    opt = optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter "
                                         "group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="organized in ordered collections"):
        opt.add_param_group({"params": {torch.randn(2, requires_grad=True)}})
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="required optimization parameter lr"):
        class NoDefault(optim.Optimizer):
            pass
        NoDefault([a], {"lr": optim.optimizer.required})


def test_zero_grad():
    a = torch.randn(3, requires_grad=True)
    opt = optim.SGD([a], lr=0.1)
    a.sum().backward()
    opt.zero_grad()
    assert a.grad is None
    (a * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.numpy(), np.zeros(3, np.float32))
    (a * 3).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full(3, 3, np.float32))


def test_closure_and_hooks():
    a = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([a], lr=0.25)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, args, kw: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kw: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = a.square().sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_allclose(a.detach().numpy(), [0.5, -1.0])
    assert calls == ["pre", "post"]
    h1.remove()
    opt.step(closure)
    assert calls == ["pre", "post", "post"]


def test_repr():
    a = torch.randn(2, requires_grad=True)
    r = repr(optim.SGD([a], lr=0.1))
    assert r.startswith("SGD (\nParameter Group 0\n    dampening: 0\n")
    assert "    lr: 0.1\n" in r and r.endswith(")")


# ----------------------------------------------------------------------------- state dicts
def test_state_dict_layout():
    a = torch.randn(2, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    c = torch.randn(1, requires_grad=True)
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1)
    (a.sum() + b.sum() + c.sum()).backward()
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == [0, 1, 2]
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][0]["exp_avg"].shape == (2, 3)
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert set(sd["param_groups"][0]) == {
        "lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable",
        "differentiable", "fused", "decoupled_weight_decay", "params"}


def _snapshot(obj):
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_snapshot(v) for v in obj]
    return obj


def test_state_dict_holds_references():
    a = torch.randn(3, requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    for i in range(2):
        a.sum().backward()
        opt.step()
        if i == 0:
            sd = opt.state_dict()
    assert sd["state"][0]["momentum_buffer"] is opt.state[a]["momentum_buffer"]
    np.testing.assert_allclose(sd["state"][0]["momentum_buffer"].numpy(), np.full(3, 2.9),
                               rtol=1e-6)


@pytest.mark.parametrize("make", MAKERS, ids=["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_load_state_dict_resumes_exactly(make, monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")
    p0, targets, weights = make_problem(np.float64, seed=3)
    ref = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = make(ref)
    for _ in range(3):
        opt.zero_grad()
        lt_loss(ref, targets, weights).backward()
        opt.step()
    sd = _snapshot(opt.state_dict())   # state_dict() holds references, as in PyTorch
    snapshot = [p.detach().numpy().copy() for p in ref]
    for _ in range(2):
        opt.zero_grad()
        lt_loss(ref, targets, weights).backward()
        opt.step()
    # a fresh optimizer over copies of the weights after step 3, loaded from sd
    params = [torch.tensor(s, requires_grad=True) for s in snapshot]
    opt2 = make(params)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["params"][0] is params[0]
    for _ in range(2):
        opt2.zero_grad()
        lt_loss(params, targets, weights).backward()
        opt2.step()
    for a, b in zip(ref, params):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_load_state_dict_casts_and_does_not_share():
    a = torch.randn(3, requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    a.sum().backward()
    opt.step()
    sd = opt.state_dict()
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    opt2 = optim.SGD([b], lr=0.3, momentum=0.9)
    opt2.load_state_dict(sd)
    buf = opt2.state[b]["momentum_buffer"]
    assert buf.dtype == torch.float64
    assert opt2.param_groups[0]["lr"] == 0.1
    b.sum().backward()
    opt2.step()
    np.testing.assert_allclose(sd["state"][0]["momentum_buffer"].numpy(), np.ones(3))


def test_load_state_dict_errors():
    a, b = torch.randn(2, requires_grad=True), torch.randn(2, requires_grad=True)
    sd = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)


# ----------------------------------------------------------------------------- torch parity
TORCH_CASES = [("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
               ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, maximize=True)),
               ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.01)),
               ("AdamW", dict(lr=0.05)),
               ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
               ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1))]


@pytest.mark.parametrize("name,hyper", TORCH_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(TORCH_CASES)])
def test_torch_parity_20_steps(name, hyper):
    real = pytest.importorskip("torch")
    p0, targets, weights = make_problem(np.float32, seed=4)
    lt_params = [torch.tensor(p, requires_grad=True) for p in p0]
    th_params = [real.tensor(p, requires_grad=True) for p in p0]
    lt_opt = getattr(optim, name)(lt_params, **hyper)
    th_opt = getattr(real.optim, name)(th_params, **hyper)
    lt_s = optim.lr_scheduler.CosineAnnealingLR(lt_opt, T_max=10)
    th_s = real.optim.lr_scheduler.CosineAnnealingLR(th_opt, T_max=10)
    for _ in range(20):
        lt_opt.zero_grad()
        th_opt.zero_grad()
        lt_loss(lt_params, targets, weights).backward()
        sum((real.tensor(c) * (p - real.tensor(t)).square()).sum()
            for p, t, c in zip(th_params, targets, weights)).backward()
        lt_opt.step()
        th_opt.step()
        lt_s.step()
        th_s.step()
    for a, b in zip(lt_params, th_params):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    lt_sd, th_sd = lt_opt.state_dict(), th_opt.state_dict()
    assert set(lt_sd["param_groups"][0]) == set(th_sd["param_groups"][0])
    assert set(lt_sd["state"][0]) == set(th_sd["state"][0])
    for k, v in th_sd["state"][0].items():
        np.testing.assert_allclose(lt_sd["state"][0][k].numpy(), v.numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_lr_as_tensor(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([a], lr=torch.tensor(0.5))
    a.sum().backward()
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), [0.5, 1.5])
    assert not math.isnan(float(opt.param_groups[0]["lr"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched = optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    for i in range(4):   # the scheduler fill_()s the lr tensor: still no recompilation
        opt.zero_grad()
        a.square().sum().backward()
        debug.reset_stats()
        opt.step()
        sched.step()
        if i >= 2:
            assert debug.stats()["kernels_compiled"] == 0
    assert opt.param_groups[0]["lr"].item() == 0.5 ** 5
