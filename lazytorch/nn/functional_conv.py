"""Convolution, pooling, attention and interpolation, built from movement ops (UNFOLD makes
the sliding windows as a view), a contiguous im2col buffer where it pays, and matmul."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..elementwise import make
from ..graph import Node
from ..ops import Op
from ..tensor import Tensor


def _tuple(v, n: int, name: str) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(x) for x in v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v}")
    return v


def pad_nodes(x: Tensor, pads: Sequence[tuple[int, int]], value=0.0) -> Tensor:
    """Constant-pad every dim of x by (lo, hi) (all non-negative)."""
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x
    shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, pads))
    v = x.dtype.np(value).item()
    return make(Op.PAD, (x.node,), (tuple(pads), v), shape, x.dtype)


def _contiguous(x: Tensor) -> Tensor:
    """A copy of x in its own buffer (a kernel boundary)."""
    return make(Op.CONTIGUOUS, (x.node,), None, x.shape, x.dtype)


def _windows(x: Tensor, kernel, stride, padding, dilation, pad_value=0.0) -> Tensor:
    """(N, C, *spatial) -> (N, C, *out_spatial, *kernel): every window, as a view."""
    nsp = len(kernel)
    pads = [(0, 0), (0, 0)] + [(p, p) for p in padding]
    x = pad_nodes(x, pads, pad_value)
    for i in range(nsp):
        dim = 2 + i
        span = (kernel[i] - 1) * dilation[i] + 1
        if span > x.shape[dim]:
            spans = " x ".join(str((k - 1) * d + 1) for k, d in zip(kernel, dilation))
            raise RuntimeError(f"Calculated padded input size per channel: "
                               f"({' x '.join(str(s) for s in x.shape[2:])}). Kernel size: "
                               f"({spans}). Kernel size can't be greater than actual input size")
        x = x.unfold(dim, span, stride[i])
        if dilation[i] > 1:
            x = x[..., ::dilation[i]]
    # unfold put the window dims last in order: (N, C, o1.., k1..)
    return x


def _check_conv(x: Tensor, weight: Tensor, nsp: int, groups: int, name: str) -> None:
    if x.ndim not in (nsp + 1, nsp + 2):
        raise RuntimeError(f"Expected {nsp + 1}D (unbatched) or {nsp + 2}D (batched) input to "
                           f"{name}, but got input of size: {list(x.shape)}")
    if weight.ndim != nsp + 2:
        raise RuntimeError(f"weight should have {nsp + 2} dimensions, got {weight.ndim}")
    c = x.shape[-nsp - 1]
    if c != weight.shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, "
                           f"expected input{list(x.shape)} to have {weight.shape[1] * groups} "
                           f"channels, but got {c} channels instead")
    if weight.shape[0] % groups:
        raise RuntimeError("out_channels must be divisible by groups")
    if x.dtype != weight.dtype:
        raise RuntimeError(f"Input type ({x.dtype.name}) and weight type ({weight.dtype.name}) "
                           "should be the same")


def _convnd(x: Tensor, weight: Tensor, bias, stride, padding, dilation, groups: int,
            nsp: int, name: str) -> Tensor:
    _check_conv(x, weight, nsp, groups, name)
    unbatched = x.ndim == nsp + 1
    if unbatched:
        x = x.unsqueeze(0)
    kernel = tuple(weight.shape[2:])
    stride = _tuple(stride, nsp, "stride")
    dilation = _tuple(dilation, nsp, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * nsp
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            lo = [t // 2 for t in total]
            x = pad_nodes(x, [(0, 0), (0, 0)] + [(a, t - a) for a, t in zip(lo, total)])
            padding = (0,) * nsp
        else:
            raise ValueError(f"Invalid padding string '{padding}'")
    padding = _tuple(padding, nsp, "padding")
    n, c = x.shape[0], x.shape[1]
    o = weight.shape[0]
    win = _windows(x, kernel, stride, padding, dilation)      # (N, C, *out, *k)
    out_sp = win.shape[2:2 + nsp]
    g, cg, og = groups, c // groups, o // groups
    kk = math.prod(kernel)
    L = math.prod(out_sp)
    # (N, g, L, cg*kk): the im2col matrix, stored once so the product runs as a GEMM
    perm = (0, *range(2, 2 + nsp), 1, *range(2 + nsp, 2 + 2 * nsp))
    cols = win.permute(perm).reshape(n, L, g, cg * kk).permute(0, 2, 1, 3)
    cols = _contiguous(cols)
    w = weight.reshape(g, og, cg * kk).transpose(1, 2)          # (g, cg*kk, og)
    out = cols @ w                                              # (N, g, L, og)
    out = out.permute(0, 1, 3, 2).reshape(n, o, *out_sp)
    if bias is not None:
        out = out + bias.reshape(1, o, *([1] * nsp))
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv_transpose2d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """The gradient of conv2d with respect to its input: spread the input by `stride`
    (zeros between), pad, and convolve with the flipped, transposed kernel."""
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if x.ndim != 4:
        raise RuntimeError(f"Expected 3D (unbatched) or 4D (batched) input to "
                           f"conv_transpose2d, but got input of size: {list(input.shape)}")
    stride, padding = _tuple(stride, 2, "stride"), _tuple(padding, 2, "padding")
    output_padding, dilation = _tuple(output_padding, 2, "output_padding"), _tuple(dilation, 2,
                                                                                   "dilation")
    n, c, h, w_ = x.shape
    cin, og = weight.shape[0], weight.shape[1]
    if c != cin:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {cin} channels, but got {c} channels "
                           "instead")
    kh, kw = weight.shape[2:]
    # spread: (h - 1) * s + 1 with zeros between
    from ..views import _unslice
    hs, ws = (h - 1) * stride[0] + 1, (w_ - 1) * stride[1] + 1
    node = _unslice(x.node, ((0, 1), (0, 1), (0, stride[0]), (0, stride[1])), (n, c, hs, ws),
                    x.dtype.np(0).item())
    xs = make(Op.CONTIGUOUS, (node,), None, node.shape, x.dtype) if stride != (1, 1) else x
    ph = dilation[0] * (kh - 1) - padding[0]
    pw = dilation[1] * (kw - 1) - padding[1]
    pads = [(0, 0), (0, 0), (ph, ph + output_padding[0]), (pw, pw + output_padding[1])]
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        crop = [(max(-lo, 0), max(-hi, 0)) for lo, hi in pads]
        pads = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
        xs = pad_nodes(xs, pads)
        for d, (lo, hi) in enumerate(crop):
            if lo or hi:
                xs = xs.narrow(d, lo, xs.shape[d] - lo - hi)
    else:
        xs = pad_nodes(xs, pads)
    # weight (Cin, Cout/g, kh, kw) -> (Cout, Cin/g, kh, kw), flipped
    g = groups
    wt = weight.reshape(g, cin // g, og, kh, kw).transpose(1, 2).reshape(g * og, cin // g, kh,
                                                                          kw)
    wt = wt.flip(2, 3)
    out = conv2d(xs, wt, bias, 1, 0, dilation, groups)
    return out.squeeze(0) if unbatched else out


def _pool_args(kernel_size, stride, padding, dilation, nsp):
    k = _tuple(kernel_size, nsp, "kernel_size")
    s = k if stride is None or stride == () or stride == [] else _tuple(stride, nsp, "stride")
    p = _tuple(padding, nsp, "padding")
    d = _tuple(dilation, nsp, "dilation")
    for kk, pp in zip(k, p):
        if pp > kk // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={pp}, kernel_size={kk} and dilation={d[0]}")
    return k, s, p, d


def _ceil_pad(x: Tensor, k, s, p, d, ceil_mode: bool):
    """Extra right padding so that ceil_mode windows exist (a window must start inside)."""
    extra = []
    for i, (kk, ss, pp, dd) in enumerate(zip(k, s, p, d)):
        size = x.shape[2 + i] + 2 * pp
        span = (kk - 1) * dd + 1
        out = (size - span) // ss + 1
        if ceil_mode:
            out_c = -(-(size - span) // ss) + 1
            if (out_c - 1) * ss >= x.shape[2 + i] + pp:
                out_c -= 1
            extra.append((out_c - out) * ss if out_c > out else 0)
        else:
            extra.append(0)
    return extra


def _max_pool(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
              nsp: int):
    unbatched = x.ndim == nsp + 1
    if unbatched:
        x = x.unsqueeze(0)
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, nsp)
    extra = _ceil_pad(x, k, s, p, d, ceil_mode)
    lowest = -math.inf if x.dtype.is_floating_point else int(np.iinfo(x.dtype.np).min)
    xp = pad_nodes(x, [(0, 0), (0, 0)] + [(pp, pp + e) for pp, e in zip(p, extra)], lowest)
    win = _windows(xp, k, s, (0,) * nsp, d)                     # (N, C, *out, *k)
    flat = win.reshape(*win.shape[:2 + nsp], math.prod(k))
    idx = flat.argmax(-1, keepdim=True)
    values = flat.gather(-1, idx).squeeze(-1)
    if unbatched:
        values = values.squeeze(0)
    if not return_indices:
        return values
    # flat index into the unpadded input, as PyTorch returns
    out_sp = win.shape[2:2 + nsp]
    pos = idx.squeeze(-1)
    coords = []
    rem = pos
    for i in reversed(range(nsp)):
        coords.append(rem % k[i])
        rem = rem // k[i]
    coords = coords[::-1]
    flat_index = None
    for i in range(nsp):
        grid = Tensor._make(_arange_node(out_sp[i], i, nsp)) * s[i]
        ci = grid + coords[i] * d[i] - p[i]
        flat_index = ci if flat_index is None else flat_index * x.shape[2 + i] + ci
    if unbatched:
        flat_index = flat_index.squeeze(0)
    return values, flat_index


def _arange_node(n: int, axis: int, nsp: int) -> Node:
    from ..runtime import memory
    shape = [1] * (nsp + 2)
    shape[2 + axis] = n
    return memory.buffer_node(np.arange(n, dtype=np.int64).reshape(shape))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              nsp):
    unbatched = x.ndim == nsp + 1
    if unbatched:
        x = x.unsqueeze(0)
    k, s, p, d = _pool_args(kernel_size, stride, padding, 1, nsp)
    extra = _ceil_pad(x, k, s, p, d, ceil_mode)
    pads = [(0, 0), (0, 0)] + [(pp, pp + e) for pp, e in zip(p, extra)]
    xp = pad_nodes(x, pads)
    win = _windows(xp, k, s, (0,) * nsp, d)
    axes = tuple(range(2 + nsp, 2 + 2 * nsp))
    total = win.sum(axes)
    if divisor_override:
        out = total / divisor_override
    elif count_include_pad and not any(extra):
        out = total / math.prod(k)
    else:
        # count the elements each window covers (padding included or not)
        ones = Tensor._make(_ones_node(x.shape[2:], x.dtype))
        inner = [(pp, pp) for pp in p] if count_include_pad else [(0, 0)] * nsp
        base = pad_nodes(ones, inner, 0.0)
        outer = [(0 if count_include_pad else pp, e + (0 if count_include_pad else 0) +
                  (0 if count_include_pad else pp)) for pp, e in zip(p, extra)]
        cnt = pad_nodes(base, outer, 0.0).reshape(1, 1, *[b + lo + hi for b, (lo, hi) in
                                                          zip(base.shape, outer)])
        cw = _windows(cnt, k, s, (0,) * nsp, d).sum(axes)
        out = total / cw
    return out.squeeze(0) if unbatched else out


def _ones_node(shape, dtype) -> Node:
    from ..graph import const
    return const(1, dtype, tuple(shape))


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2)


def _adaptive_matrix(n_in: int, n_out: int, dtype) -> Tensor:
    """(n_out, n_in) averaging matrix of PyTorch's adaptive windows
    [floor(i*n_in/n_out), ceil((i+1)*n_in/n_out))."""
    m = np.zeros((n_out, n_in), dtype=dtype.np)
    for i in range(n_out):
        a = (i * n_in) // n_out
        b = -(-((i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    from ..creation import from_array
    return from_array(m)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if x.ndim != 4:
        raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got "
                           f"{list(input.shape)}")
    oh, ow = _tuple(output_size if output_size is not None else x.shape[2:], 2, "output_size")
    oh = x.shape[2] if oh is None else oh
    ow = x.shape[3] if ow is None else ow
    h, w = x.shape[2:]
    if h % oh == 0 and w % ow == 0:
        out = avg_pool2d(x, (h // oh, w // ow))
    else:
        ph = _adaptive_matrix(h, oh, x.dtype)
        pw = _adaptive_matrix(w, ow, x.dtype)
        out = ph @ x @ pw.t()
    return out.squeeze(0) if unbatched else out


def adaptive_avg_pool1d(input: Tensor, output_size: int) -> Tensor:
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, output_size)).squeeze(-2)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale=None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(q k^T * scale + mask) v, as torch.nn.functional.scaled_dot_product_attention."""
    from .. import creation
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be "
                               "set when is_causal=True")
        causal = creation.from_array(np.tril(np.ones((L, S), dtype=bool)))
        scores = scores.masked_fill(~causal, -math.inf)
    if attn_mask is not None:
        if attn_mask.dtype.name == "bool":
            scores = scores.masked_fill(~attn_mask, -math.inf)
        else:
            scores = scores + attn_mask
    m = scores.amax(-1, keepdim=True)
    e = (scores - m).exp()
    p = e / e.sum(-1, keepdim=True)
    if dropout_p > 0.0:
        keep = creation.rand(p.shape) >= dropout_p
        p = p * keep.to(p.dtype) / (1.0 - dropout_p)
    return p @ value


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None, recompute_scale_factor=None, antialias: bool = False):
    """Resize the spatial dims: modes nearest (PyTorch's floor rule), linear, bilinear."""
    nsp = input.ndim - 2
    if nsp < 1:
        raise ValueError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got "
                         f"{input.ndim}D) for the modes: nearest | linear | bilinear")
    in_sp = input.shape[2:]
    if size is not None:
        out_sp = _tuple(size, nsp, "size")
        scales = [None] * nsp
    elif scale_factor is not None:
        sf = scale_factor if isinstance(scale_factor, (tuple, list)) else [scale_factor] * nsp
        out_sp = tuple(int(math.floor(s * f)) for s, f in zip(in_sp, sf))
        scales = [None if recompute_scale_factor else float(f) for f in sf]
    else:
        raise ValueError("either size or scale_factor should be defined")
    x = input
    if mode == "nearest":
        for i in range(nsp):
            n_in, n_out = in_sp[i], out_sp[i]
            sc = (1.0 / scales[i]) if scales[i] else n_in / n_out
            idx = np.minimum(np.floor(np.arange(n_out) * sc).astype(np.int64), n_in - 1)
            x = x.index_select(2 + i, Tensor._make(_buffer(idx)))
        return x
    if mode in ("linear", "bilinear", "trilinear"):
        for i in range(nsp):
            mat = _linear_matrix(in_sp[i], out_sp[i], align_corners, scales[i], x.dtype)
            x = (x.movedim(2 + i, -1) @ mat.t()).movedim(-1, 2 + i)
        return x
    raise NotImplementedError(f"interpolate mode '{mode}' is not supported")


def _buffer(arr: np.ndarray) -> Node:
    from ..runtime import memory
    return memory.buffer_node(arr)


def _linear_matrix(n_in: int, n_out: int, align_corners, scale, dtype) -> Tensor:
    m = np.zeros((n_out, n_in), dtype=np.float64)
    for o in range(n_out):
        if align_corners:
            src = o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            r = (1.0 / scale) if scale else n_in / n_out
            src = max((o + 0.5) * r - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        frac = src - i0
        m[o, i0] += 1.0 - frac
        m[o, i1] += frac
    from ..creation import from_array
    return from_array(m.astype(dtype.np))
