"""Convolution and pooling (conv1d/conv2d/conv_transpose, max/avg/adaptive pools and their
modules) against direct numpy loop implementations written here; gradients against central
finite differences of those references in float64; PyTorch parity where torch is importable."""
from __future__ import annotations

import itertools
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
    """Tests run on the numpy interpreter unless they ask for the `backend` fixture (both
    backends) or `compiled` (C): each new kernel structure costs a C compile."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


@pytest.fixture
def compiled(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")


# ----------------------------------------------------------------------------- helpers
def _nt(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def conv_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct convolution (cross-correlation): a loop over output positions, (N, C, *sp)."""
    nsp = w.ndim - 2
    unbatched = x.ndim == nsp + 1
    if unbatched:
        x = x[None]
    k = w.shape[2:]
    s, d = _nt(stride, nsp), _nt(dilation, nsp)
    if padding == "valid":
        pads = [(0, 0)] * nsp
    elif padding == "same":
        pads = [(dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2) for kk, dd in zip(k, d)]
    else:
        pads = [(p, p) for p in _nt(padding, nsp)]
    x = np.pad(x, [(0, 0), (0, 0)] + pads)
    n, c = x.shape[:2]
    o, cg = w.shape[:2]
    og = o // groups
    out_sp = [(x.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(nsp)]
    out = np.zeros((n, o, *out_sp), dtype=np.float64)
    for pos in itertools.product(*[range(v) for v in out_sp]):
        win = x[(slice(None), slice(None)) + tuple(
            slice(p * s[i], p * s[i] + d[i] * (k[i] - 1) + 1, d[i]) for i, p in enumerate(pos))]
        for g in range(groups):
            patch = win[:, g * cg:(g + 1) * cg].reshape(n, -1)
            wg = w[g * og:(g + 1) * og].reshape(og, -1)
            out[(slice(None), slice(g * og, (g + 1) * og)) + pos] = patch @ wg.T
    if b is not None:
        out += b.reshape(1, o, *[1] * nsp)
    return out[0] if unbatched else out


def conv_transpose_ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
    """Transposed convolution by its scatter-add definition: each input pixel adds
    x * w[:, :, kernel] at (i * stride - padding + k * dilation)."""
    nsp = w.ndim - 2
    unbatched = x.ndim == nsp + 1
    if unbatched:
        x = x[None]
    s, p = _nt(stride, nsp), _nt(padding, nsp)
    op, d = _nt(output_padding, nsp), _nt(dilation, nsp)
    n, cin = x.shape[:2]
    og, k = w.shape[1], w.shape[2:]
    cg = cin // groups
    full = [(x.shape[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 + op[i] for i in range(nsp)]
    out = np.zeros((n, og * groups, *full))
    for ipos in itertools.product(*[range(v) for v in x.shape[2:]]):
        for kpos in itertools.product(*[range(v) for v in k]):
            at = tuple(ipos[i] * s[i] + kpos[i] * d[i] for i in range(nsp))
            for g in range(groups):
                xv = x[(slice(None), slice(g * cg, (g + 1) * cg)) + ipos]       # (n, cg)
                wv = w[(slice(g * cg, (g + 1) * cg), slice(None)) + kpos]       # (cg, og)
                out[(slice(None), slice(g * og, (g + 1) * og)) + at] += xv @ wv
    crop = tuple(slice(p[i], full[i] - p[i]) for i in range(nsp))
    out = out[(slice(None), slice(None)) + crop]
    if b is not None:
        out = out + b.reshape(1, -1, *[1] * nsp)
    return out[0] if unbatched else out


# ----------------------------------------------------------------------------- conv forward
CONV2D_CASES = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
    dict(padding="same", dilation=2),
    dict(padding="valid", groups=2),
    dict(stride=2, padding=1, groups=4),            # depthwise
]


@pytest.mark.parametrize("kw", CONV2D_CASES, ids=[str(k) for k in CONV2D_CASES])
def test_conv2d_forward(backend, kw):
    rng = np.random.default_rng(0)
    g = kw.get("groups", 1)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((8, 4 // g, 3, 2)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    out = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kw)
    np.testing.assert_allclose(out.numpy(), conv_ref(x, w, b, **kw), rtol=1e-4, atol=1e-5)


def test_conv2d_no_bias_and_unbatched():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 2)).astype(np.float32)
    out = F.conv2d(torch.tensor(x), torch.tensor(w), stride=2, padding=1)
    assert out.shape == (8, 4, 4)
    np.testing.assert_allclose(out.numpy(), conv_ref(x, w, stride=2, padding=1), rtol=1e-4,
                               atol=1e-5)


CONV1D_CASES = [dict(), dict(stride=2, padding=2, dilation=2), dict(padding="same", groups=2),
                dict(padding="same", dilation=3)]


@pytest.mark.parametrize("kw", CONV1D_CASES, ids=[str(k) for k in CONV1D_CASES])
def test_conv1d_forward(backend, kw):
    rng = np.random.default_rng(2)
    g = kw.get("groups", 1)
    x = rng.standard_normal((2, 4, 9)).astype(np.float32)
    w = rng.standard_normal((6, 4 // g, 4)).astype(np.float32)   # even kernel: 'same' pads 1|2
    b = rng.standard_normal(6).astype(np.float32)
    out = F.conv1d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kw)
    np.testing.assert_allclose(out.numpy(), conv_ref(x, w, b, **kw), rtol=1e-4, atol=1e-5)
    out = F.conv1d(torch.tensor(x[0]), torch.tensor(w), **kw)       # unbatched, no bias
    np.testing.assert_allclose(out.numpy(), conv_ref(x[0], w, None, **kw), rtol=1e-4,
                               atol=1e-5)


CONVT_CASES = [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=(1, 2)),
    dict(padding=2, dilation=2),
]


@pytest.mark.parametrize("kw", CONVT_CASES, ids=[str(k) for k in CONVT_CASES])
def test_conv_transpose2d_forward(backend, kw):
    rng = np.random.default_rng(3)
    g = kw.get("groups", 1)
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    w = rng.standard_normal((4, 6 // g, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    out = F.conv_transpose2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kw)
    np.testing.assert_allclose(out.numpy(), conv_transpose_ref(x, w, b, **kw), rtol=1e-4,
                               atol=1e-5)


def test_conv_transpose1d_forward():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5)).astype(np.float32)     # unbatched
    w = rng.standard_normal((4, 3, 3)).astype(np.float32)
    kw = dict(stride=3, padding=1, output_padding=2, groups=2)
    w = w[:, :3]
    out = F.conv_transpose1d(torch.tensor(x), torch.tensor(w), **kw)
    np.testing.assert_allclose(out.numpy(), conv_transpose_ref(x, w, **kw), rtol=1e-4,
                               atol=1e-5)


# ----------------------------------------------------------------------------- conv gradients
def test_conv2d_gradients():
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s) for s in ((2, 4, 5, 4), (4, 2, 3, 2), (4,)))
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    grad_check(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: conv_ref(x, w, b, **kw),
               [x, w, b])


