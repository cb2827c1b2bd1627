"""Layers and nn.functional (activations, linear, normalization, dropout, embedding, pad):
forward against numpy references written here, gradients against central finite differences
of those references in float64, and (where torch is importable) parity with PyTorch."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
from lazytorch.frontend.tensor import realize_tensors
from tests.helpers import grad_check

_erf = np.vectorize(math.erf)


def away_from(x: np.ndarray, kinks=(0.0,), gap=0.05) -> np.ndarray:
    """x with values near a kink pushed off it (finite differences need smooth points)."""
    x = x.copy()
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + gap * 2
    return x


@pytest.fixture
def x34():
    return np.random.default_rng(1).standard_normal((3, 4)) * 2


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x, d):
    e = np.exp(x - x.max(d, keepdims=True))
    return e / e.sum(d, keepdims=True)


SELU_A, SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

ACTIVATIONS = [
    ("relu", F.relu, lambda x: np.maximum(x, 0), (0,)),
    ("relu6", F.relu6, lambda x: np.clip(x, 0, 6), (0, 6)),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), (0,)),
    ("elu", lambda x: F.elu(x, 1.5), lambda x: np.where(x > 0, x, 1.5 * np.expm1(x)), (0,)),
    ("selu", F.selu, lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x)), (0,)),
    ("celu", lambda x: F.celu(x, 0.5), lambda x: np.maximum(x, 0)
     + np.minimum(0, 0.5 * np.expm1(x / 0.5)), (0,)),
    ("gelu", F.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))), ()),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))), ()),
    ("silu", F.silu, lambda x: x * _sig(x), ()),
    ("mish", F.mish, lambda x: x * np.tanh(np.log1p(np.exp(x))), ()),
    ("sigmoid", F.sigmoid, _sig, ()),
    ("tanh", F.tanh, np.tanh, ()),
    ("softplus", lambda x: F.softplus(x, 2.0, 3.0),
     lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2), (1.5,)),
    ("hardtanh", lambda x: F.hardtanh(x, -0.5, 1.5), lambda x: np.clip(x, -0.5, 1.5),
     (-0.5, 1.5)),
    ("hardsigmoid", F.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1), (-3, 3)),
    ("hardswish", F.hardswish, lambda x: x * np.clip(x / 6 + 0.5, 0, 1), (-3, 3)),
    ("softsign", F.softsign, lambda x: x / (1 + np.abs(x)), (0,)),
    ("tanhshrink", F.tanhshrink, lambda x: x - np.tanh(x), ()),
    ("logsigmoid", F.logsigmoid, lambda x: np.log(_sig(x)), ()),
    ("threshold", lambda x: F.threshold(x, 0.1, -1.0), lambda x: np.where(x > 0.1, x, -1.0),
     (0.1,)),
    ("glu", F.glu, lambda x: x[:, :2] * _sig(x[:, 2:]), ()),
    ("softmax1", lambda x: F.softmax(x, 1), lambda x: _softmax(x, 1), ()),
    ("softmax0", lambda x: F.softmax(x, dim=0), lambda x: _softmax(x, 0), ()),
    ("log_softmax", lambda x: F.log_softmax(x, -1), lambda x: np.log(_softmax(x, -1)), ()),
    ("softmin", lambda x: F.softmin(x, 1), lambda x: _softmax(-x, 1), ()),
    ("normalize", F.normalize, lambda x: x / np.linalg.norm(x, axis=1, keepdims=True), ()),
]


@pytest.mark.parametrize("name,fn,ref,kinks", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_forward_and_gradient(name, fn, ref, kinks, x34):
    grad_check(fn, ref, [away_from(x34, kinks)])


def test_activation_modules_match_functional(x34):
    x = torch.tensor(x34, dtype=torch.float32)
    pairs = [(nn.ReLU(), F.relu(x)), (nn.LeakyReLU(0.3), F.leaky_relu(x, 0.3)),
             (nn.ELU(0.7), F.elu(x, 0.7)), (nn.GELU("tanh"), F.gelu(x, approximate="tanh")),
             (nn.SiLU(), F.silu(x)), (nn.Sigmoid(), x.sigmoid()), (nn.Tanh(), x.tanh()),
             (nn.Softmax(dim=0), F.softmax(x, 0)), (nn.LogSoftmax(1), F.log_softmax(x, 1)),
             (nn.Softplus(2.0, 5.0), F.softplus(x, 2.0, 5.0)), (nn.Hardtanh(-1, 2),
                                                               x.clamp(-1, 2)),
             (nn.ReLU6(), x.clamp(0, 6)), (nn.Mish(), F.mish(x))]
    for module, expected in pairs:
        np.testing.assert_allclose(module(x).numpy(), expected.numpy(), rtol=1e-6, atol=1e-7)
    assert nn.GLU(0)(torch.ones(4, 2)).shape == (2, 2)


def test_boundary_gradients_follow_pytorch():
    # the gradient PyTorch's kernels give exactly at the kinks
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    cases = [(F.relu, [0, 0, 1]), (lambda t: F.leaky_relu(t, 0.2), [0.2, 0.2, 1]),
             (lambda t: F.elu(t, 1.5), [1.5 * np.exp(-1), 1.5, 1]),
             (lambda t: F.hardtanh(t, 0.0, 1.0), [0, 0, 0]),
             (lambda t: F.threshold(t, 1.0, -2.0), [0, 0, 0]),
             (F.logsigmoid, [_sig(1), 0.5, _sig(-1)])]
    for fn, want in cases:
        x.grad = None
        fn(x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)


def test_softmax_is_stable_and_warns_without_dim():
    x = torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1000.0, -1000.0]])
    np.testing.assert_allclose(F.softmax(x, 1).numpy(),
                               _softmax(np.array(x.numpy(), np.float64), 1), rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(x, 1).numpy()[1], np.log([1 / 3] * 3), rtol=1e-6)
    assert np.isfinite(F.log_softmax(x, 1).numpy()).all()
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = F.softmax(torch.ones(2, 3))
    np.testing.assert_allclose(y.numpy(), np.full((2, 3), 1 / 3), rtol=1e-6)
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(x, approximate="x")


# --------------------------------------------------------------------------- linear
def test_linear_functional_gradients():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    grad_check(F.linear, lambda x, w, b: x @ w.T + b, [x, w, b])
    grad_check(lambda x, w: F.linear(x, w), lambda x, w: x @ w.T, [x[None], w])


def test_linear_module_default_init_and_errors():
    torch.manual_seed(0)
    lin = nn.Linear(50, 40)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    bound = 1 / math.sqrt(50)
    assert w.shape == (40, 50) and b.shape == (40,)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound    # uniform in +-bound
    x = torch.randn(7, 50)
    np.testing.assert_allclose(lin(x).detach().numpy(), x.numpy() @ w.T + b, rtol=1e-5,
                               atol=1e-5)
    assert nn.Linear(3, 2, bias=False).bias is None
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied "
                                           r"\(4x2 and 3x2\)"):
        nn.Linear(3, 2)(torch.randn(4, 2))
    assert nn.Linear(3, 2, dtype=torch.float64).weight.dtype == torch.float64


def test_bilinear():
    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    w, b = rng.standard_normal((5, 3, 2)), rng.standard_normal(5)
    grad_check(F.bilinear, lambda a, c, w, b: np.einsum("ni,oij,nj->no", a, w, c) + b,
               [x1, x2, w, b])
    m = nn.Bilinear(3, 2, 5)
    assert m(torch.randn(4, 3), torch.randn(4, 2)).shape == (4, 5)
    assert np.abs(m.weight.detach().numpy()).max() <= 1 / math.sqrt(3)


def test_identity_flatten_unflatten():
    x = torch.randn(2, 3, 4)
    assert nn.Identity(1, foo=2)(x) is x
    assert nn.Flatten()(x).shape == (2, 12) and nn.Flatten(0, 1)(x).shape == (6, 4)
    np.testing.assert_array_equal(nn.Flatten()(x).numpy(), x.numpy().reshape(2, 12))
    assert nn.Unflatten(2, (2, 2))(x).shape == (2, 3, 2, 2)
    with pytest.raises(RuntimeError, match="unflatten: Provided sizes"):
        nn.Unflatten(1, (2, 2))(x)


# --------------------------------------------------------------------------- normalization
def _bn_ref(x, w, b, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m, v = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w.reshape(shape) + b.reshape(shape)


def test_batch_norm_functional_gradients():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 2))
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    grad_check(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), _bn_ref,
               [x, w, b], rtol=1e-6)


def test_batchnorm_running_stats_train_and_eval():
    rng = np.random.default_rng(5)
    bn = nn.BatchNorm1d(3, momentum=0.3)
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(2):
        x = rng.standard_normal((6, 3)).astype(np.float32)
        out = bn(torch.tensor(x))
        np.testing.assert_allclose(out.detach().numpy(), _bn_ref(x, np.ones(3), np.zeros(3)),
                                   rtol=1e-4, atol=1e-5)
        rm = 0.7 * rm + 0.3 * x.mean(0)
        rv = 0.7 * rv + 0.3 * x.var(0, ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 2
    bn.eval()
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(bn(torch.tensor(x)).detach().numpy(),
                               (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-4, atol=1e-5)
    assert bn.num_batches_tracked.item() == 2      # eval does not count batches


def test_batchnorm2d_cumulative_average_and_options():
    rng = np.random.default_rng(6)
    bn = nn.BatchNorm2d(2, momentum=None, affine=False)
    assert bn.weight is None and bn.bias is None
    xs = [rng.standard_normal((3, 2, 2, 2)).astype(np.float32) for _ in range(3)]
    for x in xs:
        bn(torch.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(),
                               np.mean([x.mean((0, 2, 3)) for x in xs], 0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(),
                               np.mean([x.var((0, 2, 3), ddof=1) for x in xs], 0), rtol=1e-5)
    free = nn.BatchNorm1d(2, track_running_stats=False).eval()
    assert free.running_mean is None and list(free.state_dict()) == ["weight", "bias"]
    x = rng.standard_normal((5, 2)).astype(np.float32)
    np.testing.assert_allclose(free(torch.tensor(x)).detach().numpy(),
                               _bn_ref(x, np.ones(2), np.zeros(2)), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        bn(torch.ones(2, 2))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when "
                                         r"training, got input size torch.Size\(\[1, 2\]\)"):
        nn.BatchNorm1d(2)(torch.ones(1, 2))


def test_layer_norm_and_group_norm_gradients():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4))
    w, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))

    def ln_ref(x, w, b):
        m, v = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
        return (x - m) / np.sqrt(v + 1e-5) * w + b

    grad_check(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), ln_ref, [x, w, b])
    gw, gb = rng.standard_normal(4), rng.standard_normal(4)
    xg = rng.standard_normal((2, 4, 3))

    def gn_ref(x, w, b):
        g = x.reshape(2, 2, -1)
        m, v = g.mean(-1, keepdims=True), g.var(-1, keepdims=True)
        return ((g - m) / np.sqrt(v + 1e-5)).reshape(x.shape) * w[:, None] + b[:, None]

    grad_check(lambda x, w, b: F.group_norm(x, 2, w, b), gn_ref, [xg, gw, gb])
    assert nn.LayerNorm(4)(torch.randn(2, 4)).shape == (2, 4)
    assert nn.GroupNorm(2, 4)(torch.randn(2, 4, 3)).shape == (2, 4, 3)
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[4\], expected input with "
                                           r"shape \[\*, 4\], but got input of size\[2, 3\]"):
        F.layer_norm(torch.ones(2, 3), (4,))
    with pytest.raises(ValueError, match=r"num_channels \(4\) must be divisible by "
                                         r"num_groups \(3\)"):
        nn.GroupNorm(3, 4)


def test_prelu_and_rms_norm():
    rng = np.random.default_rng(12)
    x = away_from(rng.standard_normal((2, 3, 2)))
    w = rng.uniform(0.1, 0.5, 3)
    grad_check(F.prelu, lambda x, w: np.where(x > 0, x, w[:, None] * x), [x, w])
    grad_check(lambda x, w: F.prelu(x, w), lambda x, w: np.where(x > 0, x, w * x),
               [x, w[:1]])
    m = nn.PReLU()
    assert m.weight.shape == (1,) and m.weight.item() == pytest.approx(0.25)
    assert repr(nn.PReLU(3, 0.1)) == "PReLU(num_parameters=3)"
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers and input channel "
                                           "size. Found parameter numbers = 2 and channel "
                                           "size = 3."):
        F.prelu(torch.ones(2, 3), torch.ones(2))
    g = rng.standard_normal(2)
    grad_check(lambda x, g: F.rms_norm(x, (2,), g, eps=1e-6),
               lambda x, g: x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * g, [x, g])
    eps32 = float(np.finfo(np.float32).eps)
    xf = rng.standard_normal((3, 4)).astype(np.float32)
    ref = xf / np.sqrt((xf * xf).mean(-1, keepdims=True) + eps32)
    np.testing.assert_allclose(nn.RMSNorm(4)(torch.tensor(xf)).detach().numpy(), ref,
                               rtol=1e-5)
    assert repr(nn.RMSNorm(4)) == "RMSNorm((4,), eps=None, elementwise_affine=True)"


# --------------------------------------------------------------------------- dropout
def test_dropout_train_and_eval():
    torch.manual_seed(0)
    x = torch.ones(200, 50)
    out = F.dropout(x, 0.3).numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    torch.manual_seed(0)
    np.testing.assert_array_equal(F.dropout(x, 0.3).numpy(), out)   # reproducible
    d = nn.Dropout(0.5)
    assert d.eval()(x) is x and F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros((200, 50)))
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but "
                                         "got 1.5"):
        nn.Dropout(1.5)
    w = torch.ones(4, 3, requires_grad=True)
    torch.manual_seed(1)
    y = nn.Dropout(0.5)(w)
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), y.detach().numpy())


def test_dropout2d_zeroes_whole_channels():
    torch.manual_seed(0)
    out = nn.Dropout2d(0.5)(torch.ones(8, 6, 3, 3)).numpy()
    per_channel = out.reshape(8, 6, 9)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()
    assert 0.2 < (per_channel == 0).all(-1).mean() < 0.8
    assert nn.Dropout2d().eval()(torch.ones(1, 1, 1, 1)).item() == 1


# --------------------------------------------------------------------------- embedding
def test_embedding_forward_and_gradient():
    rng = np.random.default_rng(8)
    w = rng.standard_normal((6, 3))
    idx = np.array([[1, 2, 1], [5, 0, 1]])
    it = torch.tensor(idx)
    wt = torch.tensor(w, requires_grad=True)
    out = F.embedding(it, wt)
    np.testing.assert_array_equal(out.detach().numpy(), w[idx])
    cot = rng.standard_normal((2, 3, 3))
    (out * torch.tensor(cot)).sum().backward()
    ref = np.zeros_like(w)
    np.add.at(ref, idx, cot)
    np.testing.assert_allclose(wt.grad.numpy(), ref, rtol=1e-12)


def test_embedding_padding_idx_and_options():
    torch.manual_seed(0)
    emb = nn.Embedding(5, 2, padding_idx=-1)
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight.detach().numpy()[4], [0, 0])
    idx = torch.tensor([4, 1, 4, 1, 2])
    emb(idx).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[:, 0], [0, 2, 1, 0, 0])
    emb2 = nn.Embedding(5, 2, scale_grad_by_freq=True)
    emb2(idx).sum().backward()
    np.testing.assert_allclose(emb2.weight.grad.numpy()[:, 0], [0, 1, 1, 0, 1])
    pre = torch.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    frozen = nn.Embedding.from_pretrained(pre, max_norm=1.0)
    assert not frozen.weight.requires_grad
    out = frozen(torch.tensor([0, 1]))
    np.testing.assert_allclose(out.numpy(), [[0.6, 0.8], [0.3, 0.4]], rtol=1e-5)
    np.testing.assert_allclose(frozen.weight.numpy()[2], [6, 8])   # unused rows untouched
    with pytest.raises(IndexError, match="index out of range in self"):
        nn.Embedding(3, 2)(torch.tensor([3]))
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(3, 2, padding_idx=3)
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices'"):
        nn.Embedding(3, 2)(torch.tensor([1.0]))


def test_one_hot():
    t = torch.tensor([[0, 2], [1, 2]])
    out = F.one_hot(t)
    assert out.dtype == torch.int64 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy(), np.eye(3, dtype=np.int64)[t.numpy()])
    assert F.one_hot(t, 5).shape == (2, 2, 5)
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes."):
        F.one_hot(torch.tensor([1, 5]), 3)
    with pytest.raises(RuntimeError, match="one_hot is only applicable to index tensor"):
        F.one_hot(torch.tensor([1.0]), 3)


# --------------------------------------------------------------------------- pad
def test_pad_constant_and_crop():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 4))
    grad_check(lambda t: F.pad(t, (1, 2, 0, 1), value=0.5),
               lambda a: np.pad(a, ((0, 0), (0, 1), (1, 2)), constant_values=0.5), [x])
    grad_check(lambda t: F.pad(t, (-1, 2, 1, -2)),
               lambda a: np.pad(a[:, :1, 1:], ((0, 0), (1, 0), (0, 2))), [x])
    assert F.pad(torch.ones(2, dtype=torch.int64), (1, 1), value=7).tolist() == [7, 1, 1, 7]
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(torch.ones(2, 3), (1,))
    with pytest.raises(RuntimeError, match="Padding length should be less than or equal to two "
                                           "times the input dimension"):
        F.pad(torch.ones(2, 3), (1,) * 6)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"),
                                          ("circular", "wrap")])
def test_pad_modes(mode, np_mode):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, 2, 3, 4))
    grad_check(lambda t: F.pad(t, (2, 1, 1, 2), mode=mode),
               lambda a: np.pad(a, ((0, 0), (0, 0), (1, 2), (2, 1)), mode=np_mode), [x])


def test_pad_mode_errors():
    with pytest.raises(NotImplementedError, match="Unrecognised padding mode foo"):
        F.pad(torch.ones(1, 2, 3), (1, 1), mode="foo")
    with pytest.raises(RuntimeError, match=r"padding \(3, 3\) at dimension 2 of input "
                                           r"\[1, 2, 3\]"):
        F.pad(torch.ones(1, 2, 3), (3, 3), mode="reflect")
    with pytest.raises(NotImplementedError, match="Padding size 2 is not supported for 1D"):
        F.pad(torch.ones(3), (1, 1), mode="replicate")


# --------------------------------------------------------------------------- torch parity
def _copy_params(ours, theirs, ptorch):
    with ptorch.no_grad():
        for (n, p), (m, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert n == m
            q.copy_(ptorch.tensor(p.detach().numpy()))


def test_parity_with_torch_layers():
    ptorch = pytest.importorskip("torch")
    tnn = ptorch.nn
    rng = np.random.default_rng(11)
    cases = [
        (lambda m: m.Linear(5, 3), (4, 5)),
        (lambda m: m.Sequential(m.Linear(5, 4), m.GELU(), m.LayerNorm(4), m.SiLU()), (3, 5)),
        (lambda m: m.Sequential(m.GroupNorm(2, 4), m.ELU(0.5), m.Flatten()), (2, 4, 3)),
        (lambda m: m.Sequential(m.BatchNorm2d(3), m.LeakyReLU(0.1)), (4, 3, 2, 2)),
        (lambda m: m.Sequential(m.Linear(5, 6), m.Softplus(2.0, 1.0), m.LogSoftmax(1)), (3, 5)),
        (lambda m: m.Sequential(m.PReLU(4), m.RMSNorm(3), m.Linear(3, 2)), (2, 4, 3)),
    ]
    for build, shape in cases:
        ours, theirs = build(nn), build(tnn)
        _copy_params(ours, theirs, ptorch)
        for _ in range(2):   # two training steps (batch norm stats), then eval
            ours.zero_grad()
            theirs.zero_grad()
            x = rng.standard_normal(shape).astype(np.float32)
            xt = torch.tensor(x, requires_grad=True)
            xp = ptorch.tensor(x, requires_grad=True)
            yo, yp = ours(xt), theirs(xp)
            (yo * yo).sum().backward()
            (yp * yp).sum().backward()
            realize_tensors([yo, xt.grad] + [p.grad for p in ours.parameters()])
            np.testing.assert_allclose(yo.detach().numpy(), yp.detach().numpy(), rtol=1e-4,
                                       atol=1e-5)
            np.testing.assert_allclose(xt.grad.numpy(), xp.grad.numpy(), rtol=1e-3, atol=1e-4)
            for (n, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
                np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-3,
                                           atol=1e-4, err_msg=n)
        for (n, b), (_, c) in zip(ours.named_buffers(), theirs.named_buffers()):
            np.testing.assert_allclose(b.numpy(), c.numpy(), rtol=1e-5, atol=1e-6, err_msg=n)
        ours.eval()
        theirs.eval()
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(ours(torch.tensor(x)).detach().numpy(),
                                   theirs(ptorch.tensor(x)).detach().numpy(), rtol=1e-4,
                                   atol=1e-5)


def test_parity_with_torch_activation_kinks_and_embedding():
    ptorch = pytest.importorskip("torch")
    tf = ptorch.nn.functional
    vals = [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 10.0, 25.0]
    names = [("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.2}),
             ("elu", {"alpha": 1.5}), ("selu", {}), ("celu", {"alpha": 0.5}), ("gelu", {}),
             ("silu", {}), ("mish", {}), ("softplus", {"beta": 2.0, "threshold": 10.0}),
             ("hardtanh", {"min_val": -0.5, "max_val": 1.0}), ("hardsigmoid", {}),
             ("logsigmoid", {}), ("softsign", {}), ("tanhshrink", {})]
    for name, kw in names:
        x = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
        xp = ptorch.tensor(vals, dtype=ptorch.float64, requires_grad=True)
        y, yp = getattr(F, name)(x, **kw), getattr(tf, name)(xp, **kw)
        y.sum().backward()
        yp.sum().backward()
        realize_tensors([y, x.grad])
        np.testing.assert_allclose(y.detach().numpy(), yp.detach().numpy(), rtol=1e-6,
                                   atol=1e-12, err_msg=name)
        np.testing.assert_allclose(x.grad.numpy(), xp.grad.numpy(), rtol=1e-6, atol=1e-7,
                                   err_msg=name)
    emb, pemb = nn.Embedding(6, 3, padding_idx=2), ptorch.nn.Embedding(6, 3, padding_idx=2)
    _copy_params(emb, pemb, ptorch)
    idx = [[2, 0, 5], [2, 2, 1]]
    emb(torch.tensor(idx)).square().sum().backward()
    pemb(ptorch.tensor(idx)).square().sum().backward()
    np.testing.assert_allclose(emb.weight.grad.numpy(), pemb.weight.grad.numpy(), rtol=1e-6)
