"""equal/isclose/allclose against numpy, the CPU-only torch.cuda module, and multinomial /
bernoulli / poisson (seeded, frequencies, errors)."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from tests.conftest import check, no_gpu

INF, NAN = float("inf"), float("nan")


# ----------------------------------------------------------------------------- comparisons
def test_equal(backend):
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert torch.equal(a, a * 1) is True
    assert a.equal(torch.tensor([[1.0, 2.0], [3.0, 4.5]])) is False
    assert torch.equal(a, a.reshape(4)) is False                       # shapes differ
    assert torch.equal(torch.tensor([NAN]), torch.tensor([NAN])) is False
    assert torch.equal(torch.tensor([1, 2]), torch.tensor([1.0, 2.0])) is True
    assert torch.equal(torch.zeros(0), torch.zeros(0)) is True
    with pytest.raises(TypeError, match="must be Tensor"):
        torch.equal(a, [[1.0, 2.0], [3.0, 4.0]])


def _np_isclose(a, b, rtol, atol, equal_nan):
    """PyTorch's closeness: equal, or finite |a - b| <= atol + rtol * |b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
        close = (a == b) | (np.isfinite(diff) & (diff <= atol + rtol * np.abs(b)))
    if equal_nan:
        close |= np.isnan(a) & np.isnan(b)
    return close


def test_isclose_floats(backend):
    a = np.array([1.0, 1.0, INF, -INF, INF, NAN, NAN, 0.0, 1e-9, 100.0], np.float32)
    b = np.array([1.0, 1.00001, INF, INF, 1.0, NAN, 1.0, 1e-9, 0.0, 100.1], np.float32)
    x, y = torch.tensor(a), torch.tensor(b)
    for rtol, atol, equal_nan in ((1e-5, 1e-8, False), (1e-3, 0.0, True), (0.0, 0.0, False),
                                  (0.0, 0.2, False)):
        got = torch.isclose(x, y, rtol, atol, equal_nan)
        check(got, _np_isclose(a, b, rtol, atol, equal_nan), dtype=torch.bool)
        assert torch.allclose(x, y, rtol, atol, equal_nan) is bool(
            _np_isclose(a, b, rtol, atol, equal_nan).all())
    check(x.isclose(y, atol=0.2, equal_nan=True), _np_isclose(a, b, 1e-5, 0.2, True))
    assert torch.allclose(x[:2], y[:2], rtol=1e-4) and x[:2].allclose(y[:2], rtol=1e-4)
    assert torch.allclose(torch.tensor([1.0, 2.0]), torch.tensor([1.0])) is False
    assert torch.allclose(torch.tensor([1.0, 2.0]), torch.tensor(1.0 + 1e-9)) is False


def test_isclose_ints_bools_broadcast(backend):
    a, b = np.array([1, 2, 10, -5]), np.array([1, 3, 12, -5])
    check(torch.isclose(torch.tensor(a), torch.tensor(b), atol=1),
          _np_isclose(a, b, 1e-5, 1, False))
    check(torch.isclose(torch.tensor(a), torch.tensor(b), rtol=0.2, atol=0),
          _np_isclose(a, b, 0.2, 0, False))
    t, f = torch.tensor([True, False]), torch.tensor([True, True])
    check(torch.isclose(t, f), np.array([True, False]))
    m = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    check(torch.isclose(torch.tensor(m), torch.tensor([0.0, 1.0, 5.0])),
          _np_isclose(m, np.array([0.0, 1.0, 5.0]), 1e-5, 1e-8, False))


def test_isclose_errors():
    f, d = torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="Float did not match Double"):
        torch.isclose(f, d)
    with pytest.raises(RuntimeError, match="Float did not match Double"):
        torch.allclose(f, d)
    with pytest.raises(RuntimeError, match="rtol must be greater than or equal to zero, but got "
                                           "-1"):
        torch.isclose(f, f, rtol=-1)
    with pytest.raises(RuntimeError, match="atol must be greater than or equal to zero, but got "
                                           "-0.5"):
        torch.isclose(f, f, atol=-0.5)


