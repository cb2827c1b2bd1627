"""nn.functional's normalization: batch, layer, RMS, group and instance norm (with lazy
in-place running-stat updates) and normalize, with PyTorch's signatures, defaults and messages.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

from ..autograd import no_grad
from ..frontend.tensor import Tensor
from ..ir import dtypes as dt


def _channel_shape(x: Tensor, c: int) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector (dim 1) against x."""
    return (1, c) + (1,) * (x.ndim - 2)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Tensor | None = None) -> Tensor:
    """input / max(||input||_p along dim, eps)."""
    if p == 2:
        denom = (input * input).sum(dim, keepdim=True).clamp(min=eps * eps).sqrt()
    else:
        denom = input.norm(p, dim, keepdim=True).clamp(min=eps)
    return input / denom


def _update_buffer(buf: Tensor, value: Tensor) -> None:
    """buf <- value, in place and lazily; computed along with the next realize, whatever it is
    for, so that a buffer nobody reads (running stats) never accumulates a long graph."""
    with no_grad():
        buf.copy_(value.detach())
    from ..engine import realize as _realize
    later = getattr(_realize, "realize_later", None)
    if later is not None:
        later(buf)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float | Tensor = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) by the batch's statistics (training) or the running
    ones; in training, update the running stats in place: r <- (1 - momentum) r + momentum s,
    with the unbiased variance."""
    if input.ndim < 2:
        raise ValueError(f"Expected 2D or higher input to batch_norm (got {input.ndim}D input)")
    c = input.shape[1]
    shape = _channel_shape(input, c)
    dims = (0,) + tuple(range(2, input.ndim))
    if training:
        n = input.numel() // c if c else 0
        if n == 1:
            raise ValueError("Expected more than 1 value per channel when training, got input "
                             f"size {input.shape}")
        mean = input.mean(dims, keepdim=True)
        centred = input - mean
        var = (centred * centred).mean(dims, keepdim=True)
        if running_mean is not None:
            _update_buffer(running_mean, running_mean * (1 - momentum)
                           + mean.reshape(c) * momentum)
        if running_var is not None:
            unbiased = var.reshape(c) * (n / (n - 1))
            _update_buffer(running_var, running_var * (1 - momentum) + unbiased * momentum)
        out = centred * (var + eps).rsqrt()
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        out = (input - running_mean.reshape(shape)) * (running_var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def layer_norm(input: Tensor, normalized_shape: Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last len(normalized_shape) dims, then scale and shift."""
    ns = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else \
        tuple(normalized_shape)
    k = len(ns)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != ns or input.ndim < k:
        raise RuntimeError(f"Given normalized_shape={list(ns)}, expected input with shape "
                           f"[*, {', '.join(map(str, ns))}], but got input of size"
                           f"{list(input.shape)}")
    dims = tuple(range(input.ndim - k, input.ndim))
    mean = input.mean(dims, keepdim=True)
    centred = input - mean
    var = (centred * centred).mean(dims, keepdim=True)
    out = centred * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def rms_norm(input: Tensor, normalized_shape: Sequence[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the trailing normalized_shape dims, times weight; eps
    defaults to the dtype's machine epsilon."""
    ns = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else \
        tuple(normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != ns:
        raise RuntimeError(f"Given normalized_shape={list(ns)}, expected input with shape "
                           f"[*, {', '.join(map(str, ns))}], but got input of size"
                           f"{list(input.shape)}")
    if eps is None:
        eps = dt.finfo(input.dtype).eps
    dims = tuple(range(input.ndim - k, input.ndim))
    out = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize each group of channels of (N, C, *) input, then scale and shift per
    channel."""
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise RuntimeError("Expected number of channels in input to be divisible by num_groups, "
                           f"but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    n, c = input.shape[0], input.shape[1]
    x = input.reshape(n, num_groups, -1)
    mean = x.mean(-1, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdim=True)
    out = (centred * (var + eps).rsqrt()).reshape(input.shape)
    shape = _channel_shape(input, c)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each (sample, channel) over the spatial dims."""
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    n, c = input.shape[0], input.shape[1]
    dims = tuple(range(2, input.ndim))
    mean = input.mean(dims, keepdim=True)
    centred = input - mean
    var = (centred * centred).mean(dims, keepdim=True)
    if running_mean is not None:
        _update_buffer(running_mean, running_mean * (1 - momentum)
                       + mean.reshape(n, c).mean(0) * momentum)
    if running_var is not None:
        m = math.prod(input.shape[2:])
        unbiased = var.reshape(n, c).mean(0) * (m / max(m - 1, 1))
        _update_buffer(running_var, running_var * (1 - momentum) + unbiased * momentum)
    out = centred * (var + eps).rsqrt()
    shape = _channel_shape(input, c)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """input / (k + alpha * mean(input^2 over a window of `size` channels, zero-padded))^beta,
    the window centred (size // 2 before, (size - 1) // 2 after)."""
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} "
                         "dimensions)")
    if input.numel() == 0:
        return input
    from .functional import pad
    c = input.shape[1]
    sq = pad(input * input, [0, 0] * (input.ndim - 2) + [size // 2, (size - 1) // 2])
    total = sq.narrow(1, 0, c)
    for o in range(1, size):
        total = total + sq.narrow(1, o, c)
    return input / (total * (alpha / size) + k) ** beta
