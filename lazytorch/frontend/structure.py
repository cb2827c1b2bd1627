"""Functions that build or take apart a tensor's structure from the movement and elementwise
ops: diagonals (diag, diagonal, diag_embed, trace), index grids (meshgrid, tril_indices,
cartesian_prod, combinations), block and Kronecker products, rotations and flips, tiling,
splitting (tensor_split, hsplit, ...), repeat_interleave, cross products, Vandermonde matrices.

`diagonal` is a view (written through, as PyTorch's); the others make new tensors. Each is
differentiable through the ops it is made of.
"""
from __future__ import annotations

import itertools
import warnings
from typing import Sequence

import numpy as np

from ..ir import dtypes as dt
from ..ir.ops import Op
from . import elementwise as ew
from . import views as vw
from .tensor import Tensor, _canon_dim, broadcast_shapes, check_device, device_name

__all__ = ["clone", "diag", "diagflat", "diag_embed", "diagonal", "trace", "tril_indices",
           "triu_indices", "meshgrid", "cartesian_prod", "combinations", "block_diag", "kron",
           "rot90", "fliplr", "flipud", "tile", "ravel", "broadcast_tensors", "tensor_split",
           "hsplit", "vsplit", "dsplit", "repeat_interleave", "cross", "vander",
           "unravel_index", "swapdims", "moveaxis"]
METHODS = ["diag", "diagflat", "diag_embed", "diagonal", "trace", "kron", "rot90", "fliplr",
           "flipud", "tile", "ravel", "tensor_split", "hsplit", "vsplit", "dsplit",
           "repeat_interleave", "cross"]


def _check(x, name: str, arg: str = "input", pos: int = 1) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")


def _longs(a, device: str) -> Tensor:
    """`a` as an int64 tensor on `device`."""
    from .creation import from_array
    return from_array(np.ascontiguousarray(np.asarray(a, dtype=np.int64)), dt.int64, device)


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    """A copy of input (later in-place writes to either are not seen by the other)."""
    _check(input, "clone")
    return input.clone(memory_format=memory_format)


def swapdims(input: Tensor, dim0: int, dim1: int) -> Tensor:
    _check(input, "swapdims")
    return input.transpose(dim0, dim1)


def moveaxis(input: Tensor, source, destination) -> Tensor:
    _check(input, "moveaxis")
    return input.movedim(source, destination)


