"""gather/scatter, index_select, take, take_along_dim, index_fill/add/copy, masked_fill/select,
nonzero/argwhere: the functional forms of indexing (x[idx] itself is in indexing.py).

The index values are read at once (to check bounds, or for masks and nonzero to know the
result's shape); reads record one GATHER, writes one SCATTER (or go through indexing's _put).
"""
from __future__ import annotations

import math
from numbers import Number

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import Node
from ..ir.ops import Op
from . import elementwise as ew
from . import overflow
from . import views as vw
from .indexing import (
    TYPE_NAME,
    _check_index_dtype,
    _checked_values,
    _first_bad,
    _index_buffer,
    _put,
    _reshape,
    _slice,
    wrap,
)
from .tensor import Tensor, _canon_dim, _shape_str, broadcast_shapes, device_name, same_device

_CPP_NAME = dt.CPP_TYPE_NAMES


# ----------------------------------------------------------------------------- gather/scatter
def _as_1d(n: Node) -> Node:
    return _reshape(n, (1,)) if n.shape == () else n


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """out[i][j] = input[index[i][j]][j] (dim=0): values along `dim` picked by `index`."""
    _check_index_dtype(index, "gather(): Expected dtype int32/int64 for index")
    if max(input.ndim, 1) != max(index.ndim, 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    d = _canon_dim(dim, input.ndim)
    x, ishape = _as_1d(input.node), tuple(index.shape) or (1,)
    for j, (a, b) in enumerate(zip(ishape, x.shape)):
        if j != d and a > b:
            raise RuntimeError(f"Size does not match at dimension {j} expected index "
                               f"{_shape_str(index.shape)} to be no larger than self "
                               f"{_shape_str(input.shape)} apart from dimension {d}")
    _checked_values(index, x.shape[d], d)
    x = _slice(x, (0,) * len(ishape),
               tuple(x.shape[j] if j == d else a for j, a in enumerate(ishape)))
    g = Node(Op.GATHER, (x, _reshape(index.node, ishape)), d, ishape, input.dtype)
    return wrap(_reshape(g, index.shape))


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """numpy's take_along_axis: gather with broadcasting; dim=None reads the flattened
    input."""
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu" or \
            indices.dtype == dt.uint8:
        got = TYPE_NAME.get(getattr(indices, "dtype", None), type(indices).__name__)
        raise RuntimeError(f"torch.take_along_dim(): dtype of indices should be Long but got "
                           f"{got}")
    if dim is None:
        return take_along_dim(vw.reshape(input, -1), vw.reshape(indices, -1), 0)
    if input.ndim != indices.ndim:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same "
                           f"number of dimensions, but got {input.ndim} dimensions for input, "
                           f"and {indices.ndim} dimensions for indices")
    if input.ndim == 0:
        return take_along_dim(vw.reshape(input, 1), vw.reshape(indices, 1), 0).reshape(())
    d = _canon_dim(dim, input.ndim)
    n = input.shape[d]
    sizes = list(input.shape)
    sizes[d] = indices.shape[d]
    shape = broadcast_shapes(sizes, indices.shape)
    where = same_device(input, indices)
    vals = _checked_values(indices, n, d)
    idx = _index_buffer(np.broadcast_to(vals, shape), where)
    xshape = tuple(n if j == d else s for j, s in enumerate(shape))
    x = ew.expand_node(input.node, xshape)
    return wrap(Node(Op.GATHER, (x, idx), d, tuple(shape), input.dtype))


