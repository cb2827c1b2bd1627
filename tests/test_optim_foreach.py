"""The multi-tensor optimizer update (foreach=True / fused=True, optim/foreach.py): the same
numbers as the per-parameter update, bit for bit, for a group of tensors of several shapes and
dtypes; each group's update recorded once per bucket; the per-parameter path wherever a template
cannot be trusted; and the printed IR, eager mode, check mode and the profiler on the new path."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.optim as optim
from lazytorch import debug
from lazytorch.optim import foreach

SHAPES = [(5, 7), (7,), (3, 4, 2), (1,), (6, 1), (4, 3)]
DTYPES = [np.float32] * 5 + [np.float64]

CASES = {
    "sgd": (optim.SGD, {}),
    "sgd-momentum": (optim.SGD, {"momentum": 0.9, "dampening": 0.2, "weight_decay": 0.01}),
    "sgd-nesterov": (optim.SGD, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    "sgd-maximize": (optim.SGD, {"momentum": 0.5, "maximize": True}),
    "adam": (optim.Adam, {}),
    "adam-wd-maximize": (optim.Adam, {"weight_decay": 0.05, "maximize": True}),
    "adam-amsgrad": (optim.Adam, {"amsgrad": True, "betas": (0.8, 0.9)}),
    "adamw": (optim.AdamW, {"weight_decay": 0.1}),
    "adamw-amsgrad-maximize": (optim.AdamW, {"amsgrad": True, "maximize": True}),
}


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, DTYPES)]
    grads = [[rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, DTYPES)]
             for _ in range(5)]
    return p0, grads


def _run(cls, hyper: dict, steps: int = 5, **flags):
    """Parameters and state after `steps` steps with given gradients (numpy arrays)."""
    p0, grads = _problem()
    params = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = cls(params, lr=0.05, **hyper, **flags)
    for i in range(steps):
        for p, g in zip(params, grads[i]):
            p.grad = torch.tensor(g)
        opt.step()
    state = [{k: v.numpy().copy() for k, v in sorted(opt.state[p].items())} for p in params]
    return [p.detach().numpy().copy() for p in params], state


def _count_instantiations(monkeypatch) -> list:
    calls = []
    real = foreach._Template.instantiate

    def spy(self, tensors, updated):
        calls.append(tensors[0].shape)
        return real(self, tensors, updated)
    monkeypatch.setattr(foreach._Template, "instantiate", spy)
    return calls


@pytest.mark.parametrize("flag", ["foreach", "fused"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_numbers_as_the_per_parameter_update(case, flag, monkeypatch):
    cls, hyper = CASES[case]
    calls = _count_instantiations(monkeypatch)
    ref_p, ref_s = _run(cls, hyper, foreach=False)
    assert calls == []
    got_p, got_s = _run(cls, hyper, **{flag: True})
    # each step after the one that creates the state (every step for plain SGD, which keeps
    # none) records the first float32 parameter and instantiates the other four; the float64
    # one is a bucket of its own
    assert len(calls) == 4 * (5 if cls is optim.SGD and "momentum" not in hyper else 4)
    for a, b in zip(ref_p, got_p):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ref_s, got_s):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_adam_against_numpy():
    """The multi-tensor path against Adam written in numpy (float64 parameters)."""
    rng = np.random.default_rng(3)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    p0 = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(4)]
    params = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = optim.Adam(params, lr=0.1, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.01,
                     foreach=True)
    ref = [p.copy() for p in p0]
    m = [np.zeros(s) for s in shapes]
    v = [np.zeros(s) for s in shapes]
    for t in range(1, 5):
        for i, p in enumerate(params):
            p.grad = torch.tensor(grads[t - 1][i])
        opt.step()
        for i in range(len(ref)):
            g = grads[t - 1][i] + 0.01 * ref[i]
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.99 * v[i] + 0.01 * g * g
            denom = np.sqrt(v[i]) / np.sqrt(1 - 0.99 ** t) + 1e-6
            ref[i] = ref[i] - 0.1 / (1 - 0.9 ** t) * m[i] / denom
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p.detach().numpy(), r, rtol=1e-12, atol=1e-12)


def test_defaults_adam_multi_tensor_and_sgd_per_parameter(monkeypatch):
    """Adam's and AdamW's default is the multi-tensor path; SGD's, where recording one
    parameter is a few ops, the per-parameter one; foreach=False turns it off."""
    calls = _count_instantiations(monkeypatch)
    _run(optim.Adam, {})
    assert len(calls) == 16
    calls.clear()
    _run(optim.AdamW, {})
    assert len(calls) == 16
    calls.clear()
    _run(optim.Adam, {}, fused=False, foreach=False)
    _run(optim.SGD, {"momentum": 0.9})
    assert calls == []


def test_fused_and_foreach_together_are_refused():
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        optim.Adam([torch.zeros(2, requires_grad=True)], foreach=True, fused=True)


def test_fallbacks_keep_the_per_parameter_path(monkeypatch):
    """A first step (the state is created), a parameter without a gradient, and parameters
    whose state differs take the per-parameter path; the numbers match it."""
    calls = _count_instantiations(monkeypatch)
    a = torch.randn(3, 2, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    c = torch.randn(5, requires_grad=True)
    opt = optim.SGD([a, b, c], lr=0.1, momentum=0.9, foreach=True)
    ref = [t.detach().clone() for t in (a, b, c)]
    ref_opt = optim.SGD([r.requires_grad_() for r in ref], lr=0.1, momentum=0.9,
                        foreach=False)
    steps = [(a, b), (a, b), (a, b, c), (a, b, c), (a, c)]
    for k, which in enumerate(steps):
        for t, r in zip((a, b, c), ref):
            g = np.full(t.shape, 0.5 + k, np.float32)
            used = any(t is w for w in which)
            t.grad = torch.tensor(g) if used else None
            r.grad = torch.tensor(g) if used else None
        opt.step()
        ref_opt.step()
    # step 1 creates the state; steps 2 and 3 instantiate b's update from a's (in step 3, c
    # creates its buffer on the per-parameter path); step 4 instantiates b's and c's, step 5
    # c's (b has no gradient)
    assert calls == [(4,), (4,), (4,), (5,), (5,)]
    for t, r in zip((a, b, c), ref):
        np.testing.assert_array_equal(t.detach().numpy(), r.detach().numpy())


def test_eager_mode_runs_op_by_op_with_the_same_numbers(monkeypatch):
    calls = _count_instantiations(monkeypatch)
    ref_p, _ = _run(optim.Adam, {"weight_decay": 0.1}, foreach=False)
    with debug.eager():
        got_p, _ = _run(optim.Adam, {"weight_decay": 0.1}, foreach=True)
    assert calls == []
    for a, b in zip(ref_p, got_p):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_check_mode_on_the_multi_tensor_path(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    calls = _count_instantiations(monkeypatch)
    ref_p, _ = _run(optim.AdamW, {"amsgrad": True}, steps=3, foreach=False)
    with debug.check():
        got_p, _ = _run(optim.AdamW, {"amsgrad": True}, steps=3, foreach=True)
    assert calls
    for a, b in zip(ref_p, got_p):
        np.testing.assert_array_equal(a, b)


def test_instantiated_nodes_keep_the_users_line():
    """The printed IR of an instantiated update names the line of the step, as the recorded
    one does (and so do realize errors and the profiler, which read the same table)."""
    params = [torch.randn(3, 4, requires_grad=True), torch.randn(5, requires_grad=True)]
    opt = optim.SGD(params, lr=0.1, momentum=0.9, foreach=True)
    for _ in range(2):
        for p in params:
            p.grad = torch.ones(*p.shape)
        opt.step()
    for p in params:
        p.grad = torch.ones(*p.shape)
    updated: list = []
    with torch.no_grad():
        foreach.update_group_foreach(opt, opt.param_groups[0], updated)
        line = _line() - 1
        text = debug.ir(params[1])
        optim.optimizer.realize_updates(updated)
    assert "sub" in text and "f32[5]" in text
    assert f"test_optim_foreach.py:{line} update_group_foreach" in text, text


def _line() -> int:
    import sys
    return sys._getframe(1).f_lineno


def test_profiler_names_the_step_on_the_multi_tensor_path(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    params = [torch.randn(8, 3, requires_grad=True), torch.randn(6, requires_grad=True)]
    opt = optim.Adam(params, lr=0.1, foreach=True)
    calls = _count_instantiations(monkeypatch)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn(*p.shape)
            p.grad.realize()
        with torch.profiler.profile() as prof:
            opt.step()
            line = _line() - 1
    assert calls == [(6,), (6,)]
    table = prof.key_averages().table(sort_by="self_cpu_time_total")
    rows = [r for r in table.splitlines() if r.startswith("kernel")]
    assert rows and all(f"test_optim_foreach.py:{line}" in r for r in rows), table


def test_a_gradient_that_is_also_a_state_tensor_is_not_templated():
    """SGD's first momentum buffer is the gradient's value: while a gradient is not replaced,
    its node is the buffer's too. A template made where the two are one node must not serve a
    parameter where they are two (this failed: the template fed the buffer as the gradient)."""
    rng = np.random.default_rng(5)
    shapes = [(3, 2), (4,), (2, 5)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    results = []
    for flag in (False, True):
        params = [torch.tensor(a, requires_grad=True) for a in start]
        opt = optim.SGD(params, lr=0.1, momentum=0.9, foreach=flag)
        for p, s in zip(params, shapes):
            p.grad = torch.tensor(np.full(s, 0.25, np.float32))
        for k in range(4):
            opt.step()
            # only the second parameter gets a new gradient: the others keep theirs
            params[1].grad = torch.tensor(np.full(shapes[1], 1.0 + k, np.float32))
        results.append([p.detach().numpy().copy() for p in params])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_zero_dim_parameters_keep_their_own_bucket():
    """A 0-d parameter beside matrices (plain SGD keeps no state, so their signatures would
    otherwise agree) is updated as on the per-parameter path: the same numbers, and the same
    graph (before, it was instantiated from the matrix's template, with reshapes and expands
    from () to ())."""
    results = []
    for flag in (False, True):
        params = [torch.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True),
                  torch.tensor(np.float32(2.0), requires_grad=True),
                  torch.tensor(np.ones(4, np.float32), requires_grad=True)]
        opt = optim.SGD(params, lr=0.1, foreach=flag)
        for k in range(3):
            for p in params:
                p.grad = torch.tensor(np.full(p.shape, 0.5 + k, np.float32))
            opt.step()
        results.append([p.detach().numpy().copy() for p in params])
    for a, b in zip(*results):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(results[1][1], np.float32(2.0 - 0.1 * (0.5 + 1.5 + 2.5)),
                               rtol=1e-6)
    params = [torch.ones(2, 3, requires_grad=True), torch.tensor(2.0, requires_grad=True)]
    opt = optim.SGD(params, lr=0.1, foreach=True)
    for p in params:
        p.grad = torch.tensor(np.full(p.shape, 0.5, np.float32))
    with torch.no_grad():
        updated: list = []
        foreach.update_group_foreach(opt, opt.param_groups[0], updated)
        text = debug.ir(params[1])
        optim.optimizer.realize_updates(updated)
    assert "reshape" not in text and "expand" not in text, text