# ------------------------------------------------------------------------------ diagonals
def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The elements input[..., i, i + offset] over dims dim1 and dim2 (removed; the diagonal is
    the last dim). A view: writes to it reach input."""
    _check(input, "diagonal")
    d1, d2 = _canon_dim(dim1, input.ndim), _canon_dim(dim2, input.ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rest = [i for i in range(input.ndim) if i not in (d1, d2)]
    lead = tuple(input.shape[i] for i in rest)
    rows, cols = input.shape[d1], input.shape[d2]
    length = max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))
    start = (offset if offset >= 0 else -offset * cols) if length else 0
    t = input
    perm = tuple(rest + [d1, d2])
    if perm != tuple(range(input.ndim)):
        t = vw.make_view(t, Op.PERMUTE, perm, lead + (rows, cols))
    t = vw.make_view(t, Op.RESHAPE, lead + (rows * cols,), lead + (rows * cols,))
    arg = tuple((0, 1) for _ in lead) + ((start, cols + 1),)
    return vw.make_view(t, Op.SLICE, arg, lead + (length,))


def _iota_diff(n: int, m: int, device: str) -> Tensor:
    """An (n, m) int64 tensor of column - row, on `device`."""
    return _longs(np.arange(m)[None, :] - np.arange(n)[:, None], device)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices (over dims dim1, dim2 of the result) with input's last dim on their
    `offset` diagonal, zero elsewhere."""
    _check(input, "diag_embed")
    nd = input.ndim + 1
    d1, d2 = _canon_dim(dim1, nd), _canon_dim(dim2, nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    n = input.shape[-1] if input.ndim else 1
    m = n + abs(offset)
    x = input.reshape(*input.shape[:-1], n) if input.ndim else input.reshape(1)
    # the value at (i, j) is x[i] when offset >= 0 (row i holds it), else x[j]
    pad = [0, m - n]
    from ..nn.functional import pad as _pad
    xp = _pad(x, pad)
    vals = xp.unsqueeze(-1) if offset >= 0 else xp.unsqueeze(-2)
    mask = _iota_diff(m, m, device_name(input)) == offset
    out = ew.where_nodes(mask, vals, ew._scalar_tensor(0, x).to(x.dtype))
    # out has the matrix in its last two dims: move them to d1, d2
    lead = list(range(nd - 2))
    order = [None] * nd
    order[d1], order[d2] = nd - 2, nd - 1
    it = iter(lead)
    order = [o if o is not None else next(it) for o in order]
    return out.permute(*order)


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input: the square matrix with it on the `diagonal`-th diagonal. A 2-D input: that
    diagonal, as a 1-D tensor."""
    _check(input, "diag")
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim == 2:
        return globals()["diagonal"](input, diagonal, 0, 1).clone()
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """The flattened input on the `offset`-th diagonal of a square matrix."""
    _check(input, "diagflat")
    return diag_embed(input.reshape(-1), offset, 0, 1)


def trace(input: Tensor) -> Tensor:
    """The sum of the main diagonal of a matrix."""
    _check(input, "trace")
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    if input.dtype == dt.bool_:
        raise NotImplementedError("\"trace\" not implemented for 'Bool'")
    d = diagonal(input)
    return d.sum() if input.dtype.is_floating_point else d.sum(dtype=dt.int64)


# ------------------------------------------------------------------------------ index grids
def _triangle_indices(row: int, col: int, offset: int, lower: bool, dtype, device,
                      name: str):
    from .creation import _dtype
    d = _dtype(dtype, dt.int64)
    if d not in (dt.int32, dt.int64):
        raise RuntimeError(f'"{name}" not implemented for \'{d.name.capitalize()}\'')
    if row < 0 or col < 0:
        raise RuntimeError(f"row must be non-negative, got{row}" if row < 0 else
                           f"col must be non-negative, got{col}")
    fn = np.tril_indices if lower else np.triu_indices
    r, c = fn(row, offset, col)
    from .creation import from_array
    return from_array(np.ascontiguousarray(np.stack([r, c]).astype(d.np)), d,
                      check_device(device))


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None,
                 layout=None) -> Tensor:
    """The (2, N) coordinates of the lower triangle of a row x col matrix, row by row."""
    return _triangle_indices(row, col, offset, True, dtype, device, "tril_indices")


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None,
                 layout=None) -> Tensor:
    """The (2, N) coordinates of the upper triangle of a row x col matrix, row by row."""
    return _triangle_indices(row, col, offset, False, dtype, device, "triu_indices")


def _tensor_args(tensors, name: str) -> list[Tensor]:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): argument 'tensors' must be tuple of Tensors, but found "
                            f"element of type {type(t).__name__} at pos {i}")
    return list(tensors)


_MESHGRID_WARNED = [False]


def meshgrid(*tensors, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids: output k holds tensors[k] expanded along every other input's dim
    ("ij" indexing, the default; "xy" swaps the first two dims)."""
    ts = _tensor_args(tensors, "meshgrid")
    if indexing is None:
        if not _MESHGRID_WARNED[0]:
            _MESHGRID_WARNED[0] = True
            warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass "
                          "the indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but "
                           f"received: {indexing}")
    if not ts:
        raise RuntimeError("torch.meshgrid expects a non-empty TensorList")
    for t in ts:
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list "
                               f"but got: {t}")
        if t.dtype != ts[0].dtype:
            raise RuntimeError("torch.meshgrid: Expected all tensors in the tensor list to have "
                               "the same dtype.")
    flat = [t.reshape(-1) for t in ts]
    swap = indexing == "xy" and len(flat) >= 2
    if swap:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.shape[0] for t in flat)
    out = []
    for k, t in enumerate(flat):
        view = [1] * len(flat)
        view[k] = shape[k]
        out.append(t.reshape(*view).expand(*shape))
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def cartesian_prod(*tensors: Tensor) -> Tensor:
    """Every combination of one element from each 1-D tensor, as rows (N, len(tensors))."""
    ts = _tensor_args(tensors, "cartesian_prod")
    for t in ts:
        if t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(ts) == 1:
        return ts[0]
    from .joining import stack
    return stack([g.reshape(-1) for g in meshgrid(*ts, indexing="ij")], 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The length-r combinations of a 1-D tensor's elements, as rows (itertools' order)."""
    _check(input, "combinations")
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return input.new_empty((0,))
    pick = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    idx = np.array(list(pick(range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    return input[_longs(idx, device_name(input))]


# ------------------------------------------------------------------------------ products
def block_diag(*tensors: Tensor) -> Tensor:
    """The inputs (0-, 1- or 2-D, read as matrices) along the diagonal of one matrix."""
    ts = _tensor_args(tensors, "block_diag")
    mats = []
    for i, t in enumerate(ts):
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer "
                               f"dimensions. Input {i} has {t.ndim} dimensions")
        mats.append(t.reshape(1, 1) if t.ndim == 0 else t.reshape(1, -1) if t.ndim == 1
                    else t)
    d = dt.result_type(*mats) if mats else dt.get_default_dtype()
    width = sum(m.shape[1] for m in mats)
    from .creation import zeros
    if not mats:
        return zeros(1, 0, dtype=d)
    from ..nn.functional import pad
    from .joining import cat
    rows, left = [], 0
    for m in mats:
        c = m.shape[1]
        rows.append(pad(m.to(d), [left, width - left - c]))
        left += c
    return cat(rows, 0)


def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: blocks input[i] * other, tiled by input's shape."""
    _check(input, "kron")
    _check(other, "kron", "other", 2)
    nd = max(input.ndim, other.ndim)
    a = input.reshape((1,) * (nd - input.ndim) + tuple(input.shape))
    b = other.reshape((1,) * (nd - other.ndim) + tuple(other.shape))
    ai = [x for s in a.shape for x in (s, 1)]
    bi = [x for s in b.shape for x in (1, s)]
    prod = a.reshape(*ai) * b.reshape(*bi)
    return prod.reshape(*(sa * sb for sa, sb in zip(a.shape, b.shape)))


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """The 3-D cross product along dim (inputs broadcast; dim=None: the first dim of size 3)."""
    _check(input, "cross")
    _check(other, "cross", "other", 2)
    if input.ndim != other.ndim:
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    shape = broadcast_shapes(input.shape, other.shape)
    if dim is None:
        dim = next((i for i, s in enumerate(shape) if s == 3), None)
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\n"
                      "Please either pass the dim explicitly or simply use torch.linalg.cross."
                      "\nThe default value of dim will change to agree with that of "
                      "linalg.cross in a future release.", UserWarning, stacklevel=2)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    return _cross(input, other, dim, shape)


