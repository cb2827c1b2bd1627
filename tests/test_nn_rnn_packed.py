"""RNNCell, LSTMCell, GRUCell and variable-length sequences (nn.utils.rnn: PackedSequence,
pack/pad, RNN/LSTM/GRU over packed input): cells against the numpy step of test_nn_rnn and
finite differences in float64; a packed batch against running the numpy reference on each
sequence alone; packing against numpy indexing; PyTorch parity when torch is importable;
and recurrent state that stays bounded when a cell is stepped in a Python loop."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
from lazytorch import debug
from lazytorch.ir.graph import Graph
from lazytorch.nn.utils import rnn as rnn_utils
from tests.helpers import grad_check
from tests.test_nn_rnn import cell_ref, params_of, rnn_ref


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    """The reference interpreter unless a test asks for the `backend` fixture (unrolled
    recurrences are large graphs, and each new one costs a C compile)."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


def _close(got, want, tol=1e-5):
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- cells
CELLS = [(nn.RNNCell, {}, "RNN_TANH"), (nn.RNNCell, {"nonlinearity": "relu"}, "RNN_RELU"),
         (nn.LSTMCell, {}, "LSTM"), (nn.GRUCell, {}, "GRU"),
         (nn.GRUCell, {"bias": False}, "GRU")]
CELL_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_nobias"]


@pytest.mark.parametrize("cls,kw,mode", CELLS, ids=CELL_IDS)
def test_cell_matches_numpy_step(backend, cls, kw, mode):
    torch.manual_seed(0)
    m = cls(3, 4, **kw)
    p = params_of(m)
    w = [p.get(n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    h = rng.standard_normal((2, 4)).astype(np.float32)
    c = rng.standard_normal((2, 4)).astype(np.float32)
    rh, rc = cell_ref(mode, x, h, c, *w)
    if mode == "LSTM":
        h2, c2 = m(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
        _close(c2, rc)
        # no state: zeros; unbatched input
        zh, zc = cell_ref(mode, x[:1], np.zeros((1, 4)), np.zeros((1, 4)), *w)
        u = m(torch.tensor(x[0]))
        assert u[0].shape == (4,) and u[1].shape == (4,)
        _close(u[0], zh[0])
        _close(u[1], zc[0])
    else:
        h2 = m(torch.tensor(x), torch.tensor(h))
        zh, _ = cell_ref(mode, x, np.zeros((2, 4)), None, *w)
        _close(m(torch.tensor(x)), zh)
        u = m(torch.tensor(x[1]), torch.tensor(h[1]))
        assert u.shape == (4,)
        _close(u, rh[1])
    _close(h2, rh)


@pytest.mark.parametrize("cls,kw,mode", CELLS[::2] + CELLS[3:4],
                         ids=["rnn", "lstm", "gru_nobias", "gru"])
def test_cell_gradients_by_finite_differences(cls, kw, mode):
    m = cls(2, 3, dtype=torch.float64, **kw)
    names = [n for n, _ in m.named_parameters()]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 2)), rng.standard_normal((2, 3)),
              rng.standard_normal((2, 3))] + [p.detach().numpy() for p in m.parameters()]

    def np_fn(x, h, c, *ws):
        full = dict(zip(names, ws))
        out = cell_ref(mode, x, h, c, full["weight_ih"], full["weight_hh"],
                       full.get("bias_ih"), full.get("bias_hh"))
        return out[0] + 2 * out[1] if mode == "LSTM" else out[0]

    def lt_fn(x, h, c, *ws):
        m._parameters.update(dict(zip(names, ws)))   # the graph reaches the inputs themselves
        if mode == "LSTM":
            h2, c2 = m(x, (h, c))
            return h2 + 2 * c2
        return m(x, h)

    grad_check(lt_fn, np_fn, arrays, wrt=[0, 1, 2, 3, 4] if mode == "LSTM" else [0, 1, 3, 4])


