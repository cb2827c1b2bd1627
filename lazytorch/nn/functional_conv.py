"""Convolution, transposed convolution, attention and interpolation, built from movement ops
(UNFOLD makes the sliding windows as a view), a contiguous im2col buffer, and matmul."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..frontend.elementwise import expand_node, make
from ..frontend.tensor import Tensor, device_name
from ..ir import dtypes as dt
from ..ir.graph import Node, new_node
from ..ir.ops import Op
from ..ir.sites import record
from ..linalg import _matmul_node

# convolutions are recorded as one op (_conv_nodes) where they can; tests switch this off to
# compare with the tensor-op path
ONE_OP = True


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
            raise _too_small(x.shape, kernel, dilation)
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
        raise RuntimeError(f"expected scalar type {dt.scalar_type_name(x.dtype)} but found "
                           f"{dt.scalar_type_name(weight.dtype)}")


def _convnd(x: Tensor, weight: Tensor, bias, stride, padding, dilation, groups: int,
            nsp: int, name: str) -> Tensor:
    _check_conv(x, weight, nsp, groups, name)
    unbatched = x.ndim == nsp + 1
    if unbatched:
        x = x.unsqueeze(0)
    kernel = tuple(weight.shape[2:])
    stride = _tuple(stride, nsp, "stride")
    dilation = _tuple(dilation, nsp, "dilation")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * nsp
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            lo = [t // 2 for t in total]
            x = pad_nodes(x, [(0, 0), (0, 0)] + [(a, t - a) for a, t in zip(lo, total)])
            padding = (0,) * nsp
        else:
            raise RuntimeError(f"Invalid padding string: '{padding}'")
    padding = _tuple(padding, nsp, "padding")
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    if ONE_OP and not unbatched and all(d == 1 for d in dilation) and x.dtype.kind == "f" and (
            bias is None or (isinstance(bias, Tensor) and bias.dtype is x.dtype and
                             tuple(bias.shape) == (weight.shape[0],))):
        # the nodes the tensor ops below build, recorded as one op
        node = _conv_nodes(x.node, weight.node, None if bias is None else bias.node, kernel,
                           stride, padding, groups, nsp)
        record(node)
        return Tensor._make(node)
    n, c = x.shape[0], x.shape[1]
    o = weight.shape[0]
    win = _windows(x, kernel, stride, padding, dilation)      # (N, C, *out, *k)
    out_sp = win.shape[2:2 + nsp]
    g, cg, og = groups, c // groups, o // groups
    kk = math.prod(kernel)
    L = math.prod(out_sp)
    # (N, g, cg*kk, L): the im2col matrix, stored once so the product runs as a GEMM. It is
    # stored window offset by window offset, each a run of output positions, so storing it
    # (and its gradient's col2im) reads the input along its rows
    perm = (0, 1, *range(2 + nsp, 2 + 2 * nsp), *range(2, 2 + nsp))
    cols = _contiguous(win.permute(perm)).reshape(n, g, cg * kk, L)
    # weights on the left: the product comes out (N, g, og, L), channels then positions as
    # the result's layout wants, and the GEMM's vectorized side is the long L, not og
    w = weight.reshape(g, og, cg * kk)                          # (g, og, cg*kk)
    out = w @ cols                                              # (N, g, og, L)
    out = out.reshape(n, o, *out_sp)
    if bias is not None:
        out = out + bias.reshape(1, o, *([1] * nsp))
    return out.squeeze(0) if unbatched else out


def _too_small(x_shape, kernel, dilation) -> RuntimeError:
    spans = " x ".join(str((k - 1) * d + 1) for k, d in zip(kernel, dilation))
    return RuntimeError(f"Calculated padded input size per channel: "
                        f"({' x '.join(str(s) for s in x_shape[2:])}). Kernel size: "
                        f"({spans}). Kernel size can't be greater than actual input size")


def _node(op: Op, src: Node, arg, shape) -> Node:
    return new_node(op, (src,), arg, tuple(shape), src.dtype)


def _conv_nodes(x: Node, w: Node, b: Node | None, kernel, stride, padding, groups: int,
                nsp: int) -> Node:
    """_convnd's nodes for a batched input without dilation: pad, UNFOLD per spatial dim,
    the im2col buffer, the product with the weights, the bias."""
    if any(padding):
        pads = ((0, 0), (0, 0)) + tuple((p, p) for p in padding)
        x = _node(Op.PAD, x, (pads, x.dtype.np(0.0).item()),
                  [s + lo + hi for s, (lo, hi) in zip(x.shape, pads)])
    for i in range(nsp):
        dim, size, n = 2 + i, kernel[i], x.shape[2 + i]
        if size > n:
            raise _too_small(x.shape, kernel, (1,) * nsp)
        x = _node(Op.UNFOLD, x, (dim, size, stride[i]),
                  x.shape[:dim] + ((n - size) // stride[i] + 1,) + x.shape[dim + 1:] + (size,))
    n, c, o = x.shape[0], x.shape[1], w.shape[0]
    out_sp = x.shape[2:2 + nsp]
    g, cg, og = groups, c // groups, o // groups
    k = cg * math.prod(kernel)
    perm = (0, 1, *range(2 + nsp, 2 + 2 * nsp), *range(2, 2 + nsp))
    cols = _node(Op.PERMUTE, x, perm, [x.shape[p] for p in perm])
    cols = _node(Op.RESHAPE, _node(Op.CONTIGUOUS, cols, None, cols.shape),
                 (n, g, k, math.prod(out_sp)), (n, g, k, math.prod(out_sp)))
    w3 = _node(Op.RESHAPE, w, (g, og, k), (g, og, k))
    out = _matmul_node(_node(Op.RESHAPE, w3, (1, g, og, k), (1, g, og, k)), cols, (n, g),
                       x.dtype)
    out = _node(Op.RESHAPE, out, (n, o, *out_sp), (n, o, *out_sp))
    if b is not None:
        b = _node(Op.RESHAPE, b, (1, o) + (1,) * nsp, (1, o) + (1,) * nsp)
        out = new_node(Op.ADD, (out, expand_node(b, out.shape)), None, out.shape, out.dtype)
    return out


def conv1d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation), as torch.nn.functional.conv1d."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation), as torch.nn.functional.conv2d."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def _conv_transposend(input: Tensor, weight: Tensor, bias, stride, padding, output_padding,
                      groups: int, dilation, nsp: int, name: str) -> Tensor:
    """The gradient of conv with respect to its input: spread the input by `stride` (zeros
    between), pad by dilation * (k - 1) - padding, and convolve with the flipped, transposed
    kernel."""
    if input.ndim not in (nsp + 1, nsp + 2):
        raise RuntimeError(f"Expected {nsp + 1}D (unbatched) or {nsp + 2}D (batched) input to "
                           f"{name}, but got input of size: {list(input.shape)}")
    if weight.ndim != nsp + 2:
        raise RuntimeError(f"weight should have {nsp + 2} dimensions, got {weight.ndim}")
    unbatched = input.ndim == nsp + 1
    x = input.unsqueeze(0) if unbatched else input
    stride, padding = _tuple(stride, nsp, "stride"), _tuple(padding, nsp, "padding")
    output_padding = _tuple(output_padding, nsp, "output_padding")
    dilation = _tuple(dilation, nsp, "dilation")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        lift = (lambda t, one: t) if nsp == 2 else (lambda t, one: (one, *t))   # 1d runs as 2d
        got = " ".join(f"{what}_{h}: {v}" for what, vals in
                       (("output_padding", lift(output_padding, 0)), ("stride", lift(stride, 1)),
                        ("dilation", lift(dilation, 1))) for h, v in zip(("height", "width"),
                                                                         vals))
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, but "
                           f"got {got}")
    n, c, sp = x.shape[0], x.shape[1], x.shape[2:]
    cin, og, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
    if c != cin:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {cin} channels, but got {c} channels "
                           "instead")
    if cin % groups:
        raise RuntimeError("in_channels must be divisible by groups")
    xs = x
    if any(s != 1 for s in stride):   # spread: (size - 1) * s + 1, zeros between
        from ..frontend.views import _unslice
        spread = tuple((sz - 1) * s + 1 for sz, s in zip(sp, stride))
        node = _unslice(x.node, ((0, 1), (0, 1), *((0, s) for s in stride)), (n, c, *spread),
                        x.dtype.np(0).item())
        xs = make(Op.CONTIGUOUS, (node,), None, node.shape, x.dtype)
    pads = [(0, 0), (0, 0)] + [(d * (k - 1) - p, d * (k - 1) - p + op) for k, d, p, op in
                               zip(kernel, dilation, padding, output_padding)]
    xs = pad_nodes(xs, [(max(lo, 0), max(hi, 0)) for lo, hi in pads])
    for dim, (lo, hi) in enumerate(pads):   # padding beyond d * (k - 1) crops
        if lo < 0 or hi < 0:
            xs = xs.narrow(dim, max(-lo, 0), xs.shape[dim] - max(-lo, 0) - max(-hi, 0))
    # weight (Cin, Cout/g, *k) -> (Cout, Cin/g, *k), flipped
    g = groups
    wt = weight.reshape(g, cin // g, og, *kernel).transpose(1, 2)
    wt = wt.reshape(g * og, cin // g, *kernel).flip(*range(2, 2 + nsp))
    out = _convnd(xs, wt, bias, 1, 0, dilation, groups, nsp, name)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-D transposed convolution, as torch.nn.functional.conv_transpose1d."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 1, "conv_transpose1d")


def conv_transpose2d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-D transposed convolution, as torch.nn.functional.conv_transpose2d."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 2, "conv_transpose2d")


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale=None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(q k^T * scale + mask) v, as torch.nn.functional.scaled_dot_product_attention
    (a row whose every key is masked out gives zeros, as PyTorch's safe softmax)."""
    from ..frontend import creation
    L, S = query.shape[-2], key.shape[-2]
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk:
            raise RuntimeError(f"Number of heads in key and value must divide the number of "
                               f"heads in query, got {hk} and {hq}")
        key, value = _repeat_heads(key, hq // hk), _repeat_heads(value, hq // hk)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    masked = False
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be "
                               "set when is_causal=True")
        causal = creation.from_array(np.tril(np.ones((L, S), dtype=bool)),
                                     device=device_name(scores))
        scores = scores.masked_fill(~causal, -math.inf)
    if attn_mask is not None:
        if attn_mask.dtype.name == "bool":
            scores = scores.masked_fill(~attn_mask, -math.inf)
        else:
            scores = scores + attn_mask
        masked = True
    m = scores.amax(-1, keepdim=True)
    if masked:   # rows with every score -inf: exp(-inf - 0) = 0, and 0 / 1 = 0
        m = m.masked_fill(m == -math.inf, 0.0)
    e = (scores - m).exp()
    den = e.sum(-1, keepdim=True)
    if masked:
        den = den.masked_fill(den == 0, 1.0)
    p = e / den
    if dropout_p > 0.0:
        keep = creation.rand(p.shape, device=p.device) >= dropout_p
        p = p * keep.to(p.dtype) / (1.0 - dropout_p)
    return p @ value


