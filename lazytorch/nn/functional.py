"""nn.functional: activations, linear maps, dropout, normalization, embedding, padding, and
(re-exported from loss.py) every loss, with PyTorch's signatures, defaults and messages.

Every function builds graph only. Boundaries where a naive formula's gradient would differ
from PyTorch's (ELU at 0, softplus past its threshold, ...) select branches with `where`, whose
gradient goes wholly to the chosen branch, and keep unselected branches finite.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Sequence

import numpy as np

from .. import dtypes as dt
from .. import elementwise as ew
from .. import reduce as rd
from .. import views as vw
from ..autograd import no_grad
from ..creation import arange, from_array, rand
from ..ops import Op
from ..runtime import memory
from ..tensor import Tensor

_where = ew.where_nodes


# ------------------------------------------------------------------------------- helpers
def _host_values(t: Tensor) -> np.ndarray | None:
    """t's values if they are already computed (no work is started), else None."""
    n = t.node
    return memory.data(n) if n.op is Op.BUFFER else None


def _channel_shape(x: Tensor, c: int) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector (dim 1) against x."""
    return (1, c) + (1,) * (x.ndim - 2)


def _gather(x: Tensor, axis: int, index: Tensor) -> Tensor:
    """out[..i..] = x[.., index[..i..], ..] along axis (torch.gather), recorded as one GATHER."""
    return ew.make(Op.GATHER, (x.node, index.node), axis, tuple(index.shape), x.dtype)


# ------------------------------------------------------------------------------- linear
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias."""
    k = weight.shape[-1]
    if input.shape[-1] != k:
        rows = input.numel() // input.shape[-1] if input.shape[-1] else 0
        w = tuple(weight.shape)
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} "
                           f"and {w[-1]}x{w[0] if len(w) == 2 else 1})")
    out = input @ (weight.t() if weight.ndim == 2 else weight.unsqueeze(-1))
    if weight.ndim == 1:
        out = out.squeeze(-1)
    return out if bias is None else out + bias


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """out[..., o] = sum_ij input1[..., i] * weight[o, i, j] * input2[..., j] + bias[o]."""
    out_f, in1, in2 = weight.shape
    if input1.shape[-1] != in1 or input2.shape[-1] != in2:
        raise RuntimeError(f"bilinear(): input sizes do not match the weight: got "
                           f"{list(input1.shape)} and {list(input2.shape)} for weight "
                           f"{list(weight.shape)}")
    if input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(f"bilinear(): input batch dimensions do not match: got "
                           f"{list(input1.shape[:-1])} and {list(input2.shape[:-1])}")
    w = weight.permute(1, 0, 2).reshape(in1, out_f * in2)
    t = (input1 @ w).unflatten(-1, (out_f, in2))
    out = (t * input2.unsqueeze(-2)).sum(-1)
    return out if bias is None else out + bias


