"""Padding layers, pixel and channel shuffles, Upsample and adaptive max pooling against numpy
written here (np.pad, index formulas, window loops), gradients where they are not a plain
view, and PyTorch parity when torch is importable."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
from tests.helpers import check_all, grad_check


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


def _np_pad(x, pads, mode, value=0.0):
    """np.pad of the last len(pads)//2 dims, pads given last dim first (F.pad's order)."""
    width = [(0, 0)] * x.ndim
    for i in range(len(pads) // 2):
        width[x.ndim - 1 - i] = (pads[2 * i], pads[2 * i + 1])
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
               "circular": "wrap"}[mode]
    kw = {"constant_values": value} if mode == "constant" else {}
    return np.pad(x, width, mode=np_mode, **kw)


PADS = [
    (nn.ZeroPad1d(2), (2, 2), "constant"), (nn.ZeroPad2d((1, 0, 2, 1)), (1, 0, 2, 1), "constant"),
    (nn.ZeroPad3d(1), (1,) * 6, "constant"),
    (nn.ConstantPad1d((0, 3), 2.5), (0, 3), "constant"),
    (nn.ConstantPad2d(1, -1.0), (1,) * 4, "constant"),
    (nn.ConstantPad3d((1, 0, 0, 1, 1, 0), 0.5), (1, 0, 0, 1, 1, 0), "constant"),
    (nn.ReflectionPad1d((2, 1)), (2, 1), "reflect"), (nn.ReflectionPad2d(1), (1,) * 4, "reflect"),
    (nn.ReflectionPad3d(1), (1,) * 6, "reflect"),
    (nn.ReplicationPad1d(2), (2, 2), "replicate"),
    (nn.ReplicationPad2d((0, 2, 1, 0)), (0, 2, 1, 0), "replicate"),
    (nn.ReplicationPad3d(1), (1,) * 6, "replicate"),
    (nn.CircularPad1d(1), (1, 1), "circular"), (nn.CircularPad2d((1, 2, 0, 1)), (1, 2, 0, 1),
                                                "circular"),
    (nn.CircularPad3d(1), (1,) * 6, "circular"),
]


def test_padding_layers_against_np_pad(backend):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5, 4)).astype(np.float32)
    cases = []
    for m, pads, mode in PADS:
        dims = len(pads) // 2
        inp = x[(0,) * (3 - dims)]            # (N, C, *dims spatial)
        value = getattr(m, "value", 0.0)
        cases.append((repr(m), m(torch.tensor(inp)), _np_pad(inp, pads, mode, value)))
    check_all(cases)
    assert repr(nn.ZeroPad2d(1)) == "ZeroPad2d((1, 1, 1, 1))"
    assert repr(nn.ConstantPad1d((1, 2), 3.5)) == "ConstantPad1d(padding=(1, 2), value=3.5)"
    assert repr(nn.ReflectionPad2d(2)) == "ReflectionPad2d((2, 2, 2, 2))"


def test_reflection_pad_gradient():
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4))
    grad_check(lambda t: nn.ReflectionPad2d((2, 1, 1, 2))(t),
               lambda a: _np_pad(a, (2, 1, 1, 2), "reflect"), [x])


