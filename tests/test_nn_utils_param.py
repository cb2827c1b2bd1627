"""Fold/Unfold, EmbeddingBag, weight_norm / spectral_norm (the hook API and the
parametrizations API) and nn.utils.parametrize: against numpy written here (im2col loops, bag
sums, g v / ||v||, power iteration), gradients, and PyTorch parity (state-dict keys, outputs,
gradients, power-iteration buffers) when torch is importable."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
from lazytorch.nn.utils import parametrize
from tests.helpers import check_all, grad_check


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


# ----------------------------------------------------------------------------- fold / unfold
def _unfold_ref(x, k, d, p, s):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    bh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    bw = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.zeros((n, c * k[0] * k[1], bh * bw), x.dtype)
    for ci in range(c):
        for i in range(k[0]):
            for j in range(k[1]):
                row = (ci * k[0] + i) * k[1] + j
                for a in range(bh):
                    for b in range(bw):
                        out[:, row, a * bw + b] = xp[:, ci, a * s[0] + i * d[0],
                                                     b * s[1] + j * d[1]]
    return out


def _fold_ref(cols, size, k, d, p, s):
    n, ck, _ = cols.shape
    c = ck // (k[0] * k[1])
    out = np.zeros((n, c, size[0] + 2 * p[0], size[1] + 2 * p[1]), cols.dtype)
    bh = (size[0] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    bw = (size[1] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    for ci in range(c):
        for i in range(k[0]):
            for j in range(k[1]):
                row = (ci * k[0] + i) * k[1] + j
                for a in range(bh):
                    for b in range(bw):
                        out[:, ci, a * s[0] + i * d[0], b * s[1] + j * d[1]] += \
                            cols[:, row, a * bw + b]
    return out[:, :, p[0]:p[0] + size[0], p[1]:p[1] + size[1]]


FOLDS = [dict(kernel_size=2), dict(kernel_size=(2, 3), stride=(2, 1), padding=1,
                                   dilation=(1, 2)), dict(kernel_size=3, stride=2, padding=1)]


@pytest.mark.parametrize("kw", FOLDS, ids=["k2", "mixed", "k3s2p1"])
def test_fold_unfold_against_loops(backend, kw):
    def pair(v):
        return v if isinstance(v, tuple) else (v, v)
    k, d = pair(kw["kernel_size"]), pair(kw.get("dilation", 1))
    p, s = pair(kw.get("padding", 0)), pair(kw.get("stride", 1))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    cols_ref = _unfold_ref(x, k, d, p, s)
    cols = rng.standard_normal(cols_ref.shape).astype(np.float32)
    check_all([("unfold", nn.Unfold(**kw)(torch.tensor(x)), cols_ref),
               ("unfold unbatched", F.unfold(torch.tensor(x[0]), **kw), cols_ref[0]),
               ("fold", nn.Fold((7, 8), **kw)(torch.tensor(cols)),
                _fold_ref(cols, (7, 8), k, d, p, s))])


def test_fold_unfold_gradients_and_errors():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 4, 5))
    grad_check(lambda t: F.unfold(t, 2, padding=1, stride=(1, 2)),
               lambda a: _unfold_ref(a, (2, 2), (1, 1), (1, 1), (1, 2)), [x])
    cols = rng.standard_normal((1, 8, 12))            # 3 x 4 blocks
    grad_check(lambda t: F.fold(t, (4, 5), 2, stride=(2, 1), padding=(1, 0)),
               lambda a: _fold_ref(a, (4, 5), (2, 2), (1, 1), (1, 0), (2, 1)), [cols])
    with pytest.raises(RuntimeError, match="Expected size of input's dimension 1 to be "
                                           "divisible by the product of kernel_size"):
        F.fold(torch.randn(1, 5, 4), (3, 3), 2)
    with pytest.raises(RuntimeError, match="calculated number of sliding blocks 2 \\* 2 = 4, "
                                           "but got input.size\\(2\\)=5"):
        F.fold(torch.randn(1, 4, 5), (3, 3), 2)
    with pytest.raises(RuntimeError, match="calculated shape of the array of sliding blocks as "
                                           "\\(0, 0\\), but its components must be at least "
                                           "one"):
        F.unfold(torch.randn(1, 1, 2, 2), 3)
    assert repr(nn.Fold((4, 5), 2)) == ("Fold(output_size=(4, 5), kernel_size=2, dilation=1, "
                                        "padding=0, stride=1)")


# ----------------------------------------------------------------------------- EmbeddingBag
def _bags_ref(w, idx, offsets, mode, psw=None, pad=None):
    ends = list(offsets[1:]) + [len(idx)]
    out = []
    for s, e in zip(offsets, ends):
        rows = [(w[i] * (1 if psw is None else psw[k])) for k, i in
                zip(range(s, e), idx[s:e]) if i != pad]
        if not rows:
            out.append(np.zeros(w.shape[1]))
        elif mode == "sum":
            out.append(np.sum(rows, 0))
        elif mode == "mean":
            out.append(np.mean(rows, 0))
        else:
            out.append(np.max(rows, 0))
    return np.stack(out)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag(mode):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((10, 3))
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 9, 2, 2])
    offsets = np.array([0, 4, 4, 8])                           # bag 1 is empty
    psw = rng.standard_normal(10) if mode == "sum" else None
    m = nn.EmbeddingBag(10, 3, mode=mode, padding_idx=2, _weight=torch.tensor(w))
    out = m(torch.tensor(idx), torch.tensor(offsets),
            None if psw is None else torch.tensor(psw))
    two_d = rng.integers(0, 10, (3, 4))
    last = nn.EmbeddingBag.from_pretrained(torch.tensor(w), mode=mode, include_last_offset=True)
    check_all([("1d", out, _bags_ref(w, idx, offsets, mode, psw, pad=2)),
               ("2d", m(torch.tensor(two_d)),
                _bags_ref(w, two_d.ravel(), np.arange(0, 12, 4), mode, pad=2)),
               ("last offset", last(torch.tensor(idx), torch.tensor([0, 3, 7, 10])),
                _bags_ref(w, idx[:10], np.array([0, 3, 7]), mode))], rtol=1e-12, atol=1e-12)
    assert not last.weight.requires_grad
    out.sum().backward()
    want = np.zeros_like(w)        # gradient: each used row gets its bags' weights
    for s, e in zip(offsets, list(offsets[1:]) + [10]):
        used = [(k, i) for k, i in zip(range(s, e), idx[s:e]) if i != 2]
        for k, i in used:
            if mode == "sum":
                want[i] += psw[k]
            elif mode == "mean":
                want[i] += 1 / len(used)
        if mode == "max" and used:
            rows = np.stack([w[i] for _, i in used])
            for col in range(3):
                want[used[int(rows[:, col].argmax())][1], col] += 1
    np.testing.assert_allclose(m.weight.grad.numpy(), want, rtol=1e-12, atol=1e-12)


def test_embedding_bag_errors():
    m = nn.EmbeddingBag(5, 2)
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        m(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="if input is 2D, then offsets has to be None"):
        m(torch.tensor([[1, 2]]), torch.tensor([0]))
    with pytest.raises(NotImplementedError, match="per_sample_weights is only supported for "
                                                  "mode='sum' \\(got mode='mean'\\)"):
        m(torch.tensor([1, 2]), torch.tensor([0]), torch.ones(2))
    with pytest.raises(ValueError, match="mode has to be one of sum, mean or max"):
        F.embedding_bag(torch.tensor([1]), torch.randn(5, 2), torch.tensor([0]), mode="min")
    assert repr(nn.EmbeddingBag(10, 3, mode="max", padding_idx=2)) == \
        "EmbeddingBag(10, 3, mode='max', padding_idx=2)"


# ----------------------------------------------------------------------------- weight norms
def _norm_except0(v):
    return np.sqrt((v * v).reshape(v.shape[0], -1).sum(1)).reshape((-1,) + (1,) * (v.ndim - 1))


def test_weight_norm_hook_and_parametrization():
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5))
    for make in (lambda m: nn.utils.weight_norm(m), nn.utils.parametrizations.weight_norm):
        lin = nn.Linear(5, 4, dtype=torch.float64)
        w0 = lin.weight.detach().numpy().copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            lin = make(lin)
        p = dict(lin.named_parameters())
        g_name = "weight_g" if "weight_g" in p else "parametrizations.weight.original0"
        v_name = "weight_v" if "weight_v" in p else "parametrizations.weight.original1"
        np.testing.assert_allclose(p[g_name].detach().numpy(), _norm_except0(w0), rtol=1e-12)
        with torch.no_grad():
            p[g_name].copy_(torch.tensor(rng.uniform(0.5, 2, (4, 1))))
        g, v = p[g_name].detach().numpy(), p[v_name].detach().numpy()
        out = lin(torch.tensor(x))
        np.testing.assert_allclose(out.detach().numpy(),
                                   x @ (g * v / _norm_except0(v)).T + lin.bias.detach().numpy(),
                                   rtol=1e-12)
    with pytest.warns(FutureWarning, match="torch.nn.utils.weight_norm` is deprecated"):
        m = nn.utils.weight_norm(nn.Linear(3, 2), dim=None)
    assert m.weight_g.shape == ()
    nn.utils.remove_weight_norm(m)
    assert sorted(dict(m.named_parameters())) == ["bias", "weight"]


def _sigma(w, u, v, iters):
    """Power iteration (v = W^T u / |.|, u = W v / |.|) and u^T W v."""
    for _ in range(iters):
        v = w.T @ u
        v = v / max(np.linalg.norm(v), 1e-12)
        u = w @ v
        u = u / max(np.linalg.norm(u), 1e-12)
    return u @ w @ v, u, v


def test_spectral_norm_hook_power_iteration():
    torch.manual_seed(4)
    lin = nn.utils.spectral_norm(nn.Linear(6, 4, dtype=torch.float64), n_power_iterations=2)
    w = lin.weight_orig.detach().numpy()
    u0, v0 = lin.weight_u.numpy().copy(), lin.weight_v.numpy().copy()
    x = np.random.default_rng(4).standard_normal((3, 6))
    out = lin(torch.tensor(x))
    sigma, u, v = _sigma(w, u0, v0, 2)
    np.testing.assert_allclose(out.detach().numpy(), x @ (w / sigma).T + lin.bias.detach().numpy(),
                               rtol=1e-10)
    np.testing.assert_allclose(lin.weight_u.numpy(), u, rtol=1e-10)
    lin.eval()                       # eval: no iteration, the buffers stay
    lin(torch.tensor(x))
    np.testing.assert_allclose(lin.weight_u.numpy(), u, rtol=1e-10)
    # many training steps: the estimate converges to the largest singular value
    lin.train()
    for _ in range(40):
        lin(torch.tensor(x))
    s, _, _ = _sigma(w, lin.weight_u.numpy(), lin.weight_v.numpy(), 0)
    np.testing.assert_allclose(s, np.linalg.svd(w, compute_uv=False)[0], rtol=1e-6)
    nn.utils.remove_spectral_norm(lin)
    assert sorted(dict(lin.named_parameters())) == ["bias", "weight"]
    assert list(dict(lin.named_buffers())) == []


def test_spectral_norm_buffers_do_not_accumulate_graphs(monkeypatch):
    """The power-iteration buffers are computed with the next realize and rebound."""
    from lazytorch.ir.graph import Graph
    lin = nn.utils.parametrizations.spectral_norm(nn.Linear(5, 3))
    x = torch.randn(2, 5)
    for _ in range(5):
        lin(x).sum().item()
    u = lin.parametrizations.weight[0]._u
    assert len(Graph([u.node]).nodes) == 1


def test_parametrize_register_chain_remove_and_cache():
    class Symmetric(nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(-1, -2)

        def right_inverse(self, a):
            return a.triu()

    class Scale(nn.Module):
        def forward(self, x):
            return 2 * x

        def right_inverse(self, a):
            return a / 2

    rng = np.random.default_rng(5)
    lin = nn.Linear(3, 3, dtype=torch.float64)
    w = lin.weight.detach().numpy().copy()
    parametrize.register_parametrization(lin, "weight", Symmetric())
    sym = np.triu(w) + np.triu(w, 1).T
    assert type(lin).__name__ == "ParametrizedLinear"
    assert parametrize.is_parametrized(lin) and parametrize.is_parametrized(lin, "weight")
    assert parametrize.type_before_parametrizations(lin) is nn.Linear
    np.testing.assert_allclose(lin.weight.detach().numpy(), sym)
    parametrize.register_parametrization(lin, "weight", Scale())
    np.testing.assert_allclose(lin.weight.detach().numpy(), 2 * sym)
    assert list(lin.state_dict()) == ["bias", "parametrizations.weight.original"]
    target = rng.standard_normal((3, 3))
    target = target + target.T
    lin.weight = torch.tensor(target)                       # right_inverse of the chain
    np.testing.assert_allclose(lin.weight.detach().numpy(), target, rtol=1e-12)
    with parametrize.cached():
        assert lin.weight is lin.weight
    assert lin.weight is not lin.weight
    x = torch.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    lin(x).sum().backward()
    assert lin.parametrizations.weight.original.grad is not None
    parametrize.remove_parametrizations(lin, "weight")
    assert type(lin) is nn.Linear and isinstance(lin.weight, nn.Parameter)
    np.testing.assert_allclose(lin.weight.detach().numpy(), target, rtol=1e-12)
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a "
                                         "parametrized element with name 'nope'"):
        parametrize.register_parametrization(lin, "nope", Scale())
    with pytest.raises(ValueError, match="may not change the shape of the tensor"):
        class Row(nn.Module):
            def forward(self, x):
                return x[0]
        parametrize.register_parametrization(nn.Linear(3, 3), "weight", Row())


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")
def test_torch_parity():
    tt = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)
    apis = [("weight_norm", tt.nn.utils.weight_norm, nn.utils.weight_norm),
            ("spectral_norm", tt.nn.utils.spectral_norm, nn.utils.spectral_norm),
            ("p.weight_norm", tt.nn.utils.parametrizations.weight_norm,
             nn.utils.parametrizations.weight_norm),
            ("p.spectral_norm", tt.nn.utils.parametrizations.spectral_norm,
             nn.utils.parametrizations.spectral_norm)]
    for name, tf, lf in apis:
        tm, lm = tf(tt.nn.Conv1d(3, 4, 3)), lf(nn.Conv1d(3, 4, 3))
        assert list(lm.state_dict()) == list(tm.state_dict()), name
        lm.load_state_dict({k: torch.tensor(v.detach().numpy())
                            for k, v in tm.state_dict().items()})
        for _ in range(3):
            yl, yt = lm(torch.tensor(x)), tm(tt.tensor(x))
            np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=name)
            yl.sum().backward()
            yt.sum().backward()
        for (n, a), b in zip(lm.named_parameters(), tm.parameters()):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name} {n}")
        for (n, a), b in zip(lm.named_buffers(), tm.buffers()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} {n}")
    rng_idx = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    w = rng.standard_normal((10, 3)).astype(np.float32)
    for mode in ("sum", "mean", "max"):
        a = nn.EmbeddingBag.from_pretrained(torch.tensor(w), mode=mode)(
            torch.tensor(rng_idx), torch.tensor([0, 3, 3, 6]))
        b = tt.nn.EmbeddingBag.from_pretrained(tt.tensor(w), mode=mode)(
            tt.tensor(rng_idx), tt.tensor([0, 3, 3, 6]))
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)
    xf = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    kw = dict(kernel_size=(2, 3), dilation=(2, 1), padding=1, stride=(1, 2))
    u = F.unfold(torch.tensor(xf), **kw)
    np.testing.assert_allclose(u.numpy(), tt.nn.functional.unfold(tt.tensor(xf), **kw).numpy())
    np.testing.assert_allclose(F.fold(u, (7, 8), **kw).numpy(),
                               tt.nn.functional.fold(tt.tensor(u.numpy()), (7, 8),
                                                     **kw).numpy(), rtol=1e-6, atol=1e-6)