def _cross(input: Tensor, other: Tensor, dim: int, shape) -> Tensor:
    d = _canon_dim(dim, len(shape))
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{input.shape[d]} and {other.shape[d]}")
    rt = dt.result_type(input, other)
    a, b = input.to(rt).expand(*shape), other.to(rt).expand(*shape)
    a0, a1, a2 = a.unbind(d)
    b0, b1, b2 = b.unbind(d)
    from .joining import stack
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """Columns of powers of the 1-D x: x^(N-1), ..., x^0 (or increasing)."""
    _check(x, "vander", "x")
    if x.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else int(N)
    if n < 0:
        raise RuntimeError("N must be non-negative.")
    d = x.dtype if x.dtype.is_floating_point or x.dtype == dt.int64 else \
        dt.promote(x.dtype, dt.int64)
    if n == 0:
        return x.new_empty((x.shape[0], 0)).to(d)
    # cumulative products, as PyTorch (exact for integers, no pow of negative bases)
    base = x.to(d).unsqueeze(1).expand(x.shape[0], max(n - 1, 0))
    from .creation import ones
    from .joining import cat
    first = ones(x.shape[0], 1, dtype=d, device=x.device)
    cols = cat([first, base.cumprod(1)], 1) if n > 1 else first
    return cols if increasing else cols.flip(1)


# ------------------------------------------------------------------------------ rearranging
def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """input rotated by 90 degrees k times, from dims[0] towards dims[1]."""
    _check(input, "rot90")
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = _canon_dim(dims[0], input.ndim), _canon_dim(dims[1], input.ndim)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and "
                           f"dim1 = {d1}")
    k %= 4
    if k == 1:
        return input.flip(d1).transpose(d0, d1)
    if k == 2:
        return input.flip(d0, d1)
    if k == 3:
        return input.flip(d0).transpose(d0, d1)
    return input.clone()


def fliplr(input: Tensor) -> Tensor:
    _check(input, "fliplr")
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return input.flip(1)


def flipud(input: Tensor) -> Tensor:
    _check(input, "flipud")
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return input.flip(0)


def tile(input: Tensor, dims) -> Tensor:
    """input repeated dims[i] times along each dim (missing leading dims count as 1)."""
    _check(input, "tile")
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return input.repeat(*dims)


def ravel(input: Tensor) -> Tensor:
    _check(input, "ravel")
    return input.reshape(-1)


