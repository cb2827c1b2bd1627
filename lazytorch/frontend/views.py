"""Movement ops. Views record how they were made from the tensor they view, so that an
in-place write to either is seen by both (as in PyTorch) while the IR stays functional."""
from __future__ import annotations

import math
import sys
from typing import Sequence

from ..engine.realize import computed_near, realize_later
from ..ir import dtypes as dt
from ..ir.graph import Node, const, new_node
from ..ir.ops import Op
from ..ir.sites import SITES, record_from
from .tensor import Tensor, _canon_dim, _shape_str

Step = tuple  # (op, arg, shape)


def apply_steps(n: Node, steps: Sequence[Step]) -> Node:
    for op, arg, shape in steps:
        n = new_node(op, (n,), arg, shape, n.dtype)
    return n


def _unslice(v: Node, arg, src_shape, fill) -> Node:
    """Place v (a SLICE's output) back into src_shape; elsewhere `fill`."""
    for d, ((start, step), size) in enumerate(zip(arg, src_shape)):
        n = v.shape[d]
        if step < 0:
            flip = tuple((n - 1, -1) if i == d else (0, 1) for i in range(len(v.shape)))
            v = Node(Op.SLICE, (v,), flip, v.shape, v.dtype)
            start, step = start + step * (n - 1), -step
        if step > 1 and n > 0:
            sh = v.shape[:d + 1] + (1,) + v.shape[d + 1:]
            v = Node(Op.RESHAPE, (v,), sh, sh, v.dtype)
            pads = tuple((0, step - 1) if i == d + 1 else (0, 0) for i in range(len(sh)))
            sh = sh[:d + 1] + (step,) + sh[d + 2:]
            v = Node(Op.PAD, (v,), (pads, fill), sh, v.dtype)
            sh = sh[:d] + (n * step,) + sh[d + 2:]
            v = Node(Op.RESHAPE, (v,), sh, sh, v.dtype)
            keep = min(n * step, size - start)
            if keep < n * step:
                sl = tuple((0, 1) for _ in sh)
                sh = sh[:d] + (keep,) + sh[d + 1:]
                v = Node(Op.SLICE, (v,), sl, sh, v.dtype)
        cur = v.shape[d]
        if start or size - start - cur:
            pads = tuple((start, size - start - cur) if i == d else (0, 0)
                         for i in range(len(v.shape)))
            sh = v.shape[:d] + (size,) + v.shape[d + 1:]
            v = Node(Op.PAD, (v,), (pads, fill), sh, v.dtype)
    return v


def write_back(base: Node, new: Node, steps: Sequence[Step]) -> Node:
    """The base's new value after the view `steps` of it has been overwritten with `new`."""
    if not steps:
        return new
    op, arg, shape = steps[0]
    inner = Node(op, (base,), arg, shape, base.dtype)
    new_inner = write_back(inner, new, steps[1:])
    if op is Op.DETACH:
        return new_inner
    if op is Op.RESHAPE:
        return Node(Op.RESHAPE, (new_inner,), base.shape, base.shape, base.dtype)
    if op is Op.PERMUTE:
        inv = tuple(sorted(range(len(arg)), key=lambda i: arg[i]))
        return Node(Op.PERMUTE, (new_inner,), inv, base.shape, base.dtype)
    if op is Op.SLICE:
        placed = _unslice(new_inner, arg, base.shape, base.dtype.np(0).item())
        ones = const(True, dt.bool_, new_inner.shape)
        mask = _unslice(ones, arg, base.shape, False)
        return Node(Op.WHERE, (mask, placed, base), None, base.shape, base.dtype)
    raise RuntimeError("unsupported operation: more than one element of the written-to tensor "
                       "refers to a single memory location. Please clone() the tensor before "
                       "performing the operation.")


def make_view(t: Tensor, op: Op, arg, shape: tuple[int, ...]) -> Tensor:
    """A view of t: shares t's storage in the PyTorch sense (writes go through)."""
    shape = tuple(shape)
    n = t.node
    if op is Op.DETACH and n.op is not Op.BUFFER:
        # a detached view needs the value, not the graph (which a tensor that carries a
        # gradient keeps): a recurrent state detached every step holds no earlier step
        n = computed_near(n)
    node = new_node(op, (n,), arg, shape, n.dtype)
    if op is Op.SLICE and n.op is Op.BUFFER and not t.requires_grad:
        node = _sliced_buffer(node) or node
    if id(node) not in _SITES:
        record_from(node, sys._getframe(1), "make_view")  # record(node), from here
    out = Tensor._make(node)
    base = t._base if t._base is not None else t
    out._base = base
    out._view_steps = t._view_steps + ((op, arg, shape),)
    out._base_version = base._version
    if op is Op.DETACH and n.op is not Op.BUFFER:
        # state kept across steps (a recurrent state, a target) is detached: a value no later
        # realize needs (an LSTM's last cell state) is computed with the next one all the same,
        # or each step would build on the last step's pending graph
        realize_later(out)
    return out


