"""RNN, LSTM and GRU against step-by-step numpy references written here (PyTorch's gate order:
LSTM i, f, g, o; GRU r, z, n with n = tanh(W_in x + b_in + r * (W_hn h + b_hn))); gradients
against central finite differences of the references in float64; PyTorch parity where torch
is importable."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
from lazytorch.frontend.tensor import realize_tensors


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    """Tests run on the numpy interpreter unless they ask for the `backend` fixture: an
    unrolled recurrence is a large graph, and each new one costs a C compile."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


# ----------------------------------------------------------------------------- reference
def _sig(x):
    return 1 / (1 + np.exp(-x))


def cell_ref(mode, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0 if b_hh is None else b_hh)
    if mode == "RNN_TANH":
        return np.tanh(gi + gh), None
    if mode == "RNN_RELU":
        return np.maximum(gi + gh, 0), None
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = _sig(f) * c + _sig(i) * np.tanh(g)
        h = _sig(o) * np.tanh(c)
        return (h if w_hr is None else h @ w_hr.T), c
    ir, iz, i_n = np.split(gi, 3, axis=-1)
    hr, hz, hn = np.split(gh, 3, axis=-1)
    r, z = _sig(ir + hr), _sig(iz + hz)
    n = np.tanh(i_n + r * hn)
    return (1 - z) * n + z * h, None


def rnn_ref(mode, x, p, num_layers=1, bidirectional=False, batch_first=False, hx=None,
            hidden=None, proj=0):
    """Returns (output, h_n) or (output, (h_n, c_n)) for LSTM, shaped as PyTorch's."""
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, None]
        if hx is not None:
            hx = tuple(h[:, None] for h in hx) if mode == "LSTM" else hx[:, None]
    elif batch_first:
        x = x.transpose(1, 0, 2)
    L, N = x.shape[:2]
    dirs = 2 if bidirectional else 1
    H = hidden
    R = proj or H
    if hx is None:
        h0 = np.zeros((num_layers * dirs, N, R))
        c0 = np.zeros((num_layers * dirs, N, H))
    else:
        h0, c0 = hx if mode == "LSTM" else (hx, None)
    hn, cn = [], []
    inp = x
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w = [p.get(n + sfx) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                          "weight_hr")]
            h = h0[layer * dirs + d]
            c = c0[layer * dirs + d] if mode == "LSTM" else None
            seq = [None] * L
            for t in (range(L - 1, -1, -1) if d else range(L)):
                h, c = cell_ref(mode, inp[t], h, c, *w)
                seq[t] = h
            outs.append(np.stack(seq))
            hn.append(h)
            cn.append(c)
        inp = np.concatenate(outs, -1)
    out, hn = inp, np.stack(hn)
    cn = np.stack(cn) if mode == "LSTM" else None
    if unbatched:
        out, hn = out[:, 0], hn[:, 0]
        cn = cn[:, 0] if cn is not None else None
    elif batch_first:
        out = out.transpose(1, 0, 2)
    return (out, (hn, cn)) if mode == "LSTM" else (out, hn)


def params_of(m) -> dict:
    return {n: p.detach().numpy().astype(np.float64) for n, p in m.named_parameters()}


def _assert_close(got, want, tol=1e-5):
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- forward
BASE = [(nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"}), (nn.LSTM, {}), (nn.GRU, {})]


@pytest.mark.parametrize("cls,kw", BASE, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_single_layer_forward(backend, cls, kw):
    torch.manual_seed(0)
    m = cls(3, 4, **kw)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    out, h = m(torch.tensor(x))
    ro, rh = rnn_ref(m.mode, x, params_of(m), hidden=4)
    _assert_close(out, ro)
    if cls is nn.LSTM:
        _assert_close(h[0], rh[0])
        _assert_close(h[1], rh[1])
    else:
        _assert_close(h, rh)


VARIANTS = [
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False, batch_first=True),
]


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU], ids=["rnn", "lstm", "gru"])
@pytest.mark.parametrize("kw", VARIANTS, ids=[str(v) for v in VARIANTS])
def test_layers_directions_batch_first(cls, kw):
    torch.manual_seed(1)
    m = cls(3, 4, **kw)
    x = np.random.default_rng(1).standard_normal((2, 4, 3)).astype(np.float32)
    out, h = m(torch.tensor(x))
    ro, rh = rnn_ref(m.mode, x, params_of(m), hidden=4, **{k: v for k, v in kw.items()
                                                            if k != "bias"})
    assert out.shape == ro.shape
    _assert_close(out, ro)
    for a, b in zip(h if cls is nn.LSTM else [h], rh if cls is nn.LSTM else [rh]):
        _assert_close(a, b)


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU], ids=["rnn", "lstm", "gru"])
def test_initial_state_and_unbatched(cls):
    torch.manual_seed(2)
    m = cls(3, 4, num_layers=2, bidirectional=True)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 3)).astype(np.float32)
    h0 = rng.standard_normal((4, 2, 4)).astype(np.float32)
    c0 = rng.standard_normal((4, 2, 4)).astype(np.float32)
    hx = (h0, c0) if cls is nn.LSTM else h0
    hx_t = tuple(torch.tensor(a) for a in hx) if cls is nn.LSTM else torch.tensor(hx)
    p = params_of(m)
    out, _ = m(torch.tensor(x), hx_t)
    _assert_close(out, rnn_ref(m.mode, x, p, 2, True, hx=hx, hidden=4)[0])
    # unbatched: (L, input) with (layers * dirs, hidden) states
    hx1 = tuple(a[:, 0] for a in hx) if cls is nn.LSTM else hx[:, 0]
    hx1_t = tuple(torch.tensor(a) for a in hx1) if cls is nn.LSTM else torch.tensor(hx1)
    out, h = m(torch.tensor(x[:, 0]), hx1_t)
    ro, rh = rnn_ref(m.mode, x[:, 0], p, 2, True, hx=hx1, hidden=4)
    assert out.shape == (3, 8)
    _assert_close(out, ro)
    _assert_close(h[0] if cls is nn.LSTM else h, rh[0] if cls is nn.LSTM else rh)


