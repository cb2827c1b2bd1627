"""The compiled host loops (runtime/native/*.c) against their Python versions, on the same
graphs (test_native_choice.py: which of the two a process runs)."""
from __future__ import annotations

import gc
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.engine import realize
from lazytorch.ir import graph, sites
from lazytorch.ir.graph import Node
from lazytorch.ir.ops import Op
from lazytorch.runtime import native

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(native.module() is None and native._include() is None,
                                reason="this interpreter has no Python.h to build against")


def _graphs():
    """(name, outputs) pairs covering each path of the walk."""
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    mid = a * 3
    sub = (mid + b).relu() * mid
    mid.numpy()                  # realized after sub was built: sub's walk reads its buffer
    w = torch.randn(4, requires_grad=True)
    h = (a * w).sum()                              # grad-carrying: keeps its node when realized
    h.detach().numpy()
    c = torch.ones(3, 4) * 2.5
    c.numpy()                                      # a realized broadcast constant stays inline
    deep = a
    for _ in range(700):                           # deeper than the walk's first stack
        deep = deep * 1.001 + b
    d = a.detach()
    return [
        ("substituted", [sub.node]),
        ("buffer", [((mid + b).relu() * mid).node]),
        ("grad-carrying", [(h * a + w).node]),
        ("constant", [(c + a).node]),
        ("aliased", [(a + a).node, (a * b).node]),
        ("shared outputs", [(a * 2).node, ((a * 2) + 1).node, (a * 2).node]),
        ("detach and reduce", [(d.exp().sum(1, keepdim=True) - b).node]),
        ("deep", [deep.node]),
    ]


@pytest.mark.parametrize("case", range(8))
def test_prepare_matches_python(mod, case):
    name, outs = _graphs()[case]
    got = mod.prepare(outs)
    want = realize.prepare_py(outs)
    assert got[0] == want[0], name    # hash-consing: equal graphs are the same nodes
    assert got[1] == want[1], name
    assert got[2] == want[2], name
    assert len(got) == len(want) == 5
    assert all(g is w for g, w in zip(got[3], want[3])) and len(got[3]) == len(want[3])
    assert all(g is w for g, w in zip(got[4], want[4])) and len(got[4]) == len(want[4])
    assert isinstance(got[2], tuple)


def test_prepare_substitutes_and_inherits_the_line(mod):
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    mid = a * 3
    y = (mid + b).exp()
    m = mid.node
    mid.numpy()
    (new,), inputs, *_ = mod.prepare([y.node])
    assert new is not y.node and new.op is Op.EXP
    assert new.srcs[0].srcs[0] is realize.REALIZED[m] is mid.node
    assert inputs == [mid.node, b.node]
    assert sites.site_of(new) == sites.site_of(y.node)


def test_prepare_reports_errors(mod):
    with pytest.raises(TypeError):
        mod.prepare(3)
    with pytest.raises(AttributeError):
        mod.prepare([object()])


def test_realize_runs_the_compiled_walk(mod, rng):
    assert realize._prepare is mod.prepare
    x = rng.standard_normal((5, 6)).astype(np.float32)
    t = torch.tensor(x)
    np.testing.assert_allclose(((t * 2).exp() - t).sum(0).numpy(),
                               (np.exp(x * 2) - x).sum(0), rtol=1e-5)


def test_dead_drops_cache_and_side_entries(mod):
    assert graph._dead is mod.dead
    x = torch.randn(7)
    y = x
    for _ in range(50):
        y = y * 1.25 - 0.5
    chain = []
    n = y.node
    while n.op is not Op.BUFFER:
        chain.append(n)
        n = n.srcs[0]
    refs = [weakref.ref(n) for n in chain]
    ids = [id(n) for n in chain]
    assert len(chain) >= 100 and all(i in sites.SITES.d for i in ids)
    before = len(graph._CACHE)
    del y, n, chain
    gc.collect()
    assert not any(r() for r in refs)
    assert len(graph._CACHE) <= before - len(refs)     # each node's entry went with it
    assert not any(i in sites.SITES.d for i in ids)


def test_dead_keeps_a_newer_entry(mod):
    # the callback only removes the entry that is its own
    ref = graph._Ref(Node(Op.CONST, (), 123456.75, (), torch.float32), None)
    key = ("not", "this", "ref")
    graph._CACHE[key] = other = graph._Ref(Node(Op.CONST, (), 1.5, (), torch.float32), None)
    ref.key, ref.id = key, -1
    mod.dead(ref)
    assert graph._CACHE.pop(key) is other