_SITES = SITES.d


def _sliced_buffer(node: Node) -> Node | None:
    """A slice of a buffer that is one contiguous run of it (rows of a matrix, a batch of a
    data set): a buffer of its own over the same memory, so that a slice taken at a new offset
    every step (`source[i:i + n]`) is new data for the same compiled plan, not a new graph."""
    from ..runtime import interpreter, memory
    arr = interpreter.NUMPY[Op.SLICE](node, memory.host_data(node.srcs[0]))
    if not arr.flags.c_contiguous:
        return None
    return memory.buffer_node(arr, node.dtype, device=node.srcs[0].device)


# ----------------------------------------------------------------------------- strides
# Views keep PyTorch's storage semantics: a reshape that strides cannot express copies (so a
# write to the result is not seen by the source, as in PyTorch), `view` refuses it, and
# `contiguous` copies exactly when PyTorch would.
Layout = tuple  # (shape, strides, offset) in elements of the base tensor's storage


def _contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return tuple(reversed(out))


def _reshape_strides(old: Sequence[int], strides: Sequence[int],
                     new: Sequence[int]) -> tuple[int, ...] | None:
    """Strides for viewing (old, strides) as `new`, or None when no strides can (PyTorch's
    computeStride)."""
    if math.prod(old) == 0 or not old:
        return _contiguous_strides(new)
    out = [0] * len(new)
    view_d = len(new) - 1
    chunk = strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(old) - 1, -1, -1):
        tensor_numel *= old[d]
        if d == 0 or (old[d - 1] != 1 and strides[d - 1] != tensor_numel * chunk):
            while view_d >= 0 and (view_numel < tensor_numel or new[view_d] == 1):
                out[view_d] = view_numel * chunk
                view_numel *= new[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk = strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(out) if view_d == -1 else None


def _step_layout(lay: Layout | None, op: Op, arg, shape) -> Layout | None:
    if lay is None:
        return None
    old, st, off = lay
    if op is Op.PERMUTE:
        return shape, tuple(st[p] for p in arg), off
    if op is Op.EXPAND and len(old) == len(shape):
        return shape, tuple(s if a == b else 0 for s, a, b in zip(st, old, shape)), off
    if op is Op.SLICE:
        off += sum(start * s for (start, _), s in zip(arg, st))
        return shape, tuple(s * step for (_, step), s in zip(arg, st)), off
    if op is Op.RESHAPE:
        new = _reshape_strides(old, st, shape)
        return None if new is None else (shape, new, off)
    return None


def layout(t: Tensor) -> Layout | None:
    """t's (shape, strides, offset) within the storage it views, or None if not expressible."""
    base = t._base if t._base is not None else t
    lay: Layout | None = (tuple(base.shape), _contiguous_strides(base.shape), 0)
    for op, arg, shape in t._view_steps:
        lay = _step_layout(lay, op, arg, tuple(shape))
    return lay


def is_contiguous(t: Tensor) -> bool:
    """PyTorch's is_contiguous(): row-major strides, ignoring size-1 dims (and empty tensors)."""
    if t._base is None:
        return True
    lay = layout(t)
    if lay is None:
        return False
    shape, st, _ = lay
    if math.prod(shape) == 0:
        return True
    want = _contiguous_strides(shape)
    return all(n == 1 or a == b for n, a, b in zip(shape, st, want))


# ----------------------------------------------------------------------------- shape ops
def _infer_shape(shape: Sequence[int], numel: int, old) -> tuple[int, ...]:
    shape = list(shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    for i, d in enumerate(shape):
        if d < -1:
            raise RuntimeError(f"invalid shape dimension {d} at index {i} of shape "
                               f"{_shape_str(shape)}")
    if -1 in shape:
        rest = math.prod(d for d in shape if d != -1)
        if rest == 0 and numel == 0:
            raise RuntimeError(f"cannot reshape tensor of 0 elements into shape "
                               f"{_shape_str(shape)} because the unspecified dimension size "
                               f"-1 can be any value and is ambiguous")
        if rest == 0 or numel % rest:
            raise RuntimeError(f"shape '{_shape_str(shape)}' is invalid for input of size "
                               f"{numel}")
        shape[shape.index(-1)] = numel // rest
    if math.prod(shape) != numel:
        raise RuntimeError(f"shape '{_shape_str(shape)}' is invalid for input of size {numel}")
    return tuple(shape)


def _sizes(args) -> tuple:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _viewable(self: Tensor, new: tuple[int, ...]) -> bool:
    if self._base is None:
        return True
    lay = layout(self)
    return lay is not None and _reshape_strides(lay[0], lay[1], new) is not None


def reshape(self: Tensor, *shape) -> Tensor:
    """A view when strides can express it, else a copy (PyTorch's rule)."""
    new = _infer_shape([int(d) for d in _sizes(shape)], self.numel(), self.shape)
    if _viewable(self, new):
        return make_view(self, Op.RESHAPE, new, new)
    from .elementwise import make
    return make(Op.RESHAPE, (self.node,), new, new, self.dtype)


def view(self: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], dt.DType):
        if shape[0] != self.dtype:
            raise NotImplementedError("view(dtype) reinterpreting bits is not supported")
        return self
    new = _infer_shape([int(d) for d in _sizes(shape)], self.numel(), self.shape)
    if not _viewable(self, new):
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at "
                           "least one dimension spans across two contiguous subspaces). Use "
                           ".reshape(...) instead.")
    return make_view(self, Op.RESHAPE, new, new)


