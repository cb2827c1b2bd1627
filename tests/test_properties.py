"""Property tests: random graphs of elementwise, reduce and movement ops on random small shapes,
realized by the C backend and by the reference interpreter, must agree.

Each example draws a small program (a list of steps over a pool of tensors), builds it twice
over fresh input tensors holding the same data, and realizes one copy with
LAZYTORCH_BACKEND=c and the other with LAZYTORCH_BACKEND=interp.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lazytorch as torch
from lazytorch.frontend.tensor import realize_tensors
from tests.helpers import backend_env

# values on a lattice of quarters: sums, products and comparisons of them are exact in float32,
# so both backends agree bit for bit wherever no transcendental function is involved
values = st.integers(-8, 8).map(lambda i: i / 4)
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)

# unary ops: (name, fn, keeps exactness)
UNARY = [
    ("neg", lambda x: -x, True), ("abs", lambda x: x.abs(), True),
    ("relu", lambda x: x.relu(), True), ("square", lambda x: x.square(), True),
    ("sin", lambda x: x.sin(), False), ("tanh", torch.tanh, False),
    ("sigmoid", lambda x: x.sigmoid(), False), ("exp(-|x|)", lambda x: (-x.abs()).exp(), False),
    ("clamp", lambda x: x.clamp(-1, 1), True), ("x*0.5+1", lambda x: x * 0.5 + 1, True),
    ("floor", lambda x: x.floor(), True),
]
BINARY = [
    ("add", lambda x, y: x + y, True), ("sub", lambda x, y: x - y, True),
    ("mul", lambda x, y: x * y, True), ("maximum", torch.maximum, True),
    ("minimum", torch.minimum, True), ("div", lambda x, y: x / (1 + y.abs()), False),
]
REDUCE = ["sum", "mean", "amax", "amin", "prod", "cumsum", "logsumexp", "max"]


def _movement(draw, x):
    """A random view of x, as (name, fn) applied to a tensor of x's shape."""
    nd = x.ndim
    if nd == 0:
        n = draw(st.integers(1, 3))
        return "expand 0-d", lambda t: t.expand(n)
    kind = draw(st.sampled_from(["permute", "transpose", "flip", "narrow", "reshape",
                                 "unsqueeze", "expand", "squeeze", "t"]))
    if kind == "permute":
        perm = draw(st.permutations(range(nd)))
        return kind, lambda t: t.permute(*perm)
    if kind == "transpose" and nd >= 2:
        a, b = draw(st.integers(-nd, nd - 1)), draw(st.integers(-nd, nd - 1))
        return kind, lambda t: t.transpose(a, b)
    if kind == "flip":
        dims = draw(st.sets(st.integers(0, nd - 1), min_size=1))
        return kind, lambda t: t.flip(*dims)
    if kind == "narrow":
        d = draw(st.integers(0, nd - 1))
        n = x.shape[d]
        start = draw(st.integers(0, n - 1))
        length = draw(st.integers(1, n - start))
        return kind, lambda t: t.narrow(d, start, length)
    if kind == "reshape":
        new = draw(st.sampled_from([(-1,), (1, -1), (-1, 1)]))
        return kind, lambda t: t.reshape(*new)
    if kind == "unsqueeze":
        d = draw(st.integers(-nd - 1, nd))
        return kind, lambda t: t.unsqueeze(d)
    if kind == "expand":
        n = draw(st.integers(1, 3))
        return kind, lambda t: t.unsqueeze(0).expand(n, *t.shape)
    if kind == "squeeze":
        return kind, lambda t: t.squeeze()
    if kind == "t" and nd == 2:
        return kind, lambda t: t.t()
    return "identity", lambda t: t


def _reduce(draw, x):
    op = draw(st.sampled_from(REDUCE))
    nd = x.ndim
    if nd == 0:
        return op, (lambda t: t.sum()) if op in ("cumsum", "max") else (lambda t: getattr(t, op)(0))
    dim = draw(st.integers(-nd, nd - 1))
    keepdim = draw(st.booleans())
    if op == "cumsum":
        return op, lambda t: t.cumsum(dim)
    if op == "max":
        return op, lambda t: t.max(dim, keepdim).values
    if op == "logsumexp":
        return op, lambda t: t.logsumexp(dim, keepdim)
    if op == "prod" or not draw(st.booleans()):
        return op, lambda t: getattr(t, op)(dim, keepdim=keepdim)
    dims = tuple(sorted(draw(st.sets(st.integers(0, nd - 1), min_size=1))))
    return op, lambda t: getattr(t, op)(dims, keepdim=keepdim)


@st.composite
def programs(draw):
    """(input arrays, steps): each step maps the pool of tensors to a new tensor."""
    shape = draw(shapes)
    n_in = draw(st.integers(1, 2))
    arrays = [np.array(draw(st.lists(values, min_size=int(np.prod(shape)),
                                     max_size=int(np.prod(shape)))),
                       np.float32).reshape(shape) for _ in range(n_in)]
    # shape-only stand-ins to plan the program (building nodes costs no compute)
    pool = [torch.tensor(a) for a in arrays]
    exact = [True] * n_in
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "move", "where"]))
        i = draw(st.integers(0, len(pool) - 1))
        x = pool[i]
        if kind == "unary":
            name, fn, ex = draw(st.sampled_from(UNARY))
            step, ex = (lambda p, i=i, fn=fn: fn(p[i])), ex and exact[i]
        elif kind == "binary":
            name, fn, ex = draw(st.sampled_from(BINARY))
            partners = [j for j, t in enumerate(pool) if _broadcastable(t.shape, x.shape)]
            j = draw(st.sampled_from(partners))
            step, ex = (lambda p, i=i, j=j, fn=fn: fn(p[i], p[j])), ex and exact[i] and exact[j]
        elif kind == "reduce":
            name, fn = _reduce(draw, x)
            step, ex = (lambda p, i=i, fn=fn: fn(p[i])), exact[i] and name in (
                "sum", "amax", "amin", "cumsum", "max")
        elif kind == "move":
            name, fn = _movement(draw, x)
            step, ex = (lambda p, i=i, fn=fn: fn(p[i])), exact[i]
        else:
            # the condition only compares exact values, so both backends take the same branch
            conds = [j for j, t in enumerate(pool) if exact[j]
                     and _broadcastable(t.shape, x.shape)]
            if not conds:
                continue
            c = draw(st.sampled_from(conds))
            step = lambda p, i=i, c=c: torch.where(p[c] > 0, p[i], p[i].neg().float())  # noqa
            ex = exact[i]
        pool.append(step(pool))
        exact.append(ex)
        steps.append(step)
    return arrays, steps


def _broadcastable(a, b) -> bool:
    return all(x == y or x == 1 or y == 1 for x, y in zip(reversed(a), reversed(b)))


def _run(arrays, steps):
    pool = [torch.tensor(a) for a in arrays]
    for step in steps:
        pool.append(step(pool))
    outs = pool[len(arrays):]
    realize_tensors(outs[-2:])          # the last two results, realized together
    return [o.numpy() for o in outs[-2:]]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs())
def test_c_backend_matches_interpreter(prog):
    arrays, steps = prog
    with backend_env("c"):
        got = _run(arrays, steps)
    with backend_env("interp"):
        want = _run(arrays, steps)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        if w.dtype.kind == "f":
            scale = 1 + np.nanmax(np.abs(w[np.isfinite(w)]), initial=0)
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * scale, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)
