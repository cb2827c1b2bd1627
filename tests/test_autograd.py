"""Autograd's behaviour as in PyTorch: leaves and grad_fn, accumulation, grad modes, errors,
higher-order gradients; fusion across the forward/backward boundary; graph lifetime in a
training loop; parity with PyTorch itself when it is installed.

The gradient rules are checked one by one in test_autograd_rules.py.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.compiler import schedule
from lazytorch.ir import sites
from lazytorch.ir.graph import Graph, toposort
from lazytorch.ir.ops import MOVEMENT, SOURCE, Op
from lazytorch.runtime import memory
from tests.conftest import check


def f64(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a, np.float64), requires_grad=True)


# ------------------------------------------------------------------------------ the seed
def test_seed_example_prints_like_pytorch(capsys):
    x = torch.tensor(2.0, requires_grad=True)
    y = x ** 2
    y.backward()
    print(x.grad)
    assert capsys.readouterr().out == "tensor(4.)\n"


def test_backward_runs_nothing():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (x.exp() * x).sum()
    debug.reset_stats()
    loss.backward()
    assert debug.stats()["realizes"] == 0 and debug.stats()["kernels_launched"] == 0
    check(x.grad, np.exp([1.0, 2.0, 3.0]) * (1 + np.array([1.0, 2.0, 3.0])))


# --------------------------------------------------------------------- leaves and grad_fn
def test_leaves_grad_fn_and_requires_grad_propagation():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    c = torch.tensor([3.0, 4.0])
    assert x.is_leaf and x.requires_grad and x.grad_fn is None and x.grad is None
    assert c.is_leaf and not c.requires_grad
    y = x * c
    assert y.requires_grad and not y.is_leaf
    z = c * 2 + 1
    assert not z.requires_grad and z.is_leaf and z.grad_fn is None
    names = {
        "MulBackward0": x * c, "AddBackward0": x + c, "SubBackward0": x - 1,
        "DivBackward0": x / c, "NegBackward0": -x, "PowBackward0": x ** 2,
        "ExpBackward0": x.exp(), "TanhBackward0": x.tanh(), "SigmoidBackward0": x.sigmoid(),
        "SumBackward0": x.sum(), "ViewBackward0": x.reshape(2, 1),
    }
    for name, t in names.items():
        assert t.grad_fn.name() == name
        assert re.fullmatch(rf"<{name} object.*>", repr(t.grad_fn))
    # next_functions leads back to the leaf
    (fn, _), (other, _) = (x * c).grad_fn.next_functions
    assert fn.variable is x and other is None


def test_requires_grad_flag_rules():
    x = torch.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad and x.is_leaf
    x.requires_grad_(False)
    assert not x.requires_grad and not (x * 2).requires_grad
    y = torch.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf"):
        y.requires_grad_(False)
    with pytest.raises(RuntimeError, match="^only Tensors of floating point dtype can require "
                                           "gradients$"):
        torch.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="^Only Tensors of floating point and complex dtype "
                                           "can require gradients$"):
        torch.tensor([1, 2], requires_grad=True)
    # integer results of tracked tensors carry no gradient
    z = torch.tensor([1.5, -2.0], requires_grad=True)
    for t in (z > 0, z.argmax(), z.long()):
        assert not t.requires_grad and t.grad_fn is None
    assert ((z > 0).float() * z).requires_grad


def test_grad_of_non_leaf_is_none_unless_retained():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y * y
    y.retain_grad()
    assert y.retains_grad and not z.retains_grad
    y.retain_grad()  # twice is fine
    z.sum().backward()
    assert z.grad is None
    check(y.grad, 2 * np.array([2.0, 4.0, 6.0]))
    check(x.grad, 8 * np.array([1.0, 2.0, 3.0]))


# ------------------------------------------------------------------------------ backward
def test_gradient_accumulates_over_two_backward_calls():
    x = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    y = (x * x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    check(x.grad, 2 * 3 * np.array([1.0, 4.0, 0.25]))
    # a forward run again (same values, same nodes) is a new graph, as in PyTorch
    for _ in range(2):
        loss = (x * 3).sum()
        loss.backward()
    check(x.grad, 6 * np.array([1.0, 4.0, 0.25]) + 6)
    x.grad = None
    (x ** 2).sum().backward()
    check(x.grad, 2 * np.array([1.0, -2.0, 0.5]))


def test_broadcast_operand_gradient_is_summed_to_its_shape(backend):
    a = np.arange(6.0).reshape(2, 3)
    x = f64(a)
    b = f64([1.0, 2.0, 3.0])
    s = f64(2.0)
    (x * b + s).sum().backward()
    check(x.grad, np.broadcast_to([1.0, 2.0, 3.0], (2, 3)))
    check(b.grad, a.sum(0))
    check(s.grad, np.array(6.0))


def test_backward_with_gradient_for_non_scalars():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * x
    v = torch.tensor([[1.0, 0.5], [-1.0, 2.0]])
    y.backward(gradient=v)
    check(x.grad, 2 * np.array([[1.0, 2.0], [3.0, 4.0]]) * np.array([[1.0, 0.5], [-1.0, 2.0]]))
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(torch.ones(3))


def test_backward_inputs_restricts_accumulation():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0], requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    check(a.grad, [3.0, 4.0])
    assert b.grad is None


def test_misuse_errors_have_pytorchs_messages():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar "
                                           "outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and "
                                           "does not have a grad_fn"):
        torch.tensor([1.0, 2.0]).sum().backward()
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second "
                                           "time"):
        y.backward()
    e = x.exp()
    e.sum().backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second"):
        (e * 2).sum().backward()
    with pytest.raises(RuntimeError, match=re.escape("a leaf Variable that requires grad is "
                                                     "being used in an in-place operation.")):
        x.add_(1)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        x *= 2
    with torch.no_grad():
        x.add_(1)  # allowed: the optimizer's way
    check(x, [2.0, 3.0])
    assert x.is_leaf and x.requires_grad


def test_inplace_ops_on_non_leaves_inside_the_graph(backend):
    a = np.array([1.0, -2.0, 3.0])
    x = f64(a)
    y = x * 2
    y.add_(1)
    y.sum().backward()
    check(x.grad, [2.0, 2.0, 2.0])
    assert y.grad_fn is not None and not y.is_leaf

    x = f64(a)
    y = x * 2
    y.mul_(x)         # 2 x^2
    y.exp_()          # exp(2 x^2)
    y.sum().backward()
    check(x.grad, np.exp(2 * a * a) * 4 * a, rtol=1e-12)

    x = f64(a)
    y = x.clone()
    y[1:] = y[1:] * y[1:]   # a write through a view of a non-leaf
    (y * torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)).sum().backward()
    check(x.grad, [1.0, 10.0 * 2 * a[1], 100.0 * 2 * a[2]])

    z = torch.zeros(3, dtype=torch.float64)   # not requiring grad, then written with x
    x = f64(a)
    z[0:2] = x[1:] * 3
    assert z.requires_grad
    (z * z).sum().backward()
    check(x.grad, [0.0, 18 * a[1], 18 * a[2]])


# --------------------------------------------------------------------------- detaching
def test_detach_and_detach_():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    check(d, [3.0, 6.0])
    assert not (d * x.detach()).requires_grad
    (y * d).sum().backward()   # d is a constant: d(y*d)/dx = 3*d
    check(x.grad, [9.0, 18.0])

    x.grad = None
    y = x * 3
    y.detach_()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    z = y * x
    z.sum().backward()
    check(x.grad, [3.0, 6.0])


# --------------------------------------------------------------------------- grad modes
def test_no_grad_results_are_untracked_even_later():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        assert not torch.is_grad_enabled()
        y = x * 2
        assert not y.requires_grad and y.grad_fn is None
        with torch.enable_grad():
            assert torch.is_grad_enabled()
            assert (x * 2).requires_grad
    assert torch.is_grad_enabled()
    z = y * x           # y was made under no_grad: only x's factor carries a gradient
    assert z.requires_grad
    w = y * 5
    assert not w.requires_grad
    z.sum().backward()
    check(x.grad, [2.0, 4.0])


def test_grad_modes_as_decorators_and_functions():
    x = torch.tensor([1.0], requires_grad=True)

    @torch.no_grad()
    def f(t):
        return t * 2

    @torch.enable_grad()
    def g(t):
        return t * 2

    @torch.inference_mode()
    def h(t):
        return t * 2

    assert not f(x).requires_grad and not h(x).requires_grad
    assert f.__name__ == "f"
    with torch.no_grad():
        assert g(x).requires_grad
    assert torch.is_grad_enabled()
    with torch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    torch.set_grad_enabled(False)
    try:
        assert not torch.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        torch.set_grad_enabled(True)
    with torch.inference_mode():
        assert not (x * 2).requires_grad
    with torch.inference_mode(False):
        assert (x * 2).requires_grad


# --------------------------------------------------------------------- autograd.grad
def test_autograd_grad_and_double_backward(backend):
    a = np.array([0.5, -1.0, 2.0])
    x = f64(a)
    y = (x ** 3).sum()
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    check(g, 3 * a ** 2)
    (g2,) = torch.autograd.grad(g.sum(), x)
    check(g2, 6 * a)
    assert x.grad is None   # grad() does not accumulate

    # backward through the gradient graph accumulates d2 into .grad
    x = f64(a)
    (x ** 3).sum().backward(create_graph=True)
    gx = x.grad
    assert gx.requires_grad
    x.grad = None
    gx.sum().backward()
    check(x.grad, 6 * a)

    # third order
    x = f64(a)
    (g,) = torch.autograd.grad((x ** 4).sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    (g3,) = torch.autograd.grad(g2.sum(), x)
    check(g3, 24 * a)


def test_autograd_grad_allow_unused_and_grad_outputs():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    u = torch.tensor([3.0], requires_grad=True)
    y = x * x
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        torch.autograd.grad(y.sum(), [x, u], retain_graph=True)
    gx, gu = torch.autograd.grad(y.sum(), [x, u], allow_unused=True, retain_graph=True)
    assert gu is None
    check(gx, [2.0, 4.0])
    (gx,) = torch.autograd.grad(y, x, grad_outputs=torch.tensor([1.0, -1.0]))
    check(gx, [2.0, -4.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        torch.autograd.grad((x * 2).sum(), torch.tensor([1.0]))


# ------------------------------------------------------------------------------ fusion
def _mlp_grads(rng):
    x = torch.tensor(rng.standard_normal((8, 16)).astype(np.float32))
    w = torch.tensor(rng.standard_normal((16, 4)).astype(np.float32), requires_grad=True)
    b = torch.tensor(rng.standard_normal((4,)).astype(np.float32), requires_grad=True)
    xw = x @ w if hasattr(torch.Tensor, "__matmul__") else \
        (x.unsqueeze(2) * w.unsqueeze(0)).sum(1)
    loss = ((xw + b).relu() ** 2).mean()
    loss.backward()
    return x, w, b


def test_forward_and_backward_fuse_into_few_kernels(rng):
    x, w, b = _mlp_grads(rng)
    graph = Graph([w.grad.node, b.grad.node])
    computed = [n for n in graph.nodes if n.op not in MOVEMENT | SOURCE and n.op is not Op.DETACH]
    forward = [n for n in computed if n not in sites.BACKWARD]
    backward = [n for n in computed if n in sites.BACKWARD]
    assert len(forward) >= 4 and len(backward) >= 6
    kernels = schedule(w.grad, b.grad)
    assert len(kernels) == 3 < len(computed)
    mixed = [k for k in kernels
             if {n in sites.BACKWARD for n in k.nodes if n.op not in MOVEMENT | SOURCE}
             == {True, False}]
    assert mixed, [k.ops for k in kernels]
    assert {"add", "max"} <= set(mixed[0].ops)   # the forward's bias and relu...
    assert "where" in mixed[0].ops               # ...with relu's backward mask

    # and the values: dL/dh = 2 relu(h) / N, then through x @ w + b
    xa, wa, ba = x.detach().numpy(), w.detach().numpy(), b.detach().numpy()
    h = xa.astype(np.float64) @ wa + ba
    dh = np.where(h > 0, 2 * h, 0) / h.size
    check(w.grad, xa.T @ dh, rtol=1e-5, atol=1e-6)
    check(b.grad, dh.sum(0), rtol=1e-5, atol=1e-6)


def test_gradient_graph_prints_as_ir(rng):
    _, w, b = _mlp_grads(rng)
    text = repr(Graph([w.grad.node]))
    lines = text.splitlines()
    for line in lines[:-1]:
        assert re.fullmatch(r"%\d+: [a-z]+\d*\[[\d,]*\] = [a-z_]+( .*)?", line), line
    assert re.fullmatch(r"return %\d+", lines[-1])
    assert "= where " in text and "= sum " in text and "= permute " in text
    assert re.fullmatch(r"%\d+: f32\[16,4\] = detach %\d+", lines[-2])   # .grad is detached


# ------------------------------------------------------------------------ graph lifetime
def test_hand_written_sgd_keeps_memory_and_graph_flat():
    """1,000 steps of `w -= lr * w.grad` under no_grad: leaving the no_grad block realizes the
    step (forward, backward and update in one plan, replayed from the plan cache), so the
    live buffers and the graph behind the parameters stay the same size."""
    rng = np.random.default_rng(3)
    xa, ya = rng.standard_normal((8, 4)), rng.standard_normal((8, 1))
    wa, ba = rng.standard_normal((4, 1)), np.zeros(1)
    x, y = torch.tensor(xa), torch.tensor(ya)
    w = torch.tensor(wa, requires_grad=True)
    b = torch.tensor(ba, requires_grad=True)
    lr = 0.05
    buffers, sizes, losses, stats = [], [], [], []
    for step in range(1000):
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad = None
        b.grad = None
        if step % 100 == 0:
            losses.append(loss.item())
            buffers.append(memory.live_buffers())
            sizes.append(len(toposort([w.node, b.node])))
            stats.append(debug.stats())
            debug.reset_stats()
    assert buffers[2:] == [buffers[2]] * (len(buffers) - 2), buffers
    assert max(buffers) - min(buffers) <= 8, buffers
    assert sizes == [2] * len(sizes), sizes     # w and b are buffers after each step
    for s in stats[2:]:
        # 100 steps; loss.item() costs no realize: the loss rode along with its step's
        assert s["kernels_compiled"] == 0 and s["realizes"] == 100, s
    # the same loop in numpy
    for _ in range(1000):
        err = xa @ wa + ba - ya
        wa, ba = wa - lr * 2 * xa.T @ err / err.size, ba - lr * 2 * err.sum(0) / err.size
    check(w, wa, rtol=1e-10, atol=1e-12)
    check(b, ba, rtol=1e-10, atol=1e-12)
    assert losses[-1] < losses[0]


def test_no_grad_without_leaf_updates_stays_lazy():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    state = torch.zeros(2)
    debug.reset_stats()
    with torch.no_grad():
        state.add_(x * 2)   # no leaf requiring grad is updated: nothing runs on exit
        y = x * 3
    assert debug.stats()["realizes"] == 0
    check(state, [2.0, 4.0])
    check(y, [3.0, 6.0])


# ------------------------------------------------------------------------ PyTorch parity
def test_small_mlp_gradients_match_pytorch():
    pt = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    xa = rng.standard_normal((6, 5))
    params = {"w1": rng.standard_normal((5, 8)) * 0.5, "b1": rng.standard_normal(8) * 0.1,
              "w2": rng.standard_normal((8, 3)) * 0.5, "b2": rng.standard_normal(3) * 0.1}
    labels = np.array([0, 2, 1, 1, 0, 2])

    def run(lib, make, gather):
        x = make(xa, False)
        ps = {k: make(v, True) for k, v in params.items()}
        h = (x @ ps["w1"] + ps["b1"]).tanh()
        h = h * (h > -0.5).to(h.dtype) + 0.1 * h.sigmoid() * h.relu()
        z = h @ ps["w2"] + ps["b2"]
        loss = (z.logsumexp(1) - gather(z)).mean() + 1e-2 * (ps["w1"] ** 2).sum()
        loss = loss + z.amax(1).std() * 0.1 + z.max(1).values.sum() * 0.01
        loss.backward()
        return float(loss.item()), {k: np.asarray(p.grad.numpy()) for k, p in ps.items()}

    idx = labels.reshape(-1, 1)
    lt_loss, lt_grads = run(torch, lambda a, rg: torch.tensor(a, requires_grad=rg),
                            lambda z: z.gather(1, torch.tensor(idx)).squeeze(1))
    pt_loss, pt_grads = run(pt, lambda a, rg: pt.tensor(a, requires_grad=rg),
                            lambda z: z.gather(1, pt.tensor(idx)).squeeze(1))
    assert lt_loss == pytest.approx(pt_loss, rel=1e-12)
    for k in params:
        np.testing.assert_allclose(lt_grads[k], pt_grads[k], rtol=1e-10, atol=1e-12,
                                   err_msg=k)


# ------------------------------------------------------------------------------ bookkeeping
def test_backward_twice_raises():
    w = torch.randn(4, 3, requires_grad=True)
    loss = (torch.randn(2, 4) @ w).tanh().sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_a_missing_rule_names_the_op(monkeypatch):
    from lazytorch.autograd.rules import GRAD
    monkeypatch.delitem(GRAD, Op.TANH)
    x = torch.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="derivative for tanh is not implemented"):
        x.tanh().sum().backward()


def test_a_freed_result_stays_freed():
    """Ops on a result whose graph a backward freed do not make that graph fresh again."""
    w = torch.randn(4, 3, requires_grad=True)
    h = (torch.randn(2, 4) @ w).tanh()
    (h * 2).sum().backward()
    again = (h * 2).sum(1).exp().mean()   # h's graph was freed: only the new ops are fresh
    with pytest.raises(RuntimeError, match="a second time"):
        again.backward()


def test_a_rerun_forward_is_a_fresh_graph():
    """Hash-consing hands a re-run forward the nodes a backward freed: it is a new graph (its
    backward runs and accumulates), and its no_grad twin is cut from tracking."""
    rng = np.random.default_rng(3)
    w0, x0 = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    w = torch.tensor(w0, requires_grad=True)
    x = torch.tensor(x0)

    def forward():
        return ((x @ w).tanh() * 2).sum(1).exp().mean()
    forward().backward()
    out = forward()
    with torch.no_grad():
        frozen = (x @ w) * 3
    assert out.requires_grad and not frozen.requires_grad
    out.backward()
    t = np.tanh(x0 @ w0)
    e = np.exp((2 * t).sum(1))
    want = x0.T @ ((e[:, None] / 2) * 2 * (1 - t * t))
    np.testing.assert_allclose(w.grad.numpy(), 2 * want, rtol=1e-10)
