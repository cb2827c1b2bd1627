"""Learning-rate schedulers against closed-form formulas written here, and against PyTorch's
schedulers when torch is importable. No kernels run: schedulers only write param groups."""
from __future__ import annotations

import math
import warnings

import pytest

import lazytorch as torch
import lazytorch.optim as optim
from lazytorch.optim import lr_scheduler as sched


def make_opt(cls=optim.SGD, lrs=(0.1,), **kw):
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return cls(groups, **kw)


def lrs_over(s, opt, n, key="lr"):
    """The lr of group 0 before each of n epochs (after the scheduler's step each time)."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n):
            out.append(opt.param_groups[0][key])
            opt.step()
            s.step()
    return out


def close(a, b):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-15), (i, x, y)


def test_step_lr():
    opt = make_opt()
    s = sched.StepLR(opt, step_size=3, gamma=0.5)
    close(lrs_over(s, opt, 10), [0.1 * 0.5 ** (e // 3) for e in range(10)])
    assert s.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_multistep_lr():
    opt = make_opt()
    s = sched.MultiStepLR(opt, milestones=[2, 5, 5, 7], gamma=0.1)
    want = [0.1 * 0.1 ** sum(e >= m for m in (2, 5, 5, 7)) for e in range(10)]
    close(lrs_over(s, opt, 10), want)


def test_exponential_lr():
    opt = make_opt()
    s = sched.ExponentialLR(opt, gamma=0.9)
    close(lrs_over(s, opt, 8), [0.1 * 0.9 ** e for e in range(8)])


def test_cosine_annealing_lr():
    opt = make_opt()
    s = sched.CosineAnnealingLR(opt, T_max=6, eta_min=0.01)
    want = [0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(7)]
    close(lrs_over(s, opt, 7), want)


def test_lambda_lr_per_group():
    opt = make_opt(lrs=(0.1, 1.0))
    s = sched.LambdaLR(opt, [lambda e: 0.5 ** e, lambda e: 1 / (e + 1)])
    got0, got1 = [], []
    for _ in range(5):
        got0.append(opt.param_groups[0]["lr"])
        got1.append(opt.param_groups[1]["lr"])
        opt.step()
        s.step()
    close(got0, [0.1 * 0.5 ** e for e in range(5)])
    close(got1, [1.0 / (e + 1) for e in range(5)])
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        sched.LambdaLR(opt, [lambda e: 1.0])


def _one_cycle_ref(step, total, max_lr, pct=0.3, div=25.0, final_div=1e4, strategy="cos",
                   three_phase=False, base_m=0.85, max_m=0.95):
    """OneCycleLR's documented schedule: (lr, momentum) at `step`."""
    init, lo = max_lr / div, max_lr / div / final_div

    def anneal(a, b, p):
        if strategy == "cos":
            return b + (a - b) / 2 * (math.cos(math.pi * p) + 1)
        return (b - a) * p + a

    if three_phase:
        ends = [pct * total - 1, 2 * pct * total - 2, total - 1]
        phases = [(init, max_lr, max_m, base_m), (max_lr, init, base_m, max_m),
                  (init, lo, max_m, max_m)]
    else:
        ends = [pct * total - 1, total - 1]
        phases = [(init, max_lr, max_m, base_m), (max_lr, lo, base_m, max_m)]
    start = 0.0
    for i, (end, (l0, l1, m0, m1)) in enumerate(zip(ends, phases)):
        if step <= end or i == len(ends) - 1:
            p = (step - start) / (end - start)
            return anneal(l0, l1, p), anneal(m0, m1, p)
        start = end


@pytest.mark.parametrize("strategy,three", [("cos", False), ("linear", False), ("cos", True),
                                            ("linear", True)])
def test_one_cycle_lr(strategy, three):
    opt = make_opt(momentum=0.9)
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=20, anneal_strategy=strategy,
                         three_phase=three)
    lrs, moms = [], []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        if len(lrs) < 20:
            s.step()
    ref = [_one_cycle_ref(i, 20, 1.0, strategy=strategy, three_phase=three) for i in range(20)]
    close(lrs, [r[0] for r in ref])
    close(moms, [r[1] for r in ref])
    s.step()        # step 20 == total_steps is allowed (as in PyTorch), 21 is not
    with pytest.raises(ValueError, match="Tried to step 21 times"):
        s.step()


def test_one_cycle_cycles_adam_beta1():
    opt = make_opt(optim.Adam)
    s = sched.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=5)
    assert opt.param_groups[0]["betas"] == (0.95, 0.999)
    opt.step()
    s.step()
    b1 = opt.param_groups[0]["betas"][0]
    assert math.isclose(b1, _one_cycle_ref(1, 10, 0.1)[1])
    with pytest.raises(ValueError, match="You must define either total_steps OR"):
        sched.OneCycleLR(opt, max_lr=0.1)