def test_new_node_is_the_python_constructor(mod):
    f32 = torch.float32
    a = graph.new_node(Op.CONST, (), 2.5, (), f32)
    b = graph.new_node_py(Op.CONST, (), 2.5, (), f32)
    assert a is b is Node(Op.CONST, (), 2.5, (), f32)        # one population, one cache
    made = mod.new_node(Op.EXP, (a,), None, (), f32)
    assert made is graph.new_node_py(Op.EXP, (a,), None, (), f32)
    assert (made.op, made.srcs, made.arg, made.shape, made.dtype) == (Op.EXP, (a,), None, (), f32)
    with pytest.raises(AttributeError):
        made.op = Op.LOG
    # constants by type and spelling: == would merge these
    values = [0.0, -0.0, 1, 1.0, True, float("nan")]
    nodes = [mod.new_node(Op.CONST, (), v, (), f32) for v in values]
    assert len({id(n) for n in nodes}) == len(values)
    assert mod.new_node(Op.CONST, (), float("nan"), (), f32) is nodes[-1]
    assert mod.new_node(Op.CONST, (), 1.0, (), torch.float64) is not nodes[3]
    with pytest.raises(TypeError):
        mod.new_node(Op.EXP, (a,), None, ())


def test_new_node_entries_die_with_their_nodes(mod):
    f32 = torch.float32
    n = mod.new_node(Op.CONST, (), 98765.125, (), f32)
    key = (Op.CONST, (), (float, "98765.125"), (), f32, None)   # a source's key has its device
    assert graph._CACHE[key]() is n and graph._CACHE[key].id == id(n)
    del n
    gc.collect()
    assert key not in graph._CACHE


def _site_here(record, node, api):
    record(node, sys._getframe(0), api)
    return sites.SITES.d.pop(id(node))


def test_record_from_is_the_python_walk(mod):
    x = torch.randn(3)
    n = graph.new_node(Op.EXP, (x.node,), None, (3,), torch.float32)
    sites.SITES.d.pop(id(n), None)
    got = _site_here(mod.record_from, n, "exp")
    want = _site_here(sites.record_from_py, n, "exp")
    # (the offsets may differ: a frame's last instruction is read while it calls a builtin in
    # one case and a Python function in the other; the line is the same)
    assert sites._format(got) == sites._format(want)
    assert got[2] == "exp" and got[0] is _site_here.__code__
    with pytest.raises(TypeError):
        mod.record_from(n, None, "exp")


def test_sites_name_the_user_line_and_api(mod):
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    line = sys._getframe(0).f_lineno + 1
    y = torch.matmul(a, b).relu()
    assert sites.site_of(y.node) == f"test_native.py:{line}"
    assert sites.api_of(y.node) == "relu"
    # the nodes matmul built on the way (reshapes, broadcasts, the product) share its line
    inner = [n for n in graph.toposort([y.node.srcs[0]]) if n.op is not Op.BUFFER]
    assert len(inner) > 2
    assert all(sites.site_of(n) == f"test_native.py:{line}" for n in inner)
    assert all(sites.api_of(n) == "matmul" for n in inner)


def test_nodes_are_not_traversed_by_the_cycle_collector(mod):
    # nodes, their cache keys and weakrefs, and sites cannot be part of a cycle (a node holds
    # only older nodes and static data), so the collector need not walk them every step
    x = torch.randn(5)
    y = (x * 3.5).exp()
    n = y.node
    assert not gc.is_tracked(n)
    ref = graph._CACHE[(n.op, n.srcs, n.arg, n.shape, n.dtype)]
    assert not gc.is_tracked(ref) and not gc.is_tracked(ref.key)
    assert not gc.is_tracked(sites.SITES.d[id(n)])
    r = weakref.ref(n)
    del y, n, ref
    assert r() is None            # freed by reference counting alone