def test_comparison_torch_parity(rng):
    pt = pytest.importorskip("torch")
    a = rng.standard_normal(20).astype(np.float32)
    b = a + rng.standard_normal(20).astype(np.float32) * 1e-5
    a[3], b[3], a[5], b[5], a[7] = NAN, NAN, INF, INF, -INF
    for kw in ({}, {"equal_nan": True}, {"rtol": 1e-3, "atol": 1e-6}):
        np.testing.assert_array_equal(torch.isclose(torch.tensor(a), torch.tensor(b), **kw)
                                      .numpy(), pt.isclose(pt.tensor(a), pt.tensor(b), **kw)
                                      .numpy())
        assert torch.allclose(torch.tensor(a), torch.tensor(b), **kw) == pt.allclose(
            pt.tensor(a), pt.tensor(b), **kw)


# ----------------------------------------------------------------------------- cuda
@no_gpu
def test_cuda_module_is_honest():
    assert torch.cuda.is_available() is False
    assert torch.cuda.device_count() == 0
    assert torch.cuda.is_initialized() is False
    assert torch.cuda.manual_seed(0) is None
    assert torch.cuda.manual_seed_all(1234) is None
    torch.cuda.empty_cache()
    assert torch.cuda.memory_allocated() == 0
    for fn in (torch.cuda.synchronize, torch.cuda.current_device, torch.cuda.get_device_name,
               torch.cuda.initial_seed):
        with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
            fn()


def test_cuda_torch_parity():
    pt = pytest.importorskip("torch")
    if pt.cuda.is_available():
        pytest.skip("the oracle has CUDA")
    assert torch.cuda.is_available() == pt.cuda.is_available()
    assert torch.cuda.device_count() == pt.cuda.device_count()
    for name in ("synchronize", "current_device"):
        with pytest.raises(AssertionError) as theirs:
            getattr(pt.cuda, name)()
        with pytest.raises(AssertionError) as ours:
            getattr(torch.cuda, name)()
        assert str(ours.value) == str(theirs.value)


# ----------------------------------------------------------------------------- sampling
def test_multinomial_with_replacement():
    p = torch.tensor([[0.1, 0.0, 0.6, 0.3], [1.0, 1.0, 2.0, 0.0]])     # unnormalized row 2
    torch.manual_seed(0)
    s = torch.multinomial(p, 20000, replacement=True)
    assert tuple(s.shape) == (2, 20000) and s.dtype == torch.int64
    a = s.numpy()
    for row, probs in zip(a, (np.array([0.1, 0.0, 0.6, 0.3]), np.array([0.25, 0.25, 0.5, 0.0]))):
        freq = np.bincount(row, minlength=4) / row.size
        np.testing.assert_allclose(freq, probs, atol=0.015)
        assert freq[probs == 0].sum() == 0                              # never drawn
    torch.manual_seed(0)
    np.testing.assert_array_equal(torch.multinomial(p, 20000, True).numpy(), a)
    g = torch.Generator().manual_seed(7)
    first = p.multinomial(5, True, generator=g).numpy()
    np.testing.assert_array_equal(
        first, p.multinomial(5, True, generator=torch.Generator().manual_seed(7)).numpy())


def test_multinomial_without_replacement():
    p = torch.tensor([0.1, 0.2, 0.3, 0.4])
    s = torch.multinomial(p, 4)
    assert sorted(s.tolist()) == [0, 1, 2, 3]
    torch.manual_seed(1)
    draws = np.stack([torch.multinomial(p, 2).numpy() for _ in range(3000)])
    assert (draws[:, 0] != draws[:, 1]).all()
    np.testing.assert_allclose(np.bincount(draws[:, 0], minlength=4) / 3000,
                               [0.1, 0.2, 0.3, 0.4], atol=0.03)
    s = torch.multinomial(torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), 1)
    assert tuple(s.shape) == (2, 1) and s.tolist()[0] == [1] and s.tolist()[1][0] in (0, 2)


