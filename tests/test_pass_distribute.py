"""distribute_sums on hand-built graphs: SUM over an ADD tree of outer products becomes an ADD
of the products' SUMs (each a matmul); values checked with numpy written here."""
from __future__ import annotations

import numpy as np

import lazytorch as torch
from lazytorch.compiler.passes import distribute_sums, optimize
from lazytorch.ir import dtypes as dt
from lazytorch.ir.graph import Graph, Node, format_graph
from lazytorch.ir.ops import Op
from lazytorch.runtime import memory
from lazytorch.runtime.interpreter import run_graph

F32 = dt.float32
B, M, N = 5, 3, 4


def _outer(a: np.ndarray, b: np.ndarray) -> Node:
    """a (B, M) and b (B, N) broadcast to (B, M, N) and multiplied."""
    an = Node(Op.RESHAPE, (memory.buffer_node(a),), (B, M, 1), (B, M, 1), F32)
    bn = Node(Op.RESHAPE, (memory.buffer_node(b),), (B, 1, N), (B, 1, N), F32)
    ea = Node(Op.EXPAND, (an,), (B, M, N), (B, M, N), F32)
    eb = Node(Op.EXPAND, (bn,), (B, M, N), (B, M, N), F32)
    return Node(Op.MUL, (ea, eb), None, (B, M, N), F32)


def _add(x: Node, y: Node) -> Node:
    return Node(Op.ADD, (x, y), None, x.shape, x.dtype)


def _sum0(x: Node) -> Node:
    return Node(Op.SUM, (x,), (0,), (1,) + x.shape[1:], x.dtype)


def _values(g: Graph) -> list[np.ndarray]:
    return run_graph(list(g.outputs),
                     lambda n: memory.data(n) if n.op is Op.BUFFER else None)


def _ops(g: Graph) -> list[str]:
    return [n.op.name for n in g.nodes if n.op in (Op.SUM, Op.ADD, Op.MUL)]


def test_a_sum_of_outer_products_becomes_a_sum_of_sums():
    rng = np.random.default_rng(0)
    arrays = [(rng.standard_normal((B, M)).astype(np.float32),
               rng.standard_normal((B, N)).astype(np.float32)) for _ in range(3)]
    terms = [_outer(a, b) for a, b in arrays]
    g = Graph([_sum0(_add(_add(terms[0], terms[1]), terms[2]))])
    out = distribute_sums(g)
    assert _ops(out).count("SUM") == 3 and _ops(out).count("ADD") == 2, format_graph(out)
    assert all(s.srcs[0].op is Op.MUL for s in out.nodes if s.op is Op.SUM)
    ref = sum(a.T @ b for a, b in arrays)[None]
    np.testing.assert_allclose(_values(out)[0], ref, rtol=1e-5)
    np.testing.assert_allclose(_values(g)[0], ref, rtol=1e-5)


def test_what_is_not_distributed():
    rng = np.random.default_rng(1)
    t1 = _outer(*(rng.standard_normal(s).astype(np.float32) for s in ((B, M), (B, N))))
    t2 = _outer(*(rng.standard_normal(s).astype(np.float32) for s in ((B, M), (B, N))))
    added = _add(t1, t2)
    # the ADD is used elsewhere too (an output): distributing would compute it twice
    g = Graph([_sum0(added), added])
    assert distribute_sums(g) is g
    # a term that is not an outer product (plain elementwise data)
    plain = memory.buffer_node(rng.standard_normal((B, M, N)).astype(np.float32))
    g = Graph([_sum0(_add(t1, plain))])
    assert distribute_sums(g) is g
    # summed over a broadcast axis only (no axis both operands vary along: not a matmul)
    s2 = Node(Op.SUM, (added,), (2,), (B, M, 1), F32)
    g = Graph([s2])
    assert distribute_sums(g) is g


def test_an_lstm_weight_gradient_is_summed_step_by_step():
    """The recurrent weight's gradient: the steps' terms are added weight-sized, never at the
    batch x 4*hidden x hidden size of the broadcast."""
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(8, 16, 1)
    x = torch.randn(12, 6, 8)
    out, _ = rnn(x)
    (out * torch.linspace(-1, 1, 16)).sum().backward()
    g = optimize(Graph([rnn.weight_hh_l0.grad.node]))
    assert not [n for n in g.nodes if n.op is Op.ADD and n.shape == (6, 64, 16)]
    # the same gradient computed step by step in numpy (PyTorch's LSTM equations)
    p = {n: t.detach().numpy().astype(np.float64) for n, t in rnn.named_parameters()}
    xs = x.numpy().astype(np.float64)
    w = np.linspace(-1, 1, 16)
    sig = lambda v: 1 / (1 + np.exp(-v))                   # noqa: E731
    h, c, cache = np.zeros((6, 16)), np.zeros((6, 16)), []
    for t in range(12):
        z = xs[t] @ p["weight_ih_l0"].T + p["bias_ih_l0"] + h @ p["weight_hh_l0"].T + \
            p["bias_hh_l0"]
        i, f, gg, o = sig(z[:, :16]), sig(z[:, 16:32]), np.tanh(z[:, 32:48]), sig(z[:, 48:])
        c_new = f * c + i * gg
        cache.append((h, c, i, f, gg, o, c_new))
        h, c = o * np.tanh(c_new), c_new
    dh, dc, dw = np.zeros((6, 16)), np.zeros((6, 16)), np.zeros((64, 16))
    for t in reversed(range(12)):
        h_prev, c_prev, i, f, gg, o, c_new = cache[t]
        dh = dh + w
        tc = np.tanh(c_new)
        do = dh * tc
        dc = dc + dh * o * (1 - tc ** 2)
        di, df, dg = dc * gg, dc * c_prev, dc * i
        dz = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - gg ** 2),
                             do * o * (1 - o)], 1)
        dw += dz.T @ h_prev
        dh = dz @ p["weight_hh_l0"]
        dc = dc * f
    np.testing.assert_allclose(rnn.weight_hh_l0.grad.numpy(), dw, rtol=1e-4, atol=1e-5)