def _repeat_heads(x: Tensor, n: int) -> Tensor:
    """(..., h, S, E) -> (..., h * n, S, E), each head repeated n times in a row."""
    *b, h, s, e = x.shape
    return x.unsqueeze(-3).expand(*b, h, n, s, e).reshape(*b, h * n, s, e)


_MODE_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3}


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None, recompute_scale_factor=None, antialias: bool = False):
    """Resize the spatial dims as torch.nn.functional.interpolate: modes nearest (PyTorch's
    floor rule), nearest-exact, linear, bilinear, trilinear, area."""
    nsp = input.ndim - 2
    if mode in ("nearest", "area", "nearest-exact") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if nsp not in (1, 2, 3):
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported "
                                  f"(got {input.ndim}D) for the modes: nearest | linear | "
                                  f"bilinear | bicubic | trilinear | lanczos | area | "
                                  f"nearest-exact (got {mode})")
    if mode in _MODE_DIMS and _MODE_DIMS[mode] != nsp:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs "
                                  f"{_MODE_DIMS[mode] + 2}D input")
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.ndim == 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos "
                         "modes and requires a 4-D tensor as input")
    in_sp = input.shape[2:]
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if isinstance(size, (list, tuple)) and len(size) != nsp:
            raise ValueError(f"Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(in_sp)} and output size of {list(size)}. Please provide "
                             f"input tensor in (N, C, d1, d2, ...,dK) format and output size "
                             f"in (o1, o2, ...,oK) format.")
        out_sp = _tuple(size, nsp, "size")
        scales = [None] * nsp
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)) and len(scale_factor) != nsp:
            raise ValueError(f"Input and scale_factor must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(in_sp)} and scale_factor of shape {list(scale_factor)}. "
                             f"Please provide input tensor in (N, C, d1, d2, ...,dK) format "
                             f"and scale_factor in (s1, s2, ...,sK) format.")
        sf = scale_factor if isinstance(scale_factor, (tuple, list)) else [scale_factor] * nsp
        out_sp = tuple(int(math.floor(float(s) * f)) for s, f in zip(in_sp, sf))
        scales = [None if recompute_scale_factor else float(f) for f in sf]
    else:
        raise ValueError("either size or scale_factor should be defined")
    x = input
    if mode in ("nearest", "nearest-exact"):
        for i in range(nsp):
            idx = nearest_indices(in_sp[i], out_sp[i], scales[i], mode == "nearest-exact")
            x = x.index_select(2 + i, Tensor._make(_buffer(idx, device_name(x))))
        return x
    if mode == "area":
        from .functional_pool import adaptive_avg_pool1d, adaptive_avg_pool2d
        if nsp == 1:
            return adaptive_avg_pool1d(x, out_sp[0])
        if nsp == 2:
            return adaptive_avg_pool2d(x, out_sp)
        raise NotImplementedError("interpolate mode 'area' supports 3D and 4D input")
    if mode in _MODE_DIMS:
        if not x.dtype.is_floating_point:
            raise RuntimeError(f'"upsample_{mode}{nsp}d_out_frame" not implemented for '
                               f"'{dt.scalar_type_name(x.dtype)}'")
        from ..frontend.creation import from_array
        for i in range(nsp):
            w = linear_weights(in_sp[i], out_sp[i], align_corners, scales[i], antialias)
            mat = from_array(dt.astype(w, x.dtype), device=device_name(x))
            x = (x.movedim(2 + i, -1) @ mat.t()).movedim(-1, 2 + i)
        return x
    raise NotImplementedError(f"interpolate mode '{mode}' is not supported")


