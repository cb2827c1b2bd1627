"""Pooling: max (argmax + gather over the windows, so the gradient goes to the first max, as
PyTorch's), average (window sums over counts) and adaptive average (PyTorch's floor/ceil
windows)."""
from __future__ import annotations

import math

import numpy as np

from ..frontend.elementwise import make
from ..frontend.tensor import Tensor, device_name
from ..ir import dtypes as dt
from ..ir.graph import Node, new_node
from ..ir.ops import Op
from ..ir.sites import record
from .functional_conv import _tuple, _windows, pad_nodes

# max pooling over tiling windows is recorded as one op (_max_tiles_node); tests switch this
# off to compare with the tensor-op path
ONE_OP = True


def _pool_args(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool, nsp: int,
               name: str):
    """Checked (kernel, stride, padding, dilation) tuples, with PyTorch's messages."""
    if x.ndim not in (nsp + 1, nsp + 2):
        raise RuntimeError(f"{name}: Expected {nsp + 1}D or {nsp + 2}D (batch mode) tensor for "
                           f"input, but got: {list(x.shape)}")
    k = _tuple(kernel_size, nsp, "kernel_size")
    s = k if stride is None or stride == () or stride == [] else _tuple(stride, nsp, "stride")
    p = _tuple(padding, nsp, "padding")
    d = _tuple(dilation, nsp, "dilation")
    if any(kk <= 0 for kk in k):
        raise RuntimeError("kernel size should be greater than zero")
    if any(ss <= 0 for ss in s):
        raise RuntimeError("stride should not be zero")
    if any(dd <= 0 for dd in d):
        raise RuntimeError("dilation should be greater than zero")
    for kk, pp, dd in zip(k, p, d):
        if pp > kk // 2 and name == "max_pool1d":
            raise RuntimeError(f"max_pool1d() padding should be at most half of kernel "
                               f"size, but got padding={pp} and kernel_size={kk}")
        if pp > ((kk - 1) * dd + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={pp}, kernel_size={kk} and dilation={dd}")
    if any(pp > kk // 2 for kk, pp in zip(k, p)):
        raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, but got "
                           f"padW = {p[-1]}, padH = {p[0]}, kW = {k[-1]}, kH = {k[0]}")
    sizes = x.shape[-nsp:]
    outs = [_pool_out(n, kk, ss, pp, dd, ceil_mode) for n, kk, ss, pp, dd in
            zip(sizes, k, s, p, d)]
    if any(o <= 0 for o in outs):
        c = x.shape[-nsp - 1]
        raise RuntimeError(f"Given input size: ({'x'.join(str(v) for v in (c, *sizes))}). "
                           f"Calculated output size: ({'x'.join(str(v) for v in (c, *outs))}). "
                           "Output size is too small")
    return k, s, p, d


def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size (a ceil_mode window must start inside the input or the
    left padding)."""
    num = n + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _ceil_pad(x: Tensor, k, s, p, d, ceil_mode: bool) -> list[int]:
    """Extra right padding so that the ceil_mode windows exist."""
    return [(_pool_out(x.shape[2 + i], kk, ss, pp, dd, ceil_mode) -
             _pool_out(x.shape[2 + i], kk, ss, pp, dd, False)) * ss
            for i, (kk, ss, pp, dd) in enumerate(zip(k, s, p, d))]


def _max_pool(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
              nsp: int):
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode, nsp,
                            f"max_pool{nsp}d")
    unbatched = x.ndim == nsp + 1
    if unbatched:
        x = x.unsqueeze(0)
    extra = _ceil_pad(x, k, s, p, d, ceil_mode)
    lowest = -math.inf if x.dtype.is_floating_point else int(np.iinfo(x.dtype.np).min)
    tiles = tuple(s) == tuple(k) and not any(p) and all(dd == 1 for dd in d) and not any(extra)
    if tiles and ONE_OP and not unbatched and not return_indices:
        # the nodes the tensor ops below build, recorded as one op
        node = _max_tiles_node(x.node, tuple(k))
        record(node)
        return Tensor._make(node)
    if tiles:
        win = _tiles(x, k)
    else:
        xp = pad_nodes(x, [(0, 0), (0, 0)] + [(pp, pp + e) for pp, e in zip(p, extra)],
                       lowest)
        win = _windows(xp, k, s, (0,) * nsp, d)                 # (N, C, *out, *k)
    flat = win.reshape(*win.shape[:2 + nsp], math.prod(k))
    idx = flat.argmax(-1, keepdim=True)
    # argmax indices are in range by construction: gather without the eager bounds check,
    # which would have to compute them on the spot
    values = make(Op.GATHER, (flat.node, idx.node), flat.ndim - 1, idx.shape,
                  flat.dtype).squeeze(-1)
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
        grid = Tensor._make(_arange_node(out_sp[i], i, nsp, x.node.device)) * s[i]
        ci = grid + coords[i] * d[i] - p[i]
        flat_index = ci if flat_index is None else flat_index * x.shape[2 + i] + ci
    if unbatched:
        flat_index = flat_index.squeeze(0)
    return values, flat_index


def _tiles(x: Tensor, k) -> Tensor:
    """(N, C, *spatial) -> (N, C, *out, *k) for windows that tile the input (stride = kernel,
    no padding or dilation): a slice, a reshape and a permute, so the windows are read and
    their gradients written with plain index arithmetic, no window view or padding."""
    nsp = len(k)
    out = [x.shape[2 + i] // kk for i, kk in enumerate(k)]
    if any(o * kk != x.shape[2 + i] for i, (o, kk) in enumerate(zip(out, k))):
        x = x[(slice(None), slice(None), *(slice(0, o * kk) for o, kk in zip(out, k)))]
    split = x.reshape(x.shape[0], x.shape[1], *(v for o, kk in zip(out, k) for v in (o, kk)))
    return split.permute(0, 1, *(2 + 2 * i for i in range(nsp)),
                         *(3 + 2 * i for i in range(nsp)))


def _max_tiles_node(x: Node, k: tuple[int, ...]) -> Node:
    """_max_pool's nodes for windows that tile a batched input (see _tiles): the windows as
    a last dim, the argmax in each, the value gathered there."""
    nsp, d = len(k), x.dtype
    out = [x.shape[2 + i] // kk for i, kk in enumerate(k)]
    if any(o * kk != x.shape[2 + i] for i, (o, kk) in enumerate(zip(out, k))):
        shape = x.shape[:2] + tuple(o * kk for o, kk in zip(out, k))
        x = new_node(Op.SLICE, (x,), ((0, 1),) * len(shape), shape, d)
    split = x.shape[:2] + tuple(v for o, kk in zip(out, k) for v in (o, kk))
    x = new_node(Op.RESHAPE, (x,), split, split, d)
    perm = (0, 1, *(2 + 2 * i for i in range(nsp)), *(3 + 2 * i for i in range(nsp)))
    x = new_node(Op.PERMUTE, (x,), perm, tuple(x.shape[i] for i in perm), d)
    flat = x.shape[:2 + nsp] + (math.prod(k),)
    x = new_node(Op.RESHAPE, (x,), flat, flat, d)
    idx = new_node(Op.ARGMAX, (x,), (len(flat) - 1,), flat[:-1] + (1,), dt.int64)
    values = new_node(Op.GATHER, (x, idx), len(flat) - 1, idx.shape, d)
    return new_node(Op.RESHAPE, (values,), flat[:-1], flat[:-1], d)


def _arange_node(n: int, axis: int, nsp: int, device: str | None) -> Node:
    """arange(n) (int64) along spatial axis `axis` of an (N, C, spatial...) shape, on
    `device` (None: the CPU)."""
    from ..runtime import memory
    shape = [1] * (nsp + 2)
    shape[2 + axis] = n
    return memory.buffer_node(np.arange(n, dtype=np.int64).reshape(shape),
                              device=device or "cpu")


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              nsp):
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, 1, ceil_mode, nsp,
                            f"avg_pool{nsp}d")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    unbatched = x.ndim == nsp + 1
    if unbatched:
        x = x.unsqueeze(0)
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
        # count the elements each window covers: the ceil_mode overhang never counts,
        # the padding counts when count_include_pad
        if count_include_pad:
            ones = _ones_node([n + 2 * pp for n, pp in zip(x.shape[2:], p)], x.dtype)
            pads = [(0, e) for e in extra]
        else:
            ones = _ones_node(x.shape[2:], x.dtype)
            pads = [(pp, pp + e) for pp, e in zip(p, extra)]
        cnt = pad_nodes(Tensor._make(ones), pads, 0.0)
        cnt = cnt.reshape(1, 1, *cnt.shape)
        cw = _windows(cnt, k, s, (0,) * nsp, d).sum(axes)
        out = total / cw
    return out.squeeze(0) if unbatched else out


def _ones_node(shape, dtype) -> Node:
    from ..ir.graph import const
    return const(1, dtype, tuple(shape))


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2)


def _adaptive_matrix(n_in: int, n_out: int, dtype, device: str) -> Tensor:
    """(n_out, n_in) averaging matrix of PyTorch's adaptive windows
    [floor(i*n_in/n_out), ceil((i+1)*n_in/n_out)), on `device`."""
    m = np.zeros((n_out, n_in), dtype=dtype.np)
    for i in range(n_out):
        a = (i * n_in) // n_out
        b = -(-((i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    from ..frontend.creation import from_array
    return from_array(m, device=device)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if x.ndim != 4:
        raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got "
                           f"{list(input.shape)}")
    size = (output_size,) * 2 if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2:
        raise ValueError(f"output_size must be an int or a tuple of 2 ints, got {output_size}")
    oh, ow = (n if o is None else int(o) for o, n in zip(size, x.shape[2:]))
    h, w = x.shape[2:]
    if h % oh == 0 and w % ow == 0:
        out = avg_pool2d(x, (h // oh, w // ow))
    else:
        ph = _adaptive_matrix(h, oh, x.dtype, device_name(x))
        pw = _adaptive_matrix(w, ow, x.dtype, device_name(x))
        out = ph @ x @ pw.t()
    return out.squeeze(0) if unbatched else out


def adaptive_avg_pool1d(input: Tensor, output_size: int) -> Tensor:
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, output_size)).squeeze(-2)


def _adaptive_windows(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, k) input positions of PyTorch's adaptive windows
    [floor(i*n_in/n_out), ceil((i+1)*n_in/n_out)), each padded to the longest window's k by
    repeating its last position (a repeat changes neither the max nor the first argmax)."""
    bounds = [((i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)) for i in range(n_out)]
    k = max(b - a for a, b in bounds)
    return np.array([[min(a + j, b - 1) for j in range(k)] for a, b in bounds], np.int64)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """The max of each of PyTorch's adaptive windows (and its flat index h * W + w); the
    gradient goes to that first maximum."""
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if x.ndim != 4:
        raise RuntimeError(f"adaptive_max_pool2d(): Expected 3D or 4D tensor, but got: "
                           f"{list(input.shape)}")
    size = (output_size,) * 2 if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2:
        raise RuntimeError("adaptive_max_pool2d(): internal error: output_size.size() must "
                           "be 2")
    n, c, h, w = x.shape
    oh, ow = (m if o is None else int(o) for o, m in zip(size, (h, w)))
    if h % oh == 0 and w % ow == 0:
        out = _max_pool(x, (h // oh, w // ow), None, 0, 1, False, return_indices, 2)
    else:
        rows, cols = _adaptive_windows(h, oh), _adaptive_windows(w, ow)
        # (oh, ow, kh * kw) flat positions, rows outer as PyTorch scans a window
        table = (rows[:, None, :, None] * w + cols[None, :, None, :]).reshape(oh, ow, -1)
        from ..frontend.creation import from_array
        table_t = from_array(table, device=device_name(x))
        flat = x.reshape(n, c, h * w).index_select(2, table_t.reshape(-1))
        flat = flat.reshape(n, c, oh, ow, table.shape[-1])
        idx = flat.argmax(-1, keepdim=True)
        values = make(Op.GATHER, (flat.node, idx.node), 4, idx.shape, flat.dtype).squeeze(-1)
        if return_indices:
            tab = table_t.reshape(1, 1, oh, ow, -1).expand(n, c, oh, ow, -1)
            where = make(Op.GATHER, (tab.node, idx.node), 4, idx.shape, dt.int64).squeeze(-1)
            out = (values, where)
        else:
            out = values
    if unbatched:
        return tuple(t.squeeze(0) for t in out) if return_indices else out.squeeze(0)
    return out


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """adaptive_max_pool2d over the last dim alone."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional "
                           "tensor for argument #1 'self' (while checking arguments for "
                           "adaptive_max_pool1d)")
    o = output_size[0] if isinstance(output_size, (tuple, list)) else output_size
    out = adaptive_max_pool2d(input.unsqueeze(-2), (1, o), return_indices)
    if return_indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    return adaptive_max_pool2d(input, output_size, True)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)
