"""Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop and LBFGS: against numpy implementations of
PyTorch's documented update rules written here, the one-plan step (nothing compiles after the
second step), state-dict round trips, and PyTorch parity (parameters and state after 20 steps)
when torch is importable. LBFGS is checked against the exact minimizer of a quadratic and
against PyTorch's LBFGS with and without the strong-Wolfe line search."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.optim as optim
from lazytorch import debug
from tests.test_optim import _snapshot, _train, lt_loss, make_problem, run_lt, run_np


# ----------------------------------------------------------------------------- references
def _grad(g, p, h):
    if h.get("maximize"):
        g = -g
    return g + h.get("weight_decay", 0) * p


def adadelta_ref(p, g, s, t, h):
    """torch.optim.Adadelta's documented algorithm."""
    rho, eps = h.get("rho", 0.9), h.get("eps", 1e-6)
    g = _grad(g, p, h)
    s["v"] = rho * s.get("v", 0) + (1 - rho) * g * g
    dx = np.sqrt(s.get("u", 0) + eps) / np.sqrt(s["v"] + eps) * g
    s["u"] = rho * s.get("u", 0) + (1 - rho) * dx * dx
    return p - h["lr"] * dx


def adamax_ref(p, g, s, t, h):
    """torch.optim.Adamax's documented algorithm."""
    b1, b2 = h.get("betas", (0.9, 0.999))
    eps = h.get("eps", 1e-8)
    g = _grad(g, p, h)
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["u"] = np.maximum(b2 * s.get("u", 0), np.abs(g) + eps)
    return p - h["lr"] / (1 - b1 ** t) * s["m"] / s["u"]


def _decay(p, g, h):
    """(p, g) after weight decay: decoupled (p *= 1 - lr wd) or L2 (g += wd p)."""
    if h.get("maximize"):
        g = -g
    wd = h.get("weight_decay", 0)
    if h.get("decoupled_weight_decay"):
        return p * (1 - h["lr"] * wd), g
    return p, g + wd * p


def nadam_ref(p, g, s, t, h):
    """torch.optim.NAdam's documented algorithm."""
    b1, b2 = h.get("betas", (0.9, 0.999))
    eps, psi = h.get("eps", 1e-8), h.get("momentum_decay", 4e-3)
    p, g = _decay(p, g, h)
    mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
    # the product is float32 state in PyTorch, whatever the parameters' dtype
    s["prod"] = float(np.float32(s.get("prod", 1.0)) * np.float32(mu))
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    denom = np.sqrt(s["v"] / (1 - b2 ** t)) + eps
    return (p - h["lr"] * (1 - mu) / (1 - s["prod"]) * g / denom
            - h["lr"] * mu_next / (1 - s["prod"] * mu_next) * s["m"] / denom)


def radam_ref(p, g, s, t, h):
    """torch.optim.RAdam's documented algorithm."""
    b1, b2 = h.get("betas", (0.9, 0.999))
    eps = h.get("eps", 1e-8)
    p, g = _decay(p, g, h)
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    mh = s["m"] / (1 - b1 ** t)
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho_t > 5:
        r = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return p - h["lr"] * mh * r * np.sqrt(1 - b2 ** t) / (np.sqrt(s["v"]) + eps)
    return p - h["lr"] * mh


def asgd_ref(p, g, s, t, h):
    """torch.optim.ASGD's documented algorithm (eta starts at the first step's lr)."""
    lambd, alpha, t0 = h.get("lambd", 1e-4), h.get("alpha", 0.75), h.get("t0", 1e6)
    g = _grad(g, p, h)
    # eta and mu are float32 state in PyTorch, whatever the parameters' dtype
    eta, mu = (float(np.float32(v)) for v in (s.get("eta", h["lr"]), s.get("mu", 1.0)))
    p = p * (1 - lambd * eta) - eta * g
    s["ax"] = p.copy() if mu == 1 else s["ax"] + mu * (p - s["ax"])
    s["eta"] = h["lr"] / (1 + lambd * h["lr"] * t) ** alpha
    s["mu"] = 1 / max(1, t - t0)
    return p


