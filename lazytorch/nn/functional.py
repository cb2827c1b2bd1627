"""nn.functional: linear maps, dropout, embedding and padding, plus (re-exported, so that every
F.name works) activations (functional_activation.py), normalization (functional_norm.py),
convolution and pooling (functional_conv.py, functional_pool.py) and every loss (loss.py), with
PyTorch's signatures, defaults and messages.

Every function builds graph only. Boundaries where a naive formula's gradient would differ
from PyTorch's select branches with `where`, whose gradient goes wholly to the chosen branch,
and keep unselected branches finite.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ..autograd import no_grad
from ..frontend import elementwise as ew
from ..frontend import views as vw
from ..frontend.creation import arange, from_array, rand
from ..frontend.tensor import Tensor, device_name
from ..ir import dtypes as dt
from ..ir.graph import Node, new_node
from ..ir.ops import Op
from ..ir.sites import record
from ..linalg import _matmul_node
from ..runtime import memory
from .functional_activation import _float_input as _float_input
from .functional_activation import _inplace_result as _inplace_result
from .functional_activation import _neg_abs as _neg_abs
from .functional_activation import _nonpositive as _nonpositive
from .functional_activation import _shifted as _shifted
from .functional_activation import _softmax_dim as _softmax_dim
from .functional_activation import celu as celu
from .functional_activation import celu_ as celu_
from .functional_activation import elu as elu
from .functional_activation import elu_ as elu_
from .functional_activation import gelu as gelu
from .functional_activation import glu as glu
from .functional_activation import hardshrink as hardshrink
from .functional_activation import hardsigmoid as hardsigmoid
from .functional_activation import hardswish as hardswish
from .functional_activation import hardtanh as hardtanh
from .functional_activation import hardtanh_ as hardtanh_
from .functional_activation import leaky_relu as leaky_relu
from .functional_activation import leaky_relu_ as leaky_relu_
from .functional_activation import log_softmax as log_softmax
from .functional_activation import logsigmoid as logsigmoid
from .functional_activation import mish as mish
from .functional_activation import prelu as prelu
from .functional_activation import relu as relu
from .functional_activation import relu6 as relu6
from .functional_activation import relu_ as relu_
from .functional_activation import rrelu as rrelu
from .functional_activation import rrelu_ as rrelu_
from .functional_activation import selu as selu
from .functional_activation import selu_ as selu_
from .functional_activation import sigmoid as sigmoid
from .functional_activation import silu as silu
from .functional_activation import softmax as softmax
from .functional_activation import softmin as softmin
from .functional_activation import softplus as softplus
from .functional_activation import softshrink as softshrink
from .functional_activation import softsign as softsign
from .functional_activation import tanh as tanh
from .functional_activation import tanhshrink as tanhshrink
from .functional_activation import threshold as threshold
from .functional_activation import threshold_ as threshold_
from .functional_norm import _channel_shape as _channel_shape
from .functional_norm import _update_buffer as _update_buffer
from .functional_norm import batch_norm as batch_norm
from .functional_norm import group_norm as group_norm
from .functional_norm import instance_norm as instance_norm
from .functional_norm import layer_norm as layer_norm
from .functional_norm import local_response_norm as local_response_norm
from .functional_norm import normalize as normalize
from .functional_norm import rms_norm as rms_norm

_where = ew.where_nodes


# ------------------------------------------------------------------------------- helpers
def _host_values(t: Tensor) -> np.ndarray | None:
    """t's values if they are already computed (no work is started), else None."""
    n = t.node
    return memory.host_data(n) if n.op is Op.BUFFER else None



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
    if input.ndim == 2 and weight.ndim == 2 and input.dtype is weight.dtype and \
            input.dtype.kind == "f" and (bias is None or (
                isinstance(bias, Tensor) and bias.dtype is input.dtype and
                tuple(bias.shape) in ((weight.shape[0],), (1,), ()))):
        # the nodes of `input @ weight.t() + bias` below, recorded as one op
        return _linear_2d(input.node, weight.node, None if bias is None else bias.node)
    out = input @ (weight.t() if weight.ndim == 2 else weight.unsqueeze(-1))
    if weight.ndim == 1:
        out = out.squeeze(-1)
    return out if bias is None else out + bias


def _linear_2d(x: Node, w: Node, b: Node | None) -> Tensor:
    wt = new_node(Op.PERMUTE, (w,), (1, 0), (w.shape[1], w.shape[0]), w.dtype)
    out = _matmul_node(x, wt, ())
    if b is not None:
        out = new_node(Op.ADD, (out, ew.expand_node(b, out.shape)), None, out.shape, out.dtype)
    record(out)
    return Tensor._make(out)


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


# ------------------------------------------------------------------------------- dropout
def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _masked(input: Tensor, p: float, mask_shape: tuple[int, ...], inplace: bool) -> Tensor:
    """input * mask / (1 - p), mask ~ Bernoulli(1 - p) over mask_shape (broadcast)."""
    if p == 1.0:
        out = input * 0.0
    else:
        keep = rand(mask_shape, dtype=input.dtype, device=input.device) < (1.0 - p)
        out = _where(keep, input * (1.0 / (1.0 - p)), 0.0)
    return _inplace_result(input, out, inplace)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    return _masked(input, p, tuple(input.shape), inplace)


