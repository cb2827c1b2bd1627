"""Lazy state never piles up across realizes (lazytorch/engine/live.py): a correct eager program
keeps a constant amount of work and graph per step.

Each pattern comes from a real PyTorch program; over 200 steps, the graph a state tensor holds
and the graph each realize walks must stay bounded, and the compiled plan must be replayed (no
compile per step). Those counts stand for the step time, which a test on a shared machine
cannot measure reliably.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
from lazytorch import debug
from lazytorch.engine import realize
from lazytorch.ir.graph import toposort

STEPS = 200


def _graph_size(t) -> int:
    return len(toposort([t.node]))


class _Walks:
    """The number of nodes each realize walks (its prepared key's length)."""

    def __init__(self, monkeypatch):
        self.sizes: list[int] = []
        real = realize.prepare

        def prepare(outputs):
            out = real(outputs)
            self.sizes.append(len(out[2]))
            return out
        monkeypatch.setattr(realize, "prepare", prepare)


def _flat(series: list[int], what: str) -> None:
    """The second half of a run is no larger than the first (after a warm-up)."""
    half = len(series) // 2
    early, late = max(series[5:half]), max(series[half:])
    assert late <= early, f"{what} grows: {series[5:half][:5]}... -> {series[-5:]}"


def test_updates_through_data_keep_parameters_flat(monkeypatch):
    """pytorch/examples' regression: `p.data.add_(-lr * p.grad)` after backward, loss.item()."""
    walks = _Walks(monkeypatch)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    w_true = rng.standard_normal((4, 1)).astype(np.float32)
    fc = nn.Linear(4, 1)
    sizes = []
    for _ in range(STEPS):
        x = rng.standard_normal((32, 4)).astype(np.float32)
        bx, by = torch.tensor(x), torch.tensor(x @ w_true + 0.5)
        fc.zero_grad()
        loss = F.smooth_l1_loss(fc(bx), by)
        loss.item()
        loss.backward()
        for p in fc.parameters():
            p.data.add_(-0.1 * p.grad)
        debug.reset_stats()
        sizes.append(max(_graph_size(p) for p in fc.parameters()))
    _flat(sizes, "the parameters' graphs")
    _flat(walks.sizes, "the realized graph")
    # and it learned: the same numbers as plain numpy gradient descent would reach
    np.testing.assert_allclose(fc.weight.detach().numpy().ravel(), w_true.ravel(), atol=0.05)
    assert fc.weight.grad is not None and fc.weight.requires_grad


def test_detached_recurrent_state_is_computed_once(monkeypatch):
    """word_language_model: `hidden = repackage(hidden)` (detach), LSTM, loss.item() each batch,
    on batches sliced from one corpus at a new offset each step."""
    walks = _Walks(monkeypatch)
    torch.manual_seed(0)
    ntok, bsz, bptt, nhid = 20, 3, 5, 8
    lines = [torch.randint(0, ntok, (6,)) for _ in range(40)]
    corpus = torch.cat(lines)                           # built once, lazily
    nb = corpus.size(0) // bsz
    source = corpus.narrow(0, 0, nb * bsz).view(bsz, -1).t().contiguous()
    emb, rnn, dec = nn.Embedding(ntok, nhid), nn.LSTM(nhid, nhid, 2), nn.Linear(nhid, ntok)
    params = [*emb.parameters(), *rnn.parameters(), *dec.parameters()]
    hidden = (torch.zeros(2, bsz, nhid), torch.zeros(2, bsz, nhid))
    sizes, compiled, first = [], [], None
    for k in range(STEPS):
        i = (k * bptt) % (source.size(0) - bptt - 1)
        data, target = source[i:i + bptt], source[i + 1:i + 1 + bptt].reshape(-1)
        hidden = tuple(h.detach() for h in hidden)
        for p in params:
            p.grad = None
        out, hidden = rnn(emb(data), hidden)
        loss = F.cross_entropy(dec(out).view(-1, ntok), target)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.05 * p.grad
        value = loss.item()
        first = value if first is None else first
        sizes.append(max(_graph_size(h) for h in hidden))
        compiled.append(debug.stats()["kernels_compiled"])
    _flat(sizes, "the hidden state's graph")
    _flat(walks.sizes, "the realized graph")
    assert compiled[-1] == compiled[STEPS // 4], "kernels compiled after warm-up"
    assert np.isfinite(value) and value < first


def test_detached_state_matches_an_unrolled_numpy_recurrence():
    """The state realized with each step has the values of the recurrence computed at once."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 4)).astype(np.float32) * 0.5
    xs = rng.standard_normal((30, 4)).astype(np.float32)
    wt = torch.tensor(w, requires_grad=True)
    h = torch.zeros(4)
    ref = np.zeros(4, np.float32)
    for x in xs:
        h = (h.detach() @ wt + torch.tensor(x)).tanh()
        h.sum().item()
        ref = np.tanh(ref @ w + x)
    np.testing.assert_allclose(h.detach().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_a_value_live_tensors_hold_is_stored_with_the_realize():
    """An intermediate that a live tensor still holds is computed once, in the realize that
    needed it, and the tensor takes its buffer when next used."""
    x = torch.randn(64, 64)
    mid = (x * 2).exp()                 # held by `mid`
    out = (mid + 1).sum()
    out.item()
    assert mid.node.op.name == "BUFFER"
    np.testing.assert_allclose(mid.numpy(), np.exp(x.numpy() * 2), rtol=1e-6)


def test_slices_of_a_buffer_at_new_offsets_replay_one_plan():
    data = torch.randn(500, 8)
    data.numpy()
    w = torch.randn(8, 3)
    hits = []
    for i in range(0, 400, 7):
        debug.reset_stats()
        (data[i:i + 16] @ w).relu().sum().item()
        hits.append(debug.stats()["plan_cache_hits"])
    assert all(h == 1 for h in hits[2:]), hits
    np.testing.assert_allclose((data[7:23] @ w).numpy(), data.numpy()[7:23] @ w.numpy(),
                               rtol=1e-5, atol=1e-5)


def test_held_nodes_agree_between_the_compiled_walk_and_python(mod):
    """live.held_py is the reference for the compiled held()."""
    from lazytorch.engine.live import FREE_OPS, held_py
    a = torch.randn(8, 8)
    kept = (a * 3).exp()
    b = (kept + 1).relu()
    mid_view = b.t()
    out = (b.sum() + mid_view.sum() + kept.mean())
    got = realize.prepare_py([out.node])
    want = held_py(got[3], got[4], got[2])
    assert want == mod.held(got[3], got[4], got[2], frozenset(FREE_OPS))
    held_ops = sorted(got[3][i].op.name for i in want)
    # kept, b (relu is a max with 0) and b's transpose, which mid_view holds
    assert held_ops == ["EXP", "MAX", "PERMUTE"], held_ops
    del kept, b, mid_view
    got = realize.prepare_py([out.node])
    assert held_py(got[3], got[4], got[2]) == []


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="reference counts")
def test_nothing_is_held_in_a_plain_expression():
    x = torch.randn(16)
    got = realize.prepare_py([((x * 2 + 1).exp().sum()).node])
    from lazytorch.engine.live import held_py
    assert held_py(got[3], got[4], got[2]) == []


def test_a_cat_of_many_known_pieces_is_joined_at_once():
    """word_language_model builds its corpus by `torch.cat` of every line: known data without
    grad is joined right away, never a kernel with thousands of inputs."""
    rng = np.random.default_rng(0)
    lines = [rng.integers(0, 100, size=int(rng.integers(1, 9))) for _ in range(3000)]
    ts = [torch.tensor(line) for line in lines]
    joined = torch.cat(ts)
    assert joined.node.op.name == "BUFFER"
    np.testing.assert_array_equal(joined.numpy(), np.concatenate(lines))
    rows = torch.stack([torch.tensor(line[:1].astype(np.float32)) for line in lines], 1)
    assert rows.node.op.name == "BUFFER"
    np.testing.assert_array_equal(rows.numpy(), np.stack([line[:1] for line in lines], 1))


def test_a_cat_of_many_computed_pieces_compiles_small_kernels():
    """Computed pieces are joined in groups, each kernel reading a bounded number of inputs."""
    from lazytorch.compiler import schedule
    from lazytorch.frontend.joining import GROUP
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(300)]
    pieces = [torch.tensor(a) * 2 for a in arrays]
    joined = torch.cat(pieces, 1)
    kernels = schedule(joined)
    assert max(len(k.inputs) for k in kernels) <= GROUP
    np.testing.assert_allclose(joined.numpy(), np.concatenate(arrays, 1) * 2, rtol=1e-6)
    x = torch.randn(4, requires_grad=True)
    st = torch.stack([x * i for i in range(100)])
    (st * torch.arange(100.0)[:, None]).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, sum(i * i for i in range(100))),
                               rtol=1e-6)


def test_slices_of_a_contiguous_transpose_replay_one_plan():
    """`data = corpus.view(bsz, -1).t().contiguous()` then `data[i:i + bptt]` each batch
    (word_language_model): the contiguous copy is data once computed, so each batch's slice
    is of a buffer and one plan replays."""
    corpus = torch.arange(4000.0)
    data = corpus.view(10, -1).t().contiguous()
    w = torch.randn(10, 3)
    hits = []
    for i in range(0, 300, 7):
        debug.reset_stats()
        (data[i:i + 20] @ w).sum().item()
        hits.append(debug.stats()["plan_cache_hits"])
    assert all(h == 1 for h in hits[2:]), hits
    ref = np.arange(4000.0, dtype=np.float32).reshape(10, -1).T
    np.testing.assert_allclose(data[14:34].numpy(), ref[14:34])


def test_a_held_view_of_a_computed_value_stores_the_value_not_the_view(monkeypatch):
    """A weight's pending gradient holds the matmul input broadcast against the weight; what is
    stored is the input, never the broadcast copy (word_language_model's decoder: a 680M
    element copy per step)."""
    stored = []
    real = realize._run

    def run(outputs, inputs, key, todo, *rest, **kw):
        stored.extend(n.numel for n in outputs)
        return real(outputs, inputs, key, todo, *rest, **kw)
    monkeypatch.setattr(realize, "_run", run)
    a = torch.randn(64, 32)
    wide = a.exp()[None].expand(500, 64, 32)         # held: a view of a computed value
    part = wide[0].sum()
    part.item()
    assert max(stored) <= 64 * 32, stored
    np.testing.assert_allclose(wide.sum(0).numpy(), 500 * np.exp(a.numpy()), rtol=1e-5)
    lin = nn.Linear(40, 300)
    x = torch.randn(6, 5, 40).tanh()
    loss = lin(x).sum()
    loss.backward()
    stored.clear()
    loss.item()
    assert max(stored) <= 6 * 5 * 300, stored
    np.testing.assert_allclose(lin.weight.grad.numpy(),
                               np.broadcast_to(x.numpy().reshape(-1, 40).sum(0), (300, 40)),
                               rtol=1e-4)


def test_a_step_updated_through_data_is_one_plan_with_the_loss():
    """backward, `p.data.add_(p.grad, alpha=-lr)`, then `loss.item()` (word_language_model's
    order): the pending updates ride with the loss's realize, so a step runs one plan, not a
    forward for the loss and a backward with the update at the next step's first read."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    fc = nn.Linear(6, 3)
    w0, b0 = fc.weight.detach().numpy().copy(), fc.bias.detach().numpy().copy()
    runs, xs = [], []
    for _ in range(12):
        x = rng.standard_normal((8, 6)).astype(np.float32)
        xs.append(x)
        debug.reset_stats()
        fc.zero_grad()
        loss = fc(torch.tensor(x)).square().mean()
        loss.backward()
        for p in fc.parameters():
            p.data.add_(p.grad, alpha=-0.05)
        loss.item()
        stats = debug.stats()
        runs.append(stats["plan_cache_hits"] + stats["compiler_runs"])
    assert runs[3:] == [1] * 9, runs
    for x in xs:                      # the same steps in numpy
        out = x @ w0.T + b0
        g = 2 * out / out.size
        w0, b0 = w0 - 0.05 * g.T @ x, b0 - 0.05 * g.sum(0)
    np.testing.assert_allclose(fc.weight.detach().numpy(), w0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fc.bias.detach().numpy(), b0, rtol=1e-4, atol=1e-6)


def test_state_no_realize_needs_is_still_computed_each_step(monkeypatch):
    """Truncated BPTT that detaches right after the forward and a loss that reads only the last
    output (the cell state c_n is needed by no realize of its own), plus an average written
    through `.data` that nothing reads until the end: each is computed with the step's
    realize, so neither builds on the last step's pending graph."""
    walks = _Walks(monkeypatch)
    torch.manual_seed(0)
    rnn, head = nn.LSTM(4, 6, batch_first=True), nn.Linear(6, 3)
    opt = torch.optim.SGD([*rnn.parameters(), *head.parameters()], lr=0.05)
    rng = np.random.default_rng(0)
    seq = torch.tensor(rng.standard_normal((2, 5, 4)).astype(np.float32))
    ema, ref = torch.zeros(3), np.zeros(3, np.float32)
    state, sizes = None, []
    for _ in range(STEPS):
        opt.zero_grad()
        out, state = rnn(seq, state)
        state = tuple(s.detach() for s in state)
        loss = head(out[:, -1]).pow(2).mean()
        loss.backward()
        opt.step()
        ema.data = 0.9 * ema.data + 0.1 * head.bias.data
        loss.item()
        ref = np.float32(0.9) * ref + np.float32(0.1) * head.bias.detach().numpy()
        sizes.append(max(_graph_size(state[1]), _graph_size(ema)))
    _flat(sizes, "the cell state's and the average's graphs")
    _flat(walks.sizes, "the realized graph")
    # the average of the bias over the steps, as the same recurrence in numpy gives it
    np.testing.assert_allclose(ema.numpy(), ref, rtol=1e-5, atol=1e-6)
