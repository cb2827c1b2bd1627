"""Every gradient rule against central finite differences in float64, and the compiled
gradients against the reference interpreter.

`gradcheck(fn, *arrays)` builds float64 leaves requiring grad, takes torch.autograd.grad of a
random-weighted sum of fn's output(s), and compares it with central differences (eps=1e-6) of
the same weighted sum, computed by re-running fn on numpy-perturbed inputs. The gradients are
realized with the C backend and, from a fresh graph, with the interpreter; both must agree
(the finite differences run on the interpreter: it compiles nothing).
Inputs are kept away from the points where an op is not differentiable (ties, kinks, poles);
those points get exact tests of PyTorch's conventions below.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.autograd import rules as autograd_rules
from lazytorch.frontend.tensor import realize_tensors
from lazytorch.ir.graph import toposort
from lazytorch.ir.ops import Op
from tests.helpers import backend_env

EPS = 1e-6


def _outputs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _analytic(fn, arrays, weights) -> list[np.ndarray]:
    """d(sum_k w_k * fn(x)_k)/dx for each input, realized in one go."""
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    outs = _outputs(fn(*xs))
    loss = None
    for o, w in zip(outs, weights):
        term = (o * torch.tensor(w)).sum()
        loss = term if loss is None else loss + term
    grads = torch.autograd.grad(loss, xs, allow_unused=True)
    present = [g for g in grads if g is not None]
    realize_tensors(present)
    return [np.zeros_like(a) if g is None else np.array(g.numpy()) for a, g in zip(arrays, grads)]


def _numeric(fn, arrays, weights) -> list[np.ndarray]:
    def f(arrs) -> float:
        outs = _outputs(fn(*[torch.tensor(a) for a in arrs]))
        return sum(float((o.detach().numpy().astype(np.float64) * w).sum())
                   for o, w in zip(outs, weights))

    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros_like(a)
        for j in np.ndindex(a.shape):
            arrs = [x.copy() for x in arrays]
            arrs[i][j] = a[j] + EPS
            hi = f(arrs)
            arrs[i][j] = a[j] - EPS
            lo = f(arrs)
            g[j] = (hi - lo) / (2 * EPS)
        grads.append(g)
    return grads


def gradcheck(fn, *inputs, rtol: float = 1e-5, atol: float = 1e-6, seed: int = 0) -> None:
    """Check fn's gradients (float64) against finite differences and the interpreter."""
    arrays = [np.array(a, dtype=np.float64) for a in inputs]
    with backend_env("interp"):
        outs = _outputs(fn(*[torch.tensor(a) for a in arrays]))
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(tuple(o.shape)) for o in outs]
    got = _analytic(fn, arrays, weights)
    with backend_env("interp"):
        ref = _analytic(fn, arrays, weights)
    with backend_env("interp"):  # the reference forward; saves compiling a forward plan
        num = _numeric(fn, arrays, weights)
    for i, (g, r, n) in enumerate(zip(got, ref, num)):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12,
                                   err_msg=f"input {i}: C backend vs interpreter")
        np.testing.assert_allclose(g, n, rtol=rtol, atol=atol,
                                   err_msg=f"input {i}: autograd vs finite differences")


# ------------------------------------------------------------------------------- inputs
_R = np.random.default_rng(1234)
A = _R.standard_normal((3, 4))                     # generic
B = _R.standard_normal((3, 4))
ROW = _R.standard_normal((4,))                    # broadcasts against A
COL = _R.standard_normal((3, 1))
POS = _R.uniform(0.5, 2.0, (3, 4))                # log, sqrt, pow bases
POS_ROW = _R.uniform(0.5, 2.0, (4,))
SMALL = _R.uniform(-0.9, 0.9, (3, 4))             # tan, log1p
AWAY = np.sign(A) * (np.abs(A) + 0.3)             # abs, relu, reciprocal: away from 0
DISTINCT = _R.permutation(12).reshape(3, 4) + _R.uniform(0.1, 0.4, (3, 4))  # no ties
CUBE = _R.standard_normal((2, 3, 4))
MASK = A > 0
CLAMP_LO = DISTINCT + _R.choice([-0.2, 0.2], (3, 4))
# remainder: x / y stays between integers, away from the jumps
_Y = _R.uniform(0.5, 1.5, (3, 4))
_X = (_R.integers(-2, 3, (3, 4)) + _R.uniform(0.2, 0.8, (3, 4))) * _Y