def test_cell_repr_parameters_and_errors():
    assert repr(nn.LSTMCell(3, 4)) == "LSTMCell(3, 4)"
    assert repr(nn.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    m = nn.LSTMCell(3, 4)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [
        ("weight_ih", (16, 3)), ("weight_hh", (16, 4)), ("bias_ih", (16,)), ("bias_hh", (16,))]
    allp = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    assert np.abs(allp).max() <= 0.5 and allp.std() > 0.2      # uniform in +-1/sqrt(4)
    c = nn.RNNCell(3, 4)
    with pytest.raises(ValueError, match="RNNCell: Expected input to be 1D or 2D, got 3D"):
        c(torch.randn(2, 2, 3))
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 5 "
                                           "expected 3"):
        c(torch.randn(2, 5))
    with pytest.raises(RuntimeError, match="Input batch size 2 doesn't match hidden0 batch "
                                           "size 3"):
        c(torch.randn(2, 3), torch.randn(3, 4))
    with pytest.raises(RuntimeError, match="hidden0 has inconsistent hidden_size: got 5, "
                                           "expected 4"):
        c(torch.randn(2, 3), torch.randn(2, 5))
    with pytest.raises(RuntimeError, match="lstm_cell expects two hidden states"):
        m(torch.randn(2, 3), (torch.randn(2, 4),))
    with pytest.raises(RuntimeError, match="Input batch size 2 doesn't match hidden1 batch "
                                           "size 3"):
        m(torch.randn(2, 3), (torch.randn(2, 4), torch.randn(3, 4)))


def test_cells_torch_parity():
    tt = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    for name in ("RNNCell", "LSTMCell", "GRUCell"):
        tm = getattr(tt.nn, name)(3, 4)
        lm = getattr(nn, name)(3, 4)
        lm.load_state_dict({k: torch.tensor(v.detach().numpy())
                            for k, v in tm.state_dict().items()})
        xl, xt = torch.tensor(x, requires_grad=True), tt.tensor(x, requires_grad=True)
        hl = ht = None
        outs_l, outs_t = [], []
        for t in range(5):        # a Python loop over time, as seq2seq decoders step
            hl, ht = lm(xl[t], hl), tm(xt[t], ht)
            outs_l.append(hl[0] if name == "LSTMCell" else hl)
            outs_t.append(ht[0] if name == "LSTMCell" else ht)
        sl, st = torch.stack(outs_l), tt.stack(outs_t)
        _close(sl, st.detach().numpy())
        cot = rng.standard_normal(tuple(st.shape)).astype(np.float32)
        (sl * torch.tensor(cot)).sum().backward()
        (st * tt.tensor(cot)).sum().backward()
        _close(xl.grad, xt.grad.numpy())
        for pl, pt in zip(lm.parameters(), tm.parameters()):
            _close(pl.grad, pt.grad.numpy())


# ----------------------------------------------------------------------------- packing
def test_pad_sequence_and_unpad():
    rng = np.random.default_rng(4)
    seqs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (3, 5, 1)]
    want = np.full((5, 3, 2), -1.0, np.float32)
    for b, s in enumerate(seqs):
        want[:len(s), b] = s
    got = rnn_utils.pad_sequence([torch.tensor(s) for s in seqs], padding_value=-1.0)
    np.testing.assert_array_equal(got.numpy(), want)
    got = rnn_utils.pad_sequence([torch.tensor(s) for s in seqs], batch_first=True)
    np.testing.assert_array_equal(got.numpy(), np.where(want == -1, 0, want).transpose(1, 0, 2))
    left = rnn_utils.pad_sequence([torch.tensor(s) for s in seqs], batch_first=True,
                                  padding_side="left")
    for b, s in enumerate(seqs):
        np.testing.assert_array_equal(left.numpy()[b, 5 - len(s):], s)
        np.testing.assert_array_equal(left.numpy()[b, :5 - len(s)], 0)
    parts = rnn_utils.unpad_sequence(got, torch.tensor([3, 5, 1]), batch_first=True)
    for p, s in zip(parts, seqs):
        np.testing.assert_array_equal(p.numpy(), s)
    with pytest.raises(RuntimeError, match="The size of tensor a \\(2\\) must match the size "
                                           "of tensor b \\(3\\) at non-singleton dimension 1"):
        rnn_utils.pad_sequence([torch.zeros(2, 2), torch.zeros(2, 3)])