def view_as(self: Tensor, other: Tensor) -> Tensor:
    return view(self, other.shape)


def reshape_as(self: Tensor, other: Tensor) -> Tensor:
    return reshape(self, other.shape)


def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    s, e = _canon_dim(start_dim, self.ndim), _canon_dim(end_dim, self.ndim)
    if self.ndim == 0:
        return reshape(self, 1)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    sh = self.shape
    return reshape(self, sh[:s] + (math.prod(sh[s:e + 1]),) + sh[e + 1:])


def unflatten(self: Tensor, dim: int, sizes) -> Tensor:
    d = _canon_dim(dim, self.ndim)
    if self.ndim == 0:
        raise RuntimeError(f"Dimension specified as {dim} but tensor has no dimensions")
    sizes = list(sizes)
    if -1 in sizes:
        rest = math.prod(x for x in sizes if x != -1)
        sizes[sizes.index(-1)] = self.shape[d] // rest if rest else 0
    if math.prod(sizes) != self.shape[d]:
        raise RuntimeError(f"unflatten: Provided sizes {_shape_str(sizes)} don't multiply up "
                           f"to the size of dim {dim} ({self.shape[d]}) in the input tensor")
    return reshape(self, self.shape[:d] + tuple(sizes) + self.shape[d + 1:])


def squeeze(self: Tensor, dim=None) -> Tensor:
    if dim is None:
        dims = [i for i, s in enumerate(self.shape) if s == 1]
    else:
        dims = [_canon_dim(d, self.ndim) for d in (dim if isinstance(dim, (tuple, list))
                                                   else (dim,))]
    new = tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1))
    return reshape(self, new)


def unsqueeze(self: Tensor, dim: int) -> Tensor:
    d = _canon_dim(dim, self.ndim + 1)
    return reshape(self, self.shape[:d] + (1,) + self.shape[d:])


def permute(self: Tensor, *dims) -> Tensor:
    dims = _sizes(dims)
    shape = self._node.shape
    nd = len(shape)
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {nd} is not equal to len(dims) = {len(dims)}")
    perm = tuple(_canon_dim(d, nd) for d in dims)
    if len(set(perm)) != len(perm):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return make_view(self, _PERMUTE, perm, tuple(shape[p] for p in perm))


_PERMUTE = Op.PERMUTE


def transpose(self: Tensor, dim0: int, dim1: int) -> Tensor:
    a, b = _canon_dim(dim0, self.ndim), _canon_dim(dim1, self.ndim)
    if self.ndim == 0:
        return make_view(self, Op.RESHAPE, (), ())
    perm = list(range(self.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return permute(self, perm)


def t(self: Tensor) -> Tensor:
    if self.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                           f"{self.ndim}D")
    return transpose(self, 0, 1) if self.ndim == 2 else make_view(self, Op.RESHAPE,
                                                                  self.shape, self.shape)


def T(self: Tensor) -> Tensor:
    return permute(self, tuple(reversed(range(self.ndim))))


def mT(self: Tensor) -> Tensor:
    if self.ndim < 2:
        raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {self.ndim}-D tensor.")
    return transpose(self, -2, -1)


def movedim(self: Tensor, source, destination) -> Tensor:
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({src} dims) "
                           f"should contain the same number of dims as destination ({dst} dims)")
    src = [_canon_dim(d, self.ndim) for d in src]
    dst = [_canon_dim(d, self.ndim) for d in dst]
    if len(set(src)) != len(src):
        raise RuntimeError(f"movedim: repeated dim in `source` ({list(source)})")
    if len(set(dst)) != len(dst):
        raise RuntimeError(f"movedim: repeated dim in `destination` ({list(destination)})")
    if self.ndim == 0:
        return make_view(self, Op.RESHAPE, (), ())
    perm: list[int | None] = [None] * self.ndim
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(d for d in range(self.ndim) if d not in src)
    return permute(self, [p if p is not None else next(rest) for p in perm])


