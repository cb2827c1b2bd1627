"""Tensor: the eager-looking face of the lazy graph.

Every method validates its arguments at once (shapes, dtypes, dims), with PyTorch's messages,
and records a Node; nothing is computed until a value is needed (print, item, numpy, ...).
"""
from __future__ import annotations

import functools
import math
import sys
import weakref
from typing import Any, Sequence

import numpy as np

from .. import autograd, config
from ..engine import backends
from ..engine.realize import REALIZED, _is_constant, realize, realize_later
from ..ir import dtypes as dt
from ..ir.graph import Node
from ..ir.ops import Op
from ..ir.sites import record
from ..runtime import memory
from . import overflow
from .size import Size


class device:
    """torch.device: "cpu", or a device type that a registered backend serves, with an optional
    index ("cuda" and "cuda:N" are always understood; placing data there needs a CUDA
    backend)."""

    def __init__(self, spec: Any = "cpu", index: int | None = None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index
        s = str(spec)
        kind, _, idx = s.partition(":")
        if kind not in ("cpu", "cuda") and kind not in backends.device_types():
            types = ["cpu", "cuda"] + [t for t in backends.device_types() if t not in ("cpu",
                                                                                       "cuda")]
            raise RuntimeError(f"Expected one of {', '.join(types)} device type at start of "
                               f"device string: {s}")
        self.type = kind
        self.index = int(idx) if idx else index

    def __eq__(self, other) -> bool:
        try:
            o = device(other)
        except RuntimeError:
            return False
        return o.type == self.type and (o.index == self.index or None in (o.index, self.index))

    def __hash__(self) -> int:
        return hash(self.type)

    def __enter__(self) -> device:
        """`with torch.device(d):` makes d the default device inside the block."""
        self._outer = DEFAULT_DEVICE[0]
        DEFAULT_DEVICE[0] = check_device(self)
        return self

    def __exit__(self, *exc) -> None:
        DEFAULT_DEVICE[0] = self._outer

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"


CPU = device("cpu")
# the IR's device names (Node.device) -> the devices tensors report
_DEVICES: dict[str | None, device] = {None: CPU, "cpu": CPU}
# the IR's name of the device creation functions use when given none (set_default_device)
DEFAULT_DEVICE = ["cpu"]


def check_device(d) -> str:
    """The IR's name for torch device `d` (None: the default device, the CPU unless
    set_default_device chose another): "cpu" or "<type>:<index>", index 0 when none is given.
    The CUDA backend starts at the first "cuda" device; a device that cannot run here raises
    at the user's call (PyTorch's messages: no pycuda, no driver, no GPU, an invalid index)."""
    if d is None:
        return DEFAULT_DEVICE[0]
    if d == "cpu":
        return "cpu"
    dev = device(d)
    if dev.type == "cpu":
        return "cpu"
    if dev.type not in backends.device_types():
        backends.start(dev.type)   # "cuda" at its first use; raises why it cannot run here
    name = sys.intern(f"{dev.type}:{dev.index or 0}")
    if name not in _DEVICES:
        backends.check_index(dev.type, dev.index or 0)
        _DEVICES[name] = device(dev.type, dev.index or 0)
    return name


def device_name(t: Tensor) -> str:
    """The IR's name of t's device (an unplaced scalar's is the CPU): where the helper data of
    an op on t (index buffers, masks, iotas, random draws) is put."""
    return t._node.device or "cpu"


def same_device(a: Tensor, b: Tensor) -> str:
    """The device of `a` and `b` (whose values an op reads on the host, so new_node cannot
    see them meet), or PyTorch's error for two devices."""
    da, db = device_name(a), device_name(b)
    if da != db:
        from ..ir.graph import mixed_devices
        raise mixed_devices(da, db)
    return da


def to_device(t: Tensor, where: str) -> Tensor:
    """t's value on the device named `where` (t itself if it is there already). For now an
    eager copy through host memory; gradients flow back across it (copied back the same
    way when backward reaches it)."""
    if (t.node.device or "cpu") == where:
        return t
    return _to_copy().apply(t, where)


@functools.cache
def _to_copy():
    """The autograd Function of a copy between devices (made at first use: autograd's Function
    is built on Tensor)."""
    from ..autograd.function import Function

    class ToCopy(Function):
        @staticmethod
        def forward(ctx, x: Tensor, where: str) -> Tensor:
            ctx.source = x.node.device or "cpu"
            return _copied(x, where)

        @staticmethod
        def backward(ctx, g: Tensor) -> tuple[Tensor, None]:
            return _copied(g, ctx.source), None

    ToCopy._backward_name = "ToCopyBackward0"   # (PyTorch's grad_fn name)
    return ToCopy


def _copied(t: Tensor, where: str) -> Tensor:
    """A new buffer on `where` holding t's value (t computed first, on its device)."""
    b = realize_tensors([t])[0]
    return Tensor._make(memory.buffer_node(memory.host_data(b), b.dtype, device=where))


def _np_from_data(data: Any, dtype: dt.DType | None) -> np.ndarray:
    """numpy array for tensor(data): ints give int64, floats the default float, bools bool."""
    if isinstance(data, Tensor):
        arr = data._array()
    elif isinstance(data, (np.ndarray, np.generic)):  # numpy scalars keep their dtype too
        arr = np.asarray(data)
    else:
        if isinstance(data, (list, tuple)):
            data = _flatten_tensors(data)
        arr = np.array(data)
        if arr.dtype == object:
            overflow.object_data(data)
            raise TypeError(f"Could not infer dtype of {type(data).__name__}")
        overflow.data(arr, dtype, data)
        if dtype is None:
            if arr.dtype.kind == "f":
                arr = dt.astype(arr, dt.get_default_dtype())
            elif arr.dtype.kind in "iu":
                arr = arr.astype(np.int64)
            elif arr.dtype.kind == "c":
                raise TypeError("complex tensors are not supported")
            elif arr.dtype.kind not in "b" and not dt.is_float_array(arr):   # (bfloat16 stays)
                raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    if dtype is not None:
        arr = dt.astype(arr, dtype)   # (1e40 as half is inf, silently)
    else:
        dt.from_numpy(arr.dtype)
    return arr


def _flatten_tensors(data):
    if isinstance(data, Tensor):
        return data._array()
    if isinstance(data, (list, tuple)):
        return [_flatten_tensors(x) for x in data]
    return data


def _shape_str(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """torch.broadcast_shapes, with PyTorch's error message."""
    n = max((len(s) for s in shapes), default=0)
    out = [1] * n
    for s in shapes:
        for i, d in enumerate(s, n - len(s)):
            if out[i] == 1:
                out[i] = d
            elif d != 1 and d != out[i]:
                raise RuntimeError(f"shape mismatch: objects cannot be broadcast to a single "
                                   f"shape.  Mismatch is between {list(shapes[0])} and "
                                   f"{list(s)}")
    return tuple(out)


def _canon_dim(dim: int, ndim: int) -> int:
    lim = max(ndim, 1)
    if not -lim <= dim < lim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-lim}, "
                         f"{lim - 1}], but got {dim})")
    return dim % lim