def test_conv1d_same_gradients():
    rng = np.random.default_rng(6)
    x, w, b = (rng.standard_normal(s) for s in ((2, 3, 6), (2, 3, 4), (2,)))
    grad_check(lambda x, w, b: F.conv1d(x, w, b, padding="same"),
               lambda x, w, b: conv_ref(x, w, b, padding="same"), [x, w, b])


def test_conv_transpose2d_gradients():
    rng = np.random.default_rng(7)
    x, w, b = (rng.standard_normal(s) for s in ((1, 4, 3, 3), (4, 2, 3, 2), (4,)))
    kw = dict(stride=2, padding=1, output_padding=1, groups=2)
    grad_check(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw),
               lambda x, w, b: conv_transpose_ref(x, w, b, **kw), [x, w, b])


def test_conv_products_run_as_gemm_kernels(compiled):
    """The im2col product and the input gradient's product read their operands through plain
    strides (the weight's reshape folds back), so both render as packed GEMMs (one per batch
    element against the shared weight), and compute the same values as the references."""
    from lazytorch.compiler.codegen.c.gemm import match_gemm
    from lazytorch.engine.realize import schedule
    rng = np.random.default_rng(24)
    xa = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    wa = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    x = torch.tensor(xa, requires_grad=True)
    w = torch.tensor(wa, requires_grad=True)
    out = F.conv2d(x, w, padding=1)
    assert sum(match_gemm(k) is not None for k in schedule([out.node]).kernels) == 1
    (out * out).sum().backward()
    assert sum(match_gemm(k) is not None for k in schedule([x.grad.node]).kernels) == 2
    realize_tensors([out, x.grad])
    ref = conv_ref(xa, wa, padding=1)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x.grad.numpy(), conv_transpose_ref(2 * ref, wa, padding=1),
                               rtol=1e-4, atol=1e-3)


