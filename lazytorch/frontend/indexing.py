"""Indexing: `x[idx]`, `x[idx] = v`, index_put_; the index parsing they share.

Basic indexing (ints, slices, None, ...) returns views, so a write through either the view or
the tensor is seen by both. Advanced indexing (integer or boolean index tensors) reads the index
values at once (to check bounds, and for masks to know the result's shape), then records one
GATHER (reads) or SCATTER (writes) over a flat index into the indexed dims.

gather/scatter, index_select, take, the index_* family, masks and nonzero live in
gather_scatter.py; they are re-exported here.
"""
from __future__ import annotations

import math
import operator
from numbers import Number
from typing import Any

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import Node
from ..ir.ops import Op
from ..runtime import memory
from . import elementwise as ew
from . import views as vw
from .tensor import Tensor, _shape_str, broadcast_shapes, device_name, to_device

TYPE_NAME = dt.SCALAR_TYPE_NAMES
_CPP_NAME = dt.CPP_TYPE_NAMES


# ----------------------------------------------------------------------------- node helpers
def wrap(node: Node) -> Tensor:
    """A new (non-view) tensor holding `node`, remembering the user's source line."""
    from ..ir.sites import record
    record(node)
    return Tensor._make(node)


def _reshape(n: Node, shape) -> Node:
    shape = tuple(shape)
    return n if n.shape == shape else Node(Op.RESHAPE, (n,), shape, shape, n.dtype)


def _permute(n: Node, perm) -> Node:
    perm = tuple(perm)
    if perm == tuple(range(len(perm))):
        return n
    return Node(Op.PERMUTE, (n,), perm, tuple(n.shape[p] for p in perm), n.dtype)


def _slice(n: Node, starts, shape) -> Node:
    """n[start0:start0+shape0, ...] (unit steps)."""
    shape = tuple(shape)
    if shape == n.shape:
        return n
    arg = tuple((s, 1) for s in starts)
    return Node(Op.SLICE, (n,), arg, shape, n.dtype)


def _index_buffer(a: np.ndarray, device: str) -> Node:
    """An int64 BUFFER of `a`'s values on `device` (the indexed tensor's)."""
    return memory.buffer_node(np.ascontiguousarray(a, dtype=np.int64), device=device)


def _check_index_dtype(index, msg: str) -> None:
    if not isinstance(index, Tensor):
        raise TypeError(f"{msg.split('(')[0]}(): argument 'index' must be Tensor, not "
                        f"{type(index).__name__}")
    if index.dtype not in (dt.int32, dt.int64):
        raise RuntimeError(msg)


def _first_bad(a: np.ndarray, lo: int, hi: int):
    """The first value of `a` (row-major) outside [lo, hi), or None."""
    bad = (a < lo) | (a >= hi)
    return int(a[bad].flat[0]) if bad.any() else None


def _checked_values(index: Tensor, n: int, dim: int) -> np.ndarray:
    """The index's values, each in [0, n) (gather/scatter's rule: no negative indices)."""
    vals = np.asarray(index._array(), dtype=np.int64)
    v = _first_bad(vals, 0, n)
    if v is not None:
        raise RuntimeError(f"index {v} is out of bounds for dimension {dim} with size {n}")
    return vals


# ----------------------------------------------------------------------------- index parsing
def _seq_as_tuple(seq: list) -> bool:
    """torch (like old numpy) reads a short list holding sequences, tensors, slices, None or
    Ellipsis as a tuple of indices."""
    if len(seq) >= 32:
        return False
    return any(isinstance(o, (Tensor, list, tuple, slice, np.ndarray)) or o is None
               or o is Ellipsis for o in seq)


def _items(idx) -> tuple:
    if isinstance(idx, tuple):
        return idx
    if isinstance(idx, list) and _seq_as_tuple(idx):
        return tuple(idx)
    return (idx,)


