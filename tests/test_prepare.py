"""realize.prepare: substitution and the plan-cache key in one walk."""
import numpy as np

import lazytorch as torch
from lazytorch.engine import realize


def _graph(a, b):
    return ((a * 2 + b).exp() - a).sum(0)


def test_prepare_matches_substitute():
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    mid = a * 3
    mid.numpy()                       # a realized node inside the graph becomes an input
    y = (mid + b).relu() * mid
    outs, ins, key, *_ = realize.prepare([y.node])
    outs2, ins2 = realize.substitute([y.node])
    assert outs == outs2 and ins == ins2
    assert key == realize.prepare([y.node])[2]


def test_same_structure_new_buffers_share_a_key():
    k1 = realize.prepare([_graph(torch.randn(3, 4), torch.randn(3, 4)).node])[2]
    k2 = realize.prepare([_graph(torch.randn(3, 4), torch.randn(3, 4)).node])[2]
    assert k1 == k2


def test_aliasing_and_shapes_change_the_key():
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    base = realize.prepare([_graph(a, b).node])[2]
    assert realize.prepare([_graph(a, a).node])[2] != base            # one input, not two
    assert realize.prepare([_graph(b, a).node])[2] == base            # positions, not names
    assert realize.prepare([_graph(torch.randn(5, 4), torch.randn(5, 4)).node])[2] != base
    c = torch.randn(3, 4, dtype=torch.float64)
    assert realize.prepare([_graph(c, c * 1).node])[2] != base


def test_replayed_plan_gives_fresh_results(rng):
    for _ in range(3):
        a = rng.standard_normal((3, 4)).astype(np.float32)
        b = rng.standard_normal((3, 4)).astype(np.float32)
        got = _graph(torch.tensor(a), torch.tensor(b)).numpy()
        np.testing.assert_allclose(got, (np.exp(a * 2 + b) - a).sum(0), rtol=1e-5)


def test_compiling_pauses_the_collector_and_restores_it():
    import gc

    from lazytorch.engine import backends
    from lazytorch.engine.plan import compile_graph, gc_paused
    x = torch.randn(8)
    y = (x * 2 + 1).exp()
    seen = []
    with gc_paused():
        seen.append(gc.isenabled())
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        _, sched = compile_graph([y.node], backends.get("c").renderer)
        assert not gc.isenabled()   # left as the caller had it
    finally:
        gc.enable()
    assert len(sched.kernels) == 1 and "exp" in sched.kernels[0].source