# ------------------------------------------------------------------------------- activations
def _inplace_result(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    if inplace:
        input._assign(out.node)
        return input
    return out


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); the gradient at 0 is 0."""
    return input.relu_() if inplace else input.relu()


def relu_(input: Tensor) -> Tensor:
    return input.relu_()


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); no gradient outside (min_val, max_val)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    # max/min against constants (not clamp's where): the gradient is 0 at the bounds, as
    # PyTorch's hardtanh (and relu6) give
    from ..elementwise import binary
    from ..ops import Op
    out = binary(Op.MAX, input, min_val, compute=input.dtype, name="hardtanh")
    out = binary(Op.MIN, out, max_val, compute=input.dtype, name="hardtanh")
    return _inplace_result(input, out, inplace)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, True)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return _inplace_result(input, _where(input > 0, input, input * negative_slope), inplace)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, True)


def _nonpositive(x: Tensor) -> Tensor:
    """min(x, 0) whose gradient at 0 is 1 (the negative branch's, as PyTorch's kernels)."""
    return _where(x > 0, 0.0, x)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x, with one weight per channel (dim 1) or one shared."""
    n = weight.numel()
    if n != 1:
        c = input.shape[1] if input.ndim >= 2 else input.shape[0] if input.ndim else 1
        if n != c:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {n} and channel size = {c}.")
        if input.ndim >= 2:
            weight = weight.reshape(_channel_shape(input, c))
    else:
        weight = weight.reshape(())
    return _where(input > 0, input, input * weight)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    out = _where(input > 0, input, _nonpositive(input).expm1() * alpha)
    return _inplace_result(input, out, inplace)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, True)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with SELU's constants."""
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    out = _where(input > 0, input * scale, _nonpositive(input).expm1() * (alpha * scale))
    return _inplace_result(input, out, inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    out = _where(input > 0, input, (_nonpositive(input) / alpha).expm1() * alpha)
    return _inplace_result(input, out, inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (approximate='none', with erf) or its tanh approximation."""
    if approximate == "none":
        return input * 0.5 * (1.0 + (input * (1.0 / math.sqrt(2.0))).erf())
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2.0 / math.pi)
        return input * 0.5 * (1.0 + inner.tanh())
    raise RuntimeError("approximate argument must be either none or tanh.")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    return _inplace_result(input, input * input.sigmoid(), inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return _inplace_result(input, input * softplus(input).tanh(), inplace)


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """clamp(x / 6 + 1/2, 0, 1)."""
    return _inplace_result(input, hardtanh(input / 6.0 + 0.5, 0.0, 1.0), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * hardsigmoid(x)."""
    return _inplace_result(input, input * hardtanh(input / 6.0 + 0.5, 0.0, 1.0), inplace)


def softsign(input: Tensor) -> Tensor:
    return input / (1.0 + input.abs())


def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return _inplace_result(input, _where(input > threshold, input, value), inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, or x where beta * x > threshold."""
    bx = input * beta
    above = bx > threshold
    soft = _where(above, 0.0, bx).exp().log1p()
    return _where(above, input, soft / beta if beta != 1 else soft)


def _neg_abs(x: Tensor) -> Tensor:
    """-|x| whose gradient at 0 is -1 (the x >= 0 side's)."""
    return _where(x < 0, x, -x)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), computed stably as min(x, 0) - log1p(exp(-|x|))."""
    return _where(input < 0, input, 0.0) - _neg_abs(input).exp().log1p()


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b), with a, b the two halves of input along dim."""
    if input.shape[dim] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension "
                           f"{dim % input.ndim} is size {input.shape[dim]}")
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _float_input(input: Tensor, dtype) -> Tensor:
    if dtype is not None:
        return input.to(dt.to_dtype(dtype))
    return input if input.is_floating_point() else input.to(dt.get_default_dtype())


def _shifted(x: Tensor, dim: int) -> Tensor:
    """x minus its max along dim (a constant for autograd: the result does not depend on it)."""
    return x - rd.amax(x, dim, keepdim=True).detach()


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, computed after subtracting the max."""
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    e = _shifted(_float_input(input, dtype), dim).exp()
    return e / e.sum(dim, keepdim=True)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """softmax(-x)."""
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return softmax(-_float_input(input, dtype), dim)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """x - logsumexp(x) along dim, computed after subtracting the max."""
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    z = _shifted(_float_input(input, dtype), dim)
    return z - z.exp().sum(dim, keepdim=True).log()


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Tensor | None = None) -> Tensor:
    """input / max(||input||_p along dim, eps)."""
    if p == 2:
        denom = (input * input).sum(dim, keepdim=True).clamp(min=eps * eps).sqrt()
    else:
        denom = input.norm(p, dim, keepdim=True).clamp(min=eps)
    return input / denom


# ------------------------------------------------------------------------------- dropout
def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _masked(input: Tensor, p: float, mask_shape: tuple[int, ...], inplace: bool) -> Tensor:
    """input * mask / (1 - p), mask ~ Bernoulli(1 - p) over mask_shape (broadcast)."""
    if p == 1.0:
        out = input * 0.0
    else:
        keep = rand(mask_shape, dtype=input.dtype) < (1.0 - p)
        out = _where(keep, input * (1.0 / (1.0 - p)), 0.0)
    return _inplace_result(input, out, inplace)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    return _masked(input, p, tuple(input.shape), inplace)


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool,
                     batched: bool) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    lead = 2 if batched else 1
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    return _masked(input, p, shape, inplace)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) input."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D "
                           "input. Note that dropout1d exists to provide channel-wise dropout on "
                           "inputs with 1 spatial dimension, a channel dimension, and an optional "
                           "batch dimension (i.e. 2D or 3D inputs).")
    return _feature_dropout(input, p, training, inplace, input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) input."""
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is "
                      "deprecated and will result in an error in a future release. To retain the "
                      "behavior and silence this warning, please use dropout instead. Note that "
                      "dropout2d exists to provide channel-wise dropout on inputs with 2 spatial "
                      "dimensions, a channel dimension, and an optional batch dimension (i.e. 3D "
                      "or 4D inputs).", stacklevel=2)
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that "
                      "channel-wise 1D dropout behavior is desired - input is interpreted as "
                      "shape (N, C, L), where C is the channel dim. This behavior will change in "
                      "a future release to interpret the input as one without a batch "
                      "dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout "
                      "behavior, please switch to using dropout1d instead.", stacklevel=2)
    return _feature_dropout(input, p, training, inplace, input.ndim >= 2)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input."""
    if input.ndim not in (4, 5):
        warnings.warn(f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is "
                      "deprecated and will result in an error in a future release. To retain the "
                      "behavior and silence this warning, please use dropout instead. Note that "
                      "dropout3d exists to provide channel-wise dropout on inputs with 3 spatial "
                      "dimensions, a channel dimension, and an optional batch dimension (i.e. 4D "
                      "or 5D inputs).", stacklevel=2)
    return _feature_dropout(input, p, training, inplace, input.ndim != 4)


# ------------------------------------------------------------------------------- normalization
def _update_buffer(buf: Tensor, value: Tensor) -> None:
    """buf <- value, in place and lazily; computed along with the next realize, whatever it is
    for, so that a buffer nobody reads (running stats) never accumulates a long graph."""
    with no_grad():
        buf.copy_(value.detach())
    from .. import realize as _realize
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
        eps = float(np.finfo(input.dtype.np).eps)
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


# ------------------------------------------------------------------------------- embedding
def _check_index_dtype(t: Tensor, what: str) -> None:
    if t.dtype not in (dt.int64, dt.int32):
        raise RuntimeError(f"Expected tensor for argument #1 '{what}' to have one of the "
                           "following scalar types: Long, Int; but got "
                           f"{t.type()} instead (while checking arguments for embedding)")


def _take_rows(weight: Tensor, indices: Tensor) -> Tensor:
    """weight[indices] for a 2-D weight: shape indices.shape + (dim,)."""
    rows = weight.index_select(0, indices.reshape(-1))
    return rows.reshape(tuple(indices.shape) + (weight.shape[1],))


def _occurrences(flat: Tensor) -> Tensor:
    """For each position i: how many positions hold the same index as i."""
    return (flat.unsqueeze(1) == flat.unsqueeze(0)).to(dt.int64).sum(1)


def _embedding_renorm_(weight: Tensor, flat: Tensor, max_norm: float,
                       norm_type: float) -> None:
    """Rescale, in place, the referenced rows whose norm exceeds max_norm (as PyTorch)."""
    with no_grad():
        w = weight.detach()
        used = (flat.unsqueeze(1) == arange(w.shape[0]).unsqueeze(0)).any(0)
        norms = w.norm(norm_type, dim=1)
        scale = _where(used & (norms > max_norm), max_norm / (norms + 1e-7), 1.0)
        weight.copy_(w * scale.to(w.dtype).unsqueeze(1))


def _padding_idx(padding_idx: int | None, num_embeddings: int) -> int | None:
    """padding_idx checked against num_embeddings, a negative one counted from the end."""
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= num_embeddings:
                raise AssertionError("Padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -num_embeddings:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = num_embeddings + padding_idx
    return padding_idx


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """weight[input]: rows of weight picked by integer indices. Rows at padding_idx get no
    gradient; scale_grad_by_freq divides each row's gradient by its count in the batch."""
    _check_index_dtype(input, "indices")
    num = weight.shape[0]
    padding_idx = _padding_idx(padding_idx, num)
    vals = _host_values(input)
    if vals is not None and vals.size and (vals.min() < 0 or vals.max() >= num):
        raise IndexError("index out of range in self")
    flat = input.reshape(-1)
    if max_norm is not None:
        _embedding_renorm_(weight, flat, max_norm, norm_type)
    out = _take_rows(weight, input)
    if padding_idx is not None and out.requires_grad:
        at_pad = (input == padding_idx).unsqueeze(-1)
        out = _where(at_pad, out.detach(), out)
    if scale_grad_by_freq and out.requires_grad:
        inv = (1.0 / _occurrences(flat).to(out.dtype)).reshape(tuple(input.shape) + (1,))
        out = out.detach() + (out - out.detach()) * inv
    return out


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape tensor.shape + (num_classes,) with a 1 at each index."""
    if tensor.dtype != dt.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    vals = _host_values(tensor)
    if num_classes == -1:
        vals = tensor.numpy() if vals is None else vals
        if vals.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(vals.max()) + 1
    if vals is not None and vals.size:
        if vals.min() < 0:
            raise RuntimeError("Class values must be non-negative.")
        if vals.max() >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    return (tensor.unsqueeze(-1) == arange(num_classes)).to(dt.int64)


# ------------------------------------------------------------------------------- padding
def _pad_pairs(pad: Sequence[int], ndim: int) -> list[tuple[int, int]]:
    """(lo, hi) per dim of an ndim input from F.pad's last-dim-first flat list."""
    pairs = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        pairs[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return pairs


def _source_index(mode: str, n: int, lo: int, hi: int) -> np.ndarray:
    """For each output position along a padded dim, the input position it copies."""
    pos = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    if mode == "circular":
        return pos % n
    period = 2 * (n - 1)   # reflect: mirror without repeating the edge
    if period == 0:
        return np.zeros_like(pos)
    m = pos % period
    return np.where(m < n, m, period - m)


def _pad_by_gather(input: Tensor, pairs: list[tuple[int, int]], mode: str) -> Tensor:
    out = input
    for d, (lo, hi) in enumerate(pairs):
        if lo == 0 and hi == 0:
            continue
        src = _source_index(mode, out.shape[d], lo, hi)
        shape = tuple(out.shape[:d]) + (len(src),) + tuple(out.shape[d + 1:])
        view = [1] * out.ndim
        view[d] = len(src)
        idx = from_array(src.astype(np.int64)).reshape(view).expand(shape)
        out = _gather(out, d, idx)
    return out


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """Pad the last len(pad)//2 dims: pad = (last_lo, last_hi, 2nd_last_lo, ...). Modes:
    constant (with value; negative pads crop), reflect, replicate, circular."""
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of dimension "
                           f"{input.ndim}")
    pairs = _pad_pairs(pad, input.ndim)
    if mode == "constant":
        return _constant_pad(input, pairs, 0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    k = len(pad) // 2
    if k not in (1, 2, 3) or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    for d, (lo, hi) in enumerate(pairs):
        n = input.shape[d]
        if mode == "reflect" and (lo >= n or hi >= n) and (lo or hi):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding "
                               f"input dimension, but got: padding ({lo}, {hi}) at dimension {d} "
                               f"of input {list(input.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise RuntimeError("Padding value causes wrapping around more than once.")
    return _pad_by_gather(input, pairs, mode)


def _constant_pad(input: Tensor, pairs: list[tuple[int, int]], value) -> Tensor:
    x = input
    for d, (lo, hi) in enumerate(pairs):   # negative pads crop first
        if lo < 0 or hi < 0:
            start, stop = max(-lo, 0), x.shape[d] - max(-hi, 0)
            if stop - start < 0:
                raise RuntimeError(f"The input size {x.shape[d]}, plus negative padding {lo} and "
                                   f"{hi} resulted in a negative output size, which is invalid. "
                                   f"Check dimension {d} of your input.")
            x = vw.slice_dim(x, d, start, stop)
    grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pairs)
    if not any(lo or hi for lo, hi in grow):
        return x if x is not input else x.clone()
    shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, grow))
    v = x.dtype.np(value).item()
    return ew.make(Op.PAD, (x.node,), (grow, v), shape, x.dtype)