class Tensor:
    """A lazy tensor. Its value is the node `self.node`; views track the tensor they view so
    in-place writes through either are seen by both, as in PyTorch."""

    __array_priority__ = 1000
    # the state of a fresh op result, as class defaults: _make sets only the node
    _base: Tensor | None = None
    _view_steps: tuple = ()
    _version = 0
    _base_version = 0
    _requires_grad = False
    grad = None
    _grad_node: Node | None = None  # the op result's node, kept for backward

    def __init__(self, *args, dtype=None, device=None, requires_grad: bool = False):
        # torch.Tensor(data) or torch.Tensor(*sizes): the legacy constructor, float32
        if len(args) == 1 and not isinstance(args[0], int):
            arr = _np_from_data(args[0], dt.to_dtype(dtype) if dtype else dt.float32)
        else:
            arr = np.empty(tuple(args), dt.to_dtype(dtype or dt.float32).np)
        self._init(memory.buffer_node(arr, device=check_device(device)))
        if requires_grad:
            self.requires_grad_(True)

    def _init(self, node: Node) -> None:
        self._node = node
        self._base: Tensor | None = None
        self._view_steps: tuple = ()
        self._version = 0
        self._base_version = 0
        self._requires_grad = False
        self.grad = None
        self._grad_node: Node | None = None  # the op result's node, kept for backward

    @classmethod
    def _make(cls, node: Node) -> Tensor:
        t = cls.__new__(cls)
        t._node = node  # the rest of a fresh tensor's state is the class defaults
        if _LEAVES:
            autograd.on_new_tensor(t)
        if _EAGER[0] and config.eager_mode() is not None and node.op is not Op.BUFFER:
            with config.use_backend(config.eager_mode()):
                realize_tensors([t])  # debug mode: the op runs here, at the user's line
        return t

    # --------------------------------------------------------------------- the node
    @property
    def node(self) -> Node:
        """The IR node holding this tensor's current value (its buffer, once a realize has
        computed it: see lazytorch/engine/live.py)."""
        if _WRITTEN and id(self) in _WRITTEN:
            autograd.flush_written()
        b = self._base
        if b is not None and self._base_version != b._version:
            from .views import apply_steps
            self._node = apply_steps(b.node, self._view_steps)
            self._base_version = b._version
        n = self._node
        if id(n) in _REALIZED_D and self._grad_node is None:
            return self._take_buffer(n)
        return n

    def _take_buffer(self, n: Node) -> Node:
        """Rebind to the buffer a realize computed for this tensor's node `n`, dropping the
        graph behind it (a leaf that requires grad stays the leaf, as its buffer)."""
        if _is_constant(n):          # constants stay immediates
            return n
        b = REALIZED[n]
        self._node = b
        if self.requires_grad:
            autograd.LEAVES[b] = weakref.ref(self)
        return b

    def _assign(self, node: Node, untracked: bool = False) -> None:
        """In-place update: rebind to `node`, writing through to the viewed tensor if any
        (`untracked`: the write comes through a detach()ed view)."""
        own = self._node
        if node.shape != own.shape:
            raise RuntimeError(f"in-place result has shape {_shape_str(node.shape)} but the "
                               f"tensor has shape {_shape_str(self.shape)}")
        if node.dtype is not own.dtype:
            node = Node(Op.CAST, (node,), own.dtype, node.shape, own.dtype)
        if self.requires_grad or autograd.tracked(node):
            node = autograd.on_assign(self, node, untracked)
        b = self._base
        if b is not None:
            from .views import write_back
            detached = untracked or any(st[0] is Op.DETACH for st in self._view_steps)
            b._assign(write_back(b.node, node, self._view_steps), detached)
            self._base_version = b._version
        self._node = node
        self._version += 1
        if not autograd.is_grad_enabled():
            autograd.note_update(self)

    # --------------------------------------------------------------------- metadata
    @property
    def shape(self) -> Size:
        return Size(self._node.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return self.shape
        return self.shape[_canon_dim(dim, self.ndim)]

    @property
    def dtype(self) -> dt.DType:
        return self._node.dtype

    @property
    def device(self) -> device:
        """Where the value lives: its node's device (an unplaced scalar's is the CPU)."""
        return _DEVICES[self._node.device]

    @property
    def is_cuda(self) -> bool:
        return (self._node.device or "").startswith("cuda")

    @property
    def ndim(self) -> int:
        return len(self._node.shape)

    def dim(self) -> int:
        return self.ndim

    ndimension = dim

    def numel(self) -> int:
        return math.prod(self._node.shape)

    nelement = numel

    def element_size(self) -> int:
        return self.dtype.itemsize

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def is_contiguous(self, memory_format=None) -> bool:
        from .views import is_contiguous
        return is_contiguous(self)

    @property
    def is_leaf(self) -> bool:
        return self._grad_node is None

    @property
    def grad_fn(self):
        return None if self._grad_node is None else autograd.GradFn(self._grad_node)

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False,
                 inputs=None) -> None:
        """Accumulate gradients into the leaves' .grad; builds graph only, runs nothing."""
        autograd.backward([self], None if gradient is None else [gradient], retain_graph,
                          create_graph, inputs)

    def retain_grad(self) -> None:
        autograd.retain_grad(self)

    @property
    def retains_grad(self) -> bool:
        return getattr(self, "_retains_grad", False)

    @property
    def requires_grad(self) -> bool:
        """Whether autograd records ops on this tensor. Assignable on leaves only, as in
        PyTorch: `p.requires_grad = False` freezes a parameter (it gets no gradient and
        optimizers leave it alone)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        value = bool(value)
        if not self.is_leaf:
            raise RuntimeError(_NON_LEAF_FLAG + ("" if value else _NON_LEAF_HINT))
        if value and not self.dtype.is_floating_point:
            raise RuntimeError("only Tensors of floating point and complex dtype can require "
                               "gradients")
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if not self.is_leaf:
            if not requires_grad:
                raise RuntimeError(_NON_LEAF_FLAG + _NON_LEAF_HINT)
            return self
        if requires_grad and not (self.dtype.is_floating_point):
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if requires_grad == self._requires_grad:
            return self
        self._requires_grad = requires_grad
        if requires_grad:
            autograd.register_leaf(self)
        else:
            autograd.unregister_leaf(self)
        return self

    def detach_(self) -> Tensor:
        self._node = Node(Op.DETACH, (self.node,), None, self.shape, self.dtype)
        self._grad_node = None
        self._requires_grad = False
        return self

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self) -> int:
        return id(self)

    def __reduce__(self):
        # pickles as its value (numpy) and device, so tensors travel to other processes
        where = device_name(self)
        if where == "cpu":
            return (_rebuild, (np.array(self._array()), self.requires_grad))
        return (_rebuild, (np.array(self._array()), self.requires_grad, where))

    # --------------------------------------------------------------------- values
    def realize(self) -> Tensor:
        """Compute this tensor now (nothing else needs calling: values are computed on use)."""
        realize_tensors([self])
        return self

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The value as a numpy array (read-only: lazytorch buffers are immutable). As in
        PyTorch, a tensor that requires grad must be detached first (or `force=True`), and
        numpy has no bfloat16 (`t.float().numpy()` converts)."""
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if self.dtype is dt.bfloat16:
            raise TypeError("Got unsupported ScalarType BFloat16")
        return self._array()

    def _array(self) -> np.ndarray:
        """The value as a read-only numpy array, whether or not it requires grad; bfloat16 as
        ml_dtypes' bfloat16."""
        arr = memory.host_data(realize_tensors([self])[0]).view()
        arr.flags.writeable = False
        return arr

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a.astype(dtype) if dtype is not None else a.copy()

    def tolist(self):
        return self._array().tolist()

    def item(self):
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to "
                               "Scalar")
        return self._array().reshape(()).item()

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is "
                               "ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def __index__(self) -> int:
        if self.dtype.kind not in "iub" or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.item())

    def _scalar(self, what: str):
        if self.numel() != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __repr__(self) -> str:
        from .formatting import format_tensor
        return format_tensor(self)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        if self.ndim == 0 and spec:
            return format(self.item(), spec)
        return str(self)

    # --------------------------------------------------------------------- dtype conversion
    def to(self, *args, **kwargs) -> Tensor:
        """to(dtype), to(device), to(device, dtype), to(other), with copy=/non_blocking=."""
        dtype = kwargs.get("dtype")
        dev = kwargs.get("device")
        for a in args:
            if isinstance(a, dt.DType):
                dtype = a
            elif isinstance(a, Tensor):
                dtype, dev = a.dtype, a.device
            elif a is not None:
                dev = a
        where = check_device(dev) if dev is not None else None
        out = self if dtype is None else self._cast(dt.to_dtype(dtype))
        if where is not None:
            out = to_device(out, where)
        if kwargs.get("copy") and out is self:
            out = self.clone()
        return out

    def type(self, dtype=None):
        if dtype is None:
            return f"torch.{_TYPE_NAMES[self.dtype]}"
        return self.to(dt.to_dtype(dtype))

    def _cast(self, d: dt.DType) -> Tensor:
        if d == self.dtype:
            return self
        return self._make_op(Op.CAST, (self.node,), d, self.shape, d)

    def float(self) -> Tensor:
        return self._cast(dt.float32)

    def double(self) -> Tensor:
        return self._cast(dt.float64)

    def half(self) -> Tensor:
        return self._cast(dt.float16)

    def bfloat16(self) -> Tensor:
        return self._cast(dt.bfloat16)

    def int(self) -> Tensor:
        return self._cast(dt.int32)

    def long(self) -> Tensor:
        return self._cast(dt.int64)

    def short(self) -> Tensor:
        return self._cast(dt.int16)

    def char(self) -> Tensor:
        return self._cast(dt.int8)

    def byte(self) -> Tensor:
        return self._cast(dt.uint8)

    def bool(self) -> Tensor:
        return self._cast(dt.bool_)

    def type_as(self, other: Tensor) -> Tensor:
        return self._cast(other.dtype)

    def cpu(self) -> Tensor:
        return to_device(self, "cpu")

    def cuda(self, device=None, *a, **k) -> Tensor:
        return to_device(self, check_device(f"cuda:{device}" if isinstance(device, int) else
                                            device or "cuda"))

    def pin_memory(self, device=None) -> Tensor:
        """This CPU tensor's value in page-locked host memory, which the GPU copies from
        without staging (CUDA must be usable here: the error says why it is not)."""
        if device_name(self) != "cpu":
            raise RuntimeError(f"cannot pin '{self.type()}' only dense CPU tensors can be "
                               "pinned")
        check_device("cuda")
        alloc = memory.ALLOCATORS["cuda"]
        b = realize_tensors([self])[0]
        return Tensor._make(memory.buffer_node(alloc.pin(memory.host_data(b)), b.dtype))

    def is_pinned(self, device=None) -> bool:
        """Whether this tensor's data lies in page-locked memory (pin_memory())."""
        alloc = memory.ALLOCATORS.get("cuda")
        n = self._node
        return (alloc is not None and n.op is Op.BUFFER and n.device == "cpu"
                and alloc.pinned.holds(memory.host_data(n)))

    def clone(self, memory_format=None) -> Tensor:
        """A copy with its own storage. A buffer is immutable, so a copy of one shares it;
        anything else is stored by a kernel of its own when computed (a transposed corpus
        made contiguous once is then data, not a view that every slice of it recomputes)."""
        n = self.node
        if (n.op is Op.BUFFER or n.op is Op.CONST) and not self.requires_grad:
            return Tensor._make(n)
        return Tensor._make(Node(Op.CONTIGUOUS, (n,), None, n.shape, n.dtype))

    def contiguous(self, memory_format=None) -> Tensor:
        """self if its view is row-major, else a copy (writes to it do not reach self)."""
        return self if self.is_contiguous() else self.clone()

    @property
    def data(self) -> Tensor:
        """This tensor's value outside autograd, sharing its storage (like detach())."""
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, not {type(value).__name__}")
        self._node = value.node  # PyTorch lets .data replace the storage outright
        self._version += 1
        if self.requires_grad and self._grad_node is None:
            autograd.register_leaf(self)
            if self._node.op is not Op.BUFFER and autograd.is_grad_enabled():
                _WRITTEN[id(self)] = weakref.ref(self)     # computed before its next use
        elif self._node.op is not Op.BUFFER:
            # (state written through .data, an average nobody reads every step: computed with
            # the next realize, or each write would build on the last one's pending graph)
            realize_later(self)

    def detach(self) -> Tensor:
        """A tensor sharing this one's storage, outside the autograd graph: in-place writes to
        either are seen by both, as in PyTorch."""
        from .views import make_view
        return make_view(self, Op.DETACH, None, tuple(self.shape))

    # --------------------------------------------------------------------- recording
    def _make_op(self, op: Op, srcs: tuple[Node, ...], arg, shape, dtype) -> Tensor:
        node = Node(op, srcs, arg, tuple(shape), dtype)
        record(node)
        return Tensor._make(node)


