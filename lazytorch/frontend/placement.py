"""Writing a source into chosen positions of a tensor: put/put_, masked_scatter(_), and the
out-of-place select_scatter, slice_scatter, diagonal_scatter.

The *_scatter functions write `src` through a view of a copy of the input, so the copy's new
value (and its gradient) is the view write-back's. masked_scatter takes src's elements in order
for the True positions: the k-th True position gets src.flatten()[k], found by a running count
of the mask, all lazy.
"""
from __future__ import annotations

from ..ir import dtypes as dt
from . import elementwise as ew
from . import views as vw
from .tensor import Tensor, _canon_dim

__all__ = ["put", "masked_scatter", "select_scatter", "slice_scatter", "diagonal_scatter"]
METHODS = ["put", "put_", "masked_scatter", "masked_scatter_", "select_scatter", "slice_scatter",
           "diagonal_scatter"]


def _check(x, name: str, arg: str = "input", pos: int = 1) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")


def put_(self: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """Write source's elements at the flat (row-major) positions index of self."""
    _check(index, "put_", "index", 1)
    _check(source, "put_", "source", 2)
    if index.dtype != dt.int64:
        raise RuntimeError(f"put_(): Expected a long tensor for index, but got "
                           f"{dt.scalar_type_name(index.dtype)}")
    if index.numel() != source.numel():
        raise RuntimeError(f"put_(): Expected source and index to have the same number of "
                           f"elements, but got source.numel() = {source.numel()}, "
                           f"index.numel() = {index.numel()}")
    n = self.numel()
    idx = index.reshape(-1)
    idx = ew.where_nodes(idx < 0, idx + n, idx)  # negative positions count from the end
    flat = self.reshape(-1).clone().index_put_((idx,), source.reshape(-1).to(self.dtype),
                                               accumulate)
    self._assign(flat.reshape(tuple(self.shape)).node)
    return self


def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """put_ on a copy of input."""
    _check(input, "put")
    return put_(input.clone(), index, source, accumulate)


def masked_scatter_(self: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """Fill self's positions where mask (broadcast to self) is True with source's elements, in
    row-major order."""
    _check(mask, "masked_scatter_", "mask", 1)
    _check(source, "masked_scatter_", "source", 2)
    if mask.dtype != dt.bool_:
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with "
                           f"dtype {mask.dtype}")
    if source.dtype != self.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but "
                           f"got {dt.scalar_type_name(self.dtype)} and "
                           f"{dt.scalar_type_name(source.dtype)}")
    m = mask.expand(*self.shape).reshape(-1)
    src = source.reshape(-1)
    if src.numel() == 0:
        return self
    # the k-th True position takes src[k]; positions past src's end take its last (unused)
    pos = (m.to(dt.int64).cumsum(0) - 1).clamp(0, src.numel() - 1)
    taken = src.gather(0, pos).reshape(tuple(self.shape))
    self._assign(ew.where_nodes(m.reshape(tuple(self.shape)), taken, self).node)
    return self


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """masked_scatter_ on a copy of input (input and mask broadcast together)."""
    _check(input, "masked_scatter")
    _check(mask, "masked_scatter", "mask", 2)
    from .tensor import broadcast_shapes
    shape = broadcast_shapes(input.shape, mask.shape)
    return masked_scatter_(input.expand(*shape).clone(), mask, source)


def _write_view(input: Tensor, src: Tensor, view, name: str) -> Tensor:
    """A copy of input whose view (made by `view` from the copy) holds src."""
    _check(input, name)
    _check(src, name, "src", 2)
    out = input.clone()  # a tensor of its own: the write reaches only the copy
    target = view(out)
    if tuple(target.shape) != tuple(src.shape):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size "
                           f"= {list(src.shape)}, slice size = {list(target.shape)}")
    target.copy_(src)
    return out


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """A copy of input with input.select(dim, index) replaced by src."""
    return _write_view(input, src, lambda t: t.select(dim, index), "select_scatter")


def slice_scatter(input: Tensor, src: Tensor, dim: int = 0, start: int | None = None,
                  end: int | None = None, step: int = 1) -> Tensor:
    """A copy of input with input[start:end:step] along dim replaced by src."""
    return _write_view(input, src,
                       lambda t: vw.slice_dim(t, _canon_dim(dim, t.ndim), start, end, step),
                       "slice_scatter")


def diagonal_scatter(input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0,
                     dim2: int = 1) -> Tensor:
    """A copy of input with its diagonal (offset, dim1, dim2) replaced by src."""
    from .structure import diagonal
    return _write_view(input, src, lambda t: diagonal(t, offset, dim1, dim2),
                       "diagonal_scatter")