def expand(self: Tensor, *sizes) -> Tensor:
    sizes = _sizes(sizes)
    if len(sizes) < self.ndim:
        raise RuntimeError(f"expand(torch.FloatTensor{{{_shape_str(self.shape)}}}, size="
                           f"{_shape_str(sizes)}): the number of sizes provided "
                           f"({len(sizes)}) must be greater or equal to the number of "
                           f"dimensions in the tensor ({self.ndim})")
    lead = len(sizes) - self.ndim
    old = (1,) * lead + tuple(self.shape)
    new = []
    for i, (o, s) in enumerate(zip(old, sizes)):
        if s == -1 and i < lead:
            raise RuntimeError(f"The expanded size of the tensor (-1) isn't allowed in a "
                               f"leading, non-existing dimension {i}")
        s = o if s == -1 else s
        if o != s and (o != 1 or s < 0):
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing "
                               f"size ({o}) at non-singleton dimension {i}.  Target sizes: "
                               f"{_shape_str(sizes)}.  Tensor sizes: {_shape_str(self.shape)}")
        new.append(s)
    out = self if not lead else reshape(self, old)
    return make_view(out, Op.EXPAND, tuple(new), tuple(new))


def expand_as(self: Tensor, other: Tensor) -> Tensor:
    return expand(self, other.shape)


def slice_dim(self: Tensor, dim: int, start, stop, step: int = 1) -> Tensor:
    """self[..., start:stop:step, ...] along one dim, with Python's slice rules."""
    d = _canon_dim(dim, self.ndim)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    n = self.shape[d]
    start, stop, step = slice(start, stop, step).indices(n)
    length = len(range(start, stop, step))
    if length == 0:
        start = 0
    arg = tuple((start, step) if i == d else (0, 1) for i in range(self.ndim))
    shape = self.shape[:d] + (length,) + self.shape[d + 1:]
    return make_view(self, Op.SLICE, arg, shape)


def narrow(self: Tensor, dim: int, start: int, length: int) -> Tensor:
    if self.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = _canon_dim(dim, self.ndim)
    n = self.shape[d]
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but "
                         f"got {start})")
    if start < 0:
        start += n
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return slice_dim(self, d, start, start + length)


def flip(self: Tensor, *dims) -> Tensor:
    given = [_canon_dim(d, self.ndim) for d in _sizes(dims)]
    dims = set(given)
    if len(dims) != len(given):
        dup = next(d for d in given if given.count(d) > 1)
        raise RuntimeError(f"dim {dup} appears multiple times in the list of dims")
    arg = tuple((s - 1, -1) if i in dims and s > 0 else (0, 1)
                for i, s in enumerate(self.shape))
    return Tensor._make(Node(Op.SLICE, (self.node,), arg, self.shape, self.dtype))


def split(self: Tensor, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    if self.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _canon_dim(dim, self.ndim)
    n = self.shape[d]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s < 0 or (s == 0 and n != 0):
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {n}" if s == 0 else
                               f"split expects split_size be non-negative, but got "
                               f"split_size={s}")
        sizes = [min(s, n - i) for i in range(0, n, s)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {d}), but got "
                               f"split_sizes={sizes}")
    out, pos = [], 0
    for s in sizes:
        out.append(slice_dim(self, d, pos, pos + s))
        pos += s
    return tuple(out)


def chunk(self: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    if self.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    n = self.shape[_canon_dim(dim, self.ndim)]
    size = -(-n // chunks) if n else 1
    return split(self, max(size, 1), dim)


def unbind(self: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    d = _canon_dim(dim, self.ndim)
    return tuple(select(self, d, i) for i in range(self.shape[d]))


def select(self: Tensor, dim: int, index: int) -> Tensor:
    d = _canon_dim(dim, self.ndim)
    n = self.shape[d]
    if not -n <= index < n:
        raise IndexError(f"index {index} is out of bounds for dimension {d} with size {n}")
    index %= n
    s = slice_dim(self, d, index, index + 1)
    return reshape(s, self.shape[:d] + self.shape[d + 1:])


def unfold(self: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Tensor.unfold: all windows of `size` elements along `dimension`, `step` apart, as a new
    last dimension (a view)."""
    d = _canon_dim(dimension, self.ndim)
    n = self.shape[d] if self.ndim else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if self.ndim == 0:
        return reshape(self, 1)
    shape = self.shape[:d] + ((n - size) // step + 1,) + self.shape[d + 1:] + (size,)
    return make_view(self, Op.UNFOLD, (d, size, step), shape)