_NON_LEAF_FLAG = "you can only change requires_grad flags of leaf variables."
_NON_LEAF_HINT = (" If you want to use a computed variable in a subgraph that doesn't require "
                  "differentiation use var_no_grad = var.detach().")
# the autograd leaves' table (by id): when it is empty no op result can require grad
_LEAVES = autograd.LEAVES.d
_WRITTEN = autograd.WRITTEN
# computed nodes -> their buffers (realize.REALIZED, by id)
_REALIZED_D = REALIZED.d
_EAGER = config.EAGER_SOMEWHERE

_TYPE_NAMES = {dt.float32: "FloatTensor", dt.float64: "DoubleTensor", dt.float16: "HalfTensor",
               dt.bfloat16: "BFloat16Tensor",
               dt.int64: "LongTensor", dt.int32: "IntTensor", dt.int16: "ShortTensor",
               dt.int8: "CharTensor", dt.uint8: "ByteTensor", dt.bool_: "BoolTensor"}


def realize_tensors(tensors: Sequence[Tensor]) -> list[Node]:
    """Realize several tensors in one go (one plan, shared work computed once); return the
    BUFFER node holding each one's value.

    Plain tensors are rebound to their buffer (dropping the graph behind them); tensors that
    carry a gradient graph keep their node, whose buffer is remembered by realize().
    """
    # the outputs of backward() (the loss) ride along with the next realize: that realize
    # computes their forward graph anyway, and `loss.item()` afterwards then costs nothing
    extra = []
    while autograd.COMPANIONS:
        c = autograd.COMPANIONS.pop()()
        if c is not None and c.node.op is not Op.BUFFER and c.node not in REALIZED and \
                all(c is not t for t in tensors):
            extra.append(c)
    # so do leaves written through `.data` (an SGD step by hand before `loss.item()`): the
    # step's forward, backward and update are then one plan
    if _WRITTEN:
        for r in list(_WRITTEN.values()):
            w = r()
            if w is not None and w._node.op is not Op.BUFFER and all(w is not t for t in tensors):
                extra.append(w)
        _WRITTEN.clear()
    tensors = list(tensors)
    n_asked = len(tensors)
    bufs = realize([t.node for t in tensors + extra])
    for t, b in zip(tensors + extra, bufs):
        if t._grad_node is not None or t._node is b:
            continue
        t._node = b
        if t.requires_grad:
            autograd.LEAVES[b] = weakref.ref(t)
    return bufs[:n_asked]


def _rebuild(arr: np.ndarray, requires_grad: bool, where: str = "cpu") -> Tensor:
    """A pickled tensor: `arr` on the IR's device `where` (its type must be served here)."""
    t = Tensor._make(memory.buffer_node(arr, device=check_device(where)))
    if requires_grad:
        t.requires_grad_(True)
    return t