# ------------------------------------------------------------------------------- cases
# (id, fn, inputs): fn takes lazytorch tensors and returns a tensor or a tuple of tensors
CASES = [
    # arithmetic, with broadcasting
    ("add", lambda a, b: a + b, (A, B)),
    ("add_row", lambda a, r: a + r, (A, ROW)),
    ("add_alpha", lambda a, b: a.add(b, alpha=2.5), (A, B)),
    ("sub_col", lambda a, c: a - c, (A, COL)),
    ("rsub_scalar", lambda a: 1.5 - a, (A,)),
    ("mul_outer", lambda c, r: c * r, (COL, ROW)),
    ("mul_self", lambda a: a * a, (A,)),
    ("div", lambda a, b: a / b, (A, AWAY)),
    ("div_row", lambda a, r: a / r, (A, POS_ROW)),
    ("rdiv_scalar", lambda a: 2.0 / a, (AWAY,)),
    ("pow_tensor", lambda p, b: p ** b, (POS, B)),
    ("pow_row_exponent", lambda p, r: p ** r, (POS, ROW)),
    ("pow_scalar_exp", lambda a: a ** 3, (A,)),
    ("pow_half", lambda p: p ** 0.5, (POS,)),
    ("pow_negative", lambda p: p ** -1.5, (POS,)),
    ("pow_scalar_base", lambda a: 2.0 ** a, (A,)),
    ("pow_fractional_base", lambda a: 0.7 ** a, (A,)),
    ("square", lambda a: a.square(), (A,)),
    ("neg", lambda a: -a, (A,)),
    ("remainder", lambda x, y: x % y, (_X, _Y)),
    ("remainder_scalar", lambda x: torch.remainder(x, 1.3), (_X,)),
    ("div_floor", lambda x, y: torch.div(x, y, rounding_mode="floor") * x, (_X, _Y)),
    ("lerp", lambda a, b, w: torch.lerp(a, b, w), (A, B, SMALL)),
    # unary
    ("exp", lambda a: a.exp(), (A,)),
    ("exp2", lambda a: a.exp2(), (A,)),
    ("expm1", lambda a: a.expm1(), (A,)),
    ("log", lambda p: p.log(), (POS,)),
    ("log2", lambda p: p.log2(), (POS,)),
    ("log10", lambda p: p.log10(), (POS,)),
    ("log1p", lambda s: s.log1p(), (SMALL,)),
    ("sqrt", lambda p: p.sqrt(), (POS,)),
    ("rsqrt", lambda p: p.rsqrt(), (POS,)),
    ("reciprocal", lambda a: a.reciprocal(), (AWAY,)),
    ("sin", lambda a: a.sin(), (A,)),
    ("cos", lambda a: a.cos(), (A,)),
    ("tan", lambda s: s.tan(), (SMALL,)),
    ("asin", lambda s: s.asin(), (SMALL,)),
    ("acos", lambda s: s.acos(), (SMALL,)),
    ("atan", lambda a: a.atan(), (A,)),
    ("sinh", lambda a: a.sinh(), (A,)),
    ("cosh", lambda a: a.cosh(), (A,)),
    ("asinh", lambda a: a.asinh(), (A,)),
    ("acosh", lambda p: (p + 1).acosh(), (POS,)),
    ("atanh", lambda s: s.atanh(), (SMALL,)),
    ("atan2", lambda a, b: torch.atan2(a, b), (A, AWAY)),
    ("atan2_row", lambda a, r: torch.atan2(a, r), (A, POS_ROW)),
    ("tanh", lambda a: a.tanh(), (A,)),
    ("sigmoid", lambda a: a.sigmoid(), (A,)),
    ("erf", lambda a: a.erf(), (A,)),
    ("abs", lambda a: a.abs(), (AWAY,)),
    ("relu", lambda a: a.relu(), (AWAY,)),
    ("clamp", lambda a: a.clamp(-0.25, 0.25), (AWAY,)),
    ("clamp_tensor", lambda a, lo: torch.clamp(a, min=lo), (DISTINCT, CLAMP_LO)),
    ("sign_floor_ceil_round_trunc",
     lambda a: a.sign() * a + a.floor() + a.ceil() * a + a.round() + a.trunc() * a, (AWAY * 3,)),
    ("maximum", lambda a, b: torch.maximum(a, b), (A, B)),
    ("minimum", lambda a, b: torch.minimum(a, b), (A, B)),
    ("maximum_row", lambda a, r: torch.maximum(a, r), (A, ROW)),
    ("where", lambda a, b: torch.where(torch.tensor(MASK), a, b), (A, B)),
    ("where_scalar", lambda a: torch.where(torch.tensor(MASK), a * 2, 0.5), (A,)),
    ("where_row", lambda a, r: torch.where(torch.tensor(MASK), a, r), (A, ROW)),
    # reductions
    ("sum", lambda a: a.sum(), (A,)),
    ("sum_dim", lambda a: a.sum(1), (A,)),
    ("sum_dims_keepdim", lambda c: c.sum((0, 2), keepdim=True), (CUBE,)),
    ("mean", lambda a: a.mean(0), (A,)),
    ("mean_full", lambda c: c.mean(), (CUBE,)),
    ("prod", lambda a: a.prod(), (A,)),
    ("prod_dim", lambda a: a.prod(1), (A,)),
    ("prod_dims", lambda c: c.prod(0, keepdim=True), (CUBE,)),
    ("amax", lambda d: d.amax(), (DISTINCT,)),
    ("amax_dim", lambda d: d.amax(1), (DISTINCT,)),
    ("amin_dims", lambda d: d.amin((0, 1)), (DISTINCT,)),
    ("max_full", lambda d: d.max(), (DISTINCT,)),
    ("min_full", lambda d: d.min(), (DISTINCT,)),
    ("max_dim", lambda d: d.max(0).values, (DISTINCT,)),
    ("min_dim_keepdim", lambda d: d.min(1, keepdim=True)[0], (DISTINCT,)),
    ("var", lambda a: a.var(1), (A,)),
    ("var_full", lambda a: a.var(), (A,)),
    ("std", lambda a: a.std(0, correction=0), (A,)),
    ("logsumexp", lambda a: a.logsumexp(1), (A,)),
    ("cumsum", lambda a: a.cumsum(1), (A,)),
    ("cumsum_dim0", lambda c: c.cumsum(0), (CUBE,)),
    ("cumprod", lambda a: a.cumprod(1), (A,)),
    ("cumprod_dim0", lambda a: a.cumprod(0), (A,)),
    ("norm", lambda a: a.norm(), (A,)),
    ("norm_dim", lambda a: a.norm(dim=1), (A,)),
    ("norm_1", lambda a: a.norm(p=1), (AWAY,)),
    ("norm_inf", lambda d: d.norm(p=math.inf), (DISTINCT,)),
    ("norm_3", lambda a: a.norm(p=3, dim=0), (AWAY,)),
    # movement
    ("reshape", lambda a: a.reshape(2, 6) * torch.tensor(np.arange(12.0).reshape(2, 6)), (A,)),
    ("view_flatten", lambda c: c.view(6, 4).flatten().exp(), (CUBE,)),
    ("permute", lambda c: c.permute(2, 0, 1).sin(), (CUBE,)),
    ("transpose", lambda a, b: a.t() * b.transpose(0, 1), (A, B)),
    ("mT", lambda c: c.mT.exp(), (CUBE,)),
    ("expand", lambda c: c.expand(3, 4).exp(), (COL,)),
    ("expand_new_dims", lambda r: r.expand(2, 3, 4).sin(), (ROW,)),
    ("expand_as", lambda r, a: r.expand_as(a) * a, (ROW, A)),
    ("squeeze_unsqueeze", lambda c: c.squeeze(1).unsqueeze(0).exp(), (COL,)),
    ("flip", lambda a: a.flip(0) * a, (A,)),
    ("flip_both", lambda c: c.flip(0, 2).sin(), (CUBE,)),
    ("narrow", lambda a: a.narrow(1, 1, 2).exp(), (A,)),
    ("split", lambda a: a.split(3, dim=1), (A,)),
    ("split_sizes", lambda c: tuple(p.exp() for p in c.split([1, 3], dim=2)), (CUBE,)),
    ("chunk", lambda a: tuple(p * p for p in a.chunk(2, dim=1)), (A,)),
    ("unbind_select", lambda a: a.unbind(0)[1] * a.select(1, 2).sum(), (A,)),
    ("getitem_step", lambda a: a[:, ::2].exp(), (A,)),
    ("getitem_offset", lambda c: c[1, 1:, 1::2] * 3, (CUBE,)),
    ("contiguous_clone", lambda a: a.t().contiguous().clone() * a.t(), (A,)),
    # non-contiguous views feeding other ops
    ("view_mix", lambda a, b: (a.t().exp() * b.flip(1).t()).narrow(0, 1, 3).sum(1), (A, B)),
    ("expand_mul_transpose", lambda r, a: r.expand(3, 4).t() * a.t().sin(), (ROW, A)),
    ("narrow_expand", lambda c: c.narrow(0, 1, 2).expand(2, 4) * 2, (COL,)),
    ("flip_reduce", lambda a: a.flip(1).cumsum(1).prod(0), (A,)),
    ("permute_maximum", lambda c, a: torch.maximum(c.permute(1, 2, 0)[1], a.t()[:, :2]),
     (CUBE, A)),
    # matmul
    ("matmul_broadcast_sum", lambda a, b: (a.unsqueeze(2) * b.t().unsqueeze(0)).sum(1),
     (A, B)),
    ("matmul", lambda a, b: a @ b.t(), (A, B)),
    ("matmul_vec", lambda a, r: a @ r, (A, ROW)),
    ("bmm_transposed", lambda c, a: c @ a.t(), (CUBE, A)),
]

