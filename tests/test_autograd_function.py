"""torch.autograd.Function and torch.utils.checkpoint: a user's backward recorded as graph,
checked against numpy, central finite differences in float64 and (optionally) PyTorch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from tests.helpers import grad_check


class Exp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class ScaledMul(torch.autograd.Function):
    """a * b * k with a Python scalar k: one gradient per forward argument, None for k."""

    @staticmethod
    def forward(ctx, a, b, k):
        ctx.save_for_backward(a, b)
        ctx.k = k
        return a * b * k

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = g * b * ctx.k if ctx.needs_input_grad[0] else None
        gb = g * a * ctx.k if ctx.needs_input_grad[1] else None
        return ga, gb, None


class SinCos(torch.autograd.Function):
    """Two outputs; new-style (forward without ctx, setup_context)."""

    @staticmethod
    def forward(x):
        return x.sin(), x.cos()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, gs, gc):
        (x,) = ctx.saved_tensors
        return gs * x.cos() - gc * x.sin()


def test_single_output_matches_finite_differences(backend):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    grad_check(lambda x: Exp.apply(x) * 2 + 1, lambda x: np.exp(x) * 2 + 1, [a])


def test_several_inputs_and_a_scalar_argument(backend):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    grad_check(lambda x, y: ScaledMul.apply(x, y, 0.5).tanh(),
               lambda x, y: np.tanh(x * y * 0.5), [a, b])


def test_needs_input_grad_and_a_constant_input():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0])
    seen = {}

    class Spy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            seen["needs"] = ctx.needs_input_grad
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g * 2, None

    Spy.apply(a, b).sum().backward()
    assert seen["needs"] == (True, False)
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 2.0])
    assert b.grad is None


def test_two_outputs_match_finite_differences(backend):
    rng = np.random.default_rng(2)
    a = rng.standard_normal(6)
    grad_check(lambda x: SinCos.apply(x)[0] * 3 + SinCos.apply(x)[1] ** 2,
               lambda x: np.sin(x) * 3 + np.cos(x) ** 2, [a])
    # only one output used: the other's gradient is zero
    grad_check(lambda x: SinCos.apply(x)[1], np.cos, [a])


def test_outputs_carry_the_functions_grad_fn_and_nothing_without_grad():
    x = torch.tensor([0.5], requires_grad=True)
    y = Exp.apply(x)
    assert y.requires_grad and type(y.grad_fn).__name__ and y.grad_fn.name() == "ExpBackward"
    z = Exp.apply(torch.tensor([0.5]))
    assert not z.requires_grad and z.grad_fn is None
    with torch.no_grad():
        assert not Exp.apply(x).requires_grad


def test_non_differentiable_outputs():
    class SortWithIndices(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            v, i = x.sort()
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(i)
            return v, i

        @staticmethod
        def backward(ctx, gv, gi):
            (i,) = ctx.saved_tensors
            return torch.zeros(i.shape).scatter(0, i, gv)

    x = torch.tensor([3.0, 1.0, 2.0], requires_grad=True)
    v, i = SortWithIndices.apply(x)
    assert v.requires_grad and not i.requires_grad
    (v * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [100.0, 1.0, 10.0])


def test_backward_errors_name_the_function():
    class TooMany(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g, g

    class WrongShape(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return torch.ones(5)

    x = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"function TooManyBackward returned an incorrect "
                                           r"number of gradients \(expected 1, got 2\)"):
        TooMany.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"Function WrongShapeBackward returned an invalid "
                                           r"gradient at index 0 - got \[5\] but expected shape "
                                           r"compatible with \[3\]"):
        WrongShape.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match="non-static forward"):
        Exp()


def test_double_backward_through_a_recorded_backward():
    x = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(Exp.apply(x).sum(), [x], create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), np.exp([0.3, -0.7]), rtol=1e-12)


def test_a_training_loop_with_a_function_replays_its_plan():
    """The application's id is not part of the plan key: new applications each step replay."""
    w = torch.randn(4, requires_grad=True)
    compiled = []
    for _ in range(6):
        x = torch.randn(4)
        loss = Exp.apply(w * x).sum()
        loss.backward()
        with torch.no_grad():
            w -= 0.01 * w.grad
        w.grad = None
        loss.item()
        compiled.append(debug.stats()["kernels_compiled"])
    assert compiled[-1] == compiled[2], compiled


def test_same_code_agrees_with_pytorch():
    pt = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    results = []
    for mod in (torch, pt):
        class Softplus(mod.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return (1 + x.exp()).log()

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return g * x.sigmoid()

        x = mod.tensor(a, requires_grad=True)
        y = Softplus.apply(x)
        (y * y).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5)


def test_checkpoint_gives_the_same_values_and_gradients():
    from lazytorch.utils.checkpoint import checkpoint, checkpoint_sequential
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    x = torch.randn(3, 4)
    ref = net(x)
    ref.sum().backward()
    ref_grads = [p.grad.numpy().copy() for p in net.parameters()]
    net.zero_grad()
    out = checkpoint(net, x, use_reentrant=False)
    out.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    for p, g in zip(net.parameters(), ref_grads):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-6)
    np.testing.assert_allclose(checkpoint_sequential(net, 2, x, use_reentrant=False)
                               .detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        checkpoint(net, x)
    assert any("use_reentrant" in str(m.message) for m in w)