def _classify(item) -> tuple[str, Any]:
    """(kind, payload): none, ellipsis, bool, int, slice, tensor (ints), mask (bools)."""
    if item is None:
        return "none", None
    if item is Ellipsis:
        return "ellipsis", None
    if isinstance(item, (bool, np.bool_)):
        return "bool", bool(item)
    if isinstance(item, slice):
        return "slice", item
    if isinstance(item, Tensor):
        if item.dtype in (dt.bool_, dt.uint8):
            return ("bool", bool(item.item())) if item.ndim == 0 else ("mask", item)
        if item.dtype.kind in "iu":
            return ("int", int(item.item())) if item.ndim == 0 else ("tensor", item)
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    if isinstance(item, (int, np.integer)):
        return "int", int(item)
    if isinstance(item, (list, tuple, np.ndarray)):
        arr = np.asarray(item)
        if arr.dtype == np.bool_:
            return ("bool", bool(arr)) if arr.ndim == 0 else ("mask", arr)
        if arr.dtype.kind == "f" and (arr.size == 0 or not isinstance(item, np.ndarray)):
            arr = arr.astype(np.int64)  # torch reads a list's numbers as integers
        if arr.dtype.kind not in "iu":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        arr = arr.astype(np.int64)
        return ("int", int(arr)) if arr.ndim == 0 else ("tensor", arr)
    if hasattr(item, "__index__"):
        return "int", operator.index(item)
    raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                     f"Variables are valid indices (got {type(item).__name__})")


def _consumes(kind: str, payload) -> int:
    if kind in ("int", "slice", "tensor"):
        return 1
    if kind == "mask":
        return payload.ndim
    return 0