def test_toposort_is_the_python_walk(mod):
    x, w = torch.randn(4, 6), torch.randn(6, 3)
    y = x
    for _ in range(400):                       # deeper than the walk's first stack
        y = (y * 0.5 + x).tanh()
    z = (y @ w).relu().sum(0)
    outs = [z.node, y.node, x.node, z.node]
    assert mod.toposort(outs, None) == graph.toposort_py(outs)
    stop = lambda n: n.op in (Op.SUM, Op.TANH)  # noqa: E731
    assert mod.toposort(outs, stop) == graph.toposort_py(outs, stop)
    assert graph.toposort(outs) == graph.toposort_py(outs)
    with pytest.raises(ZeroDivisionError):
        mod.toposort(outs, lambda n: 1 / 0)
    with pytest.raises(TypeError):
        mod.toposort(outs)


def test_python_callbacks_cannot_pull_the_walks_inputs_away(mod):
    # outputs and realized entries are held while Python code runs (is_leaf, is_constant)
    f32 = torch.float32
    outs = [Node(Op.CONST, (), float(i) + 0.123, (), f32) for i in range(50)]
    want = list(outs)

    def is_leaf(n):
        outs.clear()
        outs.extend(object() for _ in range(3))
        _ = [bytearray(400) for _ in range(200)]
        return True
    assert mod.toposort(outs, is_leaf) == want

    x = Node(Op.EXP, (Node(Op.BUFFER, (), 7, (3,), f32),), None, (3,), f32)
    y = Node(Op.NEG, (x,), None, (3,), f32)
    # the realized table's entry (id(node) -> buffer node, realize.REALIZED.d) holds the only
    # reference to the first buffer, and is_constant replaces it
    table = {id(x): Node(Op.BUFFER, (), 11111, (3,), f32)}
    first = weakref.ref(table[id(x)])

    def is_constant(n):
        table[id(n)] = Node(Op.BUFFER, (), 22222, (3,), f32)
        _ = [(1.5, 2.5, "x" * 3) for _ in range(1000)]
        return False
    mod.setup(table, Op.BUFFER, Op.CONST, Op.DETACH, is_constant, graph.new_node,
              sites.inherit, Op.FUNCTION)
    try:
        inputs = mod.prepare([y])[1]
        assert first() is not None and inputs == [first()] and inputs[0].arg == 11111
    finally:
        realize._use_native(mod)


def test_a_failing_classification_raises(mod):
    class Bad:
        def __bool__(self):
            raise ValueError("no truth")

    def frame():
        return sys._getframe(0)
    f = frame()
    sites._CODES[id(frame.__code__)] = (frame.__code__, Bad())
    try:
        with pytest.raises(ValueError, match="no truth"):
            mod.record_from(torch.randn(2).node, f, "api")
    finally:
        sites._CODES.pop(id(frame.__code__), None)


def test_fast_slots_take_only_a_types_own_slots(mod):
    class Other:
        __slots__ = ("x",)
    Other.srcs = Node.__dict__["srcs"]
    with pytest.raises(TypeError, match="not an object slot"):
        mod.fast_slots(Other, ("srcs",))


def test_plan_keys_are_not_tracked_by_the_cycle_collector(mod):
    # a large graph's key has an entry per node: collections during the walk must not visit
    # them all (that made the walk superlinear)
    x = torch.randn(4)
    y = (x * 2).exp() + x
    key = mod.prepare([y.node])[2]
    assert key == realize.prepare_py([y.node])[2]
    entries = [e for e in key[:-1]]
    assert entries and not any(gc.is_tracked(e) for e in entries)
    assert not any(gc.is_tracked(e[4]) for e in entries if len(e) == 5)


def test_address_is_the_arrays_data_pointer(mod):
    from lazytorch.runtime import memory
    for a in (np.arange(10.0), np.zeros((3, 4), np.float32), np.zeros(0), np.ones(5, bool)):
        assert mod.address(a) == a.ctypes.data == memory.address_of_py(a)
    frozen = np.arange(4)
    frozen.flags.writeable = False
    assert mod.address(frozen) == frozen.ctypes.data
    with pytest.raises(ValueError, match="contiguous"):
        mod.address(np.arange(10.0)[::2])


def test_buffers_live_as_long_as_their_nodes():
    from lazytorch.runtime import memory
    n0 = memory.live_buffers()
    b = memory.buffer_node(np.arange(6.0))
    assert memory.live_buffers() == n0 + 1
    assert memory.address(b) == memory.data(b).ctypes.data
    np.testing.assert_array_equal(memory.data(b), np.arange(6.0))
    del b
    gc.collect()
    assert memory.live_buffers() == n0


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