def test_lstm_proj_size():
    torch.manual_seed(3)
    m = nn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()][:5] == [
        ("weight_ih_l0", (20, 3)), ("weight_hh_l0", (20, 2)), ("bias_ih_l0", (20,)),
        ("bias_hh_l0", (20,)), ("weight_hr_l0", (2, 5))]
    assert m.weight_ih_l1.shape == (20, 4)
    x = np.random.default_rng(3).standard_normal((4, 2, 3)).astype(np.float32)
    out, (h, c) = m(torch.tensor(x))
    ro, (rh, rc) = rnn_ref("LSTM", x, params_of(m), 2, True, hidden=5, proj=2)
    assert out.shape == (4, 2, 4) and h.shape == (4, 2, 2) and c.shape == (4, 2, 5)
    _assert_close(out, ro)
    _assert_close(h, rh)
    _assert_close(c, rc)
    assert repr(m) == "LSTM(3, 5, proj_size=2, num_layers=2, bidirectional=True)"


# ----------------------------------------------------------------------------- parameters
def test_parameter_names_shapes_and_init():
    torch.manual_seed(4)
    m = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    names = [(n, tuple(p.shape)) for n, p in m.named_parameters()]
    assert names == [
        ("weight_ih_l0", (12, 3)), ("weight_hh_l0", (12, 4)), ("bias_ih_l0", (12,)),
        ("bias_hh_l0", (12,)),
        ("weight_ih_l0_reverse", (12, 3)), ("weight_hh_l0_reverse", (12, 4)),
        ("bias_ih_l0_reverse", (12,)), ("bias_hh_l0_reverse", (12,)),
        ("weight_ih_l1", (12, 8)), ("weight_hh_l1", (12, 4)), ("bias_ih_l1", (12,)),
        ("bias_hh_l1", (12,)),
        ("weight_ih_l1_reverse", (12, 8)), ("weight_hh_l1_reverse", (12, 4)),
        ("bias_ih_l1_reverse", (12,)), ("bias_hh_l1_reverse", (12,))]
    bound = 1 / math.sqrt(4)      # every parameter uniform in +-1/sqrt(hidden_size)
    allp = np.concatenate([p.ravel() for p in params_of(m).values()])
    assert np.abs(allp).max() <= bound and np.abs(allp).max() > 0.9 * bound
    assert [n for n, _ in nn.LSTM(2, 3).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert nn.LSTM(2, 3).weight_ih_l0.shape == (12, 2)
    assert [n for n, _ in nn.RNN(2, 3, bias=False).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0"]
    assert len(nn.LSTM(2, 3, 2).all_weights) == 2
    nn.LSTM(2, 3).flatten_parameters()


def test_repr():
    # the strings PyTorch prints for the same constructors
    assert repr(nn.LSTM(3, 4, 2, batch_first=True, bidirectional=True, dropout=0.5)) == \
        "LSTM(3, 4, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)"
    assert repr(nn.RNN(3, 4, nonlinearity="relu", bias=False)) == "RNN(3, 4, bias=False)"
    assert repr(nn.GRU(3, 4)) == "GRU(3, 4)"


def test_errors():
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 2, 4\), got "
                                           r"\[1, 2, 4\]"):
        nn.LSTM(3, 4, 2)(torch.zeros(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(2, 2, 4\), got "
                                           r"\[2, 3, 4\]"):
        nn.LSTM(3, 4, 2)(torch.zeros(5, 2, 3), (torch.zeros(2, 2, 4), torch.zeros(2, 3, 4)))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(2, 2, 4\), got \[1, 2, 4\]"):
        nn.GRU(3, 4, 2)(torch.zeros(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(RuntimeError, match="For unbatched 2-D input, hx should also be 2-D but "
                                           "got 3-D tensor"):
        nn.GRU(3, 4, 2)(torch.zeros(5, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="GRU: Expected input to be 2D or 3D, got 4D instead"):
        nn.GRU(3, 4)(torch.zeros(5, 2, 2, 3))
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. "
                                           "Expected 3, got 4"):
        nn.GRU(3, 4)(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.5)


# ----------------------------------------------------------------------------- gradients
GRAD_CASES = [(nn.RNN, {}), (nn.LSTM, {"bidirectional": True}), (nn.GRU, {"num_layers": 2})]


@pytest.mark.parametrize("cls,kw", GRAD_CASES, ids=["rnn", "lstm_bidir", "gru_2layers"])
def test_gradients_by_finite_differences(cls, kw):
    """d(sum(out * cot) + sum(h_n * cot_h)) wrt the input, h0 and every parameter."""
    torch.manual_seed(5)
    m = cls(2, 3, dtype=torch.float64, **kw)
    rng = np.random.default_rng(5)
    dirs = 2 if kw.get("bidirectional") else 1
    layers = kw.get("num_layers", 1)
    x = rng.standard_normal((3, 2, 2))
    h0 = rng.standard_normal((layers * dirs, 2, 3)) * 0.5
    names = [n for n, _ in m.named_parameters()]
    arrays = [x, h0] + [p.detach().numpy() for _, p in m.named_parameters()]
    is_lstm = cls is nn.LSTM

    def ref(x, h0, *ps):
        hx = (h0, np.zeros_like(h0)) if is_lstm else h0
        out, h = rnn_ref(m.mode, x, dict(zip(names, ps)), hx=hx, hidden=3, **kw)
        return out, (h[0] if is_lstm else h)

    ro, rh = ref(*arrays)
    co, ch = rng.standard_normal(ro.shape), rng.standard_normal(rh.shape)
    xt = torch.tensor(x, requires_grad=True)
    ht = torch.tensor(h0, requires_grad=True)
    hx = (ht, torch.zeros(*h0.shape, dtype=torch.float64)) if is_lstm else ht
    out, h = m(xt, hx)
    h = h[0] if is_lstm else h
    ((out * torch.tensor(co)).sum() + (h * torch.tensor(ch)).sum()).backward()
    grads = [xt.grad, ht.grad] + [p.grad for _, p in m.named_parameters()]
    realize_tensors([out, h] + grads)
    np.testing.assert_allclose(out.detach().numpy(), ro, rtol=1e-10, atol=1e-12)
    eps = 1e-6
    for i, a in enumerate(arrays):
        num = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            hi = [b.copy() for b in arrays]
            lo = [b.copy() for b in arrays]
            hi[i][idx] += eps
            lo[i][idx] -= eps
            (oh, hh), (ol, hl) = ref(*hi), ref(*lo)
            num[idx] = (np.sum(oh * co) + np.sum(hh * ch) - np.sum(ol * co) -
                        np.sum(hl * ch)) / (2 * eps)
        what = ["input", "h0", *names][i]
        np.testing.assert_allclose(grads[i].numpy(), num, rtol=1e-5, atol=1e-7, err_msg=what)


# ----------------------------------------------------------------------------- torch parity
@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_torch_parity(name):
    tt = pytest.importorskip("torch")
    tt.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True, batch_first=True)
    tm = getattr(tt.nn, name)(3, 4, **kw)
    lm = getattr(nn, name)(3, 4, **kw)
    lm.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(6).standard_normal((2, 4, 3)).astype(np.float32)
    xl, xt = torch.tensor(x, requires_grad=True), tt.tensor(x, requires_grad=True)
    (ol, hl), (ot, ht) = lm(xl), tm(xt)
    cot = np.random.default_rng(7).standard_normal(tuple(ot.shape)).astype(np.float32)
    (ol * torch.tensor(cot)).sum().backward()
    (ot * tt.tensor(cot)).sum().backward()
    np.testing.assert_allclose(ol.detach().numpy(), ot.detach().numpy(), rtol=1e-5, atol=1e-6)
    hl, ht = (hl[0], ht[0]) if name == "LSTM" else (hl, ht)
    np.testing.assert_allclose(hl.detach().numpy(), ht.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    grads_t = dict(tm.named_parameters())
    for n, p in lm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads_t[n].grad.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=n)
