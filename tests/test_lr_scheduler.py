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


# ----------------------------------------------------------------------------- more schedules
def test_multiplicative_lr():
    opt = make_opt(lrs=(0.1, 1.0))
    s = sched.MultiplicativeLR(opt, [lambda e: 0.9, lambda e: 1.0 - 0.01 * e])
    got0, got1 = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(50):
            got0.append(opt.param_groups[0]["lr"])
            got1.append(opt.param_groups[1]["lr"])
            opt.step()
            s.step()
    close(got0, [0.1 * 0.9 ** e for e in range(50)])
    close(got1, [math.prod(1.0 - 0.01 * k for k in range(1, e + 1)) for e in range(50)])
    with pytest.raises(TypeError, match="lr_lambda should be a function, but got float"):
        sched.MultiplicativeLR(make_opt(), 0.9)


def test_constant_lr():
    opt = make_opt()
    s = sched.ConstantLR(opt, factor=0.25, total_iters=7)
    close(lrs_over(s, opt, 50), [0.1 * (0.25 if e < 7 else 1.0) for e in range(50)])
    with pytest.raises(ValueError, match="Constant multiplicative factor expected to be "
                                         "between 0 and 1."):
        sched.ConstantLR(make_opt(), factor=1.5)


def test_linear_lr():
    opt = make_opt()
    s = sched.LinearLR(opt, start_factor=0.1, end_factor=0.6, total_iters=20)
    want = [0.1 * (0.1 + 0.5 * min(e, 20) / 20) for e in range(50)]
    close(lrs_over(s, opt, 50), want)
    with pytest.raises(ValueError, match="Starting multiplicative factor expected"):
        sched.LinearLR(make_opt(), start_factor=0)
    with pytest.raises(ValueError, match="Ending multiplicative factor expected"):
        sched.LinearLR(make_opt(), end_factor=1.5)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_polynomial_lr(power):
    opt = make_opt()
    s = sched.PolynomialLR(opt, total_iters=30, power=power)
    got = lrs_over(s, opt, 50)
    want = [0.1 * (1 - min(e, 30) / 30) ** power for e in range(50)]
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15) for a, b in zip(got, want))


def _cyclic_ref(it, base, high, up, down, mode, gamma=1.0):
    """The lr at iteration `it` of a triangular cycle (Smith, 2017) of height high - base."""
    total = up + down
    cycle = math.floor(1 + it / total)
    pos = it - (cycle - 1) * total          # position inside the cycle
    frac = pos / up if pos <= up else (total - pos) / down
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1),
             "exp_range": gamma ** it}[mode]
    return base + (high - base) * frac * scale


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr(mode):
    opt = make_opt(momentum=0.9)
    s = sched.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=6,
                       mode=mode, gamma=0.97)
    moms = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = []
        for _ in range(50):
            got.append(opt.param_groups[0]["lr"])
            moms.append(opt.param_groups[0]["momentum"])
            opt.step()
            s.step()
    want = [_cyclic_ref(i, 0.01, 0.1, 4, 6, mode, 0.97) for i in range(50)]
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(got, want))
    # momentum moves against the lr: max_momentum - (lr - base_lr) scaled to 0.8..0.9
    want_m = [0.9 - (w - 0.01) / 0.09 * 0.1 for w in want]
    assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(moms, want_m))
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        sched.CyclicLR(make_opt(momentum=0.9), 0.01, 0.1, mode="sine")
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        sched.CyclicLR(optim.Adagrad([torch.zeros(1, requires_grad=True)]), 0.01, 0.1)


def test_cyclic_lr_custom_scale_and_state_dict():
    class Halve:
        def __init__(self):
            self.base = 0.5

        def __call__(self, x):
            return self.base ** x

    opt = make_opt(cls=optim.Adam, lrs=(0.1,))
    s = sched.CyclicLR(opt, 0.01, 0.1, step_size_up=2, scale_fn=Halve(),
                       scale_mode="iterations")
    assert opt.param_groups[0]["betas"][0] == 0.9        # Adam's beta1 cycles
    lrs = lrs_over(s, opt, 6)
    want = [_cyclic_ref(i, 0.01, 0.1, 2, 2, "triangular") for i in range(6)]
    want = [0.01 + (w - 0.01) * 0.5 ** i for i, w in enumerate(want)]
    close(lrs, want)
    sd = s.state_dict()
    assert sd["_scale_fn_custom"] == {"base": 0.5} and "_scale_fn_ref" not in sd


def _sgdr_ref(epoch, T_0, T_mult, lo, base):
    """SGDR's lr at a (possibly fractional) epoch, from the restart schedule."""
    T_i, start = T_0, 0
    while epoch >= start + T_i:
        start += T_i
        T_i *= T_mult
    return lo + (base - lo) * (1 + math.cos(math.pi * (epoch - start) / T_i)) / 2


@pytest.mark.parametrize("T_mult", [1, 2])
def test_cosine_annealing_warm_restarts(T_mult):
    opt = make_opt()
    s = sched.CosineAnnealingWarmRestarts(opt, T_0=5, T_mult=T_mult, eta_min=0.001)
    got = lrs_over(s, opt, 50)
    want = [_sgdr_ref(e, 5, T_mult, 0.001, 0.1) for e in range(50)]
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(got, want))
    # per-batch stepping with fractional epochs
    opt2 = make_opt()
    s2 = sched.CosineAnnealingWarmRestarts(opt2, T_0=5, T_mult=T_mult, eta_min=0.001)
    for e in (0.25, 3.5, 7.75, 16.0, 22.5):
        s2.step(e)
        assert math.isclose(opt2.param_groups[0]["lr"], _sgdr_ref(e, 5, T_mult, 0.001, 0.1),
                            rel_tol=1e-9), e
    with pytest.raises(ValueError, match="Expected positive integer T_0, but got 0"):
        sched.CosineAnnealingWarmRestarts(make_opt(), T_0=0)
    with pytest.raises(ValueError, match="Expected non-negative epoch, but got -1"):
        s2.step(-1)