def test_pixel_shuffle_unshuffle_and_channel_shuffle(backend):
    r = 2
    x = np.random.default_rng(2).standard_normal((2, 3 * r * r, 3, 4)).astype(np.float32)
    want = np.zeros((2, 3, 3 * r, 4 * r), np.float32)
    for c in range(3):
        for i in range(r):
            for j in range(r):
                want[:, c, i::r, j::r] = x[:, c * r * r + i * r + j]
    y = F.pixel_shuffle(torch.tensor(x), r)
    back = nn.PixelUnshuffle(r)(y)
    g = 3
    z = np.random.default_rng(3).standard_normal((2, 6, 5)).astype(np.float32)
    want_z = np.stack([z[:, (k % g) * 2 + k // g] for k in range(6)], 1)
    check_all([("shuffle", nn.PixelShuffle(r)(torch.tensor(x)), want), ("unshuffle", back, x),
               ("unbatched", F.pixel_shuffle(torch.tensor(x[0]), r), want[0]),
               ("channel", nn.ChannelShuffle(g)(torch.tensor(z)), want_z)])
    with pytest.raises(RuntimeError, match="pixel_shuffle expects its input's 'channel' "
                                           "dimension to be divisible by the square of "
                                           "upscale_factor, but input.size\\(-3\\)=3 is not "
                                           "divisible by 4"):
        F.pixel_shuffle(torch.randn(1, 3, 2, 2), 2)
    with pytest.raises(RuntimeError, match="pixel_unshuffle expects width to be divisible by "
                                           "downscale_factor, but input.size\\(-1\\)=3"):
        F.pixel_unshuffle(torch.randn(1, 1, 4, 3), 2)
    with pytest.raises(RuntimeError, match="Number of channels must be divisible by groups. "
                                           "Got 3 channels and 2 groups."):
        F.channel_shuffle(torch.randn(1, 3, 2), 2)


def _bilinear_align_corners(x, oh, ow):
    """Bilinear resize with the corners aligned: output pixel i samples i (H - 1) / (oh - 1)."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y = i * (h - 1) / (oh - 1) if oh > 1 else 0.0
            xx = j * (w - 1) / (ow - 1) if ow > 1 else 0.0
            y0, x0 = int(np.floor(y)), int(np.floor(xx))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, xx - x0
            out[:, :, i, j] = ((1 - dy) * (1 - dx) * x[:, :, y0, x0] + (1 - dy) * dx *
                               x[:, :, y0, x1] + dy * (1 - dx) * x[:, :, y1, x0] +
                               dy * dx * x[:, :, y1, x1])
    return out


def test_upsample_layers():
    x = np.random.default_rng(4).standard_normal((1, 2, 3, 4)).astype(np.float32)
    near = x.repeat(2, 2).repeat(3, 3)
    with pytest.warns(UserWarning, match="upsample_bilinear` is deprecated"):
        f_bil = F.upsample_bilinear(torch.tensor(x), size=(5, 7))
    check_all([
        ("nearest", nn.Upsample(scale_factor=(2, 3))(torch.tensor(x)), near),
        ("nearest2d", nn.UpsamplingNearest2d(size=(6, 12))(torch.tensor(x)), near),
        ("bilinear2d", nn.UpsamplingBilinear2d(size=(5, 7))(torch.tensor(x)),
         _bilinear_align_corners(x, 5, 7)),
        ("F.upsample_bilinear", f_bil, _bilinear_align_corners(x, 5, 7)),
        ("bilinear", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(
            torch.tensor(x)), _bilinear_align_corners(x, 6, 8))], rtol=1e-5, atol=1e-6)
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert repr(nn.UpsamplingBilinear2d(size=4)) == "UpsamplingBilinear2d(size=4, mode='bilinear')"


def _adaptive_max_ref(x, oh, ow):
    """Max and flat argmax (first in row-major window order) over PyTorch's windows
    [floor(i H / oh), ceil((i + 1) H / oh))."""
    n, c, h, w = x.shape
    vals = np.zeros((n, c, oh, ow), x.dtype)
    idx = np.zeros((n, c, oh, ow), np.int64)
    for i in range(oh):
        a, b = (i * h) // oh, -(-((i + 1) * h) // oh)
        for j in range(ow):
            s, e = (j * w) // ow, -(-((j + 1) * w) // ow)
            win = x[:, :, a:b, s:e].reshape(n, c, -1)
            k = win.argmax(-1)
            vals[:, :, i, j] = win.max(-1)
            idx[:, :, i, j] = (a + k // (e - s)) * w + s + k % (e - s)
    return vals, idx


@pytest.mark.parametrize("size", [(3, 2), (2, 4), (5, 3)], ids=["uneven", "tiling", "grow"])
def test_adaptive_max_pool2d(size):
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 7)).astype(np.float32)
    if size == (2, 4):
        x = x[:, :, :, :4].copy()
    vals, idx = _adaptive_max_ref(x, *size)
    got_v, got_i = F.adaptive_max_pool2d(torch.tensor(x), size, return_indices=True)
    m = nn.AdaptiveMaxPool2d(size)
    unb_v, unb_i = F.adaptive_max_pool2d_with_indices(torch.tensor(x[0]), size)
    check_all([("values", got_v, vals), ("indices", got_i, idx), ("module", m(torch.tensor(x)),
               vals), ("unbatched", unb_v, vals[0]), ("unbatched idx", unb_i, idx[0])])


def test_adaptive_max_pool_gradient_goes_to_the_argmax():
    x = np.random.default_rng(6).standard_normal((1, 2, 5, 7))
    t = torch.tensor(x, requires_grad=True)
    out = F.adaptive_max_pool2d(t, (3, 2))
    cot = np.random.default_rng(7).standard_normal((1, 2, 3, 2))
    (out * torch.tensor(cot)).sum().backward()
    _, idx = _adaptive_max_ref(x, 3, 2)
    want = np.zeros((1, 2, 35))
    for c in range(2):
        np.add.at(want[0, c], idx[0, c].ravel(), cot[0, c].ravel())
    np.testing.assert_allclose(t.grad.numpy(), want.reshape(x.shape), rtol=1e-12)


def test_adaptive_max_pool1d_and_errors():
    x = np.array([[[1.0, 3, 3, 2, 5, 5]]], np.float32)
    v, i = F.adaptive_max_pool1d(torch.tensor(x), 4, return_indices=True)
    np.testing.assert_array_equal(v.numpy(), [[[3, 3, 5, 5]]])
    np.testing.assert_array_equal(i.numpy(), [[[1, 1, 4, 4]]])
    assert nn.AdaptiveMaxPool1d(3)(torch.tensor(x)).shape == (1, 1, 3)
    with pytest.raises(RuntimeError, match="adaptive_max_pool2d\\(\\): Expected 3D or 4D "
                                           "tensor, but got: \\[2, 3\\]"):
        F.adaptive_max_pool2d(torch.randn(2, 3), 2)
    with pytest.raises(RuntimeError, match="Expected 2 to 3 dimensions, but got 4-dimensional"):
        F.adaptive_max_pool1d(torch.randn(2, 3, 4, 5), 2)


def test_torch_parity():
    tt = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x4 = rng.standard_normal((2, 8, 5, 6)).astype(np.float32)
    x5 = rng.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    mods = [("ReflectionPad2d", (2, 1, 0, 3), x4), ("ReplicationPad3d", 1, x5),
            ("CircularPad2d", 2, x4), ("ConstantPad3d", ((1, 2, 0, 1, 1, 0), 0.5), x5),
            ("ZeroPad2d", (1, 2, 3, 0), x4), ("PixelShuffle", 2, x4),
            ("PixelUnshuffle", 1, x4), ("ChannelShuffle", 4, x4),
            ("AdaptiveMaxPool2d", (3, 4), x4), ("AdaptiveMaxPool1d", 4, x4[0]),
            ("Upsample", dict(scale_factor=1.5, mode="bilinear"), x4),
            ("UpsamplingNearest2d", dict(size=(7, 9)), x4)]
    for name, arg, x in mods:
        args = arg if isinstance(arg, tuple) and name == "ConstantPad3d" else (arg,)
        kw = arg if isinstance(arg, dict) else {}
        lm = getattr(nn, name)(**kw) if kw else getattr(nn, name)(*args)
        tm = getattr(tt.nn, name)(**kw) if kw else getattr(tt.nn, name)(*args)
        assert repr(lm) == repr(tm)
        xl, xt = torch.tensor(x, requires_grad=True), tt.tensor(x, requires_grad=True)
        yl, yt = lm(xl), tm(xt)
        np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
        cot = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        (yl * torch.tensor(cot)).sum().backward()
        (yt * tt.tensor(cot)).sum().backward()
        np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=name)
    v, i = F.adaptive_max_pool2d(torch.tensor(x4), (4, 5), return_indices=True)
    tv, ti = tt.nn.functional.adaptive_max_pool2d(tt.tensor(x4), (4, 5), return_indices=True)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