def _slice_of(s: slice, n: int) -> tuple[int, int, int]:
    """(start, step, length) of a slice over a dim of size n; PyTorch allows no negative step."""
    step = 1 if s.step is None else operator.index(s.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    if step < 0:
        raise ValueError("step must be greater than zero")
    start = None if s.start is None else operator.index(s.start)
    stop = None if s.stop is None else operator.index(s.stop)
    start, stop, step = slice(start, stop, step).indices(n)
    length = len(range(start, stop, step))
    return (start if length else 0), step, length


def _mask_mismatch(mask_shape, shape, at: int) -> None:
    for j, (a, b) in enumerate(zip(mask_shape, shape[at:])):
        if a != b:
            raise IndexError(f"The shape of the mask {_shape_str(mask_shape)} at index {j} does "
                             f"not match the shape of the indexed tensor {_shape_str(shape)} "
                             f"at index {at + j}")


def _parse(self: Tensor, idx) -> tuple[Tensor, list]:
    """Apply the basic part of an index (one SLICE and one RESHAPE view at most); return the
    view and the advanced parts as (position in the view, kind, payload)."""
    items = [_classify(i) for i in _items(idx)]
    shape, ndim = tuple(self.shape), self.ndim
    used = sum(_consumes(k, p) for k, p in items)
    if used > ndim:
        if ndim == 0:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                             "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    arg = [(0, 1)] * ndim
    sizes = list(shape)
    out: list[int] = []
    advs: list[tuple[int, str, Any]] = []
    sd = 0
    ellipsis = False
    for kind, p in items:
        if kind == "ellipsis":
            if not ellipsis:  # torch lets later ellipses expand to nothing
                out.extend(shape[sd:sd + ndim - used])
                sd += ndim - used
            ellipsis = True
        elif kind == "none":
            out.append(1)
        elif kind == "bool":
            advs.append((len(out), "bool", p))
            out.append(1)
        elif kind == "int":
            n = shape[sd]
            if not -n <= p < n:
                raise IndexError(f"index {p} is out of bounds for dimension {sd} with size {n}")
            arg[sd], sizes[sd] = (p % n, 1), 1
            sd += 1
        elif kind == "slice":
            start, step, length = _slice_of(p, shape[sd])
            arg[sd], sizes[sd] = (start, step), length
            out.append(length)
            sd += 1
        elif kind == "tensor":
            advs.append((len(out), "tensor", p))
            out.append(shape[sd])
            sd += 1
        else:  # mask
            _mask_mismatch(tuple(p.shape), shape, sd)
            advs.append((len(out), "mask", p))
            out.extend(shape[sd:sd + p.ndim])
            sd += p.ndim
    out.extend(shape[sd:])
    v = self
    if sizes != list(shape) or any(a != (0, 1) for a in arg):
        v = vw.make_view(v, Op.SLICE, tuple(arg), tuple(sizes))
    if v is self or tuple(out) != tuple(v.shape):
        v = vw.make_view(v, Op.RESHAPE, tuple(out), tuple(out))
    return v, advs


class _Advanced:
    """Advanced indices resolved to one flat index (of the broadcast index shape `shape`) into
    the indexed dims `positions` of the view, taken together in row-major order."""

    def __init__(self, view_shape: tuple[int, ...], advs: list, device: str):
        arrays, positions, sizes = [], [], []
        node = None
        for pos, kind, p in advs:
            if isinstance(p, Tensor) and device_name(p) not in ("cpu", device):
                raise RuntimeError(f"indices should be either on cpu or on the same device as "
                                   f"the indexed tensor ({device})")
            if kind == "bool":
                arrays.append(np.zeros(1 if p else 0, np.int64))
                positions.append(pos)
                sizes.append(1)
            elif kind == "tensor":
                a = p._array() if isinstance(p, Tensor) else p
                if isinstance(p, Tensor) and p.dtype == dt.int64 and len(advs) == 1 and \
                        device_name(p) == device:
                    node = p.node
                arrays.append(np.asarray(a, dtype=np.int64))
                positions.append(pos)
                sizes.append(view_shape[pos])
            else:
                m = p._array() if isinstance(p, Tensor) else p
                for j, a in enumerate(np.nonzero(np.asarray(m) != 0)):
                    arrays.append(a.astype(np.int64))
                    positions.append(pos + j)
                    sizes.append(m.shape[j])
        try:
            shape = np.broadcast_shapes(*(a.shape for a in arrays))
        except ValueError:
            raise IndexError("shape mismatch: indexing tensors could not be broadcast together "
                             "with shapes " + ", ".join(_shape_str(a.shape) for a in arrays)
                             ) from None
        flat = np.zeros(shape, np.int64)
        for j, (a, n) in enumerate(zip(arrays, sizes)):
            v = _first_bad(a, -n, n)
            if v is not None:
                raise IndexError(f"index {v} is out of bounds for dimension {j} with size {n}")
            if (a < 0).any():
                a, node = np.where(a < 0, a + n, a), None
            flat = flat * n + a
        self.shape: tuple[int, ...] = tuple(shape)
        self.count = flat.size
        # torch's rule: indexed dims next to each other keep their place in the result (the
        # view is read along one merged axis there); separated ones move to the front (the
        # view is permuted so they lead, then merged into axis 0)
        first = positions[0]
        rest = [d for d in range(len(view_shape)) if d not in positions]
        if positions == list(range(first, first + len(positions))):
            self.axis, self.view_perm = first, tuple(range(len(view_shape)))
        else:
            self.axis, self.view_perm = 0, tuple(positions + rest)
        before = tuple(view_shape[d] for d in rest[:self.axis])
        after = tuple(view_shape[d] for d in rest[self.axis:])
        # the view, permuted and with the indexed dims merged: `flat_shape`; the index into it
        # (and the gathered values, and the values to scatter) have `index.shape`
        self.flat_shape = before + (math.prod(view_shape[p] for p in positions),) + after
        self.result_shape = before + self.shape + after
        if node is None:
            node = _index_buffer(flat.reshape(-1), device)
        ones = (1,) * len(before) + (self.count,) + (1,) * len(after)
        self.index = ew.expand_node(_reshape(node, ones), before + (self.count,) + after)

    def flatten(self, n: Node) -> Node:
        """The view's node permuted and merged to `flat_shape`."""
        return _reshape(_permute(n, self.view_perm), self.flat_shape)


# ----------------------------------------------------------------------------- x[idx]
def getitem(self: Tensor, idx) -> Tensor:
    """self[idx]: a view for basic indices, a gathered copy for index tensors and masks."""
    view, advs = _parse(self, idx)
    if not advs:
        return view
    a = _Advanced(tuple(view.shape), advs, device_name(self))
    g = Node(Op.GATHER, (a.flatten(view.node), a.index), a.axis, a.index.shape, self.dtype)
    return wrap(_reshape(g, a.result_shape))


# ----------------------------------------------------------------------------- x[idx] = v
def _strip_ones(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Drop leading size-1 dims beyond `ndim` (torch lets x[0] = ones(1, n) through)."""
    shape = tuple(shape)
    while len(shape) > ndim and shape[0] == 1:
        shape = shape[1:]
    return shape


def _check_value(self: Tensor, value) -> Any:
    if isinstance(value, Tensor) and not value.ndim:
        return ew.scalars_follow(self, value)[1]     # a 0-d CPU value acts as a scalar
    if isinstance(value, (Tensor, Number, np.number, np.bool_)):
        return value
    if isinstance(value, (np.ndarray, list, tuple)):
        from .creation import tensor
        return tensor(value, dtype=self.dtype, device=self.device)
    raise TypeError(f"can't assign a {type(value).__name__} to a torch."
                    f"{TYPE_NAME[self.dtype]}Tensor")


def _basic_value(value, d: dt.DType, shape: tuple[int, ...]) -> Node:
    """value broadcast to `shape` (torch's expand errors), cast to d."""
    if not isinstance(value, Tensor):
        return ew.operand(value, d, shape)
    stripped = _strip_ones(value.shape, len(shape))
    t = value if stripped == tuple(value.shape) else Tensor._make(_reshape(value.node, stripped))
    return ew.cast_node(vw.expand(t, shape).node, d)


def _mask_fill(self: Tensor, idx, value) -> bool:
    """x[mask] = v as a masked fill (no need to know where the mask is true) when v is a
    scalar, a one-element tensor, or a tensor that broadcasts over the unmasked dims."""
    items = _items(idx)
    if len(items) != 1:
        return False
    m = items[0]
    if not (isinstance(m, Tensor) and m.dtype in (dt.bool_, dt.uint8) and 0 < m.ndim
            <= self.ndim and tuple(m.shape) == tuple(self.shape[:m.ndim])):
        return False
    shape, k = tuple(self.shape), m.ndim
    if not isinstance(value, Tensor):
        fill = ew.operand(value, self.dtype, shape)
    elif value.numel() == 1:
        fill = ew.expand_node(ew.cast_node(_reshape(value.node, ()), self.dtype), shape)
    elif value.dtype == self.dtype:
        stripped = _strip_ones(value.shape, self.ndim - k)
        if len(stripped) > self.ndim - k:
            return False
        try:
            if broadcast_shapes(stripped, shape[k:]) != shape[k:]:
                return False
        except RuntimeError:
            return False
        fill = ew.expand_node(_reshape(value.node, stripped), shape)
    else:
        return False
    mask = _reshape(ew.cast_node(m.node, dt.bool_), m.shape + (1,) * (self.ndim - k))
    mask = ew.expand_node(mask, shape)
    self._assign(wrap(Node(Op.WHERE, (mask, fill, self.node), None, shape, self.dtype)).node)
    return True


def _put(self: Tensor, idx, value, accumulate: bool) -> None:
    """self[idx] = value (or += with accumulate), writing through views."""
    view, advs = _parse(self, idx)
    if isinstance(value, Tensor) and not value.ndim:
        value = ew.scalars_follow(self, value)[1]
    if not advs:
        if isinstance(value, Tensor) and device_name(value) != device_name(self):
            value = to_device(value, device_name(self))     # a copy_ into the view, as PyTorch
        new = _basic_value(value, self.dtype, tuple(view.shape))
        if accumulate:
            new = ew.add(view, Tensor._make(new)).node
        view._assign(new)
        return
    a = _Advanced(tuple(view.shape), advs, device_name(self))
    if isinstance(value, Tensor):
        if value.dtype != self.dtype:
            raise RuntimeError(f"Index put requires the source and destination dtypes match, "
                               f"got {TYPE_NAME[self.dtype]} for the destination and "
                               f"{TYPE_NAME[value.dtype]} for the source.")
        stripped = _strip_ones(value.shape, len(a.result_shape))
        try:
            ok = broadcast_shapes(stripped, a.result_shape) == a.result_shape
        except RuntimeError:
            ok = False
        if not ok or len(stripped) > len(a.result_shape):
            raise RuntimeError(f"shape mismatch: value tensor of shape "
                               f"{_shape_str(value.shape)} cannot be broadcast to indexing "
                               f"result of shape {_shape_str(a.result_shape)}")
        src = ew.expand_node(_reshape(value.node, stripped), a.result_shape)
    else:
        src = ew.operand(value, self.dtype, a.result_shape)
    if a.count == 0:
        return
    src = _reshape(src, a.index.shape)
    flat = view
    if a.view_perm != tuple(range(len(a.view_perm))):
        flat = vw.make_view(flat, Op.PERMUTE, a.view_perm,
                            tuple(view.shape[p] for p in a.view_perm))
    if tuple(flat.shape) != a.flat_shape:
        flat = vw.make_view(flat, Op.RESHAPE, a.flat_shape, a.flat_shape)
    mode = "add" if accumulate else None
    new = Node(Op.SCATTER, (flat.node, a.index, src), (a.axis, mode), a.flat_shape,
               self.dtype)
    flat._assign(wrap(new).node)


def setitem(self: Tensor, idx, value) -> None:
    """self[idx] = value: basic indices write through a view; index tensors scatter."""
    value = _check_value(self, value)
    if _mask_fill(self, idx, value):
        return
    _put(self, idx, value, False)


def index_put_(self: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """self[indices] = values (or += with accumulate=True, duplicates summed)."""
    indices = tuple(indices)
    for i, t in enumerate(indices):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got "
                            f"{type(t).__name__}")
    if len(indices) > self.ndim:
        raise IndexError(f"too many indices for tensor of dimension {self.ndim} (got "
                         f"{len(indices)})")
    # a 0-d index tensor is an index tensor here, not a select
    indices = tuple(t.reshape(1) if t.ndim == 0 and t.dtype.kind in "iu" and t.dtype != dt.uint8
                    else t for t in indices)
    values = _check_value(self, values)
    if isinstance(values, Tensor) and values.dtype != self.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{TYPE_NAME[self.dtype]} for the destination and "
                           f"{TYPE_NAME[values.dtype]} for the source.")
    if not indices:
        _put(self, (Ellipsis,), values, accumulate)
        return self
    _put(self, indices, values, accumulate)
    return self


def index_put(self: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    return index_put_(self.clone(), indices, values, accumulate)


# gather/scatter & co. build on the helpers above; imported last (it imports this module)
from .gather_scatter import (  # noqa: E402
    argwhere,
    gather,
    index_add,
    index_add_,
    index_copy,
    index_copy_,
    index_fill,
    index_fill_,
    index_select,
    masked_fill,
    masked_fill_,
    masked_select,
    nonzero,
    scatter,
    scatter_,
    scatter_add,
    scatter_add_,
    take,
    take_along_dim,
)

__all__ = ["gather", "scatter", "scatter_add", "index_select", "take", "take_along_dim",
           "index_fill", "index_add", "index_copy", "index_put", "index_put_", "masked_fill",
           "masked_select", "nonzero", "argwhere"]


def _attach() -> None:
    methods = dict(
        __getitem__=getitem, __setitem__=setitem, gather=gather, scatter=scatter,
        scatter_=scatter_, scatter_add=scatter_add, scatter_add_=scatter_add_,
        index_select=index_select, take=take, take_along_dim=take_along_dim,
        index_fill=index_fill, index_fill_=index_fill_, index_add=index_add,
        index_add_=index_add_, index_copy=index_copy, index_copy_=index_copy_,
        index_put=index_put, index_put_=index_put_, masked_fill=masked_fill,
        masked_fill_=masked_fill_, masked_select=masked_select, nonzero=nonzero,
        argwhere=argwhere,
    )
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


_attach()