def test_sequential_lr_warmup_then_cosine():
    opt = make_opt()
    warm = sched.LinearLR(opt, start_factor=0.1, total_iters=5)
    cos = sched.CosineAnnealingLR(opt, T_max=20)
    s = sched.SequentialLR(opt, [warm, cos], milestones=[5])
    got = lrs_over(s, opt, 50)
    want = [0.1 * (0.1 + 0.9 * e / 5) if e < 5 else
            0.1 * (1 + math.cos(math.pi * (e - 5) / 20)) / 2 for e in range(50)]
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(got, want))
    assert s.get_last_lr() == [opt.param_groups[0]["lr"]]
    with pytest.raises(ValueError, match="expects number of schedulers provided to be one "
                                         "more than the number of milestone points"):
        sched.SequentialLR(opt, [warm, cos], milestones=[5, 6])
    plateau = sched.ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        sched.SequentialLR(opt, [warm, plateau], milestones=[5])
    with pytest.raises(ValueError, match="expects all schedulers to belong to the same "
                                         "optimizer"):
        sched.SequentialLR(opt, [warm, sched.StepLR(make_opt(), 2)], milestones=[5])


def test_chained_scheduler():
    opt = make_opt()
    s = sched.ChainedScheduler([sched.ConstantLR(opt, factor=0.5, total_iters=4),
                                sched.ExponentialLR(opt, gamma=0.9)])
    got = lrs_over(s, opt, 50)
    want = [0.1 * (0.5 if e < 4 else 1.0) * 0.9 ** e for e in range(50)]
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15) for a, b in zip(got, want))
    sd = s.state_dict()
    assert [d["last_epoch"] for d in sd["_schedulers"]] == [50, 50]
    opt2 = make_opt()
    s2 = sched.ChainedScheduler([sched.ConstantLR(opt2, factor=0.5, total_iters=4),
                                 sched.ExponentialLR(opt2, gamma=0.9)])
    s2.load_state_dict(sd)
    assert [x.last_epoch for x in s2._schedulers] == [50, 50]


def test_closed_forms_with_an_epoch_argument():
    for make, f in [(lambda o: sched.LinearLR(o, 0.2, 1.0, 10), lambda e: 0.2 + 0.8 * min(e, 10)
                     / 10),
                    (lambda o: sched.ConstantLR(o, 0.3, 6), lambda e: 0.3 if e < 6 else 1.0),
                    (lambda o: sched.PolynomialLR(o, 8, 2.0), lambda e: (1 - min(e, 8) / 8) ** 2)]:
        opt = make_opt()
        s = make(opt)
        opt.step()
        for e in (3, 9, 12, 1):
            with pytest.warns(UserWarning, match="The epoch parameter"):
                s.step(e)
            assert math.isclose(opt.param_groups[0]["lr"], 0.1 * f(e), rel_tol=1e-12)


SCHEDULES = [
    ("MultiplicativeLR", lambda m, o: m.MultiplicativeLR(o, lambda e: 0.95)),
    ("ConstantLR", lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=8)),
    ("LinearLR", lambda m, o: m.LinearLR(o, start_factor=0.05, end_factor=0.8,
                                         total_iters=12)),
    ("PolynomialLR", lambda m, o: m.PolynomialLR(o, total_iters=30, power=1.5)),
    ("CyclicLR", lambda m, o: m.CyclicLR(o, 0.01, 0.2, step_size_up=5, step_size_down=3,
                                         mode="triangular2")),
    ("CyclicLR-exp", lambda m, o: m.CyclicLR(o, 0.01, 0.2, step_size_up=4, mode="exp_range",
                                             gamma=0.95)),
    ("WarmRestarts", lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2,
                                                                eta_min=0.01)),
    ("SequentialLR", lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=6),
            m.ExponentialLR(o, gamma=0.9), m.CosineAnnealingLR(o, T_max=10)],
        milestones=[6, 20])),
    ("ChainedScheduler", lambda m, o: m.ChainedScheduler(
        [m.LinearLR(o, start_factor=0.2, total_iters=10), m.StepLR(o, 7, gamma=0.5)])),
]


@pytest.mark.parametrize("make", [m for _, m in SCHEDULES], ids=[n for n, _ in SCHEDULES])
def test_torch_parity_50_steps(make):
    real = pytest.importorskip("torch")
    lt_opt = make_opt(momentum=0.9)
    th_opt = real.optim.SGD([real.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    lt_s, th_s = make(sched, lt_opt), make(real.optim.lr_scheduler, th_opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(50):
            for key in ("lr", "momentum"):
                a, b = lt_opt.param_groups[0][key], th_opt.param_groups[0][key]
                assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (i, key, a, b)
            assert lt_s.get_last_lr() == pytest.approx(th_s.get_last_lr(), rel=1e-12)
            lt_opt.step()
            th_opt.step()
            lt_s.step()
            th_s.step()
    assert set(lt_s.state_dict()) == set(th_s.state_dict())