def rprop_ref(p, g, s, t, h):
    """torch.optim.Rprop's documented algorithm (step sizes start at the first step's lr)."""
    etaminus, etaplus = h.get("etas", (0.5, 1.2))
    lo, hi = h.get("step_sizes", (1e-6, 50))
    if h.get("maximize"):
        g = -g
    prod = g * s.get("prev", 0)
    factor = np.where(prod > 0, etaplus, np.where(prod < 0, etaminus, 1.0))
    s["step"] = np.clip(s.get("step", np.full_like(p, h["lr"])) * factor, lo, hi)
    g = np.where(prod < 0, 0.0, g)
    s["prev"] = g
    return p - np.sign(g) * s["step"]


CASES = [
    (optim.Adadelta, adadelta_ref, dict(lr=1.0)),
    (optim.Adadelta, adadelta_ref, dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1)),
    (optim.Adadelta, adadelta_ref, dict(lr=1.0, maximize=True)),
    (optim.Adamax, adamax_ref, dict(lr=0.1)),
    (optim.Adamax, adamax_ref, dict(lr=0.1, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1)),
    (optim.Adamax, adamax_ref, dict(lr=0.1, maximize=True)),
    (optim.NAdam, nadam_ref, dict(lr=0.1)),
    (optim.NAdam, nadam_ref, dict(lr=0.1, betas=(0.8, 0.9), momentum_decay=0.1,
                                  weight_decay=0.1)),
    (optim.NAdam, nadam_ref, dict(lr=0.1, weight_decay=0.2, decoupled_weight_decay=True,
                                  maximize=True)),
    (optim.RAdam, radam_ref, dict(lr=0.1)),
    # beta2 = 0.8: rho_t passes 5 at the 7th step, so both branches run
    (optim.RAdam, radam_ref, dict(lr=0.1, betas=(0.8, 0.8), weight_decay=0.1)),
    (optim.RAdam, radam_ref, dict(lr=0.1, betas=(0.9, 0.8), weight_decay=0.2,
                                  decoupled_weight_decay=True, maximize=True)),
    (optim.ASGD, asgd_ref, dict(lr=0.1)),
    (optim.ASGD, asgd_ref, dict(lr=0.1, lambd=0.05, alpha=0.5, t0=2, weight_decay=0.1)),
    (optim.Rprop, rprop_ref, dict(lr=0.1)),
    (optim.Rprop, rprop_ref, dict(lr=0.1, etas=(0.3, 1.5), step_sizes=(0.01, 0.2),
                                  maximize=True)),
]