# ----------------------------------------------------------------------------- conv modules
def test_conv_module_parameters_and_init():
    torch.manual_seed(0)
    m = nn.Conv2d(16, 64, 3)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == \
        [("weight", (64, 16, 3, 3)), ("bias", (64,))]
    bound = 1 / math.sqrt(16 * 9)     # kaiming_uniform(a=sqrt(5)): 1/sqrt(fan_in), bias too
    for p in (m.weight, m.bias):
        v = np.abs(p.detach().numpy())
        assert v.max() <= bound and v.max() > 0.8 * bound
    assert nn.Conv1d(4, 6, 5, groups=2, bias=False).weight.shape == (6, 2, 5)
    assert nn.Conv1d(4, 6, 5, bias=False).bias is None
    t = nn.ConvTranspose2d(4, 6, (3, 2), groups=2)
    assert t.weight.shape == (4, 3, 3, 2) and t.bias.shape == (6,)
    bound = 1 / math.sqrt(3 * 3 * 2)   # fan_in of a transposed weight: dim 1 * kernel
    assert np.abs(t.weight.detach().numpy()).max() <= bound
    assert np.abs(t.bias.detach().numpy()).max() <= bound


def test_conv_module_repr():
    # the strings PyTorch prints for the same constructors
    assert repr(nn.Conv2d(1, 8, 3)) == "Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(nn.Conv2d(4, 8, (3, 5), stride=2, padding=(1, 2), dilation=2, groups=2,
                          bias=False)) == \
        "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 2), dilation=(2, 2), " \
        "groups=2, bias=False)"
    assert repr(nn.Conv1d(2, 4, 3, padding="same")) == \
        "Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=same)"
    assert repr(nn.Conv2d(2, 2, 3, padding_mode="reflect")) == \
        "Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding_mode=reflect)"
    assert repr(nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1)) == \
        "ConvTranspose2d(2, 4, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))"


def test_conv_module_forward_matches_functional():
    rng = np.random.default_rng(8)
    m = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    ref = conv_ref(x, m.weight.detach().numpy(), m.bias.detach().numpy(), stride=2, padding=1)
    np.testing.assert_allclose(m(torch.tensor(x)).detach().numpy(), ref, rtol=1e-4, atol=1e-5)
    # non-zero padding modes pad with F.pad's rule first
    m = nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode="reflect", bias=False)
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (2, 2)], mode="reflect")
    np.testing.assert_allclose(m(torch.tensor(x)).detach().numpy(),
                               conv_ref(xp, m.weight.detach().numpy()), rtol=1e-4, atol=1e-5)
    m = nn.Conv1d(3, 2, 4, padding="same", padding_mode="circular", bias=False)
    xc = np.pad(x[:, :, 0], [(0, 0), (0, 0), (1, 2)], mode="wrap")
    np.testing.assert_allclose(m(torch.tensor(x[:, :, 0])).detach().numpy(),
                               conv_ref(xc, m.weight.detach().numpy()), rtol=1e-4, atol=1e-5)


def test_conv_transpose_output_size():
    m = nn.ConvTranspose2d(2, 3, 3, stride=2)
    x = torch.zeros(1, 2, 4, 4)
    assert m(x).shape == (1, 3, 9, 9)
    assert m(x, output_size=(10, 10)).shape == (1, 3, 10, 10)
    assert m(x, output_size=[1, 3, 10, 9]).shape == (1, 3, 10, 9)
    with pytest.raises(ValueError, match=r"requested an output size of \(12, 12\), but valid "
                                         r"sizes range from \[9, 9\] to \[10, 10\]"):
        m(x, output_size=(12, 12))


