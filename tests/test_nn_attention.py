"""Attention (scaled_dot_product_attention, MultiheadAttention, TransformerEncoderLayer,
TransformerEncoder) and interpolate against numpy references written here; gradients against
central finite differences in float64; PyTorch parity where torch is importable."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
from lazytorch.frontend.tensor import realize_tensors
from tests.helpers import grad_check


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    """Tests run on the numpy interpreter unless they ask for the `backend` fixture (each new
    kernel structure costs a C compile)."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


# ----------------------------------------------------------------------------- references
def softmax(x, axis=-1):
    m = np.max(x, axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    s = e.sum(axis, keepdims=True)
    return e / np.where(s == 0, 1.0, s)


def sdpa_ref(q, k, v, mask=None, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v; a bool mask keeps where True; a fully masked row
    gives zeros."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if is_causal:
        mask = np.tril(np.ones((q.shape[-2], k.shape[-2]), bool))
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    return softmax(s) @ v


def mha_ref(q, k, v, p, num_heads, attn_mask=None, key_padding_mask=None,
            average_attn_weights=True):
    """PyTorch's multi_head_attention_forward on (L, N, E) inputs: in_proj split in q, k, v
    thirds, heads of E / h, scores scaled by 1/sqrt(head_dim), bool masks True = masked out."""
    L, N, E = q.shape
    S = k.shape[0]
    h = num_heads
    hd = E // h
    w, b = p["in_proj_weight"], p.get("in_proj_bias", np.zeros(3 * E))
    qp, kp, vp = q @ w[:E].T + b[:E], k @ w[E:2 * E].T + b[E:2 * E], v @ w[2 * E:].T + b[2 * E:]

    def heads(t, n):        # (n, N, E) -> (N, h, n, hd)
        return t.reshape(n, N, h, hd).transpose(1, 2, 0, 3)

    s = heads(qp, L) @ heads(kp, S).transpose(0, 1, 3, 2) / math.sqrt(hd)
    if attn_mask is not None:
        m = attn_mask if attn_mask.ndim == 2 else attn_mask.reshape(N, h, L, S)
        s = np.where(m, -np.inf, s) if m.dtype == bool else s + m
    if key_padding_mask is not None:
        kpm = key_padding_mask.reshape(N, 1, 1, S)
        s = np.where(kpm, -np.inf, s) if kpm.dtype == bool else s + kpm
    a = np.exp(s - s.max(-1, keepdims=True))
    a = a / a.sum(-1, keepdims=True)
    o = (a @ heads(vp, S)).transpose(2, 0, 1, 3).reshape(L, N, E)
    o = o @ p["out_proj.weight"].T + p.get("out_proj.bias", 0)
    return o, (a.mean(1) if average_attn_weights else a)


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def encoder_layer_ref(x, p, nhead, norm_first, act=lambda t: np.maximum(t, 0), mask=None,
                      kpm=None, prefix=""):
    """PyTorch's TransformerEncoderLayer in eval mode (dropout off), (L, N, E) input."""
    g = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
    attn = {k[len("self_attn."):]: v for k, v in g.items() if k.startswith("self_attn.")}

    def sa(t):
        return mha_ref(t, t, t, attn, nhead, mask, kpm)[0]

    def ff(t):
        return act(t @ g["linear1.weight"].T + g["linear1.bias"]) @ g["linear2.weight"].T + \
            g["linear2.bias"]

    def n1(t):
        return layer_norm(t, g["norm1.weight"], g["norm1.bias"])

    def n2(t):
        return layer_norm(t, g["norm2.weight"], g["norm2.bias"])

    if norm_first:
        x = x + sa(n1(x))
        return x + ff(n2(x))
    x = n1(x + sa(x))
    return n2(x + ff(x))


def params_of(m) -> dict:
    return {n: p.detach().numpy().astype(np.float64) for n, p in m.named_parameters()}


def _randomize(m, seed):
    """Non-zero biases and norm affines, so a test sees every parameter."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for _, p in m.named_parameters():
            v = rng.standard_normal(tuple(p.shape)) * 0.3
            p.copy_(torch.tensor(v, dtype=p.dtype))


# ----------------------------------------------------------------------------- sdpa
def test_sdpa_plain_causal_and_masks(backend):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in
               ((2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6)))
    bm = rng.random((4, 5)) < 0.6
    bm[1] = False                                  # a fully masked row gives zeros
    fm = rng.standard_normal((2, 1, 4, 5)).astype(np.float32)
    T = torch.tensor
    outs = [F.scaled_dot_product_attention(T(q), T(k), T(v)),
            F.scaled_dot_product_attention(T(q), T(k), T(v), is_causal=True),
            F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(bm)),
            F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(fm), scale=0.3)]
    refs = [sdpa_ref(q, k, v), sdpa_ref(q, k, v, is_causal=True), sdpa_ref(q, k, v, bm),
            sdpa_ref(q, k, v, fm, scale=0.3)]
    realize_tensors(outs)
    for o, r in zip(outs, refs):
        np.testing.assert_allclose(o.numpy(), r, rtol=1e-5, atol=1e-6)
    assert np.all(outs[2].numpy()[:, :, 1] == 0)


def test_sdpa_gradients_and_gqa():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal(s) for s in ((1, 2, 3, 4), (1, 2, 4, 4), (1, 2, 4, 3)))
    grad_check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
               lambda q, k, v: sdpa_ref(q, k, v, is_causal=True), [q, k, v])
    q4 = rng.standard_normal((1, 4, 3, 4))
    out = F.scaled_dot_product_attention(torch.tensor(q4), torch.tensor(k), torch.tensor(v),
                                         enable_gqa=True)
    np.testing.assert_allclose(out.numpy(), sdpa_ref(q4, np.repeat(k, 2, 1), np.repeat(v, 2, 1)),
                               rtol=1e-10)
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when "
                                           "is_causal=True"):
        F.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                       attn_mask=torch.ones(3, 4, dtype=torch.bool),
                                       is_causal=True)


# ----------------------------------------------------------------------------- MHA
def test_mha_forward_with_masks(backend):
    torch.manual_seed(0)
    m = nn.MultiheadAttention(8, 2)
    _randomize(m, 0)
    rng = np.random.default_rng(2)
    q = rng.standard_normal((4, 3, 8)).astype(np.float32)
    kv = rng.standard_normal((5, 3, 8)).astype(np.float32)
    am = rng.random((4, 5)) < 0.3
    am[:, 0] = False
    kpm = np.zeros((3, 5), bool)
    kpm[1, 3:] = True
    p = params_of(m)
    out, w = m(torch.tensor(q), torch.tensor(kv), torch.tensor(kv), attn_mask=torch.tensor(am),
               key_padding_mask=torch.tensor(kpm))
    ro, rw = mha_ref(q, kv, kv, p, 2, am, kpm)
    np.testing.assert_allclose(out.detach().numpy(), ro, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w.detach().numpy(), rw, rtol=1e-5, atol=1e-6)
    assert w.shape == (3, 4, 5)


def test_mha_float_masks_per_head_weights_batch_first_unbatched():
    torch.manual_seed(1)
    m = nn.MultiheadAttention(8, 4, batch_first=True)
    _randomize(m, 1)
    rng = np.random.default_rng(3)
    q = rng.standard_normal((3, 4, 8)).astype(np.float32)          # (N, L, E)
    fm = rng.standard_normal((3 * 4, 4, 4)).astype(np.float32)     # (N * h, L, S)
    fk = rng.standard_normal((3, 4)).astype(np.float32)
    p = params_of(m)
    out, w = m(torch.tensor(q), torch.tensor(q), torch.tensor(q), attn_mask=torch.tensor(fm),
               key_padding_mask=torch.tensor(fk), average_attn_weights=False)
    qt = q.transpose(1, 0, 2)
    ro, rw = mha_ref(qt, qt, qt, p, 4, fm, fk, average_attn_weights=False)
    np.testing.assert_allclose(out.detach().numpy(), ro.transpose(1, 0, 2), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(w.detach().numpy(), rw, rtol=1e-5, atol=1e-6)
    out, w = m(torch.tensor(q[0]), torch.tensor(q[0]), torch.tensor(q[0]), need_weights=False)
    assert w is None
    np.testing.assert_allclose(out.detach().numpy(),
                               mha_ref(q[:1].transpose(1, 0, 2), qt[:, :1], qt[:, :1], p,
                                       4)[0][:, 0], rtol=1e-5, atol=1e-5)


def test_mha_parameters_repr_and_errors():
    m = nn.MultiheadAttention(8, 2)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [
        ("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)), ("out_proj.weight", (8, 8)),
        ("out_proj.bias", (8,))]
    assert np.all(m.in_proj_bias.detach().numpy() == 0)
    assert np.all(m.out_proj.bias.detach().numpy() == 0)
    bound = math.sqrt(6 / (8 + 24))                  # xavier_uniform_ on (3E, E)
    assert np.abs(m.in_proj_weight.detach().numpy()).max() <= bound
    assert repr(m) == ("MultiheadAttention(\n  (out_proj): NonDynamicallyQuantizableLinear("
                       "in_features=8, out_features=8, bias=True)\n)")
    m2 = nn.MultiheadAttention(8, 2, kdim=5, vdim=3, bias=False)
    assert [(n, tuple(p.shape)) for n, p in m2.named_parameters()] == [
        ("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 5)), ("v_proj_weight", (8, 3)),
        ("out_proj.weight", (8, 8))]
    assert m2(torch.zeros(2, 1, 8), torch.zeros(3, 1, 5), torch.zeros(3, 1, 3))[0].shape == \
        (2, 1, 8)
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(torch.zeros(2, 1, 8), torch.zeros(2, 1, 8), torch.zeros(2, 1, 8), is_causal=True)


def test_mha_gradients():
    torch.manual_seed(2)
    m = nn.MultiheadAttention(4, 2, dtype=torch.float64)
    _randomize(m, 2)
    p = params_of(m)
    rng = np.random.default_rng(4)
    q, kv = rng.standard_normal((3, 2, 4)), rng.standard_normal((4, 2, 4))
    am = np.array([[0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]], bool)
    grad_check(lambda q, kv: m(q, kv, kv, attn_mask=torch.tensor(am))[0],
               lambda q, kv: mha_ref(q, kv, kv, p, 2, am)[0], [q, kv])


# ----------------------------------------------------------------------------- encoder
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_eval(norm_first):
    torch.manual_seed(3)
    m = nn.TransformerEncoderLayer(8, 2, 16, norm_first=norm_first).eval()
    _randomize(m, 3)
    x = np.random.default_rng(5).standard_normal((5, 2, 8)).astype(np.float32)
    mask = np.triu(np.ones((5, 5), bool), 1)
    kpm = np.array([[False] * 5, [False] * 3 + [True] * 2])
    out = m(torch.tensor(x), src_mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(kpm))
    ref = encoder_layer_ref(x, params_of(m), 2, norm_first, mask=mask, kpm=kpm)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-4, atol=1e-5)


def test_encoder_stack_gelu_batch_first(backend):
    torch.manual_seed(4)
    layer = nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", batch_first=True)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8)).eval()
    _randomize(enc, 4)
    p = params_of(enc)
    assert sum(k.startswith("layers.1.") for k in p) == sum(k.startswith("layers.0.") for k in p)
    x = np.random.default_rng(6).standard_normal((2, 5, 8)).astype(np.float32)
    out = enc(torch.tensor(x))
    erf = np.vectorize(math.erf)

    def gelu(t):
        return 0.5 * t * (1 + erf(t / math.sqrt(2)))

    r = x.transpose(1, 0, 2)
    for i in range(2):
        r = encoder_layer_ref(r, p, 2, False, act=gelu, prefix=f"layers.{i}.")
    r = layer_norm(r, p["norm.weight"], p["norm.bias"]).transpose(1, 0, 2)
    np.testing.assert_allclose(out.detach().numpy(), r, rtol=1e-4, atol=1e-5)


def test_encoder_layer_train_mode_uses_dropout():
    torch.manual_seed(5)
    m = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = torch.tensor(np.random.default_rng(7).standard_normal((5, 2, 8)).astype(np.float32))
    a, b = m(x).detach().numpy(), m.eval()(x).detach().numpy()
    assert not np.allclose(a, b)
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")


# ----------------------------------------------------------------------------- interpolate
def nearest_ref(x, out_sp, scales=None, exact=False):
    """PyTorch's nearest: src = min(floor((dst + shift) * scale), n - 1), scale in float32."""
    for i, n_out in enumerate(out_sp):
        n_in = x.shape[2 + i]
        sc = np.float32(1 / scales[i]) if scales else np.float32(n_in) / np.float32(n_out)
        src = np.floor((np.arange(n_out, dtype=np.float32) + np.float32(0.5 * exact)) * sc)
        x = np.take(x, np.minimum(src.astype(np.int64), n_in - 1), axis=2 + i)
    return x


def linear_ref(x, out_sp, align_corners, scales=None):
    """Separable linear interpolation with PyTorch's source index rule per output pixel."""
    for i, n_out in enumerate(out_sp):
        n_in = x.shape[2 + i]
        y = np.zeros(x.shape[:2 + i] + (n_out,) + x.shape[3 + i:])
        for o in range(n_out):
            if align_corners:
                src = o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            else:
                r = 1 / scales[i] if scales else n_in / n_out
                src = max(r * (o + 0.5) - 0.5, 0.0)
            i0 = int(src)
            i1 = i0 + (1 if i0 < n_in - 1 else 0)
            lam = src - i0
            a = np.take(x, i0, axis=2 + i)
            b = np.take(x, i1, axis=2 + i)
            idx = (slice(None),) * (2 + i) + (o,)
            y[idx] = (1 - lam) * a + lam * b
        x = y
    return x


INTERP = [
    dict(size=(5, 11), mode="nearest"),
    dict(scale_factor=1.7, mode="nearest"),
    dict(size=(3, 3), mode="nearest-exact"),
    dict(size=(5, 11), mode="bilinear", align_corners=False),
    dict(size=(5, 11), mode="bilinear", align_corners=True),
    dict(scale_factor=2, mode="bilinear", align_corners=False),
    dict(scale_factor=(0.5, 1.5), mode="bilinear", align_corners=True),
]


@pytest.mark.parametrize("kw", INTERP, ids=[str(k) for k in INTERP])
def test_interpolate_2d(kw):
    x = np.random.default_rng(8).standard_normal((2, 3, 7, 8)).astype(np.float32)
    out = F.interpolate(torch.tensor(x), **kw)
    sf = kw.get("scale_factor")
    sf = (sf, sf) if isinstance(sf, (int, float)) else sf
    out_sp = kw["size"] if "size" in kw else tuple(int(math.floor(n * s)) for n, s in
                                                   zip((7, 8), sf))
    if kw["mode"].startswith("nearest"):
        ref = nearest_ref(x, out_sp, sf, exact=kw["mode"] == "nearest-exact")
        np.testing.assert_array_equal(out.numpy(), ref)
    else:
        ref = linear_ref(x.astype(np.float64), out_sp, kw["align_corners"], sf)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)


def test_interpolate_linear_area_gradient_and_errors(backend):
    x = np.random.default_rng(9).standard_normal((1, 2, 6))
    out = F.interpolate(torch.tensor(x), size=9, mode="linear")
    np.testing.assert_allclose(out.numpy(), linear_ref(x, (9,), False), rtol=1e-10)
    out = F.interpolate(torch.tensor(x), size=4, mode="area")     # adaptive average windows
    want = np.stack([x[..., (i * 6) // 4:-(-(i + 1) * 6 // 4)].mean(-1) for i in range(4)], -1)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10)
    x2 = np.random.default_rng(10).standard_normal((1, 1, 3, 4))
    grad_check(lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False),
               lambda a: linear_ref(a, (6, 8), False, (2, 2)), [x2])
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(torch.zeros(1, 1, 3, 3), size=4, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners option can only be set with the "
                                         "interpolating modes"):
        F.interpolate(torch.zeros(1, 1, 3, 3), size=4, align_corners=True)
    with pytest.raises(NotImplementedError, match="Got 3D input, but bilinear mode needs 4D "
                                                  "input"):
        F.interpolate(torch.zeros(1, 3, 3), size=4, mode="bilinear")


def antialias_ref(x, out_sp, align_corners=False):
    """PIL's antialiased bilinear, separable: output pixel o (centre (o + 0.5) * r in input
    coordinates, r input pixels per output pixel) averages the input pixels whose centres lie
    within max(r, 1) of it, each weighted by a triangle of that half-width."""
    for i, n_out in enumerate(out_sp):
        n_in = x.shape[2 + i]
        if align_corners:
            r = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            r = n_in / n_out
        half = max(r, 1.0)
        w = np.zeros((n_out, n_in))
        for o in range(n_out):
            c = (o + 0.5) * r
            for j in range(n_in):
                if abs(j + 0.5 - c) < half:
                    w[o, j] = 1 - abs(j + 0.5 - c) / half
            w[o] /= w[o].sum()
        x = np.moveaxis(np.tensordot(x, w, axes=([2 + i], [1])), -1, 2 + i)
    return x


@pytest.mark.parametrize("size,align", [((5, 4), False), ((3, 11), False), ((4, 3), True),
                                        ((1, 1), False)])
def test_interpolate_bilinear_antialias(size, align):
    """torchvision's Resize on tensors: downscaling averages under a stretched triangle."""
    x = np.random.default_rng(12).standard_normal((2, 3, 17, 9)).astype(np.float32)
    out = F.interpolate(torch.tensor(x), size=size, mode="bilinear", align_corners=align,
                        antialias=True)
    ref = antialias_ref(x.astype(np.float64), size, align)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)
    tt = pytest.importorskip("torch")
    want = tt.nn.functional.interpolate(tt.tensor(x), size=size, mode="bilinear",
                                        align_corners=align, antialias=True).numpy()
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-6)


def test_interpolate_antialias_gradient_and_errors(backend):
    x = np.random.default_rng(13).standard_normal((1, 2, 7, 6))
    grad_check(lambda t: F.interpolate(t, size=(3, 8), mode="bilinear", antialias=True),
               lambda a: antialias_ref(a, (3, 8)), [x])
    with pytest.raises(ValueError, match="Anti-alias option is restricted to bilinear"):
        F.interpolate(torch.zeros(1, 1, 3, 3), size=2, antialias=True)
    with pytest.raises(ValueError, match="requires a 4-D tensor as input"):
        F.interpolate(torch.zeros(1, 1, 3), size=2, mode="linear", antialias=True)


# ----------------------------------------------------------------------------- torch parity
def _from_torch(lm, tm):
    lm.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})