def _scatter(self: Tensor, dim: int, index: Tensor, src, reduce, name: str) -> Tensor:
    _check_index_dtype(index, f"{name}(): Expected dtype int32/int64 for index")
    if reduce not in (None, "add", "multiply"):
        raise RuntimeError("reduce argument must be either add or multiply.")
    d = _canon_dim(dim, self.ndim)
    if max(self.ndim, 1) != max(index.ndim, 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    base, ishape = _as_1d(self.node), tuple(index.shape) or (1,)
    if isinstance(src, Tensor):
        if src.dtype != self.dtype:
            raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
        if max(src.ndim, 1) != max(index.ndim, 1):
            raise RuntimeError("Index tensor must have the same number of dimensions as src "
                               "tensor")
        sshape = tuple(src.shape) or (1,)
        if any((j != d and a > b) or a > c
               for j, (a, b, c) in enumerate(zip(ishape, base.shape, sshape))):
            raise RuntimeError(f"Expected index {_shape_str(index.shape)} to be no larger than "
                               f"self {_shape_str(self.shape)} apart from dimension {d} and to "
                               f"be no larger size than src {_shape_str(src.shape)}")
        srcn = _slice(_reshape(src.node, sshape), (0,) * len(sshape), ishape)
    elif isinstance(src, (Number, np.number, np.bool_)):
        if any(j != d and a > b for j, (a, b) in enumerate(zip(ishape, base.shape))):
            raise RuntimeError(f"Expected index {_shape_str(index.shape)} to be no larger than "
                               f"self {_shape_str(self.shape)} apart from dimension {d}")
        srcn = ew.operand(src, self.dtype, ishape)
    else:
        raise TypeError(f"{name}() expects a Tensor or a number as src/value, got "
                        f"{type(src).__name__}")
    _checked_values(index, base.shape[d], d)
    if index.numel() == 0:
        return self.clone()
    idx = _reshape(index.node, ishape)
    out = Node(Op.SCATTER, (base, idx, srcn), (d, reduce), base.shape, self.dtype)
    return wrap(_reshape(out, self.shape))


def _src_arg(src, value):
    if src is not None and value is not None:
        raise TypeError("scatter() got both src and value")
    if src is None and value is None:
        raise TypeError("scatter() missing 1 required positional argument: 'src' or 'value'")
    return src if src is not None else value


def scatter(input: Tensor, dim: int, index: Tensor, src=None, value=None, *,
            reduce: str | None = None) -> Tensor:
    """A copy of input with `src` (a tensor, or a number `value`) written where `index`
    points along `dim`; reduce='add' / 'multiply' folds them in instead."""
    return _scatter(input, dim, index, _src_arg(src, value), reduce, "scatter")


def scatter_(self: Tensor, dim: int, index: Tensor, src=None, value=None, *,
             reduce: str | None = None) -> Tensor:
    self._assign(_scatter(self, dim, index, _src_arg(src, value), reduce, "scatter").node)
    return self


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of input with src added where index points along dim (duplicates summed)."""
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): argument 'src' must be Tensor, not "
                        f"{type(src).__name__}")
    return _scatter(input, dim, index, src, "add", "scatter")


def scatter_add_(self: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    self._assign(scatter_add(self, dim, index, src).node)
    return self


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices of input along dim at the positions in the 1-D `index`."""
    _check_index_dtype(index, "index_select(): Expected dtype int32 or int64 for index")
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = _canon_dim(dim, input.ndim)
    x = _as_1d(input.node)
    vals = np.asarray(index._array(), dtype=np.int64).reshape(-1)
    if _first_bad(vals, 0, x.shape[d]) is not None:
        raise IndexError("index out of range in self")
    k = vals.size
    shape = x.shape[:d] + (k,) + x.shape[d + 1:]
    idx = _reshape(index.node, tuple(k if j == d else 1 for j in range(len(shape))))
    g = Node(Op.GATHER, (x, ew.expand_node(idx, shape)), d, shape, input.dtype)
    return wrap(_reshape(g, shape if input.ndim else ()))


def take(input: Tensor, index: Tensor) -> Tensor:
    """input.flatten()[index], with index's shape (negative indices count from the end)."""
    if not isinstance(index, Tensor) or index.dtype != dt.int64:
        got = TYPE_NAME.get(getattr(index, "dtype", None), type(index).__name__)
        raise RuntimeError(f"take(): Expected a long tensor for index, but got {got}")
    n = input.numel()
    where = same_device(input, index)
    vals = np.asarray(index._array(), dtype=np.int64)
    v = _first_bad(vals, -n, n)
    if v is not None:
        raise IndexError(f"out of range: tried to access index {v} on a tensor of {n} "
                         f"elements.")
    idx = _index_buffer(np.where(vals < 0, vals + n, vals).reshape(-1), where)
    g = Node(Op.GATHER, (_reshape(input.node, (n,)), idx), 0, (vals.size,), input.dtype)
    return wrap(_reshape(g, index.shape))


def _index_dim_key(self: Tensor, dim: int, index: Tensor, name: str) -> tuple:
    if not isinstance(index, Tensor) or index.dtype != dt.int64:
        raise RuntimeError(f"{name}(): Expected dtype int64 for index.")
    if index.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector")
    d = _canon_dim(dim, self.ndim)
    return (slice(None),) * d + (vw.reshape(index, -1),)


def index_fill_(self: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """Fill the slices of self along dim at `index` with a scalar (or 0-d tensor)."""
    key = _index_dim_key(self, dim, index, "index_fill_")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s).")
        value = value.to(self.dtype)
    else:
        overflow.scalar(value, self.dtype)
    _put(self, key, value, False)
    return self


def index_fill(self: Tensor, dim: int, index: Tensor, value) -> Tensor:
    return index_fill_(self.clone(), dim, index, value)


def _index_source(self: Tensor, dim: int, index: Tensor, source: Tensor, name: str):
    key = _index_dim_key(self, dim, index, name)
    d = len(key) - 1
    want = tuple(self.shape[:d]) + (index.numel(),) + tuple(self.shape[d + 1:])
    if not isinstance(source, Tensor) or tuple(source.shape) != want:
        got = _shape_str(getattr(source, "shape", ()))
        raise RuntimeError(f"{name}(): source of shape {got} does not match self with index "
                           f"{_shape_str(want)} along dim {d}")
    if source.dtype != self.dtype:
        raise RuntimeError(f"{name}(): self ({TYPE_NAME[self.dtype]}) and source "
                           f"({TYPE_NAME[source.dtype]}) must have the same scalar type")
    return key


def index_add_(self: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    """self[..., index, ...] += alpha * source along dim (duplicates summed)."""
    key = _index_source(self, dim, index, source, "index_add_")
    if alpha != 1:
        source = ew.mul(source, alpha).to(self.dtype)
    _put(self, key, source, True)
    return self


def index_add(self: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    return index_add_(self.clone(), dim, index, source, alpha=alpha)


def index_copy_(self: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """self[..., index, ...] = source along dim."""
    key = _index_source(self, dim, index, source, "index_copy_")
    _put(self, key, source, False)
    return self


def index_copy(self: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    return index_copy_(self.clone(), dim, index, source)


# ----------------------------------------------------------------------------- masks
def _check_mask(mask, what: str) -> None:
    if not isinstance(mask, Tensor):
        raise TypeError(f"{what}(): argument 'mask' must be Tensor, not {type(mask).__name__}")


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """input where mask is false, value (a scalar or 0-d tensor) where it is true."""
    _check_mask(mask, "masked_fill")
    if mask.dtype != dt.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{_CPP_NAME[mask.dtype]}")
    shape = broadcast_shapes(input.shape, mask.shape)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s).")
        fill = ew.expand_node(ew.cast_node(value.node, input.dtype), shape)
    else:
        fill = ew.operand(overflow.scalar(value, input.dtype), input.dtype, shape)
    srcs = (ew.expand_node(mask.node, shape), fill, ew.expand_node(input.node, shape))
    return wrap(Node(Op.WHERE, srcs, None, shape, input.dtype))


def masked_fill_(self: Tensor, mask: Tensor, value) -> Tensor:
    _check_mask(mask, "masked_fill_")
    shape = broadcast_shapes(self.shape, mask.shape)
    if shape != tuple(self.shape):
        raise RuntimeError(f"output with shape {_shape_str(self.shape)} doesn't match the "
                           f"broadcast shape {_shape_str(shape)}")
    self._assign(masked_fill(self, mask, value).node)
    return self


def _broadcast_pair(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Broadcast two shapes with torch's "The size of tensor a ..." message."""
    n = max(len(a), len(b))
    a2, b2 = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    for i, (x, y) in enumerate(zip(a2, b2)):
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b "
                               f"({y}) at non-singleton dimension {i}")
    return tuple(max(x, y) if min(x, y) != 0 else 0 for x, y in zip(a2, b2))


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The 1-D tensor of input's values where mask (broadcast with it) is true."""
    _check_mask(mask, "masked_select")
    if mask.dtype != dt.bool_:
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    shape = _broadcast_pair(tuple(mask.shape), tuple(input.shape))
    device = device_name(input) if mask.ndim == 0 else same_device(input, mask)
    where = np.flatnonzero(np.broadcast_to(mask._array(), shape))
    x = _reshape(ew.expand_node(input.node, shape), (math.prod(shape),))
    return wrap(Node(Op.GATHER, (x, _index_buffer(where, device)), 0, (where.size,),
                     input.dtype))


def nonzero(input: Tensor, *, as_tuple: bool = False):
    """The indices of the non-zero elements: an (n, ndim) int64 tensor, or with as_tuple one
    1-D tensor per dim. The count depends on the data, so input is computed now."""
    from .creation import from_array
    where = device_name(input)
    a = np.asarray(input._array())
    if a.ndim == 0:
        if as_tuple:
            return (from_array(np.nonzero(a.reshape(1))[0].astype(np.int64), device=where),)
        return from_array(np.zeros((int(a != 0), 0), np.int64), device=where)
    nz = np.nonzero(a)
    if as_tuple:
        return tuple(from_array(np.ascontiguousarray(i, dtype=np.int64), device=where)
                     for i in nz)
    return from_array(np.ascontiguousarray(np.stack(nz, axis=1), dtype=np.int64), device=where)


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)