# ------------------------------------------------- convolution, pooling, attention, resizing
from .functional_conv import conv1d as conv1d  # noqa: E402
from .functional_conv import conv2d as conv2d  # noqa: E402
from .functional_conv import conv_transpose1d as conv_transpose1d  # noqa: E402
from .functional_conv import conv_transpose2d as conv_transpose2d  # noqa: E402
from .functional_conv import interpolate as interpolate  # noqa: E402
from .functional_conv import scaled_dot_product_attention as scaled_dot_product_attention  # noqa: E402,E501
from .functional_pool import adaptive_avg_pool1d as adaptive_avg_pool1d  # noqa: E402
from .functional_pool import adaptive_avg_pool2d as adaptive_avg_pool2d  # noqa: E402
from .functional_pool import avg_pool1d as avg_pool1d  # noqa: E402
from .functional_pool import avg_pool2d as avg_pool2d  # noqa: E402
from .functional_pool import max_pool1d as max_pool1d  # noqa: E402
from .functional_pool import max_pool2d as max_pool2d  # noqa: E402

# ------------------------------------------------------------------------------- losses
from .loss import binary_cross_entropy as binary_cross_entropy  # noqa: E402
from .loss import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits  # noqa: E402,E501
from .loss import cross_entropy as cross_entropy  # noqa: E402
from .loss import huber_loss as huber_loss  # noqa: E402
from .loss import kl_div as kl_div  # noqa: E402
from .loss import l1_loss as l1_loss  # noqa: E402
from .loss import mse_loss as mse_loss  # noqa: E402
from .loss import nll_loss as nll_loss  # noqa: E402
from .loss import smooth_l1_loss as smooth_l1_loss  # noqa: E402

