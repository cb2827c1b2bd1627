"""Tensor.register_hook: gradient hooks on leaves and non-leaves, run lazily during backward()
and autograd.grad(), against gradients written out in numpy and against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import autograd, debug


def _xy():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    return x, x * 2


def test_non_leaf_hook_sees_the_gradient_and_may_replace_it():
    x, y = _xy()
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    (y * y).sum().backward()        # d/dy = 2y = 4x
    np.testing.assert_array_equal(seen[0], [4.0, 8.0, 12.0])
    np.testing.assert_array_equal(x.grad.numpy(), [80.0, 160.0, 240.0])   # 2 * 10 * 4x


def test_leaf_hook_runs_on_each_new_gradient_before_accumulation():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    got = []
    h = x.register_hook(lambda g: got.append(g) or g * 2)
    (x * 3).sum().backward()
    (x * x).sum().backward()        # grads 3 and 2x, each doubled, then summed into .grad
    np.testing.assert_array_equal(got[0].numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(got[1].numpy(), [2.0, -4.0])
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, -2.0])
    h.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    assert len(got) == 2


def test_hooks_run_in_order_and_none_keeps_the_value():
    x, y = _xy()
    order = []
    y.register_hook(lambda g: order.append("a"))
    y.register_hook(lambda g: order.append("b") or g + 1)
    y.register_hook(lambda g: order.append("c") or g * 3)
    y.sum().backward()
    assert order == ["a", "b", "c"]
    np.testing.assert_array_equal(x.grad.numpy(), [12.0, 12.0, 12.0])   # (1 + 1) * 3 * 2


def test_hooks_run_lazily_and_realize_nothing():
    x, y = _xy()
    y.register_hook(lambda g: g.clamp(max=0.5))
    debug.reset_stats()
    (y * y).sum().backward()
    assert debug.stats()["realizes"] == 0
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 1.0])


def test_hooks_with_autograd_grad_and_retain_grad():
    x, y = _xy()
    y.retain_grad()
    y.register_hook(lambda g: -g)
    x.register_hook(lambda g: g + 100)
    (gx,) = torch.autograd.grad(y.sum() * 5, x)
    np.testing.assert_array_equal(gx.numpy(), [90.0, 90.0, 90.0])   # -5 * 2 + 100
    z = x * 4
    z.retain_grad()
    z.register_hook(lambda g: g * 7)
    z.sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), [7.0, 7.0, 7.0])  # .grad sees the hook's value


def test_hook_with_create_graph_is_differentiated_through():
    x = torch.tensor([1.5, -0.5], dtype=torch.float64, requires_grad=True)
    y = x ** 3
    y.register_hook(lambda g: g * x)        # the hook's result depends on x
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 3)   # (1 * x) * 3x^2
    (gg,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), 9 * x.detach().numpy() ** 2)


def test_hook_errors():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't "
                                           "require gradient"):
        torch.ones(2).register_hook(lambda g: g)
    x, y = _xy()

    def widen(g):
        return g.sum()
    y.register_hook(widen)
    with pytest.raises(RuntimeError, match="hook 'widen' has changed the size of value"):
        y.sum().backward()


def test_removed_hooks_leave_the_table():
    x, y = _xy()
    h = y.register_hook(lambda g: g)
    assert id(y.node) in autograd._hook_table()
    with h:
        pass
    hx = x.register_hook(lambda g: g)
    hx.remove()
    table = autograd._hook_table() or {}
    assert id(y.node) not in table and id(x.node) not in table


def test_a_graph_made_again_has_no_hooks():
    """The same expression made again (hash-consing returns the same node) is a fresh graph,
    as in PyTorch: the first one's hooks do not run for it, and are not registered twice."""
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    for _ in range(3):
        y = x * 2
        y.register_hook(lambda g: calls.append(1) or g * 5)
        y.sum().backward()
    assert len(calls) == 3
    np.testing.assert_array_equal(x.grad.numpy(), [30.0, 30.0])
    z = x * 2
    x.grad = None
    z.sum().backward()
    assert len(calls) == 3
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_a_hook_on_a_tensor_gone_before_backward_still_runs():
    """The Grad-CAM pattern: forward registers a hook on an intermediate it does not return."""
    saved = []

    def forward(x, w):
        h = x * w
        h.register_hook(lambda g: saved.append(g))
        return h.tanh().sum()

    x = torch.tensor([0.5, -1.0])
    w = torch.tensor([2.0, 3.0], requires_grad=True)
    forward(x, w).backward()
    np.testing.assert_allclose(saved[0].numpy(), 1 - np.tanh([1.0, -3.0]) ** 2, atol=1e-6)


def test_hooked_and_plain_walks_give_the_same_gradients():
    """An identity hook sends backward through the Python walk: it must agree with the
    compiled one on a small network's gradients."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    x = torch.randn(5, 4)
    net(x).square().mean().backward()
    plain = [p.grad.numpy().copy() for p in net.parameters()]
    net.zero_grad()
    handles = [p.register_hook(lambda g: g) for p in net.parameters()]
    net(x).square().mean().backward()
    for p, ref in zip(net.parameters(), plain):
        np.testing.assert_allclose(p.grad.numpy(), ref, rtol=1e-6, atol=1e-7)
    for h in handles:
        h.remove()


def test_gradient_clipping_hooks_in_training_match_pytorch():
    pt = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, xs = rng.standard_normal((3, 2)), rng.standard_normal((4, 5, 3))
    out = []
    for lib in (torch, pt):
        w = lib.tensor(w0, dtype=lib.float32, requires_grad=True)
        w.register_hook(lambda g: g.clamp(-0.5, 0.5))
        opt = lib.optim.SGD([w], lr=0.1)
        for xb in xs:
            h = lib.tensor(xb, dtype=lib.float32) @ w
            h.register_hook(lambda g: g * 2)
            opt.zero_grad()
            h.tanh().sum().backward()
            opt.step()
        out.append(w.detach().numpy())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5, atol=1e-6)