CASE_IDS = [c[0] for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=CASE_IDS)
def test_rule_finite_differences(name, fn, inputs):
    gradcheck(fn, *inputs)


# ------------------------------------------------------------------ ops that may be missing
def _need(attr: str, where=None):
    if not hasattr(where or torch.Tensor, attr):
        pytest.skip(f"{attr} is not in lazytorch yet")


def test_pad_constant():
    from lazytorch.nn import functional as F
    _need("pad", F)
    gradcheck(lambda a: F.pad(a, (1, 2, 0, 1), value=0.5).exp(), A)
    gradcheck(lambda c: F.pad(c, (-1, 1)) * 2, CUBE)   # a negative pad crops


def test_gather_scatter():
    _need("gather")
    idx = torch.tensor([[0, 2, 1, 2], [1, 0, 0, 2]])
    gradcheck(lambda a: a.gather(0, idx).exp(), A)
    gradcheck(lambda a: torch.take_along_dim(a, idx[:, :2].t(), 0) * 2, A.T[:2].T)
    idx1 = torch.tensor([[0, 1, 1], [3, 3, 0], [2, 2, 2]])
    gradcheck(lambda a: a.gather(1, idx1).sin(), A)     # repeated indices add up
    # one index per row (max-pool's argmax): the gradient is a one-hot select, no scatter
    gradcheck(lambda a: a.gather(1, a.argmax(1, keepdim=True)).exp(), A)
    gradcheck(lambda a: a.gather(0, torch.tensor([[2, 0, 1, 1]])) * 3, A)

    _need("scatter_add")
    src_idx = torch.tensor([[0, 2, 1, 2], [1, 0, 0, 2]])
    gradcheck(lambda a, s: a.scatter_add(0, src_idx, s).sin(), A, B[:2])
    perm_idx = torch.tensor([[2, 0, 1, 0], [0, 1, 2, 1]])  # no duplicate targets per column
    gradcheck(lambda a, s: a.scatter(0, perm_idx, s).sin(), A, B[:2])