def _id(case):
    cls, _, h = case
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in h.items())


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_update_matches_documented_formula(case, monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")
    cls, ref, hyper = case
    lrs = [hyper["lr"] * f for f in (1.0, 1.0, 0.5, 0.25, 2.0, 1.0, 1.0, 0.5)]
    got, _ = run_lt(lambda ps: cls(ps, **hyper), len(lrs), lrs=lrs)
    want = run_np(ref, len(lrs), lrs=lrs, **hyper)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_radam_takes_both_branches():
    """The cases above with beta2 = 0.8 cross rho_t = 5 within their 8 steps (so the select
    in the graph is exercised both ways)."""
    b2 = 0.8
    rho_inf = 2 / (1 - b2) - 1
    rho = [rho_inf - 2 * t * b2 ** t / (1 - b2 ** t) for t in range(1, 9)]
    assert min(rho) <= 5 < max(rho)


MAKERS = {
    "Adadelta": lambda ps: optim.Adadelta(ps, lr=1.0, weight_decay=0.01),
    "Adamax": lambda ps: optim.Adamax(ps, lr=0.1),
    "NAdam": lambda ps: optim.NAdam(ps, lr=0.1, weight_decay=0.1,
                                    decoupled_weight_decay=True),
    "RAdam": lambda ps: optim.RAdam(ps, lr=0.1, betas=(0.9, 0.8)),
    "ASGD": lambda ps: optim.ASGD(ps, lr=0.1, t0=2),
    "Rprop": lambda ps: optim.Rprop(ps, lr=0.1),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_step_is_one_realize_and_the_plan_is_reused(name, monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    p0, targets, weights = make_problem(np.float32, seed=1)
    params = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = MAKERS[name](params)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)   # the lr is data
    hist = _train(opt, params, targets, weights, sched, n=6)
    assert all(h["realizes"] == 1 for h in hist), hist
    for h in hist[2:]:
        assert h["kernels_compiled"] == 0, hist
        assert h["plan_cache_hits"] == 1, hist


@pytest.mark.parametrize("name", list(MAKERS))
def test_load_state_dict_resumes_exactly(name, monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")
    make = MAKERS[name]
    # float32: loading casts state to the parameter's dtype (PyTorch's rule), so float32
    # state such as NAdam's mu_product would turn float64 beside float64 parameters
    p0, targets, weights = make_problem(np.float32, seed=3)
    ref = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = make(ref)
    for _ in range(3):
        opt.zero_grad()
        lt_loss(ref, targets, weights).backward()
        opt.step()
    sd = _snapshot(opt.state_dict())
    snapshot = [p.detach().numpy().copy() for p in ref]
    for _ in range(2):
        opt.zero_grad()
        lt_loss(ref, targets, weights).backward()
        opt.step()
    params = [torch.tensor(s, requires_grad=True) for s in snapshot]
    opt2 = make(params)
    opt2.load_state_dict(sd)
    for _ in range(2):
        opt2.zero_grad()
        lt_loss(params, targets, weights).backward()
        opt2.step()
    for a, b in zip(ref, params):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_errors():
    a = torch.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid rho value: 1.5"):
        optim.Adadelta([a], rho=1.5)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.0"):
        optim.Adamax([a], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="Invalid momentum_decay value: -1"):
        optim.NAdam([a], momentum_decay=-1)
    with pytest.raises(ValueError, match="Invalid epsilon value: -1"):
        optim.RAdam([a], eps=-1)
    with pytest.raises(ValueError, match="Invalid weight_decay value: -1"):
        optim.ASGD([a], weight_decay=-1)
    with pytest.raises(ValueError, match="Invalid eta values: 1.5, 2"):
        optim.Rprop([a], etas=(1.5, 2))
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.LBFGS([a], lr=-1)
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        optim.LBFGS([{"params": [a]}, {"params": [torch.randn(2, requires_grad=True)]}])
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt = optim.LBFGS([a], line_search_fn="armijo")

        def closure():
            opt.zero_grad()
            loss = a.square().sum()
            loss.backward()
            return loss
        opt.step(closure)


# ----------------------------------------------------------------------------- torch parity
TORCH_CASES = [("Adadelta", dict(lr=1.0, weight_decay=0.1)),
               ("Adamax", dict(lr=0.05, weight_decay=0.01)),
               ("NAdam", dict(lr=0.05)),
               ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
               ("RAdam", dict(lr=0.05, weight_decay=0.01)),
               ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
               ("ASGD", dict(lr=0.05, t0=5, lambd=1e-2)),
               ("Rprop", dict(lr=0.05, maximize=True))]


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
        assert lt_sd["state"][0][k].dtype.name == str(v.dtype).replace("torch.", ""), k
        np.testing.assert_allclose(lt_sd["state"][0][k].numpy(), v.numpy(), rtol=1e-5,
                                   atol=1e-6)


# ----------------------------------------------------------------------------- LBFGS
def _lbfgs_problem(lib, dtype=np.float64):
    """A small nonlinear least-squares problem in two parameters (lib: lazytorch or torch)."""
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((6, 4)), rng.standard_normal(6)
    w = lib.tensor(rng.standard_normal(4).astype(dtype), requires_grad=True)
    c = lib.tensor(np.array([0.3], dtype), requires_grad=True)
    At, bt = lib.tensor(A.astype(dtype)), lib.tensor(b.astype(dtype))

    def loss_fn():
        r = (At @ w + c).tanh() - bt
        return (r * r).sum() + 0.1 * (w ** 4).sum()
    return [w, c], loss_fn


def _run_lbfgs(lib, cls, kw, steps=3, dtype=np.float64):
    params, loss_fn = _lbfgs_problem(lib, dtype)
    opt = cls(params, **kw)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss
    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    st = opt.state[params[0]]
    return [p.detach().numpy() for p in params], losses, (st["func_evals"], st["n_iter"])


LBFGS_CASES = [dict(lr=0.5, max_iter=10),
               dict(lr=1, max_iter=20, line_search_fn="strong_wolfe"),
               dict(lr=1, max_iter=15, history_size=3, line_search_fn="strong_wolfe")]


@pytest.mark.parametrize("kw", LBFGS_CASES, ids=["fixed", "wolfe", "wolfe-history3"])
def test_lbfgs_torch_parity(kw, monkeypatch):
    real = pytest.importorskip("torch")
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")
    got = _run_lbfgs(torch, optim.LBFGS, kw)
    want = _run_lbfgs(real, real.optim.LBFGS, kw)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10)
    assert got[2] == want[2]   # function evaluations and iterations


def test_lbfgs_float32_torch_parity():
    real = pytest.importorskip("torch")
    kw = dict(lr=1, max_iter=10, line_search_fn="strong_wolfe")
    got = _run_lbfgs(torch, optim.LBFGS, kw, steps=1, dtype=np.float32)
    want = _run_lbfgs(real, real.optim.LBFGS, kw, steps=1, dtype=np.float32)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_lbfgs_minimizes_a_quadratic_exactly(line_search, monkeypatch):
    """On a convex quadratic, L-BFGS reaches the minimizer that numpy's solve gives."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")
    rng = np.random.default_rng(5)
    M = rng.standard_normal((5, 5))
    H = M @ M.T + 5 * np.eye(5)
    b = rng.standard_normal(5)
    x = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    Ht, bt = torch.tensor(H), torch.tensor(b)
    opt = optim.LBFGS([x], lr=1, max_iter=100,
                      line_search_fn=line_search, tolerance_grad=1e-12,
                      tolerance_change=1e-14)
    calls = []

    def closure():
        opt.zero_grad()
        loss = 0.5 * (x @ (Ht @ x)) - bt @ x
        loss.backward()
        calls.append(1)
        return loss
    opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), np.linalg.solve(H, b), rtol=1e-7, atol=1e-9)
    assert len(calls) == opt.state[x]["func_evals"]


def test_lbfgs_stops_at_a_zero_gradient_and_returns_the_first_loss():
    x = torch.tensor([1.0, -1.0], requires_grad=True)
    opt = optim.LBFGS([x])

    def closure():
        opt.zero_grad()
        loss = (x * 0).sum() + 3.0
        loss.backward()
        return loss
    assert opt.step(closure).item() == 3.0
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, -1.0])
    assert opt.state[x]["n_iter"] == 0


def test_lbfgs_replays_its_plans(monkeypatch):
    """After the first steps, iterations compile nothing: every realize repeats a structure
    (the two-loop recursion realizes one history entry at a time)."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    params, loss_fn = _lbfgs_problem(torch, np.float32)
    opt = optim.LBFGS(params, lr=1, max_iter=6, history_size=4, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss
    for _ in range(3):
        opt.step(closure)
    debug.reset_stats()
    opt.step(closure)
    assert debug.stats()["kernels_compiled"] == 0, debug.stats()


@pytest.mark.parametrize("name,want", [
    ("SGD", {"nesterov": False, "maximize": False, "foreach": None, "fused": False}),
    ("Adam", {"amsgrad": False, "maximize": False, "decoupled_weight_decay": False}),
    ("AdamW", {"decoupled_weight_decay": True}),
    ("RMSprop", {"momentum": 0, "centered": False, "capturable": False}),
    ("Adagrad", {"maximize": False, "fused": None}),
    ("Adadelta", {"maximize": False, "capturable": False}),
    ("Adamax", {"maximize": False, "capturable": False}),
    ("NAdam", {"decoupled_weight_decay": False, "capturable": False}),
    ("RAdam", {"decoupled_weight_decay": False, "differentiable": False}),
    ("ASGD", {"maximize": False, "foreach": None}),
    ("Rprop", {"maximize": False, "capturable": False}),
])
def test_state_saved_without_newer_options_loads_with_their_defaults(name, want):
    """A state dict from an older version lacks newer group options: loading gives each its
    PyTorch default (each optimizer's __setstate__ in PyTorch), and stepping works."""
    w = torch.nn.Parameter(torch.ones(3))
    opt = getattr(torch.optim, name)([w], lr=0.1)
    sd = opt.state_dict()
    for k in want:
        sd["param_groups"][0].pop(k, None)
    other = getattr(torch.optim, name)([w], lr=0.1)
    other.load_state_dict(sd)
    assert {k: other.param_groups[0][k] for k in want} == want
    (w * w).sum().backward()
    other.step()
    assert w.detach().numpy().tolist() != [1.0, 1.0, 1.0]
