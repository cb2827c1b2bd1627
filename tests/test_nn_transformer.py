"""TransformerDecoderLayer, TransformerDecoder and Transformer against numpy references built
from test_nn_attention's multi-head attention and encoder layer (masks, norm_first, gelu or a
callable activation, batch_first), gradients against finite differences in float64, and
PyTorch parity when torch is importable (a PyTorch state_dict loads key for key; outputs and
gradients agree)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
from tests.helpers import grad_check
from tests.test_nn_attention import (
    _randomize,
    encoder_layer_ref,
    layer_norm,
    mha_ref,
    params_of,
)


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


def relu(t):
    return np.maximum(t, 0)


def gelu(t):
    return 0.5 * t * (1 + np.vectorize(math.erf)(t / math.sqrt(2)))


def decoder_layer_ref(x, mem, p, nhead, norm_first, act=relu, tgt_mask=None, mem_mask=None,
                      tgt_kpm=None, mem_kpm=None, prefix=""):
    """PyTorch's TransformerDecoderLayer with dropout off, (L, N, E) inputs."""
    g = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}

    def sub(name):
        return {k[len(name) + 1:]: v for k, v in g.items() if k.startswith(name + ".")}

    def sa(t):
        return mha_ref(t, t, t, sub("self_attn"), nhead, tgt_mask, tgt_kpm)[0]

    def ca(t):
        return mha_ref(t, mem, mem, sub("multihead_attn"), nhead, mem_mask, mem_kpm)[0]

    def ff(t):
        return act(t @ g["linear1.weight"].T + g["linear1.bias"]) @ g["linear2.weight"].T + \
            g["linear2.bias"]

    def norm(i, t):
        return layer_norm(t, g[f"norm{i}.weight"], g[f"norm{i}.bias"])

    if norm_first:
        x = x + sa(norm(1, x))
        x = x + ca(norm(2, x))
        return x + ff(norm(3, x))
    x = norm(1, x + sa(x))
    x = norm(2, x + ca(x))
    return norm(3, x + ff(x))


def causal(n):
    return np.triu(np.full((n, n), -np.inf, np.float32), 1)


def test_generate_square_subsequent_mask():
    m = nn.Transformer.generate_square_subsequent_mask(4)
    assert m.dtype == torch.float32
    np.testing.assert_array_equal(m.numpy(), causal(4))
    assert nn.Transformer.generate_square_subsequent_mask(3, dtype=torch.float64).dtype == \
        torch.float64


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_with_masks(backend, norm_first):
    torch.manual_seed(0)
    m = nn.TransformerDecoderLayer(8, 2, 16, norm_first=norm_first).eval()
    _randomize(m, 0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 8)).astype(np.float32)
    mem = rng.standard_normal((4, 2, 8)).astype(np.float32)
    tgt_kpm = np.array([[False] * 5, [False] * 3 + [True] * 2])
    mem_kpm = np.array([[False] * 3 + [True], [False] * 4])
    mem_mask = rng.standard_normal((5, 4)).astype(np.float32)      # an additive float mask
    out = m(torch.tensor(x), torch.tensor(mem),
            tgt_mask=nn.Transformer.generate_square_subsequent_mask(5),
            memory_mask=torch.tensor(mem_mask), tgt_key_padding_mask=torch.tensor(tgt_kpm),
            memory_key_padding_mask=torch.tensor(mem_kpm), tgt_is_causal=True)
    ref = decoder_layer_ref(x, mem, params_of(m), 2, norm_first, tgt_mask=causal(5),
                            mem_mask=mem_mask, tgt_kpm=tgt_kpm, mem_kpm=mem_kpm)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-4, atol=1e-5)


def test_decoder_stack_callable_activation_bool_mask_unbatched():
    torch.manual_seed(1)
    layer = nn.TransformerDecoderLayer(8, 4, 12, activation=nn.functional.silu)
    dec = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(8)).eval()
    _randomize(dec, 1)
    p = params_of(dec)
    assert sum(k.startswith("layers.1.") for k in p) == sum(k.startswith("layers.0.") for k in p)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8)).astype(np.float32)         # unbatched (L, E)
    mem = rng.standard_normal((6, 8)).astype(np.float32)
    mask = np.triu(np.ones((3, 3), bool), 1)                   # bool: True = masked out
    out = dec(torch.tensor(x), torch.tensor(mem), tgt_mask=torch.tensor(mask))

    def silu(t):
        return t / (1 + np.exp(-t))
    r = x[:, None]
    for i in range(2):
        r = decoder_layer_ref(r, mem[:, None], p, 4, False, act=silu, tgt_mask=mask,
                              prefix=f"layers.{i}.")
    r = layer_norm(r, p["norm.weight"], p["norm.bias"])[:, 0]
    np.testing.assert_allclose(out.detach().numpy(), r, rtol=1e-4, atol=1e-5)