def test_conv_errors():
    with pytest.raises(RuntimeError, match=re_escape(
            "Given groups=1, weight of size [4, 3, 3, 3], expected input[1, 2, 5, 5] to have 3 "
            "channels, but got 2 channels instead")):
        nn.Conv2d(3, 4, 3)(torch.zeros(1, 2, 5, 5))
    with pytest.raises(RuntimeError, match=re_escape(
            "Given groups=2, weight of size [4, 3, 3, 3], expected input[1, 4, 5, 5] to have 6 "
            "channels, but got 4 channels instead")):
        F.conv2d(torch.zeros(1, 4, 5, 5), torch.zeros(4, 3, 3, 3), groups=2)
    with pytest.raises(RuntimeError, match=re_escape(
            "Given transposed=1, weight of size [4, 3, 3, 3], expected input[1, 3, 5, 5] to "
            "have 4 channels, but got 3 channels instead")):
        F.conv_transpose2d(torch.zeros(1, 3, 5, 5), torch.zeros(4, 3, 3, 3))
    with pytest.raises(RuntimeError, match="Expected 3D \\(unbatched\\) or 4D \\(batched\\) "
                                           "input to conv2d, but got input of size: "
                                           "\\[1, 1, 3, 2, 2\\]"):
        F.conv2d(torch.zeros(1, 1, 3, 2, 2), torch.zeros(4, 1, 3, 3))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input"):
        F.conv2d(torch.zeros(1, 3, 2, 2), torch.zeros(4, 3, 3, 3))
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        F.conv2d(torch.zeros(1, 3, 5, 5, dtype=torch.float64), torch.zeros(4, 3, 3, 3))
    with pytest.raises(RuntimeError, match="padding='same' is not supported for strided"):
        F.conv2d(torch.zeros(1, 3, 5, 5), torch.zeros(4, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride "
                                           "or dilation"):
        F.conv_transpose2d(torch.zeros(1, 2, 3, 3), torch.zeros(2, 2, 3, 3), stride=2,
                           output_padding=2)


def re_escape(s: str) -> str:
    import re
    return re.escape(s)


# ----------------------------------------------------------------------------- pooling refs
def pool_out(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape."""
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def max_pool_ref(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over each window (padding is -inf) and the flat index (into the unpadded spatial
    dims) of the first max, as PyTorch's CPU kernel picks it."""
    nsp = x.ndim - 2
    k = _nt(kernel, nsp)
    s = k if stride is None else _nt(stride, nsp)
    p, d = _nt(padding, nsp), _nt(dilation, nsp)
    sp = x.shape[2:]
    out_sp = [pool_out(sp[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(nsp)]
    vals = np.zeros(x.shape[:2] + tuple(out_sp), x.dtype)
    idx = np.zeros(vals.shape, np.int64)
    for nc in np.ndindex(x.shape[:2]):
        for pos in itertools.product(*[range(v) for v in out_sp]):
            best, arg = -np.inf, -1
            for kp in itertools.product(*[range(v) for v in k]):
                at = [pos[i] * s[i] - p[i] + kp[i] * d[i] for i in range(nsp)]
                if all(0 <= a < sp[i] for i, a in enumerate(at)):
                    v = x[nc + tuple(at)]
                    if v > best or arg < 0:
                        best, arg = v, int(np.ravel_multi_index(at, sp))
            vals[nc + pos], idx[nc + pos] = best, arg
    return vals, idx


def avg_pool_ref(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
    """PyTorch's avg_pool definition: window [start, min(start + k, n + pad)) gives the
    count_include_pad size, the sum runs over its part inside the input."""
    nsp = x.ndim - 2
    k = _nt(kernel, nsp)
    s = k if stride is None else _nt(stride, nsp)
    p = _nt(padding, nsp)
    sp = x.shape[2:]
    out_sp = [pool_out(sp[i], k[i], s[i], p[i], 1, ceil_mode) for i in range(nsp)]
    out = np.zeros(x.shape[:2] + tuple(out_sp))
    for pos in itertools.product(*[range(v) for v in out_sp]):
        lo = [pos[i] * s[i] - p[i] for i in range(nsp)]
        hi = [min(lo[i] + k[i], sp[i] + p[i]) for i in range(nsp)]
        pool_size = math.prod(h - lw for lw, h in zip(lo, hi))
        lo = [max(v, 0) for v in lo]
        hi = [min(h, n) for h, n in zip(hi, sp)]
        total = x[(slice(None), slice(None)) + tuple(slice(a, b) for a, b in zip(lo, hi))]
        total = total.sum(tuple(range(2, 2 + nsp)))
        if divisor_override:
            div = divisor_override
        elif count_include_pad:
            div = pool_size
        else:
            div = math.prod(b - a for a, b in zip(lo, hi))
        out[(slice(None), slice(None)) + pos] = total / div
    return out


def adaptive_avg_ref(x, out_sp):
    """Windows [floor(i * n / o), ceil((i + 1) * n / o)) per spatial dim."""
    nsp = len(out_sp)
    sp = x.shape[-nsp:]
    out = np.zeros(x.shape[:-nsp] + tuple(out_sp))
    for pos in itertools.product(*[range(v) for v in out_sp]):
        sl = tuple(slice(pos[i] * sp[i] // out_sp[i], -(-(pos[i] + 1) * sp[i] // out_sp[i]))
                   for i in range(nsp))
        out[(Ellipsis,) + pos] = x[(Ellipsis,) + sl].mean(tuple(range(-nsp, 0)))
    return out


# ----------------------------------------------------------------------------- pooling tests
MAXPOOL_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), dilation=(2, 1), ceil_mode=True),
    dict(kernel_size=2, stride=3, padding=1, ceil_mode=True),
]


@pytest.mark.parametrize("kw", MAXPOOL_CASES, ids=[str(k) for k in MAXPOOL_CASES])
def test_max_pool2d_values_and_indices(backend, kw):
    x = np.random.default_rng(9).standard_normal((2, 3, 7, 8)).astype(np.float32)
    vals, idx = F.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    kw = dict(kw)
    k = kw.pop("kernel_size")
    rv, ri = max_pool_ref(x, k, **kw)
    np.testing.assert_array_equal(vals.numpy(), rv)
    np.testing.assert_array_equal(idx.numpy(), ri)
    assert idx.dtype == torch.int64


def test_max_pool1d_and_unbatched():
    x = np.random.default_rng(10).standard_normal((3, 9)).astype(np.float32)
    vals, idx = F.max_pool1d(torch.tensor(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    rv, ri = max_pool_ref(x[None], 3, 2, 1, ceil_mode=True)
    np.testing.assert_array_equal(vals.numpy(), rv[0])
    np.testing.assert_array_equal(idx.numpy(), ri[0])
    x2 = np.random.default_rng(11).standard_normal((3, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(nn.MaxPool2d(2)(torch.tensor(x2)).numpy(),
                                  max_pool_ref(x2[None], 2)[0][0])


def test_max_pool_gradient_goes_to_first_max(backend):
    # integer values: many ties inside each (overlapping) window
    x = np.random.default_rng(12).integers(0, 3, (2, 2, 6, 7)).astype(np.float64)
    t = torch.tensor(x, requires_grad=True)
    out = F.max_pool2d(t, 3, 2, 1, ceil_mode=True)
    cot = np.random.default_rng(13).standard_normal(tuple(out.shape))
    (out * torch.tensor(cot)).sum().backward()
    _, ri = max_pool_ref(x, 3, 2, 1, ceil_mode=True)
    want = np.zeros_like(x).reshape(2, 2, -1)
    for nc in np.ndindex(2, 2):
        np.add.at(want[nc], ri[nc].ravel(), cot[nc].ravel())
    np.testing.assert_allclose(t.grad.numpy(), want.reshape(x.shape), rtol=1e-12, atol=1e-12)


def test_max_pool_gradient_by_finite_differences():
    x = np.random.default_rng(14).permutation(2 * 3 * 5 * 6).reshape(2, 3, 5, 6) * 0.1
    grad_check(lambda x: F.max_pool2d(x, (2, 3), stride=(1, 2), padding=1),
               lambda x: max_pool_ref(x, (2, 3), (1, 2), 1)[0], [x])


AVGPOOL_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, ceil_mode=True, padding=1),
    dict(kernel_size=3, stride=2, ceil_mode=True, padding=1, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=1, divisor_override=5),
    dict(kernel_size=2, stride=3, ceil_mode=True, padding=1),
]


@pytest.mark.parametrize("kw", AVGPOOL_CASES, ids=[str(k) for k in AVGPOOL_CASES])
def test_avg_pool2d(backend, kw):
    x = np.random.default_rng(15).standard_normal((2, 3, 7, 8)).astype(np.float32)
    out = F.avg_pool2d(torch.tensor(x), **kw)
    kw = dict(kw)
    k = kw.pop("kernel_size")
    np.testing.assert_allclose(out.numpy(), avg_pool_ref(x, k, **kw), rtol=1e-5, atol=1e-6)


def test_avg_pool1d_and_gradient():
    x = np.random.default_rng(16).standard_normal((2, 3, 8))
    out = F.avg_pool1d(torch.tensor(x), 3, 2, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(out.numpy(), avg_pool_ref(x, 3, 2, 1, True, False), rtol=1e-12)
    x = np.random.default_rng(23).standard_normal((1, 2, 4, 5))
    grad_check(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
               lambda x: avg_pool_ref(x, 3, 2, 1, ceil_mode=True), [x])


@pytest.mark.parametrize("size", [(7, 4), (3, 5), (1, 1), (5, 3), (None, 3), 4])
def test_adaptive_avg_pool2d(size):
    x = np.random.default_rng(17).standard_normal((2, 3, 7, 8)).astype(np.float32)
    out = F.adaptive_avg_pool2d(torch.tensor(x), size)
    want = (size, size) if isinstance(size, int) else (size[0] or 7, size[1] or 8)
    np.testing.assert_allclose(out.numpy(), adaptive_avg_ref(x, want), rtol=1e-5, atol=1e-6)


def test_adaptive_avg_pool_1d_unbatched_and_gradient(backend):
    x = np.random.default_rng(18).standard_normal((3, 7))
    out = nn.AdaptiveAvgPool1d(3)(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), adaptive_avg_ref(x, (3,)), rtol=1e-12)
    x = np.random.default_rng(19).standard_normal((1, 2, 5, 4))
    grad_check(lambda x: F.adaptive_avg_pool2d(x, (2, 3)), lambda x: adaptive_avg_ref(x, (2, 3)),
               [x])


def test_pool_modules_repr_and_errors():
    assert repr(nn.MaxPool2d(2)) == \
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool2d(3, 2, 1)) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    assert repr(nn.AvgPool1d(3)) == "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"
    with pytest.raises(RuntimeError, match="pad should be at most half of effective kernel "
                                           "size, but got pad=2, kernel_size=2 and dilation=1"):
        F.max_pool2d(torch.zeros(1, 1, 8, 8), 2, padding=2)
    with pytest.raises(RuntimeError, match=re_escape(
            "Given input size: (1x8x8). Calculated output size: (1x0x0). Output size is too "
            "small")):
        F.max_pool2d(torch.zeros(1, 1, 8, 8), 9)
    with pytest.raises(RuntimeError, match="divisor must be not zero"):
        F.avg_pool2d(torch.zeros(1, 1, 4, 4), 2, divisor_override=0)


# ----------------------------------------------------------------------------- torch parity
def _grads_match(lt_mod, t_mod, x, rtol=1e-4, atol=1e-5):
    """Same output and same input gradient (for a fixed cotangent) as the torch module."""
    tt = pytest.importorskip("torch")
    xl = torch.tensor(x, requires_grad=True)
    xt = tt.tensor(x, requires_grad=True)
    ol, ot = lt_mod(xl), t_mod(xt)
    ol, ot = (ol[0], ot[0]) if isinstance(ol, tuple) else (ol, ot)
    cot = np.random.default_rng(20).standard_normal(tuple(ot.shape)).astype(x.dtype)
    (ol * torch.tensor(cot)).sum().backward()
    (ot * tt.tensor(cot)).sum().backward()
    np.testing.assert_allclose(ol.detach().numpy(), ot.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol)
    return ol, ot


def _load_from_torch(lt_mod, t_mod):
    lt_mod.load_state_dict({k: torch.tensor(v.detach().numpy())
                            for k, v in t_mod.state_dict().items()})


def test_torch_parity_conv_and_pool_modules():
    tt = pytest.importorskip("torch")
    tt.manual_seed(0)
    x = np.random.default_rng(21).standard_normal((2, 4, 7, 6)).astype(np.float32)
    pairs = [(nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
              tt.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)),
             (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
              tt.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)),
             (nn.MaxPool2d(3, 2, 1, ceil_mode=True), tt.nn.MaxPool2d(3, 2, 1, ceil_mode=True))]
    for lm, tm in pairs:
        _load_from_torch(lm, tm)
        _grads_match(lm, tm, x)
    xr = np.round(x * 2) / 2                                   # ties
    _grads_match(nn.MaxPool2d(2, 1), tt.nn.MaxPool2d(2, 1), xr)
    vl, il = F.max_pool2d(torch.tensor(xr), 3, 2, 1, return_indices=True)
    vt, it = tt.nn.functional.max_pool2d(tt.tensor(xr), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(il.numpy(), it.numpy())


# ----------------------------------------------------------------------------- training
def test_cnn_training_step_lowers_loss(compiled):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 2 * 2, 3))
    rng = np.random.default_rng(22)
    y = rng.integers(0, 3, 12)
    x = rng.standard_normal((12, 1, 8, 8)).astype(np.float32) * 0.3
    x[np.arange(12), 0, y * 2, y * 2 + 1] += 3.0          # a class-dependent bright pixel
    xt, yt = torch.tensor(x), torch.tensor(y)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("shape,k", [((2, 3, 8, 6), 2), ((2, 2, 7, 9), 2), ((1, 2, 9, 9), 3),
                                     ((2, 3, 7, 5), (2, 1))])
def test_max_pool_tiling_windows_values_indices_and_first_max_gradient(backend, shape, k):
    # stride = kernel, no padding: windows tile the input (a reshape, not a window view);
    # odd sizes drop the last rows/columns as PyTorch's floor mode does. Integer values make
    # ties, whose gradient must go to the first maximum only.
    x = np.random.default_rng(21).integers(0, 3, shape).astype(np.float64)
    t = torch.tensor(x, requires_grad=True)
    vals, idx = F.max_pool2d(t, k, return_indices=True)
    rv, ri = max_pool_ref(x, k)
    np.testing.assert_array_equal(vals.detach().numpy(), rv)
    np.testing.assert_array_equal(idx.numpy(), ri)
    cot = np.random.default_rng(22).standard_normal(rv.shape)
    (vals * torch.tensor(cot)).sum().backward()
    want = np.zeros_like(x).reshape(shape[0], shape[1], -1)
    for nc in np.ndindex(shape[0], shape[1]):
        np.add.at(want[nc], ri[nc].ravel(), cot[nc].ravel())
    np.testing.assert_allclose(t.grad.numpy(), want.reshape(shape), rtol=1e-12, atol=1e-12)


def test_max_pool_tiling_gradient_by_finite_differences():
    x = np.random.default_rng(23).permutation(2 * 2 * 6 * 5).reshape(2, 2, 6, 5) * 0.1
    grad_check(lambda x: F.max_pool2d(x, 2), lambda x: max_pool_ref(x, 2)[0], [x])
    y = np.random.default_rng(24).permutation(2 * 3 * 8).reshape(2, 3, 8) * 0.1
    grad_check(lambda y: F.max_pool1d(y, 4),
               lambda y: max_pool_ref(y[:, :, None], (1, 4))[0][:, :, 0], [y])


def test_max_pool_propagates_nan_like_pytorch():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    out = F.max_pool2d(torch.tensor(x), 2).numpy()
    assert np.isnan(out[0, 0, 0, 0]) and not np.isnan(out[0, 0, 1:, :]).any()
    np.testing.assert_array_equal(out[0, 0, 0, 1], 7.0)