def _buffer(arr: np.ndarray, device: str) -> Node:
    from ..runtime import memory
    return memory.buffer_node(arr, device=device)


def nearest_indices(n_in: int, n_out: int, scale=None, exact: bool = False) -> np.ndarray:
    """The input index of each output pixel along one dim for interpolate's nearest
    (floor((o + 0.5 * exact) * scale), computed in float32 as PyTorch does)."""
    sc = np.float32(1.0 / scale) if scale else np.float32(n_in) / n_out
    src = np.floor((np.arange(n_out, dtype=np.float32) + np.float32(0.5 if exact else 0.0)) * sc)
    return np.minimum(src.astype(np.int64), n_in - 1)


def _pixel_scale(n_in: int, n_out: int, align_corners, scale) -> float:
    """Input pixels per output pixel, as PyTorch's area_pixel_compute_scale."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale if scale else n_in / n_out


def linear_weights(n_in: int, n_out: int, align_corners=None, scale=None,
                   antialias: bool = False) -> np.ndarray:
    """The (n_out, n_in) float64 matrix of linear interpolation weights along one dim, as
    torch.nn.functional.interpolate computes them (`scale`: the user's scale factor or None).

    With antialias, each output pixel averages its input pixels under a triangle filter
    stretched over the downscaling ratio (PyTorch's and PIL's antialiased bilinear); when
    upscaling it equals plain linear interpolation."""
    m = np.zeros((n_out, n_in), dtype=np.float64)
    r = _pixel_scale(n_in, n_out, align_corners, scale)
    if antialias:
        support = max(r, 1.0)     # the triangle's half-width, in input pixels
        inv = 1.0 / support
        for o in range(n_out):
            center = r * (o + 0.5)
            lo = max(int(center - support + 0.5), 0)
            hi = min(int(center + support + 0.5), n_in)
            w = np.maximum(0.0, 1.0 - np.abs((np.arange(lo, hi) - center + 0.5) * inv))
            m[o, lo:hi] = w / w.sum() if w.sum() else w
        return m
    for o in range(n_out):
        src = o * r if align_corners else max((o + 0.5) * r - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        frac = src - i0
        m[o, i0] += 1.0 - frac
        m[o, i1] += frac
    return m