def test_transformer_gelu_batch_first():
    torch.manual_seed(2)
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                       dim_feedforward=16, activation="gelu", batch_first=True).eval()
    _randomize(m, 2)
    p = params_of(m)
    rng = np.random.default_rng(2)
    src = rng.standard_normal((2, 5, 8)).astype(np.float32)
    tgt = rng.standard_normal((2, 4, 8)).astype(np.float32)
    src_kpm = np.array([[False] * 5, [False] * 2 + [True] * 3])
    out = m(torch.tensor(src), torch.tensor(tgt),
            tgt_mask=m.generate_square_subsequent_mask(4),
            src_key_padding_mask=torch.tensor(src_kpm),
            memory_key_padding_mask=torch.tensor(src_kpm))
    s = src.transpose(1, 0, 2)
    for i in range(2):
        s = encoder_layer_ref(s, p, 2, False, act=gelu, kpm=src_kpm,
                              prefix=f"encoder.layers.{i}.")
    mem = layer_norm(s, p["encoder.norm.weight"], p["encoder.norm.bias"])
    t = decoder_layer_ref(tgt.transpose(1, 0, 2), mem, p, 2, False, act=gelu,
                          tgt_mask=causal(4), mem_kpm=src_kpm, prefix="decoder.layers.0.")
    t = layer_norm(t, p["decoder.norm.weight"], p["decoder.norm.bias"]).transpose(1, 0, 2)
    np.testing.assert_allclose(out.detach().numpy(), t, rtol=1e-4, atol=1e-5)


def test_transformer_init_parameters_and_errors():
    torch.manual_seed(3)
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                       dim_feedforward=16)
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["encoder.layers.0.self_attn.in_proj_weight",
                         "encoder.layers.0.self_attn.in_proj_bias",
                         "encoder.layers.0.self_attn.out_proj.weight",
                         "encoder.layers.0.self_attn.out_proj.bias"]
    assert "decoder.layers.0.multihead_attn.in_proj_weight" in names
    assert names[-2:] == ["decoder.norm.weight", "decoder.norm.bias"]
    w = m.decoder.layers[0].linear1.weight.detach().numpy()       # Xavier uniform: +-sqrt(6/(8+16))
    assert np.abs(w).max() <= math.sqrt(6 / 24) and w.std() > 0.2
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        m(torch.randn(5, 2, 8), torch.randn(4, 3, 8))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal "
                                           "to d_model"):
        m(torch.randn(5, 2, 8), torch.randn(4, 2, 6))
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m.decoder(torch.randn(4, 2, 8), torch.randn(5, 2, 8), tgt_is_causal=True)


def test_decoder_layer_gradients_by_finite_differences():
    torch.manual_seed(4)
    m = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, dtype=torch.float64)
    _randomize(m, 4)
    p = params_of(m)
    rng = np.random.default_rng(4)
    x, mem = rng.standard_normal((3, 1, 4)), rng.standard_normal((2, 1, 4))
    grad_check(lambda a, b: m(a, b, tgt_mask=torch.tensor(causal(3).astype(np.float64))),
               lambda a, b: decoder_layer_ref(a, b, p, 2, False, tgt_mask=causal(3)),
               [x, mem])


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_torch_parity_state_dict_outputs_and_gradients():
    tt = pytest.importorskip("torch")
    tt.manual_seed(0)
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=16, dropout=0.0)
    for extra in (dict(), dict(norm_first=True, batch_first=True, activation="gelu")):
        tm = tt.nn.Transformer(**kw, **extra)
        lm = nn.Transformer(**kw, **extra)
        sd = tm.state_dict()
        assert list(lm.state_dict()) == list(sd)
        lm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in sd.items()})
        rng = np.random.default_rng(5)
        bf = extra.get("batch_first", False)
        src = rng.standard_normal((2, 6, 8) if bf else (6, 2, 8)).astype(np.float32)
        tgt = rng.standard_normal((2, 5, 8) if bf else (5, 2, 8)).astype(np.float32)
        kpm = np.array([[False] * 6, [False] * 4 + [True] * 2])
        sl, tl = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
        st, tt_ = tt.tensor(src, requires_grad=True), tt.tensor(tgt, requires_grad=True)
        ol = lm(sl, tl, tgt_mask=lm.generate_square_subsequent_mask(5),
                src_key_padding_mask=torch.tensor(kpm),
                memory_key_padding_mask=torch.tensor(kpm))
        ot = tm(st, tt_, tgt_mask=tm.generate_square_subsequent_mask(5),
                src_key_padding_mask=tt.tensor(kpm), memory_key_padding_mask=tt.tensor(kpm))
        np.testing.assert_allclose(ol.detach().numpy(), ot.detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
        cot = rng.standard_normal(tuple(ot.shape)).astype(np.float32)
        (ol * torch.tensor(cot)).sum().backward()
        (ot * tt.tensor(cot)).sum().backward()
        np.testing.assert_allclose(sl.grad.numpy(), st.grad.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(tl.grad.numpy(), tt_.grad.numpy(), rtol=1e-4, atol=1e-5)
        for (n, pl), pt in zip(lm.named_parameters(), tm.parameters()):
            np.testing.assert_allclose(pl.grad.numpy(), pt.grad.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=n)