def test_multinomial_errors():
    p = torch.tensor([0.2, 0.3, 0.5])
    cases = [
        (lambda: torch.multinomial(p, 4), "cannot sample n_sample > prob_dist.size\\(-1\\) "
                                          "samples without replacement"),
        (lambda: torch.multinomial(p, 0), "cannot sample n_sample <= 0 samples"),
        (lambda: torch.multinomial(torch.tensor([1, 2]), 1),
         "multinomial only supports floating-point dtypes for input, got: Long"),
        (lambda: torch.multinomial(torch.zeros(2, 2, 2), 1), "prob_dist must be 1 or 2 dim"),
        (lambda: torch.multinomial(torch.tensor([-1.0, 2.0]), 1),
         "probability tensor contains either `inf`, `nan` or element < 0"),
        (lambda: torch.multinomial(torch.tensor([NAN, 1.0]), 1),
         "probability tensor contains either `inf`, `nan` or element < 0"),
        (lambda: torch.multinomial(torch.tensor([[0.0, 1.0], [0.0, 0.0]]), 1),
         "invalid multinomial distribution \\(sum of probabilities <= 0\\)"),
    ]
    for fn, msg in cases:
        with pytest.raises(RuntimeError, match=msg):
            fn()


def test_bernoulli():
    probs = torch.tensor([0.0, 1.0, 0.25, 0.75]).reshape(4, 1).expand(4, 5000)
    torch.manual_seed(3)
    s = torch.bernoulli(probs)
    assert s.dtype == torch.float32 and tuple(s.shape) == (4, 5000)
    a = s.numpy()
    assert set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_allclose(a.mean(axis=1), [0.0, 1.0, 0.25, 0.75], atol=0.03)
    torch.manual_seed(3)
    np.testing.assert_array_equal(probs.bernoulli().numpy(), a)
    x = torch.zeros(20000, dtype=torch.float64)
    r = torch.bernoulli(x, 0.3)
    assert r.dtype == torch.float64 and abs(r.numpy().mean() - 0.3) < 0.02
    assert abs(x.bernoulli(0.6).numpy().mean() - 0.6) < 0.02
    g = torch.Generator().manual_seed(5)
    one = torch.bernoulli(probs[:, :10], generator=g).numpy()
    np.testing.assert_array_equal(
        one, torch.bernoulli(probs[:, :10], generator=torch.Generator().manual_seed(5)).numpy())
    assert torch.bernoulli(torch.tensor(1.0)).shape == ()


def test_bernoulli_poisson_errors():
    with pytest.raises(NotImplementedError, match='"bernoulli_tensor_cpu_p_" not implemented '
                                                  "for 'Long'"):
        torch.bernoulli(torch.tensor([1, 0]))
    with pytest.raises(RuntimeError, match="Expected p_in >= 0 && p_in <= 1 to be true"):
        torch.bernoulli(torch.tensor([1.5, 0.0]))
    with pytest.raises(RuntimeError, match=r"bernoulli_ expects p to be in \[0, 1\], but got "
                                           r"p=1.3"):
        torch.bernoulli(torch.tensor([0.5]), 1.3)
    with pytest.raises(RuntimeError, match="invalid Poisson rate, expected rate to be "
                                           "non-negative"):
        torch.poisson(torch.tensor([1.0, -1.0]))
    with pytest.raises(NotImplementedError, match="\"poisson_cpu\" not implemented for 'Long'"):
        torch.poisson(torch.tensor([1, 2]))


def test_poisson():
    rates = torch.tensor([0.0, 1.0, 4.0]).reshape(3, 1).expand(3, 20000)
    torch.manual_seed(11)
    s = torch.poisson(rates)
    assert s.dtype == torch.float32
    a = s.numpy()
    assert (a[0] == 0).all() and (a == np.round(a)).all()
    np.testing.assert_allclose(a.mean(axis=1), [0.0, 1.0, 4.0], atol=0.05)
    torch.manual_seed(11)
    np.testing.assert_array_equal(torch.poisson(rates).numpy(), a)
