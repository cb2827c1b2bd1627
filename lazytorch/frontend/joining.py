"""Joining and rearranging: cat, stack, hstack/vstack/dstack, tril/triu, repeat, roll.

cat is one fused kernel: each piece is PADded into place and a chain of WHERE on the pieces'
ranges picks the right one, `where(in_0, pad(a_0), where(in_1, pad(a_1), pad(a_2)))`. (Adding
zero-padded pieces would also fuse, but it turns -0.0 into +0.0.) Every result here is a new
tensor, not a view, as in PyTorch.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import Node, const
from ..ir.ops import Op
from ..runtime import memory
from . import elementwise as ew
from .indexing import _reshape, wrap
from .tensor import Tensor, _canon_dim, _shape_str


def _tensor_list(tensors, name: str) -> list[Tensor]:
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, "
                        "not Tensor")
    out = list(tensors)
    for i, t in enumerate(out):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got "
                            f"{type(t).__name__}")
    return out


# pieces one kernel joins: a cat of thousands (a corpus joined line by line) is joined in
# groups of this many, each stored by a kernel of its own, so that no kernel has thousands of
# inputs (gcc took over ten minutes on one with 3,000)
GROUP = 32


def cat_nodes(nodes: Sequence[Node], d: int) -> Node:
    """The nodes (same dtype, same shape but along d) joined along d, as one fusable node (a
    tree of stored groups when there are many)."""
    pieces = [n for n in nodes if n.shape[d] > 0] or list(nodes[:1])
    if len(pieces) == 1:
        return pieces[0]
    if len(pieces) > GROUP:
        groups = [cat_nodes(pieces[i:i + GROUP], d) for i in range(0, len(pieces), GROUP)]
        return cat_nodes([Node(Op.CONTIGUOUS, (g,), None, g.shape, g.dtype) for g in groups],
                         d)
    total = sum(n.shape[d] for n in pieces)
    shape = pieces[0].shape[:d] + (total,) + pieces[0].shape[d + 1:]
    dtype = pieces[0].dtype
    out: Node | None = None
    end = total
    for n in reversed(pieces):
        start = end - n.shape[d]
        pads = tuple((start, total - end) if j == d else (0, 0) for j in range(len(shape)))
        placed = Node(Op.PAD, (n,), (pads, dtype.np(0).item()), shape, dtype)
        if out is None:
            out = placed
        else:
            inside = Node(Op.PAD, (const(True, dt.bool_, n.shape),), (pads, False), shape,
                          dt.bool_)
            out = Node(Op.WHERE, (inside, placed, out), None, shape, dtype)
        end = start
    return out


def _joined_now(ts: list[Tensor], dtype: dt.DType, d: int, new_dim: bool) -> Tensor | None:
    """Tensors whose values are known and that carry no gradient are joined right away by
    numpy, as PyTorch would (a data set or corpus built from many pieces): None otherwise."""
    if len(ts) < 2 or any(t.requires_grad for t in ts):
        return None
    nodes = [t.node for t in ts]
    if any(n.op is not Op.BUFFER or n.device != nodes[0].device for n in nodes):
        return None   # (buffers on two devices: the graph's op refuses them)
    arrays = [dt.astype(memory.host_data(n), dtype) for n in nodes]
    joined = np.stack(arrays, d) if new_dim else np.concatenate(arrays, d)
    return wrap(memory.buffer_node(joined, dtype, device=nodes[0].device))


def cat(tensors, dim: int = 0, *, out: Tensor | None = None) -> Tensor:
    """The tensors joined along an existing dim (promoted to a common dtype). As in PyTorch,
    1-D empty tensors are skipped whatever their length along the other dims."""
    ts = _tensor_list(tensors, "cat")
    if not ts:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    for i, t in enumerate(ts):
        if t.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
    dtype = functools.reduce(dt.promote, (t.dtype for t in ts))
    keep = [(i, t) for i, t in enumerate(ts) if tuple(t.shape) != (0,)]
    if not keep:
        result = wrap(const(0, dtype, (0,)))
    else:
        ref = keep[0][1]
        d = _canon_dim(dim, ref.ndim)
        for i, t in keep[1:]:
            if t.ndim != ref.ndim:
                raise RuntimeError(f"Tensors must have same number of dimensions: got "
                                   f"{ref.ndim} and {t.ndim}")
            for j in range(ref.ndim):
                if j != d and t.shape[j] != ref.shape[j]:
                    raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. "
                                       f"Expected size {ref.shape[j]} but got size "
                                       f"{t.shape[j]} for tensor number {i} in the list.")
        result = _joined_now([t for _, t in keep], dtype, d, False)
        if result is None:
            result = wrap(cat_nodes([ew.cast_node(t.node, dtype) for _, t in keep], d))
    if out is not None:
        if tuple(out.shape) != tuple(result.shape):
            raise RuntimeError(f"cat(): out= has shape {_shape_str(out.shape)}, the result "
                               f"{_shape_str(result.shape)} (resizing out is not supported)")
        out._assign(result.node)
        return out
    return result


def concat(tensors, dim: int = 0, *, out: Tensor | None = None) -> Tensor:
    return cat(tensors, dim, out=out)


def concatenate(tensors, axis: int = 0, out: Tensor | None = None) -> Tensor:
    return cat(tensors, axis, out=out)


def stack(tensors, dim: int = 0, *, out: Tensor | None = None) -> Tensor:
    """The tensors (all of one shape) joined along a new dim."""
    ts = _tensor_list(tensors, "stack")
    if not ts:
        raise RuntimeError("stack expects a non-empty TensorList")
    ref = tuple(ts[0].shape)
    for i, t in enumerate(ts[1:], 1):
        if tuple(t.shape) != ref:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{_shape_str(ref)} at entry 0 and {_shape_str(t.shape)} at "
                               f"entry {i}")
    d = _canon_dim(dim, len(ref) + 1)
    dtype = functools.reduce(dt.promote, (t.dtype for t in ts))
    shape = ref[:d] + (1,) + ref[d:]
    result = _joined_now(ts, dtype, d, True)
    if result is None:
        result = wrap(cat_nodes([_reshape(ew.cast_node(t.node, dtype), shape) for t in ts], d))
    if out is not None:
        out._assign(result.node)
        return out
    return result


def _at_least(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    return t if tuple(t.shape) == shape else wrap(_reshape(t.node, shape))


def atleast_1d(*tensors):
    ts = [_at_least(t, (1,) if t.ndim == 0 else tuple(t.shape)) for t in _flat_args(tensors)]
    return ts[0] if len(ts) == 1 and isinstance(tensors[0], Tensor) else tuple(ts)


def atleast_2d(*tensors):
    def two(t: Tensor) -> tuple[int, ...]:
        return ((1, 1), (1,) + tuple(t.shape))[t.ndim] if t.ndim < 2 else tuple(t.shape)
    ts = [_at_least(t, two(t)) for t in _flat_args(tensors)]
    return ts[0] if len(ts) == 1 and isinstance(tensors[0], Tensor) else tuple(ts)


def atleast_3d(*tensors):
    def three(t: Tensor) -> tuple[int, ...]:
        s = tuple(t.shape)
        return {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(t.ndim, s)
    ts = [_at_least(t, three(t)) for t in _flat_args(tensors)]
    return ts[0] if len(ts) == 1 and isinstance(tensors[0], Tensor) else tuple(ts)


def _flat_args(tensors) -> list[Tensor]:
    if len(tensors) == 1 and not isinstance(tensors[0], Tensor):
        return _tensor_list(tensors[0], "atleast")
    return _tensor_list(tensors, "atleast")


def hstack(tensors, *, out: Tensor | None = None) -> Tensor:
    """cat along dim 1 (dim 0 for 1-D tensors)."""
    ts = [atleast_1d(t) for t in _tensor_list(tensors, "hstack")]
    if not ts:
        raise RuntimeError("hstack expects a non-empty TensorList")
    return cat(ts, 0 if ts[0].ndim == 1 else 1, out=out)


def vstack(tensors, *, out: Tensor | None = None) -> Tensor:
    """cat along dim 0, 1-D tensors as rows."""
    ts = [atleast_2d(t) for t in _tensor_list(tensors, "vstack")]
    if not ts:
        raise RuntimeError("vstack expects a non-empty TensorList")
    return cat(ts, 0, out=out)


row_stack = vstack


def dstack(tensors, *, out: Tensor | None = None) -> Tensor:
    """cat along dim 2, after atleast_3d."""
    ts = [atleast_3d(t) for t in _tensor_list(tensors, "dstack")]
    if not ts:
        raise RuntimeError("dstack expects a non-empty TensorList")
    return cat(ts, 2, out=out)


def column_stack(tensors, *, out: Tensor | None = None) -> Tensor:
    """0-d and 1-D tensors as columns, then cat along dim 1."""
    ts = [t if t.ndim > 1 else wrap(_reshape(t.node, (t.numel(), 1)))
          for t in _tensor_list(tensors, "column_stack")]
    if not ts:
        raise RuntimeError("column_stack expects a non-empty TensorList")
    return cat(ts, 1, out=out)


# ----------------------------------------------------------------------------- triangles
def _triangle(input: Tensor, diagonal: int, lower: bool, name: str) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    n, m = input.shape[-2:]
    keep = np.tri(n, m, diagonal, dtype=bool) if lower else \
        ~np.tri(n, m, diagonal - 1, dtype=bool)
    shape = tuple(input.shape)
    mask = ew.expand_node(memory.buffer_node(keep, device=input.node.device or "cpu"), shape)
    zero = const(0, input.dtype, shape)
    return wrap(Node(Op.WHERE, (mask, input.node, zero), None, shape, input.dtype))


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle (j <= i + diagonal) of the last two dims; zeros elsewhere."""
    return _triangle(input, diagonal, True, "tril")


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle (j >= i + diagonal) of the last two dims; zeros elsewhere."""
    return _triangle(input, diagonal, False, "triu")


def tril_(self: Tensor, diagonal: int = 0) -> Tensor:
    self._assign(tril(self, diagonal).node)
    return self


def triu_(self: Tensor, diagonal: int = 0) -> Tensor:
    self._assign(triu(self, diagonal).node)
    return self


# ----------------------------------------------------------------------------- repeat, roll
def repeat(self: Tensor, *sizes) -> Tensor:
    """The tensor tiled sizes[i] times along each dim (leading sizes add dims)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < self.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    old = (1,) * (len(sizes) - self.ndim) + tuple(self.shape)
    final = tuple(r * s for r, s in zip(sizes, old))
    if any(r < 0 for r in sizes):
        bad = min(f for f in final if f < 0) if any(f < 0 for f in final) else min(sizes)
        raise RuntimeError(f"Trying to create tensor with negative dimension {bad}: "
                           f"{_shape_str(final)}")
    split = tuple(x for s in old for x in (1, s))
    tiled = tuple(x for r, s in zip(sizes, old) for x in (r, s))
    n = _reshape(self.node, split)
    if tiled != split:
        n = Node(Op.EXPAND, (n,), tiled, tiled, self.dtype)
    return wrap(_reshape(n, final))


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Elements shifted along dims, wrapping around; dims=None rolls the flattened tensor."""
    shifts = (shifts,) if isinstance(shifts, int) else tuple(int(s) for s in shifts)
    dims = () if dims is None else (dims,) if isinstance(dims, int) else tuple(dims)
    if not shifts:
        raise RuntimeError("`shifts` required")
    if not dims:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                               f"dims:0")
        flat = wrap(_reshape(input.node, (input.numel(),)))
        return wrap(_reshape(roll(flat, shifts, 0).node, tuple(input.shape)))
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                           f"dims:{len(dims)}")
    n = input.node
    for s, dim in zip(shifts, dims):
        d = _canon_dim(dim, input.ndim)
        size = n.shape[d]
        if size == 0 or s % size == 0:
            continue
        s %= size
        head = n.shape[:d] + (s,) + n.shape[d + 1:]
        tail = n.shape[:d] + (size - s,) + n.shape[d + 1:]
        a = Node(Op.SLICE, (n,), tuple((size - s, 1) if j == d else (0, 1)
                                       for j in range(len(n.shape))), head, n.dtype)
        b = Node(Op.SLICE, (n,), tuple((0, 1) for _ in n.shape), tail, n.dtype)
        n = cat_nodes([a, b], d)
    return wrap(n)


__all__ = ["cat", "concat", "concatenate", "stack", "hstack", "vstack", "row_stack", "dstack",
           "column_stack", "atleast_1d", "atleast_2d", "atleast_3d", "tril", "triu", "roll"]

for _name, _fn in dict(repeat=repeat, roll=roll, tril=tril, triu=triu, tril_=tril_,
                       triu_=triu_).items():
    setattr(Tensor, _name, _fn)