def test_index_select_and_getitem_tensor():
    _need("index_select")
    idx = torch.tensor([2, 0, 2])
    gradcheck(lambda a: a.index_select(1, idx).exp(), A)
    gradcheck(lambda a: a[idx[:2]] * 3, A)


def test_unfold():
    _need("unfold")
    gradcheck(lambda a: a.unfold(1, 2, 1).exp(), A)
    gradcheck(lambda c: c.unfold(2, 2, 2) * c.unfold(2, 2, 2), CUBE)


# ----------------------------------------------------------------- second order gradients
SECOND_ORDER = [
    ("mul_exp", lambda a, b: (a * b).exp(), (A, B)),
    ("div", lambda a, b: a / b, (A, AWAY)),
    ("pow", lambda p, b: p ** b, (POS, B)),
    ("tanh_sigmoid", lambda a: a.tanh() * a.sigmoid(), (A,)),
    ("log_sqrt", lambda p: p.log() * p.sqrt(), (POS,)),
    ("softmax_like", lambda a: (a - a.logsumexp(1, keepdim=True)).exp(), (A,)),
    ("prod", lambda a: a.prod(1), (A,)),
    ("maximum_where", lambda a, b: torch.where(torch.tensor(MASK), torch.maximum(a, b) ** 2, a),
     (A, B)),
]


