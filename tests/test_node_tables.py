"""The side tables keyed by node (graph.NodeTable): one type, each registered with the
hash-consing table's death callback, so a node's entries vanish when the node dies, in every
table, with the compiled host loops and with the Python versions."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.autograd import function
from lazytorch.engine import realize
from lazytorch.ir import graph, sites
from lazytorch.ir.graph import Node, NodeTable
from lazytorch.ir.ops import Op
from lazytorch.runtime import memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tables() -> dict[str, NodeTable]:
    ag = sys.modules["lazytorch.autograd"]
    return {"sites.SITES": sites.SITES, "sites.BACKWARD": sites.BACKWARD,
            "realize.REALIZED": realize.REALIZED, "autograd.LEAVES": ag.LEAVES,
            "autograd._NODE_HOOKS": ag._NODE_HOOKS, "autograd._tracked": ag._tracked,
            "autograd._consumed": ag._consumed, "autograd._born": ag._born,
            "autograd._results": ag._results, "memory._BUFS": memory._BUFS,
            "memory._DEVICE": memory._DEVICE, "function._APPLIED": function._APPLIED}


class _Twice(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2


def _workload() -> tuple[list[weakref.ref], dict[str, list[int]]]:
    """Run ops that fill every table: weakrefs to every node they reached, and by table the
    ids of those nodes that have an entry in it (while the workload holds them)."""
    x = torch.randn(4, 3)
    w = torch.randn(3, requires_grad=True)
    h = (x * w).relu()
    h.register_hook(lambda g: g * 1.0)
    loss = _Twice.apply(h).sum()
    loss.backward()
    mid = x + 1.5
    held = [mid.node, h.node, loss.node, w.node, w.grad.node]
    mid.numpy()          # mid's computed node -> its buffer, in REALIZED
    held.append(mid.node)
    held.append(memory.device_buffer_node(np.zeros(3, np.float32), 0, (3,), torch.float32,
                                          "cpu", memory.HOST))
    nodes = graph.toposort_py(held)
    nodes += [b for n in nodes if (b := realize.REALIZED.get(n)) is not None]
    return [weakref.ref(n) for n in nodes], {name: [id(n) for n in nodes if n in t]
                                             for name, t in _tables().items()}


def entries_of_dead_nodes() -> dict[str, list[int]]:
    """For each table: (how many of the workload's nodes had an entry while alive, how many
    entries remain of the nodes that died)."""
    refs, had = _workload()
    tables = _tables()
    gc.collect()
    dead = {i for name in had for i in had[name]} - {id(r()) for r in refs if r() is not None}
    return {name: [len(had[name]), sum(i in t.d for i in had[name] if i in dead),
                   sum(i in dead for i in had[name])]
            for name, t in tables.items()}


def _check(report: dict[str, list[int]]) -> None:
    for name, (had, left, died) in report.items():
        assert had > 0, f"{name}: the workload put no entry in it"
        assert died > 0, f"{name}: none of its nodes died"
        assert left == 0, f"{name}: {left} entries of dead nodes remain"


def test_every_side_table_is_one_type_and_registered():
    for name, t in _tables().items():
        assert isinstance(t, NodeTable), name
        assert any(d is t.d for d in graph.ID_TABLES), name


def test_entries_vanish_with_their_nodes():
    _check(entries_of_dead_nodes())


def test_entries_vanish_with_their_nodes_in_the_python_versions():
    code = ("import json, tests.test_node_tables as m; from lazytorch.runtime import native; "
            "print(json.dumps([native.module() is None, m.entries_of_dead_nodes()]))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "LAZYTORCH_NATIVE": "0"}, timeout=300)
    assert p.returncode == 0, p.stderr
    python_only, report = json.loads(p.stdout.strip().splitlines()[-1])
    assert python_only
    _check(report)


def test_table_api():
    t = NodeTable()
    a = Node(Op.CONST, (), 31.25, (), torch.float32)
    assert a not in t and t.get(a, "none") == "none" and not t and len(t) == 0
    t[a] = 1
    t.add(Node(Op.CONST, (), 62.5, (), torch.float32))   # dies at once: its entry with it
    assert a in t and t[a] == 1 and t.d == {id(a): 1} and len(t) == 1
    assert t.pop(a) == 1 and t.pop(a, None) is None
    with pytest.raises(KeyError):
        t.pop(a)
    with pytest.raises(KeyError):
        del t[a]
    t[a] = 2
    del t[a]
    assert not t
