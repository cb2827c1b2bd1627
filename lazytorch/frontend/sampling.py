"""Sampling from distributions given by tensors: multinomial, bernoulli, poisson.

The parameters are computed now and the draws come from lazytorch.frontend.creation's default
generator (or `generator=`), so manual_seed makes them repeatable.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes as dt
from .creation import Generator, _rng, from_array
from .tensor import Tensor, device_name


def _check(x, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


def _floating(x: Tensor, kernel: str) -> None:
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for '
                                  f"'{dt.scalar_type_name(x.dtype)}'")


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Generator | None = None) -> Tensor:
    """num_samples category indices per row of input (non-negative weights, not necessarily
    summing to one), drawn with or without replacement: int64, shaped like input but with
    num_samples in the last dim."""
    _check(input, "multinomial")
    if input.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{dt.scalar_type_name(input.dtype)}")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    n_cat = input.shape[-1]
    if not replacement and num_samples > n_cat:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    if n_cat > 1 << 24:
        raise RuntimeError("number of categories cannot exceed 2^24")
    p = np.asarray(input._array(), dtype=np.float64).reshape(-1, n_cat)
    if not np.isfinite(p).all() or (p < 0).any():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if p.shape[0] and (p.sum(axis=1) <= 0).any():
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    r = _rng(generator)
    if replacement:
        cdf = np.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        u = r.random((p.shape[0], num_samples))
        out = np.stack([np.searchsorted(c, ui, side="right") for c, ui in zip(cdf, u)]) \
            if p.shape[0] else np.zeros((0, num_samples), np.int64)
        out = np.minimum(out, n_cat - 1)
    else:
        # the k largest p / Exp(1) keys are a draw of k categories without replacement
        keys = p / r.exponential(1.0, p.shape)
        out = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    shape = tuple(input.shape[:-1]) + (num_samples,)
    return from_array(np.ascontiguousarray(out.reshape(shape), dtype=np.int64), dt.int64,
                      device_name(input))


def bernoulli(input: Tensor, p: float | None = None, *,
              generator: Generator | None = None) -> Tensor:
    """1 with probability input (or p, when given) at each element, else 0; input's dtype."""
    _check(input, "bernoulli")
    if p is not None:
        if not 0 <= p <= 1:
            raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p:g}")
        probs = np.full(tuple(input.shape), float(p))
    else:
        _floating(input, "bernoulli_tensor_cpu_p_")
        probs = np.asarray(input._array(), dtype=np.float64)
        if not ((probs >= 0) & (probs <= 1)).all():
            raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.  "
                               "(Could this error message be improved?  If so, please report "
                               "an enhancement request to PyTorch.)")
    draws = _rng(generator).random(probs.shape) < probs
    return from_array(dt.astype(draws, input.dtype), input.dtype, device_name(input))


def poisson(input: Tensor, generator: Generator | None = None) -> Tensor:
    """A Poisson draw with rate input at each element; input's dtype."""
    _check(input, "poisson")
    _floating(input, "poisson_cpu")
    rate = np.asarray(input._array(), dtype=np.float64)
    if (rate < 0).any() or np.isnan(rate).any():
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    draws = _rng(generator).poisson(rate)
    return from_array(dt.astype(draws, input.dtype), input.dtype, device_name(input))


__all__ = ["multinomial", "bernoulli", "poisson"]
METHODS = ["multinomial", "bernoulli"]