@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_unpack_against_numpy(batch_first):
    rng = np.random.default_rng(5)
    lengths = [3, 5, 1, 4]
    x = rng.standard_normal((5, 4, 2)).astype(np.float32)       # (T, B, *)
    xin = x.transpose(1, 0, 2).copy() if batch_first else x
    packed = rnn_utils.pack_padded_sequence(torch.tensor(xin), lengths,
                                            batch_first=batch_first, enforce_sorted=False)
    order = sorted(range(4), key=lambda b: -lengths[b])           # 1, 3, 0, 2
    want_rows = [x[t, b] for t in range(5) for b in order if lengths[b] > t]
    np.testing.assert_array_equal(packed.data.numpy(), np.stack(want_rows))
    assert packed.batch_sizes.tolist() == [4, 3, 3, 2, 1]
    assert packed.sorted_indices.tolist() == order
    assert packed.unsorted_indices.tolist() == list(np.argsort(order))
    padded, lens = rnn_utils.pad_packed_sequence(packed, batch_first=batch_first,
                                                 padding_value=9.0, total_length=7)
    want = np.full((7, 4, 2), 9.0, np.float32)
    for b, n in enumerate(lengths):
        want[:n, b] = x[:n, b]
    np.testing.assert_array_equal(padded.numpy(),
                                  want.transpose(1, 0, 2) if batch_first else want)
    assert lens.tolist() == lengths and lens.dtype == torch.int64
    seqs = rnn_utils.unpack_sequence(rnn_utils.pack_sequence(
        [torch.tensor(x[:n, b]) for b, n in enumerate(lengths)], enforce_sorted=False))
    for s, (b, n) in zip(seqs, enumerate(lengths)):
        np.testing.assert_array_equal(s.numpy(), x[:n, b])


def test_pack_gradient_is_the_scatter_of_the_rows():
    x = torch.randn(4, 3, 2, requires_grad=True)
    packed = rnn_utils.pack_padded_sequence(x, [4, 2, 1])
    w = np.arange(14, dtype=np.float32).reshape(7, 2)
    (packed.data * torch.tensor(w)).sum().backward()
    want = np.zeros((4, 3, 2), np.float32)
    rows = [(t, b) for t in range(4) for b in range(3) if [4, 2, 1][b] > t]
    for i, (t, b) in enumerate(rows):
        want[t, b] = w[i]
    np.testing.assert_array_equal(x.grad.numpy(), want)


def test_packing_errors():
    x = torch.randn(5, 3, 2)
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order when "
                                           "`enforce_sorted` is True"):
        rnn_utils.pack_padded_sequence(x, [3, 4, 2])
    with pytest.raises(RuntimeError, match="Length of all samples has to be greater than 0"):
        rnn_utils.pack_padded_sequence(x, [3, 0, 2], enforce_sorted=False)
    with pytest.raises(RuntimeError, match="Expected `len\\(lengths\\)` to be equal to "
                                           "batch_size, but got 2 \\(batch_size=3\\)"):
        rnn_utils.pack_padded_sequence(x, [3, 2])
    with pytest.raises(RuntimeError, match="larger than the padded length 5"):
        rnn_utils.pack_padded_sequence(x, [6, 2, 1])
    packed = rnn_utils.pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ValueError, match="Expected total_length to be at least the length of "
                                         "the longest sequence in input, but got "
                                         "total_length=3 and max sequence length being 5"):
        rnn_utils.pad_packed_sequence(packed, total_length=3)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        nn.GRU(3, 4)(packed)


PACKED = [(nn.LSTM, dict(num_layers=2, bidirectional=True)),
          (nn.GRU, dict(batch_first=True)),
          (nn.RNN, dict(bidirectional=True, nonlinearity="relu")),
          (nn.LSTM, dict(proj_size=2, bidirectional=True))]


@pytest.mark.parametrize("cls,kw", PACKED, ids=["lstm2bi", "gru", "rnn_bi", "lstm_proj"])
def test_packed_rnn_is_each_sequence_alone(cls, kw):
    """A packed batch gives, for each sequence, what running the layer on that sequence
    alone gives (numpy reference of test_nn_rnn): outputs over its length and its h_n."""
    torch.manual_seed(6)
    m = cls(2, 4, **kw)
    p = params_of(m)
    rng = np.random.default_rng(6)
    lengths = [3, 5, 1, 4]
    x = rng.standard_normal((5, 4, 2)).astype(np.float32)
    layers, dirs = kw.get("num_layers", 1), 2 if kw.get("bidirectional") else 1
    R = kw.get("proj_size", 0) or 4
    h0 = rng.standard_normal((layers * dirs, 4, R)).astype(np.float32)
    c0 = rng.standard_normal((layers * dirs, 4, 4)).astype(np.float32)
    bf = kw.get("batch_first", False)
    packed = rnn_utils.pack_padded_sequence(
        torch.tensor(x.transpose(1, 0, 2).copy() if bf else x), lengths, batch_first=bf,
        enforce_sorted=False)
    is_lstm = cls is nn.LSTM
    hx = (torch.tensor(h0), torch.tensor(c0)) if is_lstm else torch.tensor(h0)
    out, h = m(packed, hx)
    assert isinstance(out, rnn_utils.PackedSequence)
    padded, _ = rnn_utils.pad_packed_sequence(out)
    ref_kw = dict(num_layers=layers, bidirectional=bool(kw.get("bidirectional")), hidden=4,
                  proj=kw.get("proj_size", 0))
    for b, n in enumerate(lengths):
        hx_b = (h0[:, b:b + 1], c0[:, b:b + 1]) if is_lstm else h0[:, b:b + 1]
        ro, rh = rnn_ref(m.mode, x[:n, b:b + 1], p, hx=hx_b, **ref_kw)
        _close(padded[:n, b], ro[:, 0])
        np.testing.assert_array_equal(padded.detach().numpy()[n:, b], 0)
        if is_lstm:
            _close(h[0][:, b], rh[0][:, 0])
            _close(h[1][:, b], rh[1][:, 0])
        else:
            _close(h[:, b], rh[:, 0])