def _alpha_masked(input: Tensor, p: float, mask_shape: tuple[int, ...],
                  inplace: bool) -> Tensor:
    """SELU-preserving dropout: dropped elements become SELU's negative saturation, then an
    affine map keeps zero mean and unit variance (PyTorch's a, b)."""
    if p == 1.0:
        return _inplace_result(input, input * 0.0, inplace)
    alpha = 1.7580993408473766
    a = 1.0 / ((alpha * alpha * p + 1) * (1 - p)) ** 0.5
    keep = (rand(mask_shape, dtype=input.dtype, device=input.device) < (1.0 - p)).to(input.dtype)
    out = input * (keep * a) + ((keep - 1) * (alpha * a) + alpha * a * p)
    return _inplace_result(input, out, inplace)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Alpha dropout of each element (training only), for SELU networks."""
    _check_p(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    return _alpha_masked(input, p, tuple(input.shape), inplace)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """Alpha dropout of whole channels of (N, C, *) input (training only)."""
    _check_p(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return _alpha_masked(input, p, shape, inplace)


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
        used = (flat.unsqueeze(1) == arange(w.shape[0], device=w.device).unsqueeze(0)).any(0)
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
        vals = tensor._array() if vals is None else vals
        if vals.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(vals.max()) + 1
    if vals is not None and vals.size:
        if vals.min() < 0:
            raise RuntimeError("Class values must be non-negative.")
        if vals.max() >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    return (tensor.unsqueeze(-1) == arange(num_classes, device=tensor.device)).to(dt.int64)


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
        idx = from_array(src.astype(np.int64), device=device_name(out)).reshape(view)
        idx = idx.expand(shape)
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


# --------------------------- convolution, pooling, resizing, losses, distances (own files)
from .distance import cosine_similarity as cosine_similarity  # noqa: E402
from .distance import pairwise_distance as pairwise_distance  # noqa: E402
from .distance import pdist as pdist  # noqa: E402
from .embedding_bag import embedding_bag as embedding_bag  # noqa: E402
from .fold import fold as fold  # noqa: E402
from .fold import unfold as unfold  # noqa: E402
from .functional_conv import conv1d as conv1d  # noqa: E402
from .functional_conv import conv2d as conv2d  # noqa: E402
from .functional_conv import conv_transpose1d as conv_transpose1d  # noqa: E402
from .functional_conv import conv_transpose2d as conv_transpose2d  # noqa: E402
from .functional_conv import interpolate as interpolate  # noqa: E402
from .functional_conv import scaled_dot_product_attention as scaled_dot_product_attention  # noqa: E402,E501
from .functional_pool import adaptive_avg_pool1d as adaptive_avg_pool1d  # noqa: E402
from .functional_pool import adaptive_avg_pool2d as adaptive_avg_pool2d  # noqa: E402
from .functional_pool import adaptive_max_pool1d as adaptive_max_pool1d  # noqa: E402
from .functional_pool import adaptive_max_pool1d_with_indices as adaptive_max_pool1d_with_indices  # noqa: E402,E501
from .functional_pool import adaptive_max_pool2d as adaptive_max_pool2d  # noqa: E402
from .functional_pool import adaptive_max_pool2d_with_indices as adaptive_max_pool2d_with_indices  # noqa: E402,E501
from .functional_pool import avg_pool1d as avg_pool1d  # noqa: E402
from .functional_pool import avg_pool2d as avg_pool2d  # noqa: E402
from .functional_pool import max_pool1d as max_pool1d  # noqa: E402
from .functional_pool import max_pool1d_with_indices as max_pool1d_with_indices  # noqa: E402
from .functional_pool import max_pool2d as max_pool2d  # noqa: E402
from .functional_pool import max_pool2d_with_indices as max_pool2d_with_indices  # noqa: E402
from .loss import binary_cross_entropy as binary_cross_entropy  # noqa: E402
from .loss import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits  # noqa: E402,E501
from .loss import cross_entropy as cross_entropy  # noqa: E402
from .loss import huber_loss as huber_loss  # noqa: E402
from .loss import kl_div as kl_div  # noqa: E402
from .loss import l1_loss as l1_loss  # noqa: E402
from .loss import mse_loss as mse_loss  # noqa: E402
from .loss import nll_loss as nll_loss  # noqa: E402
from .loss import smooth_l1_loss as smooth_l1_loss  # noqa: E402
from .loss_likelihood import gaussian_nll_loss as gaussian_nll_loss  # noqa: E402
from .loss_likelihood import poisson_nll_loss as poisson_nll_loss  # noqa: E402
from .loss_margin import cosine_embedding_loss as cosine_embedding_loss  # noqa: E402
from .loss_margin import hinge_embedding_loss as hinge_embedding_loss  # noqa: E402
from .loss_margin import margin_ranking_loss as margin_ranking_loss  # noqa: E402
from .loss_margin import multi_margin_loss as multi_margin_loss  # noqa: E402
from .loss_margin import multilabel_margin_loss as multilabel_margin_loss  # noqa: E402
from .loss_margin import multilabel_soft_margin_loss as multilabel_soft_margin_loss  # noqa: E402,E501
from .loss_margin import soft_margin_loss as soft_margin_loss  # noqa: E402
from .loss_margin import triplet_margin_loss as triplet_margin_loss  # noqa: E402
from .loss_margin import triplet_margin_with_distance_loss as triplet_margin_with_distance_loss  # noqa: E402,E501
from .pixelshuffle import channel_shuffle as channel_shuffle  # noqa: E402
from .pixelshuffle import pixel_shuffle as pixel_shuffle  # noqa: E402
from .pixelshuffle import pixel_unshuffle as pixel_unshuffle  # noqa: E402
from .upsampling import upsample as upsample  # noqa: E402
from .upsampling import upsample_bilinear as upsample_bilinear  # noqa: E402
from .upsampling import upsample_nearest as upsample_nearest  # noqa: E402
