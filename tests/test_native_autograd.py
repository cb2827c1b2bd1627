"""The compiled autograd bookkeeping (runtime/native_autograd.c, mark_backward in
native_sites.c) against the Python versions, on the same graphs."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import autograd, sites
from lazytorch.graph import toposort
from lazytorch.runtime import native

pytestmark = pytest.mark.skipif(native._include() is None,
                                reason="this interpreter has no Python.h to build against")


@pytest.fixture
def python_versions(monkeypatch):
    """Run the Python versions where the compiled ones are installed."""
    monkeypatch.setattr(autograd, "tracked", autograd.tracked_py)
    monkeypatch.setattr(autograd, "_grad_graph", autograd._grad_graph_py)
    monkeypatch.setattr(autograd, "on_new_tensor", autograd.on_new_tensor_py)
    monkeypatch.setattr(sites, "mark_backward", sites.mark_backward_py)


def _model(rng, depth: int = 3):
    """Parameters and a loss mixing the paths of the walks: shared subexpressions, integer and
    comparison ops (no gradient), detach, an untracked input, a cast, a deep chain."""
    w = torch.tensor(rng.standard_normal((5, 4)), dtype=torch.float32, requires_grad=True)
    b = torch.tensor(rng.standard_normal(4), dtype=torch.float32, requires_grad=True)
    s = torch.tensor(rng.standard_normal(()), dtype=torch.float64, requires_grad=True)
    x = torch.tensor(rng.standard_normal((3, 5)), dtype=torch.float32)
    h = x @ w + b
    for _ in range(depth):
        h = torch.where(h > 0, h * h.detach().mean(), h.tanh()) + h.argmax(1, keepdim=True)
    mask = (h > 0.1).to(torch.float32)
    loss = (h * mask).sum() + (h.double() * s).exp().mean() + (h * h).sum(0).max()
    return [w, b, s], loss


def _grads(seed: int, **kw):
    params, loss = _model(np.random.default_rng(seed), **kw)
    roots, grads = autograd._root_grads([loss], [None], "backward")
    return params, roots, grads


@pytest.mark.parametrize("seed", range(4))
def test_tracked_is_the_python_walk(mod, seed):
    params, roots, _ = _grads(seed)
    nodes = toposort(roots)
    autograd._TRACKED.clear()
    want = [autograd.tracked_py(n) for n in reversed(nodes)]   # (outputs first: deep walks)
    autograd._TRACKED.clear()
    got = [mod.tracked(n) for n in reversed(nodes)]
    assert got == want
    assert any(want) and not all(want)
    autograd._TRACKED.clear()
    assert [mod.tracked(n) for n in nodes] == [autograd.tracked_py(n) for n in nodes]


@pytest.mark.parametrize("seed", range(4))
def test_grad_graph_is_the_python_walk(mod, seed):
    params, roots, grads = _grads(seed, depth=2 + seed)
    want = autograd._grad_graph_py(roots, grads, None, True)
    got = mod.grad_graph(roots, grads, None, True)
    assert list(got) == list(want)   # the same nodes in the same order
    # hash-consing: equal gradient graphs are the same nodes (the sums in the same order)
    assert all(got[k] is want[k] for k in want)
    leaves = [p._grad_node or p.node for p in params]
    assert all(n in got for n in leaves)


def test_grad_graph_targets_stop_at_sourceless_nodes(mod):
    x = torch.randn(3, requires_grad=True)
    y = x * 2
    z = (y * y).sum()
    roots, grads = autograd._root_grads([z], [None], "grad")
    targets = {y.node}
    want = autograd._grad_graph_py(roots, grads, targets, True)
    got = mod.grad_graph(roots, grads, targets, True)
    assert list(got) == list(want)
    assert all(got[k] is want[k] for k in want)


def test_backward_twice_raises_the_same_error(mod):
    for walk in (autograd._grad_graph_py, mod.grad_graph):
        _, roots, grads = _grads(7)
        walk(roots, grads, None, False)
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            walk(roots, grads, None, False)


def test_missing_rule_raises_the_same_error(mod, monkeypatch):
    from lazytorch.autograd_rules import GRAD
    from lazytorch.ops import Op
    monkeypatch.delitem(GRAD, Op.TANH)
    x = torch.randn(3, requires_grad=True)
    roots, grads = autograd._root_grads([x.tanh().sum()], [None], "backward")
    for walk in (autograd._grad_graph_py, mod.grad_graph):
        with pytest.raises(RuntimeError, match="derivative for tanh is not implemented"):
            walk(roots, grads, None, True)


def test_rule_errors_propagate(mod, monkeypatch):
    from lazytorch.autograd_rules import GRAD
    from lazytorch.ops import Op

    def broken(n, g):
        raise ValueError("broken rule")
    monkeypatch.setitem(GRAD, Op.EXP, broken)
    x = torch.randn(3, requires_grad=True)
    roots, grads = autograd._root_grads([x.exp().sum()], [None], "backward")
    with pytest.raises(ValueError, match="broken rule"):
        mod.grad_graph(roots, grads, None, True)
    with pytest.raises(TypeError):
        mod.grad_graph(roots, grads, None)


def _rerun(new_tensor):
    """A forward re-run after a backward freed it (hash-consing hands back the same nodes): the
    nodes each version marks as born again, and the node a no_grad result gets."""
    torch.manual_seed(0)
    w = torch.randn(4, 3, requires_grad=True)
    x = torch.randn(2, 4)

    def forward():
        return ((x @ w).tanh() * 2).sum(1).exp().mean()
    forward().backward()
    start = next(autograd._clock)
    made = []
    real = autograd.on_new_tensor
    autograd.on_new_tensor = lambda t: (made.append(t), new_tensor(t))[1]
    try:
        out = forward()
        with torch.no_grad():
            frozen = (x @ w) * 3
    finally:
        autograd.on_new_tensor = real
    reborn = sorted(i for i, b in autograd._BORN.items() if b > start)
    out.backward()   # (the re-run is a fresh graph: no "backward a second time" error)
    return ([t.requires_grad for t in made], [t._grad_node is t._node for t in made],
            reborn, frozen.node, frozen.requires_grad, w.grad.numpy())


def test_on_new_tensor_is_the_python_version(mod):
    want = _rerun(autograd.on_new_tensor_py)
    got = _rerun(mod.on_new_tensor)
    assert got[:2] == want[:2] and any(got[0]) and not all(got[0])
    assert len(got[2]) == len(want[2]) > 0
    assert got[3].srcs[0].op.name == want[3].srcs[0].op.name == "DETACH"   # (x @ w) detached
    assert not got[4] and not want[4]
    np.testing.assert_array_equal(got[5], want[5])


def test_mark_backward_is_the_python_marking(mod):
    x = torch.randn(4, requires_grad=True)
    y = x.sin()                                    # recorded at this line
    made = [(x * 2).node, y.node]                  # y's node was made by the user: forward
    tables = []
    for mark in (sites.mark_backward_py, mod.mark_backward):
        for n in made:
            sites.BACKWARD.d.pop(id(n), None)
        sites._SITES_D.pop(id(made[0]), None)
        mark(made, y.node)
        tables.append((sites._SITES_D.get(id(made[0])), sites._SITES_D.get(id(made[1])),
                       id(made[0]) in sites.BACKWARD.d, id(made[1]) in sites.BACKWARD.d))
    assert tables[0] == tables[1]
    assert tables[0][2] and not tables[0][3]
    assert tables[0][0][-1] == "sin (backward)"
    assert sites.api_of(made[0]) == "sin (backward)"


@pytest.mark.parametrize("seed", range(3))
def test_training_is_the_same_with_either_version(seed, request):
    """Gradients and updated weights of a few SGD steps, compiled and Python bookkeeping,
    against the float64 numpy reference of the same model."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    w0 = rng.standard_normal((3, 6)).astype(np.float32) * 0.3

    def run():
        w = torch.tensor(w0.copy(), requires_grad=True)
        opt = torch.optim.SGD([w], lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(torch.tensor(x) @ w.t(), torch.tensor(y))
            loss.backward()
            opt.step()
        return w.detach().numpy()

    compiled = run()
    request.getfixturevalue("python_versions")
    python = run()
    w = w0.astype(np.float64)
    for _ in range(3):
        z = x @ w.T
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(8), y] -= 1
        w -= 0.1 * (p / 8).T @ x
    np.testing.assert_allclose(compiled, w, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(compiled, python)


@pytest.mark.parametrize("version", ["python", "compiled"])
def test_a_freed_result_stays_freed(mod, monkeypatch, version):
    """Ops on a result whose graph a backward freed do not make that graph fresh again."""
    monkeypatch.setattr(autograd, "on_new_tensor",
                        autograd.on_new_tensor_py if version == "python" else mod.on_new_tensor)
    w = torch.randn(4, 3, requires_grad=True)
    h = (torch.randn(2, 4) @ w).tanh()
    (h * 2).sum().backward()
    again = (h * 2).sum(1).exp().mean()   # h's graph was freed: only the new ops are fresh
    with pytest.raises(RuntimeError, match="a second time"):
        again.backward()


def test_backward_sites_of_equal_code_in_two_files(mod, tmp_path, monkeypatch):
    """Code objects compare equal across files: the compiled mark_backward's memo of backward
    sites must still give each file's nodes their own line."""
    import importlib
    for name in ("twin_a", "twin_b"):
        (tmp_path / f"{name}.py").write_text("def f(x):\n    return x.sin()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    twins = [importlib.import_module(n) for n in ("twin_a", "twin_b")]
    assert twins[0].f.__code__ == twins[1].f.__code__
    got = []
    for twin in twins:
        x = torch.randn(4, requires_grad=True)
        y = twin.f(x)
        made = [(x * 3.25).node]
        sites._SITES_D.pop(id(made[0]), None)
        mod.mark_backward(made, y.node)
        got.append(sites.site_of(made[0]))
    assert got == ["twin_a.py:2", "twin_b.py:2"]


def test_deep_graphs_outgrow_the_walks_first_stacks(mod):
    w = torch.randn(3, requires_grad=True)
    y = w
    for i in range(300):                      # deeper than the walks' first stacks (64)
        y = (y * 1.001).tanh() if i % 2 else y + w
    roots, grads = autograd._root_grads([y.sum()], [None], "backward")
    nodes = toposort(roots)
    autograd._TRACKED.clear()
    got = mod.tracked(roots[0])
    autograd._TRACKED.clear()
    assert got is autograd.tracked_py(roots[0]) is True
    want = autograd._grad_graph_py(roots, grads, None, True)
    assert list(mod.grad_graph(roots, grads, None, True)) == list(want)
    assert len(nodes) > 300