def broadcast_tensors(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The inputs expanded to their common broadcast shape (PyTorch's message for two that
    do not broadcast: the shape so far as tensor a, the next input as tensor b)."""
    ts = _tensor_args(tensors, "broadcast_tensors")
    shape: tuple[int, ...] = ()
    for t in ts:
        shape = ew.broadcast_pair(shape, tuple(t.shape))
    return tuple(t.expand(*shape) for t in ts)


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """Views of input split along dim: into n near-equal parts (an int n: the first size % n
    parts one longer), or at the given indices."""
    _check(input, "tensor_split")
    if input.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a "
                           "tensor with 0 dims")
    d = _canon_dim(dim, input.ndim)
    size = input.shape[d]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios.dtype != dt.int64 or ios.ndim > 1:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a "
                               "zero-dimensional or one-dimensional tensor, but got a tensor "
                               f"with {ios.ndim} dims")
        ios = int(ios.item()) if ios.ndim == 0 else [int(v) for v in ios.tolist()]
    if isinstance(ios, int):
        if ios <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {ios}")
        q, r = divmod(size, ios)
        bounds = list(itertools.accumulate([q + 1] * r + [q] * (ios - r), initial=0))
    else:
        bounds = [0] + [min(max(int(i) + size if int(i) < 0 else int(i), 0), size)
                        for i in ios] + [size]
    return tuple(vw.slice_dim(input, d, a, max(a, b)) for a, b in zip(bounds, bounds[1:]))


def _split_by(input: Tensor, ios, dim: int, name: str, least: int) -> tuple[Tensor, ...]:
    _check(input, name)
    if input.ndim < least:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {least} dimension, "
                           f"but got a tensor with {input.ndim} dimensions!")
    if isinstance(ios, int):
        size = input.shape[dim]
        if ios == 0 or size % ios:
            raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but "
                               f"the size of the dimension {size} is not divisible by the "
                               f"split_size {ios}!")
    return tensor_split(input, ios, dim)


def hsplit(input: Tensor, indices_or_sections) -> tuple[Tensor, ...]:
    """Split along dim 1 (dim 0 for a 1-D input)."""
    return _split_by(input, indices_or_sections, 1 if input.ndim > 1 else 0, "hsplit", 1)


def vsplit(input: Tensor, indices_or_sections) -> tuple[Tensor, ...]:
    return _split_by(input, indices_or_sections, 0, "vsplit", 2)


def dsplit(input: Tensor, indices_or_sections) -> tuple[Tensor, ...]:
    return _split_by(input, indices_or_sections, 2, "dsplit", 3)


def repeat_interleave(input: Tensor, repeats=None, dim: int | None = None, *,
                      output_size: int | None = None) -> Tensor:
    """Each element (or slice along dim) repeated `repeats` times in place (repeats: an int,
    or a tensor with one count per element). torch.repeat_interleave(repeats) alone: the
    indices 0, 1, ... each repeated as often as repeats says."""
    _check(input, "repeat_interleave")
    if repeats is None:  # the one-argument form: input holds the counts
        counts = np.asarray(input._array()).astype(np.int64)
        if input.ndim != 1:
            raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
        return _longs(np.repeat(np.arange(len(counts)), counts), device_name(input))
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else _canon_dim(dim, input.ndim)
    if x.ndim == 0:
        x = x.reshape(1)
    n = x.shape[d]
    if isinstance(repeats, Tensor) and repeats.numel() == 1 and repeats.ndim <= 1:
        repeats = int(repeats.item())
    if isinstance(repeats, int):
        if repeats < 0:
            raise RuntimeError("repeats can not be negative")
        shape = list(x.shape)
        y = x.unsqueeze(d + 1)
        y = y.expand(*shape[:d + 1], repeats, *shape[d + 1:])
        return y.reshape(*shape[:d], n * repeats, *shape[d + 1:])
    counts = np.asarray(repeats._array() if isinstance(repeats, Tensor) else repeats,
                        dtype=np.int64).reshape(-1)
    if counts.shape[0] != n:
        raise RuntimeError("repeats must have the same size as input along dim")
    if (counts < 0).any():
        raise RuntimeError("repeats can not be negative")
    idx = _longs(np.repeat(np.arange(n), counts), device_name(x))
    return x.index_select(d, idx)


def unravel_index(indices: Tensor, shape) -> tuple[Tensor, ...]:
    """The coordinates in `shape` of flat (row-major) indices, one tensor per dim."""
    _check(indices, "unravel_index", "indices")
    if indices.dtype.is_floating_point or indices.dtype == dt.bool_:
        raise TypeError("expected 'indices' to be integer dtype, but got "
                        f"{indices.dtype}")
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError("'shape' cannot have negative values, but got " + str(shape))
    # row-major coordinates, last dim first; every dim wraps (as PyTorch's)
    rem, out = indices.to(dt.int64), []
    for size in reversed(shape):
        out.append(rem % size if size else rem * 0)
        rem = rem // size if size else rem
    out.reverse()
    return tuple(out)