@pytest.mark.parametrize("name,fn,inputs", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_second_order_finite_differences(name, fn, inputs):
    """The gradient graph is differentiable again (create_graph=True): check v . dg/dx."""
    rng = np.random.default_rng(7)
    v = None

    def grad_fn(*xs):
        nonlocal v
        xs = [x if x.requires_grad else x.requires_grad_() for x in xs]
        out = fn(*xs)
        if v is None:
            v = rng.standard_normal(tuple(out.shape))
        gs = torch.autograd.grad((out * torch.tensor(v)).sum(), xs, create_graph=True)
        return tuple(gs)

    xs0 = [torch.tensor(np.array(a, np.float64), requires_grad=True) for a in inputs]
    grad_fn(*xs0)  # fixes v
    gradcheck(grad_fn, *inputs, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------ PyTorch's conventions, exact
def _grad(fn, *arrays):
    xs = [torch.tensor(np.array(a, np.float64), requires_grad=True) for a in arrays]
    out = fn(*xs)
    gs = torch.autograd.grad(out.sum() if out.numel() != 1 else out.reshape(()), xs,
                             allow_unused=True)
    realize_tensors([g for g in gs if g is not None])
    return [None if g is None else g.numpy() for g in gs]


def test_prod_with_zeros_is_exact(backend):
    a = np.array([[2.0, 0.0, 3.0, 4.0], [0.0, 5.0, 0.0, 1.5], [1.0, -2.0, 0.5, 3.0]])
    (g,) = _grad(lambda x: x.prod(1), a)
    want = np.array([[np.prod(np.delete(r, i)) for i in range(4)] for r in a])
    np.testing.assert_array_equal(g, want)
    (g,) = _grad(lambda x: x.prod(), a[:1])
    np.testing.assert_array_equal(g, [[0.0, 24.0, 0.0, 0.0]])
    (g,) = _grad(lambda x: x.prod(0), a)
    want = np.array([[np.prod(np.delete(a[:, j], i)) for j in range(4)] for i in range(3)])
    np.testing.assert_array_equal(g, want)


def test_cumprod_with_zeros_is_exact(backend):
    # d/dx_i sum_j cumprod(x)_j = sum_{j>=i} prod_{k<=j, k!=i} x_k
    a = np.array([[2.0, 0.0, 3.0, 0.0, 5.0], [1.5, 2.0, -1.0, 0.5, 0.0],
                  [0.0, 2.0, 3.0, 4.0, 1.0]])
    (g,) = _grad(lambda x: x.cumprod(1), a)
    want = np.zeros_like(a)
    for r in range(a.shape[0]):
        for i in range(5):
            want[r, i] = sum(np.prod(np.delete(a[r, :j + 1], i)) for j in range(i, 5))
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=0)


def test_maximum_ties_split_the_gradient(backend):
    a = np.array([1.0, 2.0, 3.0, -1.0])
    b = np.array([1.0, 0.0, 3.0, 2.0])
    ga, gb = _grad(lambda x, y: torch.maximum(x, y), a, b)
    np.testing.assert_array_equal(ga, [0.5, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(gb, [0.5, 0.0, 0.5, 1.0])
    ga, gb = _grad(lambda x, y: torch.minimum(x, y), a, b)
    np.testing.assert_array_equal(ga, [0.5, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(gb, [0.5, 1.0, 0.5, 0.0])


def test_relu_abs_at_zero(backend):
    a = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(_grad(lambda x: x.relu(), a)[0], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(_grad(lambda x: x.abs(), a)[0], [-1.0, 0.0, 1.0])


def test_clamp_boundaries_pass_the_gradient(backend):
    """clamp's gradient is 1 on the closed interval [min, max], unlike relu's at 0."""
    a = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(_grad(lambda x: x.clamp(0.0, 1.0), a)[0],
                                  [0.0, 1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(_grad(lambda x: x.clamp(min=0.0), a)[0],
                                  [0.0, 1.0, 1.0, 1.0, 1.0])


def test_amax_and_max_split_ties_evenly(backend):
    a = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [5.0, 1.0, 5.0, 5.0]])
    g = _grad(lambda x: x.amax(), a)[0]
    np.testing.assert_allclose(g, (a == 5.0) / 3.0, rtol=1e-15)
    g = _grad(lambda x: x.max(), a)[0]
    np.testing.assert_allclose(g, (a == 5.0) / 3.0, rtol=1e-15)
    g = _grad(lambda x: x.amax(1), a)[0]
    np.testing.assert_allclose(g, [[0, .5, .5, 0], [.25, .25, .25, .25], [1 / 3, 0, 1 / 3, 1 / 3]],
                               rtol=1e-15)
    g = _grad(lambda x: x.amin(1), a)[0]
    np.testing.assert_allclose(g, [[0, 0, 0, 1], [.25, .25, .25, .25], [0, 1, 0, 0]])


@pytest.mark.parametrize("shape", [(2, 2), (3, 37), (64, 129)])
@pytest.mark.parametrize("reduce", ["max", "min", "amax0", "amax1", "amin0", "amin1"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_of_a_computed_input_finds_its_winners(backend, shape, reduce, dtype):
    """The forward extreme and the backward comparison may come from differently vectorized
    loops: the gradient must still reach exactly the winners (a float32 exp/sigmoid chain
    whose recomputed values differed in the last bit gave all-NaN gradients)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shape).astype(np.float32 if dtype == torch.float32 else np.float64)
    for act, np_act in (("exp", np.exp), ("sigmoid", lambda v: 1 / (1 + np.exp(-v)))):
        x = torch.tensor(a, requires_grad=True)
        y = getattr(x, act)()
        if reduce in ("max", "min"):
            out, axis = getattr(y, reduce)(), None
        else:
            out, axis = getattr(y, reduce[:4])(int(reduce[4])), int(reduce[4])
        out.sum().backward()
        g = x.grad.numpy()
        assert np.isfinite(g).all(), (act, reduce, g)
        v = np_act(a.astype(np.float64))
        win = (np.argmax if "max" in reduce else np.argmin)(v, axis=axis)
        want = np.zeros_like(v)
        if axis is None:
            want.flat[win] = 1.0
        else:
            np.put_along_axis(want, np.expand_dims(win, axis), 1.0, axis)
        want *= {"exp": v, "sigmoid": v * (1 - v)}[act]      # d act / dx at the winner
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=0, err_msg=f"{act} {reduce}")


def test_floor_divide_has_no_derivative(backend):
    """`//` has no derivative in PyTorch (backward raises); div(rounding_mode=...) has a zero
    one, and remainder's gradient, which uses the quotient, still works twice over."""
    x = torch.tensor([1.5, -2.5, 7.0], requires_grad=True)
    y = x // 2
    assert y.requires_grad
    with pytest.raises(RuntimeError, match="derivative for aten::floor_divide is not implemented"):
        y.sum().backward()
    for mode in ("floor", "trunc"):
        x = torch.tensor([1.5, -2.5, 7.0], requires_grad=True)
        q = x.div(2, rounding_mode=mode)
        np.testing.assert_array_equal(q.detach().numpy(),
                                      np.floor([0.75, -1.25, 3.5]) if mode == "floor"
                                      else np.trunc([0.75, -1.25, 3.5]))
        q.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    x = torch.tensor([1.5, -2.5, 7.0], requires_grad=True)
    d = torch.tensor([0.7, 1.1, -2.0], requires_grad=True)
    (gd,) = torch.autograd.grad((x % d).sum(), [d], create_graph=True)
    np.testing.assert_allclose(gd.detach().numpy(), -np.floor(np.array([1.5, -2.5, 7.0]) /
                                                              np.array([0.7, 1.1, -2.0])))
    (gx,) = torch.autograd.grad(gd.sum(), [x], allow_unused=True)
    assert gx is None or not gx.numpy().any()


def test_extreme_with_nan_sends_the_gradient_to_the_nans(backend):
    a = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 1.0, 0.0]])
    (g,) = _grad(lambda x: x.max(), a)
    np.testing.assert_array_equal(g, [[0, 0.5, 0, 0.5], [0, 0, 0, 0]])


def test_max_with_dim_sends_the_gradient_to_the_returned_index(backend):
    a = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [5.0, 1.0, 5.0, 5.0]])
    x = torch.tensor(a, requires_grad=True)
    values, indices = x.max(1)
    values.sum().backward()
    want = np.zeros_like(a)
    want[np.arange(3), indices.numpy()] = 1.0
    np.testing.assert_array_equal(indices.numpy(), np.argmax(a, 1))
    np.testing.assert_array_equal(x.grad.numpy(), want)
    x = torch.tensor(a, requires_grad=True)
    values, indices = x.min(0, keepdim=True)
    values.sum().backward()
    want = np.zeros_like(a)
    want[np.argmin(a, 0), np.arange(4)] = 1.0
    np.testing.assert_array_equal(x.grad.numpy(), want)


def test_pow_at_zero_matches_pytorch(backend):
    # d/dx x**0 = 0 even at x = 0; d/de 0**e = 0 for e >= 0; x**2 at 0 is 0
    ga, gb = _grad(lambda x, e: x ** e, [0.0, 0.0, 2.0, 0.0], [0.0, 2.0, 0.0, 0.5])
    np.testing.assert_array_equal(ga, [0.0, 0.0, 0.0, np.inf])
    np.testing.assert_array_equal(gb, [0.0, 0.0, math.log(2.0), 0.0])
    np.testing.assert_array_equal(_grad(lambda x: x ** 2, [0.0, -1.0])[0], [0.0, -2.0])
    np.testing.assert_array_equal(_grad(lambda x: x ** 0, [0.0, -1.0])[0], [0.0, 0.0])


def test_where_masks_the_unselected_branch(backend):
    a = np.array([-1.0, 0.5, 2.0])
    (g,) = _grad(lambda x: torch.where(x > 0, x.log(), x * 0), a)
    assert np.isfinite(g[[0]]).all()  # grad flows through where, not into log(-1)
    np.testing.assert_allclose(g, [0.0, 2.0, 0.5])


def test_cast_gradient_has_the_source_dtype(backend):
    a = np.array([0.1, 0.2, 0.3], np.float32)
    x = torch.tensor(a, requires_grad=True)
    (x.double() * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    assert x.grad.dtype == torch.float32
    np.testing.assert_array_equal(x.grad.numpy(), np.array([1, 2, 3], np.float32))
    y = torch.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (y.float() * 3).sum().backward()
    assert y.grad.dtype == torch.float64
    np.testing.assert_array_equal(y.grad.numpy(), [3.0, 3.0])


def test_integer_results_carry_no_gradient():
    x = torch.tensor(np.array([1.5, -2.0, 3.0]), requires_grad=True)
    for t in (x > 0, x.argmax(), x.long(), x.isnan(), x.max(0).indices):
        assert not t.requires_grad and t.grad_fn is None


# ------------------------------------------------------------------------------ coverage
def test_every_differentiable_op_has_a_rule():
    missing = [op.name for op in Op
               if op not in autograd_rules.NO_GRAD and op not in autograd_rules.GRAD]
    assert not missing, f"ops without a gradient rule: {missing}"
    assert not set(autograd_rules.GRAD) & set(autograd_rules.NO_GRAD)


def test_every_rule_is_exercised_by_a_finite_difference_case():
    """Every GRAD entry appears in the forward graph of some case above (or of the optional
    ops' tests, when those ops exist)."""
    seen: set[Op] = set()
    for _, fn, inputs in CASES:
        xs = [torch.tensor(np.array(a, np.float64), requires_grad=True) for a in inputs]
        outs = _outputs(fn(*xs))
        seen.update(n.op for n in toposort([o.node for o in outs]))
    # (a custom Function's rule calls the user's backward: tests/test_autograd_function.py)
    optional = {Op.PAD, Op.GATHER, Op.SCATTER, Op.UNFOLD, Op.FUNCTION}
    # CAST is checked exactly (float32 rounding defeats finite differences); IDIV's rule
    # raises (test_floor_divide_has_no_derivative)
    exact = {Op.CAST, Op.IDIV}
    unexercised = set(autograd_rules.GRAD) - seen - optional - exact
    assert not unexercised, sorted(op.name for op in unexercised)