def test_reduce_lr_on_plateau():
    opt = make_opt(lrs=(1.0,))
    s = sched.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, cooldown=1,
                                min_lr=0.1)
    metrics = [10] + [9] * 21
    got = []
    for m in metrics:
        s.step(m)
        got.append(opt.param_groups[0]["lr"])
    # reference: the documented rule, simulated here
    lr, best, bad, cool, want = 1.0, math.inf, 0, 0, []
    for m in metrics:
        if m < best * (1 - 1e-4):
            best, bad = m, 0
        else:
            bad += 1
        if cool > 0:
            cool -= 1
            bad = 0
        if bad > 2:
            new = max(lr * 0.5, 0.1)
            if lr - new > 1e-8:
                lr = new
            cool, bad = 1, 0
        want.append(lr)
    close(got, want)
    assert got[-1] == 0.1 and s.get_last_lr() == [0.1]


def test_reduce_lr_on_plateau_max_abs():
    opt = make_opt(lrs=(1.0,))
    s = sched.ReduceLROnPlateau(opt, mode="max", threshold=0.5, threshold_mode="abs",
                                patience=0)
    s.step(1.0)
    s.step(1.4)     # not better by 0.5: reduce
    assert math.isclose(opt.param_groups[0]["lr"], 0.1)
    s.step(2.0)     # better
    assert math.isclose(opt.param_groups[0]["lr"], 0.1)
    with pytest.raises(ValueError, match="Factor should be < 1.0."):
        sched.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode avg is unknown!"):
        sched.ReduceLROnPlateau(opt, mode="avg")


def test_state_dict_round_trip():
    opt = make_opt()
    s = sched.StepLR(opt, step_size=2, gamma=0.5)
    lrs_over(s, opt, 3)
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 3 and sd["step_size"] == 2
    opt2 = make_opt()
    s2 = sched.StepLR(opt2, step_size=2, gamma=0.5)
    s2.load_state_dict(sd)
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    assert lrs_over(s2, opt2, 4) == lrs_over(s, opt, 4)


def test_lambda_state_dict_skips_functions():
    class Scale:
        def __init__(self):
            self.k = 2.0

        def __call__(self, e):
            return self.k * e

    opt = make_opt(lrs=(0.1, 0.2))
    s = sched.LambdaLR(opt, [lambda e: 1.0, Scale()])
    sd = s.state_dict()
    assert sd["lr_lambdas"] == [None, {"k": 2.0}]


def test_warning_when_stepped_before_optimizer():
    opt = make_opt()
    s = sched.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        s.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt2 = make_opt()
        s2 = sched.StepLR(opt2, step_size=2)
        opt2.step()
        s2.step()


def test_initial_lr_and_resume_errors():
    opt = make_opt()
    sched.ExponentialLR(opt, gamma=0.5)
    assert opt.param_groups[0]["initial_lr"] == 0.1
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified"):
        sched.ExponentialLR(make_opt(), gamma=0.5, last_epoch=3)
    with pytest.raises(TypeError, match="int is not an Optimizer"):
        sched.StepLR(3, step_size=1)


@pytest.mark.parametrize("name,kw,extra", [
    ("StepLR", dict(step_size=3, gamma=0.3), {}),
    ("MultiStepLR", dict(milestones=[2, 4, 4], gamma=0.5), {}),
    ("ExponentialLR", dict(gamma=0.8), {}),
    ("CosineAnnealingLR", dict(T_max=4, eta_min=0.001), {}),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=13, three_phase=True), {}),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=13, anneal_strategy="linear"), {}),
])
def test_torch_parity(name, kw, extra):
    real = pytest.importorskip("torch")
    lt_opt = make_opt(momentum=0.9)
    th_opt = real.optim.SGD([real.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    lt_s = getattr(sched, name)(lt_opt, **kw)
    th_s = getattr(real.optim.lr_scheduler, name)(th_opt, **kw)
    for _ in range(12):
        assert math.isclose(lt_opt.param_groups[0]["lr"], th_opt.param_groups[0]["lr"],
                            rel_tol=1e-12, abs_tol=1e-15)
        assert math.isclose(lt_opt.param_groups[0]["momentum"],
                            th_opt.param_groups[0]["momentum"], rel_tol=1e-12)
        lt_opt.step()
        th_opt.step()
        lt_s.step()
        th_s.step()
    assert set(lt_s.state_dict()) == set(th_s.state_dict())


def test_torch_parity_plateau():
    real = pytest.importorskip("torch")
    lt_opt = make_opt(lrs=(1.0,))
    th_opt = real.optim.SGD([real.zeros(2, requires_grad=True)], lr=1.0)
    kw = dict(mode="max", factor=0.3, patience=1, threshold=0.01, cooldown=2, min_lr=0.01)
    lt_s, th_s = sched.ReduceLROnPlateau(lt_opt, **kw), \
        real.optim.lr_scheduler.ReduceLROnPlateau(th_opt, **kw)
    for m in [1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3]:
        lt_s.step(m)
        th_s.step(m)
        assert math.isclose(lt_opt.param_groups[0]["lr"], th_opt.param_groups[0]["lr"])
    assert set(lt_s.state_dict()) == set(th_s.state_dict())