def test_torch_parity_mha_and_encoder_layer():
    tt = pytest.importorskip("torch")
    tt.manual_seed(0)
    rng = np.random.default_rng(11)
    q = rng.standard_normal((4, 3, 8)).astype(np.float32)
    kpm = np.zeros((3, 4), bool)
    kpm[2, 2:] = True
    cases = [(nn.MultiheadAttention(8, 2), tt.nn.MultiheadAttention(8, 2)),
             (nn.TransformerEncoderLayer(8, 2, 16).eval(),
              tt.nn.TransformerEncoderLayer(8, 2, 16).eval()),
             (nn.TransformerEncoderLayer(8, 2, 16, norm_first=True).eval(),
              tt.nn.TransformerEncoderLayer(8, 2, 16, norm_first=True).eval())]
    for lm, tm in cases:
        _from_torch(lm, tm)
        xl, xt = torch.tensor(q, requires_grad=True), tt.tensor(q, requires_grad=True)
        if isinstance(lm, nn.MultiheadAttention):
            (ol, wl), (ot, wt) = (lm(xl, xl, xl, key_padding_mask=torch.tensor(kpm)),
                                  tm(xt, xt, xt, key_padding_mask=tt.tensor(kpm)))
            np.testing.assert_allclose(wl.detach().numpy(), wt.detach().numpy(), rtol=1e-5,
                                       atol=1e-6)
        else:
            ol = lm(xl, src_key_padding_mask=torch.tensor(kpm))
            ot = tm(xt, src_key_padding_mask=tt.tensor(kpm))
        cot = rng.standard_normal(tuple(ot.shape)).astype(np.float32)
        (ol * torch.tensor(cot)).sum().backward()
        (ot * tt.tensor(cot)).sum().backward()
        np.testing.assert_allclose(ol.detach().numpy(), ot.detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_torch_parity_interpolate_and_sdpa():
    tt = pytest.importorskip("torch")
    x = np.random.default_rng(12).standard_normal((1, 2, 5, 7)).astype(np.float32)
    for kw in (dict(scale_factor=1.3, mode="nearest"), dict(size=(8, 3), mode="nearest-exact"),
               dict(scale_factor=(2, 0.6), mode="bilinear"),
               dict(size=(4, 9), mode="bilinear", align_corners=True),
               dict(size=(3, 4), mode="area")):
        got = F.interpolate(torch.tensor(x), **kw).numpy()
        want = tt.nn.functional.interpolate(tt.tensor(x), **kw).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=str(kw))
    q = np.random.default_rng(13).standard_normal((2, 2, 3, 4)).astype(np.float32)
    m = np.array([[True, False, True], [False, False, False], [True, True, True]])
    got = F.scaled_dot_product_attention(torch.tensor(q), torch.tensor(q), torch.tensor(q),
                                         attn_mask=torch.tensor(m))
    want = tt.nn.functional.scaled_dot_product_attention(tt.tensor(q), tt.tensor(q),
                                                         tt.tensor(q), attn_mask=tt.tensor(m))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