def test_packed_rnn_torch_parity():
    tt = pytest.importorskip("torch")
    from torch.nn.utils import rnn as tr
    rng = np.random.default_rng(7)
    for cls, kw in PACKED:
        tm = getattr(tt.nn, cls.__name__)(3, 4, **kw)
        lm = cls(3, 4, **kw)
        lm.load_state_dict({k: torch.tensor(v.detach().numpy())
                            for k, v in tm.state_dict().items()})
        bf = kw.get("batch_first", False)
        x = rng.standard_normal((4, 5, 3) if bf else (5, 4, 3)).astype(np.float32)
        lengths = [3, 5, 1, 4]
        xl, xt = torch.tensor(x, requires_grad=True), tt.tensor(x, requires_grad=True)
        ol, hl = lm(rnn_utils.pack_padded_sequence(xl, lengths, batch_first=bf,
                                                   enforce_sorted=False))
        ot, ht = tm(tr.pack_padded_sequence(xt, lengths, batch_first=bf,
                                            enforce_sorted=False))
        yl, _ = rnn_utils.pad_packed_sequence(ol, batch_first=bf)
        yt, _ = tr.pad_packed_sequence(ot, batch_first=bf)
        _close(yl, yt.detach().numpy())
        hl, ht = (hl[0], ht[0]) if cls is nn.LSTM else (hl, ht)
        _close(hl, ht.detach().numpy())
        cot = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        ((yl * torch.tensor(cot)).sum() + hl.sum()).backward()
        ((yt * tt.tensor(cot)).sum() + ht.sum()).backward()
        _close(xl.grad, xt.grad.numpy())
        for pl, pt in zip(lm.parameters(), tm.parameters()):
            _close(pl.grad, pt.grad.numpy(), 1e-4)


# ----------------------------------------------------------------------------- stepping
def _pending_nodes(t: torch.Tensor) -> int:
    return len(Graph([t.node]).nodes)


def test_cell_loop_state_stays_bounded_when_the_state_is_read(monkeypatch):
    """h = cell(x, h).detach() with the state itself read each step: its graph is one step
    deep every time, and the plan replays (no compile after the first steps)."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    torch.manual_seed(8)
    cell = nn.GRUCell(4, 8)
    x = torch.randn(2, 4)
    h = torch.zeros(2, 8)
    sizes, compiled = [], []
    for _ in range(200):
        h = cell(x, h).detach()
        sizes.append(_pending_nodes(h))
        h.numpy()
        compiled.append(debug.stats()["kernels_compiled"])
    assert max(sizes) == sizes[0], sizes[:5]
    assert compiled[-1] == compiled[20], "kernels compiled after the first steps"


def test_cell_loop_state_stays_bounded_when_a_value_from_it_is_read():
    """h = cell(x, h).detach() with an .item() of a value computed from h each step (a loss,
    a norm): h's pending graph must not grow with the step count. (40 steps on the
    interpreter: while the graph grows, each step would compile a new plan in C.)"""
    torch.manual_seed(9)
    cell = nn.LSTMCell(4, 8)
    x = torch.randn(2, 4)
    h = c = torch.zeros(2, 8)
    sizes = []
    for _ in range(40):
        h, c = cell(x, (h, c))
        h, c = h.detach(), c.detach()
        h.sum().item()
        sizes.append(_pending_nodes(h))
    assert max(sizes) <= 2 * sizes[0], (sizes[0], sizes[-1])
